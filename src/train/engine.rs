//! One training step of a MobileNetV2 / MobileNetV1 classifier: a training-mode forward pass over the
//! whole batch (BatchNorm with batch statistics, dropout), softmax cross-entropy, and backpropagation
//! through every layer and every shortcut placement. Gradients come back in the order of
//! [`MobileNetV2::conv_units`] (weight, γ, β per unit), then the classifier.

use std::sync::Arc;

use nalgebra::DMatrix;

use super::act::Act;
use super::ops::*;
use super::pool::ActPool;
use crate::hooks::catalogue::catalogue;
use crate::hooks::hook_set::ImageHooks;
use crate::hooks::{BlockPoint, HookName, HookSet, HookSink};
use crate::layers::ConvBn;
use crate::model::block_steps::{Layer, Step};
use crate::model::MobileNetV2;

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

#[derive(Default)]
struct UnitTape {
    x: Act,
    z: Act,
    a: Act,
    stats: BnStats,
}

fn unit_forward(pool: &mut ActPool, u: &mut ConvBn, x: Act, threads: usize, hooks: &mut TrainHooks, sites: (HookName, HookName)) -> (Act, UnitTape) {
    let z = conv_forward(pool, &u.kind, &u.weight, &x, threads);
    let (a, mut y, stats) = if hooks.wants(&sites.0) {
        let (mut a, stats) = bn_train_forward(pool, &mut u.bn, &z);
        hooks.fire(&sites.0, &mut a);
        let y = act_forward(pool, u.activation, &a);
        (a, y, stats)
    } else {
        bn_act_train_forward(pool, &mut u.bn, &z, u.activation)
    };
    hooks.fire(&sites.1, &mut y);
    (y, UnitTape { x, z, a, stats })
}

/// Hooks during a training step: per-image forks of a [`HookSet`] (as in inference), fired with
/// per-image copies of the batched activations; what an intervention writes is copied back, and the
/// backward pass treats it as the identity.
pub(crate) struct TrainHooks {
    forks: Vec<ImageHooks>,
}

impl TrainHooks {
    fn none() -> Self {
        TrainHooks { forks: Vec::new() }
    }

    fn wants(&self, name: &HookName) -> bool {
        self.forks.first().is_some_and(|f| f.wants(name))
    }

    fn fire(&mut self, name: &HookName, act: &mut Act) {
        if !self.wants(name) {
            return;
        }
        let hw = act.hw();
        for (i, fork) in self.forks.iter_mut().enumerate() {
            let mut fm = act.image(i).expect("image shape");
            fork.fire(name, i, &mut fm);
            for c in 0..act.c {
                act.data[(c * act.n + i) * hw..(c * act.n + i + 1) * hw].copy_from_slice(fm.channel(c));
            }
        }
    }
}

/// Backward through one unit; its tape and `dy` go back to the pool once used.
fn unit_backward(pool: &mut ActPool, u: &ConvBn, t: UnitTape, dy: Act, need_dx: bool, threads: usize) -> (UnitGrad, Option<Act>) {
    let da = act_backward(pool, u.activation, &t.a, &dy);
    pool.give(dy);
    let (dz, gamma, beta) = bn_backward(pool, &u.bn, &t.z, &t.stats, &da);
    pool.give(da);
    let (weight, dx) = super::ops::conv_backward(pool, &u.kind, &u.weight, &t.x, &dz, need_dx, threads);
    pool.give(dz);
    for a in [t.x, t.z, t.a] {
        pool.give(a);
    }
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
    train_step_pooled(model, x, labels, opt, &mut ActPool::default())
}

/// [`train_step`] taking its activation buffers from `pool` and returning them there: a training
/// loop passes the same pool to every step, so no step allocates or zero-fills its tensors anew.
/// The result is the same bit for bit.
pub fn train_step_pooled(model: &mut MobileNetV2, x: &Act, labels: &[usize], opt: StepOptions, pool: &mut ActPool) -> StepResult {
    train_step_inner(model, x, labels, opt, &mut TrainHooks::none(), pool)
}

/// [`train_step`] with `hooks` attached to the training-mode forward pass: sites fire in catalogue
/// order for every image, as in inference (`.pre` is the batch-statistics BN output).
pub fn train_step_with_hooks(model: &mut MobileNetV2, x: &Act, labels: &[usize], opt: StepOptions, hooks: &mut HookSet) -> StepResult {
    let routes = Arc::new(hooks.routes(&catalogue(model, model.config().resolution)));
    let forks = (0..x.n).map(|_| hooks.fork(&routes)).collect();
    let mut th = TrainHooks { forks };
    let r = train_step_inner(model, x, labels, opt, &mut th, &mut ActPool::default());
    hooks.join(th.forks);
    r
}

