//! Optimizers and learning-rate schedules.
//!
//! **RMSprop as the paper used it (TensorFlow semantics)**: `ms ← ρ·ms + (1−ρ)·g²` with `ms` starting
//! at 1 (not 0), `mom ← μ·mom + lr·g / √(ms + ε)` with ε *inside* the root (1.0 in the TF-slim
//! recipe), `w ← w − mom`. PyTorch's `RMSprop` differs: its square average starts at 0, ε is added
//! outside the root (1e-8 by default), and its momentum buffer holds `g/(√v + ε)` before the learning
//! rate is applied — so the same numbers do not give the same training.
//! Also SGD with (Nesterov) momentum and AdamW (decoupled weight decay). L2 weight decay (`wd·w` added
//! to the gradient) applies to convolution and classifier weights, not to BatchNorm γ/β or biases.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which optimizer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[default]
    Rmsprop,
    Sgd,
    Adamw,
}

/// Optimizer settings (defaults: the paper's RMSprop recipe).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub momentum: f64,
    /// RMSprop decay ρ.
    pub decay: f64,
    /// RMSprop ε (inside the root); Adam ε.
    pub eps: f64,
    pub nesterov: bool,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Rmsprop,
            lr: 0.045,
            momentum: 0.9,
            decay: 0.9,
            eps: 1.0,
            nesterov: false,
            beta1: 0.9,
            beta2: 0.999,
            weight_decay: 4e-5,
        }
    }
}

impl OptimizerConfig {
    /// The defaults of each kind: RMSprop (0.045, TF-slim), SGD (0.1, momentum 0.9, Nesterov),
    /// AdamW (1e-3, ε 1e-8, weight decay 0.01).
    pub fn for_kind(kind: OptimizerKind) -> Self {
        match kind {
            OptimizerKind::Rmsprop => OptimizerConfig::default(),
            OptimizerKind::Sgd => OptimizerConfig { kind, lr: 0.1, nesterov: true, eps: 0.0, ..Default::default() },
            OptimizerKind::Adamw => OptimizerConfig { kind, lr: 1e-3, eps: 1e-8, weight_decay: 0.01, ..Default::default() },
        }
    }

    /// # Errors
    /// A learning rate or hyper-parameter that is not finite and in range.
    pub fn validate(&self) -> Result<()> {
        // Any finite positive rate: a diverging run is reported as such (its loss, or a NaN stop).
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config("lr", self.lr, "use a positive learning rate, e.g. 0.045"));
        }
        if !(0.0..1.0).contains(&self.momentum) || !(0.0..1.0).contains(&self.decay) {
            return Err(Error::config("momentum/decay", format!("{}/{}", self.momentum, self.decay), "use values in [0, 1)"));
        }
        if !(self.weight_decay >= 0.0) {
            return Err(Error::config("weight-decay", self.weight_decay, "use a non-negative value"));
        }
        Ok(())
    }
}

/// State of one parameter tensor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamState {
    /// RMSprop mean square / Adam second moment.
    pub a: Vec<f32>,
    /// Momentum buffer / Adam first moment.
    pub b: Vec<f32>,
}

/// An optimizer over a fixed list of parameter tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    pub config: OptimizerConfig,
    pub state: Vec<ParamState>,
    pub steps: u64,
}

impl Optimizer {
    pub fn new(config: OptimizerConfig, sizes: &[usize]) -> Self {
        let init_a = if config.kind == OptimizerKind::Rmsprop { 1.0 } else { 0.0 };
        let state = sizes.iter().map(|&n| ParamState { a: vec![init_a; n], b: vec![0.0; n] }).collect();
        Optimizer { config, state, steps: 0 }
    }

    /// One update of every tensor: `params[i]` with gradient `grads[i]`; `decay[i]` says whether weight
    /// decay applies; `lr` is this step's learning rate.
    pub fn step(&mut self, params: Vec<&mut [f32]>, grads: &[&[f32]], decay: &[bool], lr: f64) {
        use rayon::prelude::*;
        self.steps += 1;
        let c = &self.config;
        let t = self.steps as f64;
        // Adam's bias corrections, once per step rather than once per element.
        let corrections = (1.0 - c.beta1.powf(t), 1.0 - c.beta2.powf(t));
        // Each tensor is updated element by element on its own: tensors in parallel, same bits.
        params
            .into_par_iter()
            .zip(grads.par_iter())
            .zip(decay.par_iter())
            .zip(self.state.par_iter_mut())
            .for_each(|(((p, g), &wd), st)| update_tensor(c, p, g, wd, st, lr, corrections));
    }
}

