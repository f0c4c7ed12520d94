//! Cost accounting per layer: parameters (trainable: conv/linear weights and biases, BN γ and β),
//! buffers (BN running mean and variance) and MACs (multiply-adds of convolution and linear layers
//! only — additions, BN, activations and pooling are free by this convention, as in the paper).
//! torchvision's `mobilenet_v2()` at 224×224 gives 3,504,872 parameters and 300,774,272 MACs.

use serde::Serialize;

use super::block_steps::Step;
use super::mobilenet_v2::MobileNetV2;
use crate::layers::ConvBn;

/// One row of the cost table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerCost {
    /// torchvision module name (`features.3.conv.1.0`).
    pub name: String,
    /// conv | depthwise | pointwise | batch_norm | relu6 | relu | add | pool | dropout | linear
    pub kind: String,
    /// `[C, H, W]`.
    pub input: [usize; 3],
    pub output: [usize; 3],
    pub params: u64,
    pub buffers: u64,
    pub macs: u64,
}

/// Whole-model cost.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelCost {
    pub params: u64,
    pub buffers: u64,
    pub macs: u64,
    /// Residual connections of the configured placement.
    pub shortcuts: usize,
    pub layers: Vec<LayerCost>,
}

impl MobileNetV2 {
    /// Cost of every layer for a `resolution × resolution` input.
    ///
    /// # Panics
    /// Never for a built model (it always has a stem).
    pub fn cost(&self, resolution: usize) -> ModelCost {
        let mut rows = Vec::new();
        let mut shape = [3, resolution, resolution];
        let push_unit = |rows: &mut Vec<LayerCost>, conv: String, bn: String, u: &ConvBn, shape: &mut [usize; 3]| {
            let (oh, ow) = u.kind.output_size(shape[1], shape[2]);
            let out = [u.out_channels(), oh, ow];
            rows.push(LayerCost {
                name: conv,
                kind: u.kind.name().into(),
                input: *shape,
                output: out,
                params: u.weight.len() as u64,
                buffers: 0,
                macs: u.macs(oh, ow),
            });
            rows.push(LayerCost {
                name: bn.clone(),
                kind: "batch_norm".into(),
                input: out,
                output: out,
                params: 2 * u.out_channels() as u64,
                buffers: u.buffers() as u64,
                macs: 0,
            });
            if u.activation != crate::layers::Activation::Identity {
                rows.push(LayerCost { name: format!("{bn}.act"), kind: u.activation.name().into(), input: out, output: out, params: 0, buffers: 0, macs: 0 });
            }
            *shape = out;
        };
        let units = self.conv_units();
        let (c, b, u) = units.first().expect("stem").clone();
        push_unit(&mut rows, c, b, u, &mut shape);
        let mut k = 1;
        for block in &self.blocks {
            let mut saved = shape;
            for &step in &block.steps {
                match step {
                    Step::Conv(layer) if block.layer(layer).is_some() => {
                        let (c, b, u) = units[k].clone();
                        k += 1;
                        push_unit(&mut rows, c, b, u, &mut shape);
                    }
                    Step::Save => saved = shape,
                    // Additions are free (MACs 0); they are rows so the table shows where they are.
                    Step::AddSaved | Step::WideSum => rows.push(LayerCost {
                        name: format!("features.{}.add", block.plan.index),
                        kind: "add".into(),
                        input: if step == Step::AddSaved { saved } else { shape },
                        output: shape,
                        params: 0,
                        buffers: 0,
                        macs: 0,
                    }),
                    _ => {}
                }
            }
        }
        if let Some((c, b, u)) = units.get(k).cloned() {
            push_unit(&mut rows, c, b, u, &mut shape);
        }
        let pooled = [shape[0], 1, 1];
        rows.push(LayerCost { name: "pool".into(), kind: "pool".into(), input: shape, output: pooled, params: 0, buffers: 0, macs: 0 });
        rows.push(LayerCost { name: "classifier.0".into(), kind: "dropout".into(), input: pooled, output: pooled, params: 0, buffers: 0, macs: 0 });
        let cls = &self.classifier;
        rows.push(LayerCost {
            name: "classifier.1".into(),
            kind: "linear".into(),
            input: pooled,
            output: [cls.out_features(), 1, 1],
            params: (cls.weight.len() + cls.bias.len()) as u64,
            buffers: 0,
            macs: cls.weight.len() as u64,
        });
        ModelCost {
            params: rows.iter().map(|r| r.params).sum(),
            buffers: rows.iter().map(|r| r.buffers).sum(),
            macs: rows.iter().map(|r| r.macs).sum(),
            shortcuts: self.blocks.iter().filter(|b| b.has_shortcut() || b.has_wide_shortcut()).count(),
            layers: rows,
        }
    }
}
