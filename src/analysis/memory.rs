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
        let hidden = b.wide_channels();
        let (oh, ow) = b.depthwise.kind.output_size(x[1], x[2]);
        let wide_in = [hidden, x[1], x[2]];
        let wide_out = [hidden, oh, ow];
        let out = [b.project.out_channels(), oh, ow];
        if fused {
            let mut inputs = vec![if k == 0 && fuse_stem { image } else { x }];
            let mut outputs = vec![out];
            if b.has_wide_shortcut {
                inputs.push(carry.unwrap_or(wide_out));
            }
            if model.config().shortcut == crate::model::Shortcut::Expansion {
                outputs.push(wide_out);
                carry = Some(wide_out);
            }
            let name = if k == 0 && fuse_stem { format!("features.0+{i} (stem + block, fused)") } else { format!("features.{i} (fused)") };
            ops.push(op(name, inputs, outputs));
        } else {
            if b.expand.is_some() {
                ops.push(op(format!("features.{i} expand"), vec![x], vec![wide_in]));
            }
            ops.push(op(format!("features.{i} depthwise"), vec![wide_in], vec![wide_out]));
            if b.has_wide_shortcut {
                ops.push(op(format!("features.{i} wide add"), vec![wide_out, carry.unwrap_or(wide_out)], vec![wide_out]));
            }
            if model.config().shortcut == crate::model::Shortcut::Expansion {
                carry = Some(wide_out);
            }
            ops.push(op(format!("features.{i} {}", if v1 { "pointwise" } else { "project" }), vec![wide_out], vec![out]));
            if b.has_shortcut {
                ops.push(op(format!("features.{i} add"), vec![out, x], vec![out]));
            }
        }
        x = out;
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
