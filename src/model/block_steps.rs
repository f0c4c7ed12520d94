//! The data flow of an inverted-residual block, written once: the paper's Table 1 (expand 1×1 →
//! depthwise 3×3 → linear project 1×1) with the shortcut placements of Fig. 6b, as a list of
//! [`Step`]s. Every executor walks this list — inference ([`InvertedResidual::forward`]), the
//! training forward and backward passes, the block Jacobian — and so does every accountant: cost,
//! memory, the hook catalogue; split execution (§5.1) checks it runs the same flow. A new block
//! variant is a new list (plus, for a new kind of step, its kernels), not an edit in seven files.
//!
//! [`InvertedResidual::forward`]: super::inverted_residual::InvertedResidual

use crate::hooks::hook_name::BlockPoint;

/// One of the block's conv → BN → activation layers (a row of the paper's Table 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// 1×1 expansion `n → t·n` with the hidden activation.
    Expand,
    /// 3×3 depthwise at stride s with the hidden activation.
    Depthwise,
    /// 1×1 projection to the bottleneck with the bottleneck activation (identity: linear).
    Project,
}

impl Layer {
    /// The `.pre` (after BN) and `.post` (after the activation) hook sites of the layer.
    pub fn sites(self) -> (BlockPoint, BlockPoint) {
        match self {
            Layer::Expand => (BlockPoint::ExpandPre, BlockPoint::ExpandPost),
            Layer::Depthwise => (BlockPoint::DepthwisePre, BlockPoint::DepthwisePost),
            Layer::Project => (BlockPoint::ProjectPre, BlockPoint::Project),
        }
    }
}

/// One step of a block, applied to the block's current tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// The block input arrives: fires `blocks.{i}.in`.
    In,
    /// Remembers the current tensor as the source of a residual connection (ended by `AddSaved`).
    Save,
    /// A conv → BN → activation layer; fires its `.pre` and `.post` sites.
    Conv(Layer),
    /// Adds the wide tensor the previous block carried (the `expansion` shortcut placement); fires
    /// `blocks.{i}.depthwise.sum`.
    WideSum,
    /// The current tensor becomes the wide stream handed to the next block (`expansion` placement).
    Carry,
    /// Adds the tensor remembered by `Save` (the end of a residual connection; same shape).
    AddSaved,
    /// The block output leaves: fires `blocks.{i}.out`.
    Out,
}

/// The steps of a block: `expand` where t ≠ 1, the bottleneck shortcut around the whole block where
/// it exists, the wide sum where the previous block's wide tensor joins, and the carry of the wide
/// stream when the network uses the `expansion` placement.
pub fn block_steps(expand: bool, shortcut: bool, wide_sum: bool, carry: bool) -> Vec<Step> {
    let mut s = vec![Step::In];
    if shortcut {
        s.push(Step::Save);
    }
    if expand {
        s.push(Step::Conv(Layer::Expand));
    }
    s.push(Step::Conv(Layer::Depthwise));
    if wide_sum {
        s.push(Step::WideSum);
    }
    if carry {
        s.push(Step::Carry);
    }
    s.push(Step::Conv(Layer::Project));
    if shortcut {
        s.push(Step::AddSaved);
    }
    s.push(Step::Out);
    s
}
