//! Parameters and multiply-adds of the detector, layer by layer (the backbone's, then the head's).

use super::*;

use super::super::cost::{LayerCost, ModelCost};
use crate::layers::ConvBn;

impl Detector {
    /// Cost of the backbone (features only) and the head at `resolution²`.
    pub fn cost(&self, resolution: usize) -> ModelCost {
        let mut layers: Vec<LayerCost> = self
            .backbone
            .cost(resolution)
            .layers
            .into_iter()
            .filter(|l| !matches!(l.kind.as_str(), "pool" | "dropout" | "linear"))
            .map(|l| LayerCost { name: format!("backbone.{}", l.name), ..l })
            .collect();
        let sizes = self.map_sizes(resolution);
        let unit = |layers: &mut Vec<LayerCost>, name: String, u: &ConvBn, input: [usize; 3]| -> [usize; 3] {
            let (oh, ow) = u.kind.output_size(input[1], input[2]);
            let out = [u.out_channels(), oh, ow];
            layers.push(LayerCost {
                name: format!("{name}.0"),
                kind: u.kind.name().into(),
                input,
                output: out,
                params: u.weight.len() as u64,
                buffers: 0,
                macs: u.macs(oh, ow),
            });
            layers.push(LayerCost {
                name: format!("{name}.1"),
                kind: "batch_norm".into(),
                input: out,
                output: out,
                params: 2 * u.out_channels() as u64,
                buffers: u.buffers() as u64,
                macs: 0,
            });
            out
        };
        let mut x = [self.class_heads[1].conv.kind.in_channels(), sizes[1].0, sizes[1].1];
        for (j, e) in self.extras.iter().enumerate() {
            x = unit(&mut layers, format!("extras.{j}.0"), &e.reduce, x);
            x = unit(&mut layers, format!("extras.{j}.1"), &e.spatial, x);
            if let Some(ex) = &e.expand {
                x = unit(&mut layers, format!("extras.{j}.2"), ex, x);
            }
        }
        for (part, heads) in [("class", &self.class_heads), ("box", &self.box_heads)] {
            for (k, p) in heads.iter().enumerate() {
                let (h, w) = sizes[k];
                let mut input = [p.conv.kind.in_channels(), h, w];
                if let Some(sp) = &p.spatial {
                    input = unit(&mut layers, format!("head.{part}.{k}.0"), sp, input);
                }
                let out = [p.conv.kind.out_channels(), h, w];
                layers.push(LayerCost {
                    name: format!("head.{part}.{k}.1"),
                    kind: p.conv.kind.name().into(),
                    input,
                    output: out,
                    params: p.conv.params() as u64,
                    buffers: 0,
                    macs: p.conv.macs(h, w),
                });
            }
        }
        ModelCost {
            params: layers.iter().map(|l| l.params).sum(),
            buffers: layers.iter().map(|l| l.buffers).sum(),
            macs: layers.iter().map(|l| l.macs).sum(),
            shortcuts: self.backbone.cost(resolution).shortcuts,
            layers,
        }
    }

    /// Cost of the head alone (extra layers and predictors; Table 5).
    pub fn head_cost(&self, resolution: usize) -> (u64, u64) {
        let c = self.cost(resolution);
        c.layers.iter().filter(|l| !l.name.starts_with("backbone.")).fold((0, 0), |(p, m), l| (p + l.params, m + l.macs))
    }
}
