//! One training step of a MobileNetV2 / MobileNetV1 classifier: a training-mode forward pass over the
//! whole batch (BatchNorm with batch statistics, dropout), softmax cross-entropy, and backpropagation
//! through every layer and every shortcut placement. Gradients come back in the order of
//! [`MobileNetV2::conv_units`] (weight, γ, β per unit), then the classifier.

use nalgebra::DMatrix;

use super::act::Act;
use super::ops::*;
use crate::layers::ConvBn;
use crate::model::{MobileNetV2, Shortcut};

/// Gradients of one conv → BN unit.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitGrad {
    pub weight: DMatrix<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// All trainable gradients of a step.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    pub units: Vec<UnitGrad>,
    pub classifier_weight: DMatrix<f32>,
    pub classifier_bias: Vec<f32>,
}

/// Outcome of one step.
#[derive(Clone, Debug)]
pub struct StepResult {
    pub loss: f64,
    pub correct: usize,
    pub grads: Gradients,
}

struct UnitTape {
    x: Act,
    z: Act,
    a: Act,
    stats: BnStats,
}

fn unit_forward(u: &mut ConvBn, x: Act, threads: usize) -> (Act, UnitTape) {
    let z = conv_forward(&u.kind, &u.weight, &x, threads);
    let (a, stats) = bn_train_forward(&mut u.bn, &z);
    let y = act_forward(u.activation, &a);
    (y, UnitTape { x, z, a, stats })
}

fn unit_backward(u: &ConvBn, t: &UnitTape, dy: &Act, need_dx: bool, threads: usize) -> (UnitGrad, Option<Act>) {
    let da = act_backward(u.activation, &t.a, dy);
    let (dz, gamma, beta) = bn_backward(&u.bn, &t.z, &t.stats, &da);
    let (weight, dx) = super::ops::conv_backward(&u.kind, &u.weight, &t.x, &dz, need_dx, threads);
    (UnitGrad { weight, gamma, beta }, dx)
}

/// Settings of a step that are not model parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOptions {
    pub label_smoothing: f32,
    /// Seed of this step's dropout mask.
    pub dropout_seed: u64,
    pub threads: usize,
}

/// Training-mode forward and backward on `x` with `labels`. Updates BatchNorm running statistics;
/// does not change any parameter (the optimizer does).
pub fn train_step(model: &mut MobileNetV2, x: &Act, labels: &[usize], opt: StepOptions) -> StepResult {
    let threads = opt.threads;
    let info: Vec<(bool, bool, bool)> = model.blocks.iter().map(|b| (b.expand.is_some(), b.has_shortcut, b.has_wide_shortcut)).collect();
    let carry_wide = model.config().shortcut == Shortcut::Expansion;
    let dropout = model.config().dropout;
    let (cls_w, cls_b) = (model.classifier.weight.clone(), model.classifier.bias.clone());
    let mut units: Vec<&mut ConvBn> = model.conv_units_mut().into_iter().map(|(_, _, u)| u).collect();
    let mut tapes: Vec<UnitTape> = Vec::with_capacity(units.len());
    let mut k = 0;
    let step = |units: &mut Vec<&mut ConvBn>, tapes: &mut Vec<UnitTape>, k: &mut usize, x: Act| {
        let (y, t) = unit_forward(units[*k], x, threads);
        tapes.push(t);
        *k += 1;
        y
    };
    let mut cur = step(&mut units, &mut tapes, &mut k, x.clone());
    let mut carry: Option<Act> = None;
    for &(expand, shortcut, wide) in &info {
        let x_in = cur;
        let h = if expand { step(&mut units, &mut tapes, &mut k, x_in.clone()) } else { x_in.clone() };
        let mut proj_in = step(&mut units, &mut tapes, &mut k, h);
        if wide {
            if let Some(c) = &carry {
                proj_in.add_assign(c);
            }
        }
        if carry_wide {
            carry = Some(proj_in.clone());
        }
        let mut out = step(&mut units, &mut tapes, &mut k, proj_in);
        if shortcut {
            out.add_assign(&x_in);
        }
        cur = out;
    }
    let has_head = k < units.len();
    let feats = if has_head { step(&mut units, &mut tapes, &mut k, cur) } else { cur };
    let pooled = pool_forward(&feats);
    let mask = (dropout > 0.0).then(|| dropout_mask(pooled.n, pooled.c, dropout, opt.dropout_seed));
    let mut dropped = pooled.clone();
    if let Some(m) = &mask {
        dropped.data.iter_mut().zip(m).for_each(|(v, s)| *v *= s);
    }
    let logits = linear_forward(&cls_w, &cls_b, &dropped);
    let (loss, dlogits, correct) = softmax_cross_entropy(&logits, labels, opt.label_smoothing);

    // Backward.
    let (cw, cb, mut dp) = linear_backward(&cls_w, &dropped, &dlogits);
    if let Some(m) = &mask {
        dp.data.iter_mut().zip(m).for_each(|(v, s)| *v *= s);
    }
    let mut grads: Vec<Option<UnitGrad>> = vec![None; units.len()];
    let mut k = units.len();
    let mut dcur = pool_backward(&feats, &dp);
    let back = |k: &mut usize, dy: &Act, need_dx: bool, grads: &mut Vec<Option<UnitGrad>>| -> Option<Act> {
        *k -= 1;
        let (g, dx) = unit_backward(units[*k], &tapes[*k], dy, need_dx, threads);
        grads[*k] = Some(g);
        dx
    };
    if has_head {
        dcur = back(&mut k, &dcur, true, &mut grads).expect("dx");
    }
    let mut d_carry_from_next: Option<Act> = None;
    for &(expand, shortcut, wide) in info.iter().rev() {
        let d_out = dcur;
        let mut d_proj_in = back(&mut k, &d_out, true, &mut grads).expect("dx");
        if let Some(d) = d_carry_from_next.take() {
            d_proj_in.add_assign(&d);
        }
        d_carry_from_next = wide.then(|| d_proj_in.clone());
        let d_h = back(&mut k, &d_proj_in, true, &mut grads).expect("dx");
        // The block input's gradient: through the expansion (or directly into the depthwise), plus the
        // bottleneck shortcut's identity path (same shape only where a shortcut exists).
        let mut d_xin = if expand { back(&mut k, &d_h, true, &mut grads).expect("dx") } else { d_h };
        if shortcut {
            d_xin.add_assign(&d_out);
        }
        dcur = d_xin;
    }
    back(&mut k, &dcur, false, &mut grads);
    StepResult {
        loss,
        correct,
        grads: Gradients {
            units: grads.into_iter().map(|g| g.expect("every unit visited")).collect(),
            classifier_weight: cw,
            classifier_bias: cb,
        },
    }
}