/// One tensor's update (see [`Optimizer::step`]); `corrections` = `(1 − β₁ᵗ, 1 − β₂ᵗ)`.
// One index runs over the tensor, its gradient and both state buffers.
#[allow(clippy::needless_range_loop)]
fn update_tensor(c: &OptimizerConfig, p: &mut [f32], g: &[f32], wd: bool, st: &mut ParamState, lr: f64, corrections: (f64, f64)) {
    let l2 = wd && c.kind != OptimizerKind::Adamw;
    let grad_at = |j: usize, w: f64| if l2 { g[j] as f64 + c.weight_decay * w } else { g[j] as f64 };
    match c.kind {
        OptimizerKind::Rmsprop => {
            for j in 0..p.len() {
                let w = p[j] as f64;
                let grad = grad_at(j, w);
                let ms = c.decay * st.a[j] as f64 + (1.0 - c.decay) * grad * grad;
                let mom = c.momentum * st.b[j] as f64 + lr * grad / (ms + c.eps).sqrt();
                st.a[j] = ms as f32;
                st.b[j] = mom as f32;
                p[j] = (w - mom) as f32;
            }
        }
        OptimizerKind::Sgd => {
            for j in 0..p.len() {
                let w = p[j] as f64;
                let grad = grad_at(j, w);
                let v = c.momentum * st.b[j] as f64 + grad;
                st.b[j] = v as f32;
                let update = if c.nesterov { grad + c.momentum * v } else { v };
                p[j] = (w - lr * update) as f32;
            }
        }
        OptimizerKind::Adamw => {
            for j in 0..p.len() {
                let w = p[j] as f64;
                let grad = grad_at(j, w);
                let m = c.beta1 * st.b[j] as f64 + (1.0 - c.beta1) * grad;
                let v = c.beta2 * st.a[j] as f64 + (1.0 - c.beta2) * grad * grad;
                st.b[j] = m as f32;
                st.a[j] = v as f32;
                let (mh, vh) = (m / corrections.0, v / corrections.1);
                let decayed = if wd { w * (1.0 - lr * c.weight_decay) } else { w };
                p[j] = (decayed - lr * mh / (vh.sqrt() + c.eps)) as f32;
            }
        }
    }
}

/// Learning rate over epochs, with an optional linear warm-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Schedule {
    /// `lr · gamma^epoch` (the paper: 0.98 per epoch).
    Exponential { gamma: f64, warmup: usize },
    /// `lr · gamma^⌊epoch / every⌋`.
    Step { gamma: f64, every: usize, warmup: usize },
    /// Cosine decay from `lr` to 0 over `epochs`.
    Cosine { epochs: usize, warmup: usize },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Exponential { gamma: 0.98, warmup: 0 }
    }
}

impl Schedule {
    /// The learning rate of (0-based) `epoch`, `fraction` ∈ [0, 1) of the way through it.
    pub fn lr(&self, base: f64, epoch: usize, fraction: f64) -> f64 {
        let warmup = match self {
            Schedule::Exponential { warmup, .. } | Schedule::Step { warmup, .. } | Schedule::Cosine { warmup, .. } => *warmup,
        };
        if epoch < warmup {
            return base * (epoch as f64 + fraction + 1e-9) / warmup as f64;
        }
        let e = (epoch - warmup) as f64;
        match self {
            Schedule::Exponential { gamma, .. } => base * gamma.powf(e),
            Schedule::Step { gamma, every, .. } => base * gamma.powi(((epoch - warmup) / (*every).max(1)) as i32),
            Schedule::Cosine { epochs, .. } => {
                let total = (epochs.saturating_sub(warmup)).max(1) as f64;
                0.5 * base * (1.0 + (std::f64::consts::PI * ((e + fraction) / total).min(1.0)).cos())
            }
        }
    }
}
