//! 1×1 convolution as one GEMM: `out (HW×Cout) = x (HW×Cin) · W (Cin×Cout)`, where `W` stored
//! column-major is PyTorch's `[Cout, Cin, 1, 1]` weight byte for byte.

use nalgebra::DMatrix;

use super::activation::Activation;
use super::matmul::matmul_bands;
use super::packed_weights::PackedWeights;
use crate::tensor::FeatureMap;

/// Geometry of a 1×1 convolution (no bias: BatchNorm follows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pointwise {
    pub in_channels: usize,
    pub out_channels: usize,
}

impl Pointwise {
    pub fn fan_in(&self) -> usize {
        self.in_channels
    }

    /// PyTorch's weight shape `[cout, cin, 1, 1]`.
    pub fn torch_shape(&self) -> Vec<usize> {
        vec![self.out_channels, self.in_channels, 1, 1]
    }

    /// `out = x · weight` (no bias or activation).
    pub fn forward(&self, x: &FeatureMap, weight: &DMatrix<f32>, out: &mut FeatureMap, threads: usize) {
        self.forward_columns(x, weight.as_slice(), self.out_channels, out, threads);
    }

    /// `out = act(x · weight + bias)`: the product in `threads` bands, each band's bias and activation
    /// applied while it is in cache; `packs` holds `weight`'s packed forms (the layer's, made on first
    /// use). The same bits for any `threads`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_fused(
        &self,
        x: &FeatureMap,
        weight: &DMatrix<f32>,
        packs: Option<&PackedWeights>,
        bias: &[f32],
        act: Activation,
        out: &mut FeatureMap,
        threads: usize,
    ) {
        out.reshape(self.out_channels, x.height(), x.width());
        let (m, k, n) = (x.positions(), self.in_channels, self.out_channels);
        matmul_bands(out.as_mut_slice(), x.as_slice(), weight.as_slice(), m, k, n, threads, Some(&act.fused(bias)), packs);
    }

    /// The product with only `cols` output channels, whose `cin × cols` weights are the column-major
    /// slice `weight` — the building block of split execution over slices of a layer's channels. On
    /// the products of [`forward_fused`](Self::forward_fused) (the same bits before the epilogue), so
    /// the split schedule needs no packing buffer of the `gemm` crate that the whole-layer one does
    /// not. (On AVX2-only machines the split stem still takes im2col and the crate, as before.)
    pub fn forward_columns(&self, x: &FeatureMap, weight: &[f32], cols: usize, out: &mut FeatureMap, threads: usize) {
        out.reshape(cols, x.height(), x.width());
        matmul_bands(out.as_mut_slice(), x.as_slice(), weight, x.positions(), self.in_channels, cols, threads, None, None);
    }
}
