//! Memory accounting of an inference schedule (paper §5.1, Eq. 2 and Table 3).
//!
//! A schedule is a list of ops, each with the tensors it reads and writes. Two figures:
//! - `max_tensor_bytes`: the largest single tensor that must be materialised — Table 3's metric;
//! - `peak_bytes`: Eq. 2, the largest sum of one op's inputs and outputs over the schedule.
//!
//! *Layer by layer* every conv (with its BN and activation), every residual add, the pool and the
//! classifier is an op. *Fused* (§5.1) each inverted-residual block is one op whose only materialised
//! tensors are its bottleneck input and output (plus, for the `expansion` shortcut placement, the wide
//! tensor it must receive and pass on); MobileNetV2's stem is fused with block 1 (same expand →
//! per-channel → project shape); a MobileNetV1 depthwise-separable layer (depthwise + pointwise) is one
//! op.

use serde::Serialize;

use crate::model::block_steps::{Layer, Step};
use crate::model::{Arch, MobileNetV2};

/// One op of a schedule: its name and the `[C, H, W]` shapes it reads and writes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryOp {
    pub name: String,
    pub inputs: Vec<[usize; 3]>,
    pub outputs: Vec<[usize; 3]>,
}

impl MemoryOp {
    fn elements(&self) -> usize {
        self.inputs.iter().chain(&self.outputs).map(|s| s[0] * s[1] * s[2]).sum()
    }
}

/// Table-3-style accounting of one schedule at one resolution.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryRow {
    pub arch: String,
    pub resolution: usize,
    pub fused: bool,
    pub bytes_per_element: usize,
    /// The largest materialised tensor and the op that produces or reads it.
    pub max_tensor_shape: [usize; 3],
    pub max_tensor_channels: usize,
    pub max_tensor_bytes: usize,
    pub max_tensor_op: String,
    /// Eq. 2 and the op where it peaks.
    pub peak_bytes: usize,
    pub peak_op: String,
}

/// The schedule of `model` on a `resolution²` input.
pub fn schedule(model: &MobileNetV2, resolution: usize, fused: bool) -> Vec<MemoryOp> {
    let mut ops = Vec::new();
    let op = |name: String, inputs: Vec<[usize; 3]>, outputs: Vec<[usize; 3]>| MemoryOp { name, inputs, outputs };
    let image = [3, resolution, resolution];
    let (sh, sw) = model.stem.kind.output_size(resolution, resolution);
    let stem = [model.stem.out_channels(), sh, sw];
    let v1 = model.config().arch == Arch::MobilenetV1;
    let fuse_stem = fused && !v1 && model.blocks.first().is_some_and(|b| b.expand.is_none());
    if !fuse_stem {
        ops.push(op("features.0 (stem conv)".into(), vec![image], vec![stem]));
    }
    let mut x = stem;
    let mut carry: Option<[usize; 3]> = None;
    for (k, b) in model.blocks.iter().enumerate() {
        let i = b.plan.index;
        if fused {
            // One op per block: its input (and the carried wide tensor) in, its output (and the
            // wide tensor it carries on) out.
            let (mut shape, mut wide_out) = (x, x);
            for &step in &b.steps {
                if let Step::Conv(layer) = step {
                    let Some(u) = b.layer(layer) else { continue };
                    let (oh, ow) = u.kind.output_size(shape[1], shape[2]);
                    shape = [u.out_channels(), oh, ow];
                    if layer == Layer::Depthwise {
                        wide_out = shape;
                    }
                }
            }
            let mut inputs = vec![if k == 0 && fuse_stem { image } else { x }];
            let mut outputs = vec![shape];
            if b.steps.contains(&Step::WideSum) {
                inputs.push(carry.unwrap_or(wide_out));
            }
            if b.steps.contains(&Step::Carry) {
                outputs.push(wide_out);
                carry = Some(wide_out);
            }
            let name = if k == 0 && fuse_stem { format!("features.0+{i} (stem + block, fused)") } else { format!("features.{i} (fused)") };
            ops.push(op(name, inputs, outputs));
            x = shape;
            continue;
        }
        // Layer by layer: one op per step that computes something.
        let mut saved = x;
        for &step in &b.steps {
            match step {
                Step::Conv(layer) => {
                    let Some(u) = b.layer(layer) else { continue };
                    let (oh, ow) = u.kind.output_size(x[1], x[2]);
                    let out = [u.out_channels(), oh, ow];
                    let what = match layer {
                        Layer::Expand => "expand",
                        Layer::Depthwise => "depthwise",
                        Layer::Project if v1 => "pointwise",
                        Layer::Project => "project",
                    };
                    ops.push(op(format!("features.{i} {what}"), vec![x], vec![out]));
                    x = out;
                }
                Step::WideSum => ops.push(op(format!("features.{i} wide add"), vec![x, carry.unwrap_or(x)], vec![x])),
                Step::Carry => carry = Some(x),
                Step::Save => saved = x,
                Step::AddSaved => ops.push(op(format!("features.{i} add"), vec![x, saved], vec![x])),
                Step::In | Step::Out => {}
            }
        }
    }
    if let Some(h) = &model.head {
        let head = [h.out_channels(), x[1], x[2]];
        ops.push(op(format!("features.{} (head conv)", model.head_index()), vec![x], vec![head]));
        x = head;
    }
    let pooled = [x[0], 1, 1];
    ops.push(op("pool".into(), vec![x], vec![pooled]));
    ops.push(op("classifier".into(), vec![pooled], vec![[model.classifier.out_features(), 1, 1]]));
    ops
}

/// Accounts a schedule.
///
/// # Panics
/// Never: every schedule has at least the pool and classifier ops.
pub fn account(model: &MobileNetV2, resolution: usize, fused: bool, bytes_per_element: usize) -> MemoryRow {
    let ops = schedule(model, resolution, fused);
    let mut best = ([0usize; 3], 0usize, String::new());
    for o in &ops {
        for s in o.inputs.iter().chain(&o.outputs) {
            let e = s[0] * s[1] * s[2];
            if e > best.1 {
                best = (*s, e, o.name.clone());
            }
        }
    }
    let peak = ops.iter().max_by_key(|o| o.elements()).expect("a schedule has ops");
    MemoryRow {
        arch: serde_json::to_value(model.config().arch).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        resolution,
        fused,
        bytes_per_element,
        max_tensor_shape: best.0,
        max_tensor_channels: best.0[0],
        max_tensor_bytes: best.1 * bytes_per_element,
        max_tensor_op: best.2,
        peak_bytes: peak.elements() * bytes_per_element,
        peak_op: peak.name.clone(),
    }
}