fn train_step_inner(model: &mut MobileNetV2, x: &Act, labels: &[usize], opt: StepOptions, hooks: &mut TrainHooks, pool: &mut ActPool) -> StepResult {
    let threads = opt.threads;
    // Each block's steps (the one description of its data flow), with whether it has an expansion layer.
    let blocks: Vec<(usize, Vec<Step>, bool)> = model.blocks.iter().map(|b| (b.plan.index, b.steps.clone(), b.expand.is_some())).collect();
    let present = |layer: Layer, expand: bool| layer != Layer::Expand || expand;
    let dropout = model.config().dropout;
    let (cls_w, cls_b) = (model.classifier.weight.clone(), model.classifier.bias.clone());
    let mut units: Vec<&mut ConvBn> = model.conv_units_mut().into_iter().map(|(_, _, u)| u).collect();
    let mut tapes: Vec<UnitTape> = Vec::with_capacity(units.len());
    let mut k = 0;
    let step = |units: &mut Vec<&mut ConvBn>, tapes: &mut Vec<UnitTape>, k: &mut usize, x: Act, hooks: &mut TrainHooks, pool: &mut ActPool, sites| {
        let (y, t) = unit_forward(pool, units[*k], x, threads, hooks, sites);
        tapes.push(t);
        *k += 1;
        y
    };
    let mut input = pool.copy(x);
    hooks.fire(&HookName::Input, &mut input);
    let mut cur = step(&mut units, &mut tapes, &mut k, input, hooks, pool, (HookName::StemPre, HookName::StemPost));
    let mut carry: Option<Act> = None;
    for (i, steps, expand) in &blocks {
        let site = |p| HookName::block(*i, p);
        let mut x = cur;
        let mut saved: Option<Act> = None;
        for &st in steps {
            match st {
                Step::In => hooks.fire(&site(BlockPoint::In), &mut x),
                Step::Save => saved = Some(pool.copy(&x)),
                Step::Conv(layer) if present(layer, *expand) => {
                    let (pre, post) = layer.sites();
                    x = step(&mut units, &mut tapes, &mut k, x, hooks, pool, (site(pre), site(post)));
                }
                Step::Conv(_) => {}
                Step::WideSum => {
                    if let Some(c) = carry.take() {
                        x.add_assign(&c);
                        pool.give(c);
                    }
                    hooks.fire(&site(BlockPoint::DepthwiseSum), &mut x);
                }
                Step::Carry => {
                    if let Some(old) = carry.replace(pool.copy(&x)) {
                        pool.give(old);
                    }
                }
                Step::AddSaved => {
                    let s = saved.take().expect("AddSaved follows Save");
                    x.add_assign(&s);
                    pool.give(s);
                }
                Step::Out => hooks.fire(&site(BlockPoint::Out), &mut x),
            }
        }
        cur = x;
    }
    let has_head = k < units.len();
    if let Some(c) = carry.take() {
        pool.give(c);
    }
    let feats = if has_head { step(&mut units, &mut tapes, &mut k, cur, hooks, pool, (HookName::HeadPre, HookName::HeadPost)) } else { cur };
    let mut pooled = pool_forward(&feats);
    hooks.fire(&HookName::Pool, &mut pooled);
    let mask = (dropout > 0.0).then(|| dropout_mask(pooled.n, pooled.c, dropout, opt.dropout_seed));
    let mut dropped = pooled.clone();
    if let Some(m) = &mask {
        dropped.data.iter_mut().zip(m).for_each(|(v, s)| *v *= s);
    }
    let mut logits = linear_forward(&cls_w, &cls_b, &dropped);
    if hooks.forks.first().is_some_and(|f| f.wants(&HookName::Logits)) {
        let mut la = Act { n: logits.nrows(), c: logits.ncols(), h: 1, w: 1, data: logits.as_slice().to_vec() };
        hooks.fire(&HookName::Logits, &mut la);
        logits = DMatrix::from_vec(la.n, la.c, la.data);
    }
    let (loss, dlogits, correct) = softmax_cross_entropy(&logits, labels, opt.label_smoothing);

    // Backward.
    let (cw, cb, mut dp) = linear_backward(&cls_w, &dropped, &dlogits);
    if let Some(m) = &mask {
        dp.data.iter_mut().zip(m).for_each(|(v, s)| *v *= s);
    }
    let mut grads: Vec<Option<UnitGrad>> = vec![None; units.len()];
    let mut k = units.len();
    let mut dcur = pool_backward(pool, &feats, &dp);
    // A unit's output is not on its tape: the last one goes back here.
    pool.give(feats);
    let mut back = |k: &mut usize, dy: Act, need_dx: bool, grads: &mut Vec<Option<UnitGrad>>, pool: &mut ActPool| -> Option<Act> {
        *k -= 1;
        let (g, dx) = unit_backward(pool, units[*k], std::mem::take(&mut tapes[*k]), dy, need_dx, threads);
        grads[*k] = Some(g);
        dx
    };
    if has_head {
        dcur = back(&mut k, dcur, true, &mut grads, pool).expect("dx");
    }
    // The steps backwards: a conv by its unit, a sum passes the gradient to both addends.
    let mut d_carry_from_next: Option<Act> = None;
    for (_, steps, expand) in blocks.iter().rev() {
        let mut d = dcur;
        let mut d_saved: Option<Act> = None;
        for &st in steps.iter().rev() {
            match st {
                Step::AddSaved => d_saved = Some(pool.copy(&d)),
                Step::Conv(layer) if present(layer, *expand) => d = back(&mut k, d, true, &mut grads, pool).expect("dx"),
                Step::Conv(_) => {}
                // The next block's wide sum read this block's carried tensor.
                Step::Carry => {
                    if let Some(dc) = d_carry_from_next.take() {
                        d.add_assign(&dc);
                        pool.give(dc);
                    }
                }
                Step::WideSum => {
                    if let Some(old) = d_carry_from_next.replace(pool.copy(&d)) {
                        pool.give(old);
                    }
                }
                Step::Save => {
                    let s = d_saved.take().expect("Save precedes AddSaved");
                    d.add_assign(&s);
                    pool.give(s);
                }
                Step::In | Step::Out => {}
            }
        }
        dcur = d;
    }
    back(&mut k, dcur, false, &mut grads, pool);
    if let Some(dc) = d_carry_from_next {
        pool.give(dc);
    }
    StepResult {
        loss,
        correct,
        grads: Gradients { units: grads.into_iter().map(|g| g.expect("every unit visited")).collect(), classifier_weight: cw, classifier_bias: cb },
    }
}
