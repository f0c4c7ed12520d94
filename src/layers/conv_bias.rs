//! A convolution with a bias and no BatchNorm or activation: the final layer of a detection predictor.

use nalgebra::DMatrix;

use super::conv_bn::ConvKind;
use crate::tensor::FeatureMap;

/// Conv + bias. Weight layout as in [`super::ConvBn`]: `fan_in × cout`, PyTorch order per column.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvBias {
    pub kind: ConvKind,
    pub weight: DMatrix<f32>,
    pub bias: Vec<f32>,
}

impl ConvBias {
    /// Zero weights and bias.
    pub fn new(kind: ConvKind) -> Self {
        ConvBias { weight: DMatrix::zeros(kind.fan_in(), kind.out_channels()), bias: vec![0.0; kind.out_channels()], kind }
    }
    pub fn params(&self) -> usize {
        self.weight.len() + self.bias.len()
    }
    pub fn macs(&self, oh: usize, ow: usize) -> u64 {
        (self.kind.fan_in() * self.kind.out_channels() * oh * ow) as u64
    }
    /// `out = conv(x) + bias`.
    pub fn forward(&self, x: &FeatureMap, out: &mut FeatureMap, scratch: &mut Vec<f32>, threads: usize) {
        match &self.kind {
            ConvKind::Pointwise(p) => p.forward(x, &self.weight, out, threads),
            ConvKind::Full(c) => c.forward(x, &self.weight, out, scratch, threads),
            ConvKind::Depthwise(d) => {
                let zeros = vec![0.0; d.channels];
                d.forward(x, &self.weight, &zeros, super::Activation::Identity, out, scratch, threads)
            }
        }
        super::conv_bn::bias_activate(out, &self.bias, super::Activation::Identity);
    }
}
