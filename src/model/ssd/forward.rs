//! The detector's forward pass: the backbone to the two tapped maps, the extra layers, the predictors.

use super::*;
use std::sync::Arc;

use nalgebra::DMatrix;
use rayon::prelude::*;

use super::super::inverted_residual::{conv_site, fire};
use crate::error::Result;
use crate::hooks::sink::HookSink;
use crate::hooks::{HookName, HookSet, SsdPart, SsdPoint};
use crate::tensor::{Batch, FeatureMap};

impl Detector {
    /// Forward pass: per image, class logits and box deltas per anchor.
    ///
    /// # Errors
    /// A batch that is not N×3×H×W.
    pub fn detect(&self, batch: &Batch) -> Result<Detections> {
        self.detect_with_hooks(batch, 0, &mut HookSet::new())
    }

    /// Forward pass with hooks at backbone and head sites (images numbered from `first_image`); the
    /// body of [`Hooked::run_with_hooks_at`](crate::model::hooked::Hooked::run_with_hooks_at).
    pub(crate) fn detect_with_hooks(&self, batch: &Batch, first_image: usize, hooks: &mut HookSet) -> Result<Detections> {
        self.backbone.check_input(batch)?;
        let routes = Arc::new(hooks.routes(&self.sites(self.config.resolution)));
        let sinks: Vec<_> = (0..batch.len()).map(|_| hooks.fork(&routes)).collect();
        let results: Vec<(DMatrix<f32>, DMatrix<f32>, _)> = sinks
            .into_par_iter()
            .enumerate()
            .map(|(i, sink)| {
                let mut tapped = Tapped { inner: sink, taps: self.taps, maps: [None, None] };
                let mut ws = self.backbone.pool.take();
                self.backbone.forward_features(&batch.images()[i], first_image + i, &mut ws, &mut tapped, 1);
                self.backbone.pool.give(ws);
                let Tapped { inner: mut sink, maps, .. } = tapped;
                let maps = maps.map(|m| m.unwrap_or_else(|| FeatureMap::zeros(0, 0, 0)));
                let (c, b) = self.head_forward(maps, first_image + i, &mut sink);
                (c, b, sink)
            })
            .collect();
        let mut out = Detections { class_logits: Vec::new(), box_deltas: Vec::new() };
        let mut parts = Vec::new();
        for (c, b, s) in results {
            out.class_logits.push(c);
            out.box_deltas.push(b);
            parts.push(s);
        }
        hooks.join(parts);
        Ok(out)
    }

    pub(super) fn head_forward<H: HookSink>(&self, taps: [FeatureMap; 2], image: usize, hooks: &mut H) -> (DMatrix<f32>, DMatrix<f32>) {
        let mut maps: Vec<FeatureMap> = taps.into();
        let mut scratch = Vec::new();
        for (j, e) in self.extras.iter().enumerate() {
            let site = |point| HookName::Ssd { part: SsdPart::Extra, index: j, point };
            let (mut a, mut b) = (FeatureMap::zeros(0, 0, 0), FeatureMap::zeros(0, 0, 0));
            conv_site(&e.reduce, maps.last().expect("maps"), &mut a, &mut scratch, 1, site(SsdPoint::ReducePre), site(SsdPoint::ReducePost), hooks, image);
            conv_site(&e.spatial, &a, &mut b, &mut scratch, 1, site(SsdPoint::SpatialPre), site(SsdPoint::SpatialPost), hooks, image);
            if let Some(x) = &e.expand {
                conv_site(x, &b, &mut a, &mut scratch, 1, site(SsdPoint::ExpandPre), site(SsdPoint::ExpandPost), hooks, image);
                maps.push(a);
            } else {
                maps.push(b);
            }
        }
        let mut run = |part, heads: &[Predictor], per_anchor: usize| -> DMatrix<f32> {
            let mut rows: Vec<f32> = Vec::new();
            for (k, p) in heads.iter().enumerate() {
                let site = |point| HookName::Ssd { part, index: k, point };
                let mut tmp = FeatureMap::zeros(0, 0, 0);
                let input = match &p.spatial {
                    Some(sp) => {
                        conv_site(sp, &maps[k], &mut tmp, &mut scratch, 1, site(SsdPoint::SpatialPre), site(SsdPoint::SpatialPost), hooks, image);
                        &tmp
                    }
                    None => &maps[k],
                };
                let mut out = FeatureMap::zeros(0, 0, 0);
                p.conv.forward(input, &mut out, &mut scratch, 1);
                fire(hooks, site(SsdPoint::Out), image, &mut out);
                // channel = anchor·per_anchor + value → rows (position, anchor), columns value.
                let a = self.anchors[k];
                for q in 0..out.positions() {
                    for an in 0..a {
                        for v in 0..per_anchor {
                            rows.push(out.channel(an * per_anchor + v)[q]);
                        }
                    }
                }
            }
            let n = rows.len() / per_anchor;
            DMatrix::from_row_slice(n, per_anchor, &rows)
        };
        let cls = run(SsdPart::Class, &self.class_heads, self.config.classes + 1);
        let boxes = run(SsdPart::Box, &self.box_heads, 4);
        (cls, boxes)
    }
}

/// Wraps a hook sink and keeps copies of two sites' activations (after any intervention there).
struct Tapped<H> {
    inner: H,
    taps: [HookName; 2],
    maps: [Option<FeatureMap>; 2],
}

impl<H: HookSink> HookSink for Tapped<H> {
    fn wants(&self, name: &HookName) -> bool {
        self.taps.contains(name) || self.inner.wants(name)
    }
    fn fire(&mut self, name: &HookName, image: usize, fm: &mut FeatureMap) {
        if self.inner.wants(name) {
            self.inner.fire(name, image, fm);
        }
        if let Some(k) = self.taps.iter().position(|t| t == name) {
            self.maps[k] = Some(fm.clone());
        }
    }
}
