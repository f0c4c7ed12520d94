//! Anchor boxes of the TF `ssd_anchor_generator`: the feature-map sizes and every box `[cy, cx, h, w]`.

use super::*;

use crate::hooks::catalogue::catalogue;

impl Detector {
    /// Feature-map sizes `(h, w)` at a `resolution²` input.
    ///
    /// # Panics
    /// Never for a built detector.
    pub fn map_sizes(&self, resolution: usize) -> Vec<(usize, usize)> {
        let sites = catalogue(&self.backbone, resolution);
        let mut sizes: Vec<(usize, usize)> =
            self.taps.iter().map(|t| sites.iter().find(|s| s.name == *t).map(|s| (s.shape[1], s.shape[2])).unwrap_or((1, 1))).collect();
        for e in &self.extras {
            let last = *sizes.last().expect("two taps");
            sizes.push(e.spatial.kind.output_size(last.0, last.1));
        }
        sizes
    }

    /// Anchor boxes `[cy, cx, h, w]` for a `resolution²` input, in output order.
    pub fn anchor_boxes(&self, resolution: usize) -> Vec<[f32; 4]> {
        let sizes = self.map_sizes(resolution);
        let l = sizes.len();
        let scale = |k: usize| if k >= l { 1.0 } else { MIN_SCALE + (MAX_SCALE - MIN_SCALE) * k as f64 / (l - 1) as f64 };
        let mut boxes = Vec::new();
        for (k, &(h, w)) in sizes.iter().enumerate() {
            let shapes: Vec<(f64, f64)> = if k == 0 {
                vec![(0.1, 1.0), (scale(0), 2.0), (scale(0), 0.5)]
            } else {
                let mut v: Vec<(f64, f64)> = ASPECT_RATIOS.iter().map(|&r| (scale(k), r)).collect();
                v.push(((scale(k) * scale(k + 1)).sqrt(), 1.0));
                v
            };
            for y in 0..h {
                for x in 0..w {
                    for &(s, r) in &shapes {
                        let (cy, cx) = ((y as f64 + 0.5) / h as f64, (x as f64 + 0.5) / w as f64);
                        boxes.push([cy as f32, cx as f32, (s / r.sqrt()) as f32, (s * r.sqrt()) as f32]);
                    }
                }
            }
        }
        boxes
    }
}
