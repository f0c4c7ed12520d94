//! Convolution → BatchNorm → activation, the unit every MobileNetV2 layer is made of.
//!
//! All three convolution kinds store their weight as a `fan_in × cout` matrix (column `j` is PyTorch's
//! `weight[j]` flattened), so folding BatchNorm — scaling column `j` by `γ_j / √(σ²_j + ε)` — and the
//! weights I/O are one piece of code for all of them.

use nalgebra::DMatrix;

use super::activation::Activation;
use super::batch_norm::BatchNorm;
use super::conv::Conv2d;
use super::depthwise::Depthwise;
use super::packed_weights::PackedWeights;
use super::pointwise::Pointwise;
use crate::tensor::FeatureMap;

/// Which convolution a [`ConvBn`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// Full k×k convolution (the stem).
    Full(Conv2d),
    /// Depthwise 3×3.
    Depthwise(Depthwise),
    /// 1×1 (expansion, projection, head).
    Pointwise(Pointwise),
}

impl ConvKind {
    pub fn in_channels(&self) -> usize {
        match self {
            ConvKind::Full(c) => c.in_channels,
            ConvKind::Depthwise(d) => d.channels,
            ConvKind::Pointwise(p) => p.in_channels,
        }
    }
    pub fn out_channels(&self) -> usize {
        match self {
            ConvKind::Full(c) => c.out_channels,
            ConvKind::Depthwise(d) => d.channels,
            ConvKind::Pointwise(p) => p.out_channels,
        }
    }
    pub fn fan_in(&self) -> usize {
        match self {
            ConvKind::Full(c) => c.fan_in(),
            ConvKind::Depthwise(d) => d.fan_in(),
            ConvKind::Pointwise(p) => p.fan_in(),
        }
    }
    pub fn torch_shape(&self) -> Vec<usize> {
        match self {
            ConvKind::Full(c) => c.torch_shape(),
            ConvKind::Depthwise(d) => d.torch_shape(),
            ConvKind::Pointwise(p) => p.torch_shape(),
        }
    }
    /// Output `(h, w)` for an input `(h, w)`.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        match self {
            ConvKind::Full(c) => c.output_size(h, w),
            ConvKind::Depthwise(d) => d.output_size(h, w),
            ConvKind::Pointwise(_) => (h, w),
        }
    }
    /// The layer kind as the cost table names it.
    pub fn name(&self) -> &'static str {
        match self {
            ConvKind::Full(_) => "conv",
            ConvKind::Depthwise(_) => "depthwise",
            ConvKind::Pointwise(_) => "pointwise",
        }
    }
}

/// Conv → BN → activation with the unfolded parameters and their BN-folded form.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvBn {
    pub kind: ConvKind,
    /// `fan_in × cout`, PyTorch order (see module docs).
    pub weight: DMatrix<f32>,
    pub bn: BatchNorm,
    pub activation: Activation,
    folded_weight: DMatrix<f32>,
    folded_bias: Vec<f32>,
    /// The folded weight's packed forms for the 1×1 kernels, made on first use.
    packs: PackedWeights,
}

impl ConvBn {
    /// Zero weights, BN at its initial state.
    pub fn new(kind: ConvKind, activation: Activation, bn_eps: f32) -> Self {
        let weight = DMatrix::zeros(kind.fan_in(), kind.out_channels());
        let bn = BatchNorm::identity(kind.out_channels(), bn_eps);
        let mut layer = ConvBn { kind, folded_weight: weight.clone(), weight, bn, activation, folded_bias: Vec::new(), packs: PackedWeights::default() };
        layer.refold();
        layer
    }

    /// Recomputes the BN-folded weight and bias; call after changing `weight` or `bn`.
    pub fn refold(&mut self) {
        let (scale, shift) = self.bn.scale_shift();
        self.folded_weight = self.weight.clone();
        for (j, mut col) in self.folded_weight.column_iter_mut().enumerate() {
            col *= scale[j];
        }
        self.folded_bias = shift;
        self.packs = PackedWeights::default();
    }

    /// BN-folded weight (`fan_in × cout`).
    pub fn folded_weight(&self) -> &DMatrix<f32> {
        &self.folded_weight
    }
    /// The folded weight's packed forms (made on first use).
    pub(crate) fn packs(&self) -> &PackedWeights {
        &self.packs
    }
    /// BN-folded bias (one per output channel).
    pub fn folded_bias(&self) -> &[f32] {
        &self.folded_bias
    }
    pub fn out_channels(&self) -> usize {
        self.kind.out_channels()
    }

    /// Trainable parameters: the conv weight plus BN's γ and β.
    pub fn params(&self) -> usize {
        self.weight.len() + 2 * self.out_channels()
    }
    /// BN running statistics (mean and variance), counted apart from parameters.
    pub fn buffers(&self) -> usize {
        2 * self.out_channels()
    }
    /// Multiply-adds for an output of `oh × ow`.
    pub fn macs(&self, oh: usize, ow: usize) -> u64 {
        (self.kind.fan_in() * self.out_channels() * oh * ow) as u64
    }

    /// `out = conv(x)·scale + shift`, followed by the activation when `activate` is set (the fused fast
    /// path). With `activate == false` the caller sees the pre-activation and applies
    /// [`Activation::apply_slice`] itself (hook sites `.pre`).
    pub fn forward(&self, x: &FeatureMap, out: &mut FeatureMap, scratch: &mut Vec<f32>, threads: usize, activate: bool) {
        let act = if activate { self.activation } else { Activation::Identity };
        match &self.kind {
            ConvKind::Depthwise(d) => d.forward(x, &self.folded_weight, &self.folded_bias, act, out, scratch, threads),
            ConvKind::Pointwise(p) => p.forward_fused(x, &self.folded_weight, Some(&self.packs), &self.folded_bias, act, out, threads),
            ConvKind::Full(c) => c.forward_fused(x, &self.folded_weight, &self.folded_bias, act, out, scratch, threads),
        }
    }
}

/// `x[c] ← act(x[c] + bias[c])` for every channel.
pub fn bias_activate(x: &mut FeatureMap, bias: &[f32], act: Activation) {
    for (c, &b) in bias.iter().enumerate() {
        act.bias_apply_slice(x.channel_mut(c), b);
    }
}
