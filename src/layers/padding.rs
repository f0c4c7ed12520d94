//! Padding conventions for strided 3×3 convolutions.
//!
//! - `torch`: symmetric, `pad = (k − 1) / 2` on every side; `out = ⌊(in + 2·pad − k) / s⌋ + 1`.
//! - `tf` (TF/Keras `'SAME'`): `out = ⌈in / s⌉`, `pad_total = max((out − 1)·s + k − in, 0)`,
//!   `⌊pad_total / 2⌋` before and the rest after — for even sizes and stride 2 that is bottom/right only.

use serde::{Deserialize, Serialize};

/// Which framework's padding rule a convolution follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    #[default]
    Torch,
    Tf,
}

/// Padding and output size along one spatial axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub before: usize,
    pub after: usize,
    pub output: usize,
}

impl Padding {
    /// Padding and output size for an axis of length `input`, kernel `k` and stride `s`.
    pub fn window(self, input: usize, k: usize, s: usize) -> Window {
        match self {
            Padding::Torch => {
                let pad = (k - 1) / 2;
                let output = (input + 2 * pad).saturating_sub(k) / s + 1;
                // Positions the last window reaches beyond the input count as trailing padding.
                let reach = (output - 1) * s + k;
                Window { before: pad, after: reach.saturating_sub(input + pad), output }
            }
            Padding::Tf => {
                let output = input.div_ceil(s);
                let total = ((output - 1) * s + k).saturating_sub(input);
                Window { before: total / 2, after: total - total / 2, output }
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Padding::Torch => "torch",
            Padding::Tf => "tf",
        }
    }
}
