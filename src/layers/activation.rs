//! Element-wise activations. ReLU6 is `min(max(x, 0), 6)` as in the paper (§3.2); `Identity` is what a
//! *linear* bottleneck applies.

use serde::{Deserialize, Serialize};

use super::gemm_kernel::Fused;

/// The cap of ReLU6.
pub const RELU6_CAP: f32 = 6.0;

/// An element-wise activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// No activation: the linear bottleneck.
    Identity,
    Relu,
    Relu6,
}

impl Activation {
    /// The activation as a clamp to `[lo, hi]` (infinite bounds where there is none).
    pub fn bounds(self) -> (f32, f32) {
        match self {
            Activation::Identity => (f32::NEG_INFINITY, f32::INFINITY),
            Activation::Relu => (0.0, f32::INFINITY),
            Activation::Relu6 => (0.0, RELU6_CAP),
        }
    }

    /// The activation of one value. NaN stays NaN, as in PyTorch.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        let (lo, hi) = self.bounds();
        clamp(x, lo, hi)
    }

    /// Applies the activation in place.
    pub fn apply_slice(self, xs: &mut [f32]) {
        if self != Activation::Identity {
            self.bias_apply_slice(xs, 0.0);
        }
    }

    /// `x ← act(x + bias)` in place: the epilogue of a BN-folded convolution for one channel.
    pub fn bias_apply_slice(self, xs: &mut [f32], bias: f32) {
        let (lo, hi) = self.bounds();
        bias_clamp(xs, bias, lo, hi);
    }

    /// `act(x + bias)` per output channel, as a GEMM epilogue.
    pub fn fused(self, bias: &[f32]) -> Fused<'_> {
        let (lo, hi) = self.bounds();
        Fused { bias, lo, hi }
    }

    /// The activation's upper cap, if it has one (ReLU6: 6).
    pub fn cap(self) -> Option<f32> {
        match self {
            Activation::Relu6 => Some(RELU6_CAP),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "linear",
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
        }
    }
}

#[inline(always)]
fn clamp(v: f32, lo: f32, hi: f32) -> f32 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// `x ← clamp(x + bias, lo, hi)`, vectorised at run time.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub(crate) fn bias_clamp(xs: &mut [f32], bias: f32, lo: f32, hi: f32) {
    for v in xs.iter_mut() {
        *v = (*v + bias).max(lo).min(hi);
    }
}
