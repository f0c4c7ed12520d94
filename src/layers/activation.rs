//! Element-wise activations. ReLU6 is `min(max(x, 0), 6)` as in the paper (§3.2); `Identity` is what a
//! *linear* bottleneck applies.

use serde::{Deserialize, Serialize};

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
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.max(0.0).min(RELU6_CAP),
        }
    }

    /// Applies the activation in place.
    pub fn apply_slice(self, xs: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::Relu => xs.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Relu6 => xs.iter_mut().for_each(|v| *v = v.max(0.0).min(RELU6_CAP)),
        }
    }

    /// `x ← act(x + bias)` in place: the epilogue of a BN-folded convolution for one channel.
    pub fn bias_apply_slice(self, xs: &mut [f32], bias: f32) {
        match self {
            Activation::Identity => xs.iter_mut().for_each(|v| *v += bias),
            Activation::Relu => xs.iter_mut().for_each(|v| *v = (*v + bias).max(0.0)),
            Activation::Relu6 => xs.iter_mut().for_each(|v| *v = (*v + bias).max(0.0).min(RELU6_CAP)),
        }
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
