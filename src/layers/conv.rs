//! Full k×k convolution (MobileNetV2's stem: 3×3, stride 2, 3→32) as im2col + GEMM.
//!
//! Weights are a `fan_in × cout` matrix whose column `j` is PyTorch's `weight[j]` flattened in
//! `(cin, ky, kx)` order. The im2col matrix has one row per output position and one column per
//! `(cin, ky, kx)`, so `out = cols · W` lands directly in the [`FeatureMap`] layout.

use nalgebra::DMatrix;

use super::activation::Activation;
use super::gemm_kernel::Fused;
use super::matmul::{matmul, matmul_bands};
use super::padding::Padding;
use crate::tensor::FeatureMap;

/// Geometry of a full convolution (no bias: BatchNorm follows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: Padding,
}

impl Conv2d {
    /// Rows of the weight matrix: `cin · k · k`.
    pub fn fan_in(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    /// PyTorch's weight shape `[cout, cin, k, k]`.
    pub fn torch_shape(&self) -> Vec<usize> {
        vec![self.out_channels, self.in_channels, self.kernel, self.kernel]
    }

    /// Output `(height, width)` for an input of `(h, w)`.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        (self.padding.window(h, self.kernel, self.stride).output, self.padding.window(w, self.kernel, self.stride).output)
    }

    /// `out = conv(x)` with `weight` (`fan_in × cout`); no bias or activation. `cols` is scratch.
    pub fn forward(&self, x: &FeatureMap, weight: &DMatrix<f32>, out: &mut FeatureMap, cols: &mut Vec<f32>, threads: usize) {
        self.forward_with(x, weight, out, cols, threads, None);
    }

    /// `out = act(conv(x) + bias)`: im2col, then the product in `threads` bands of output positions,
    /// each band's bias and activation applied while it is in cache. The same bits for any `threads`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_fused(
        &self,
        x: &FeatureMap,
        weight: &DMatrix<f32>,
        bias: &[f32],
        act: Activation,
        out: &mut FeatureMap,
        cols: &mut Vec<f32>,
        threads: usize,
    ) {
        self.forward_with(x, weight, out, cols, threads, Some(&act.fused(bias)));
    }

    /// The product, with `fused` bias and activation applied to each band of output positions.
    fn forward_with(&self, x: &FeatureMap, weight: &DMatrix<f32>, out: &mut FeatureMap, cols: &mut Vec<f32>, threads: usize, fused: Option<&Fused>) {
        let (h, w) = (x.height(), x.width());
        let (k, s) = (self.kernel, self.stride);
        let wy = self.padding.window(h, k, s);
        let wx = self.padding.window(w, k, s);
        let (oh, ow) = (wy.output, wx.output);
        let m = oh * ow;
        let fan_in = self.fan_in();
        if cols.len() < m * fan_in {
            cols.resize(m * fan_in, 0.0);
        }
        self.im2col_rows(x, 0, oh, &mut cols[..m * fan_in]);
        out.reshape(self.out_channels, oh, ow);
        matmul_bands(out.as_mut_slice(), cols, weight.as_slice(), m, fan_in, self.out_channels, threads, fused);
    }

    /// Output channels `first..first + count` only, computed in bands of output rows (im2col of one
    /// band + GEMM): what split execution uses so that neither the full output nor a full im2col matrix
    /// is ever materialised.
    pub fn forward_direct_channels(&self, x: &FeatureMap, weight: &DMatrix<f32>, first: usize, count: usize, out: &mut FeatureMap) {
        let (h, w) = (x.height(), x.width());
        let (k, s) = (self.kernel, self.stride);
        let wy = self.padding.window(h, k, s);
        let wx = self.padding.window(w, k, s);
        let (oh, ow) = (wy.output, wx.output);
        out.reshape(count, oh, ow);
        let fan_in = self.fan_in();
        let wcols = &weight.as_slice()[first * fan_in..(first + count) * fan_in];
        let band = STEM_BAND_ROWS.min(oh.max(1));
        let mut cols = vec![0.0f32; band * ow * fan_in];
        let mut prod = vec![0.0f32; band * ow * count];
        for r0 in (0..oh).step_by(band) {
            let rows = band.min(oh - r0);
            let m = rows * ow;
            self.im2col_rows(x, r0, rows, &mut cols[..m * fan_in]);
            matmul(&mut prod, &cols, wcols, m, fan_in, count, 1);
            for c in 0..count {
                out.channel_mut(c)[r0 * ow..r0 * ow + m].copy_from_slice(&prod[c * m..(c + 1) * m]);
            }
        }
    }

    /// im2col of output rows `r0..r0 + rows`: `cols` is `(rows·ow) × fan_in`, column `(ci, ky, kx)`.
    pub(crate) fn im2col_rows(&self, x: &FeatureMap, r0: usize, rows: usize, cols: &mut [f32]) {
        let (h, w) = (x.height(), x.width());
        let (k, s) = (self.kernel, self.stride);
        let wy = self.padding.window(h, k, s);
        let wx = self.padding.window(w, k, s);
        let ow = wx.output;
        let m = rows * ow;
        for ci in 0..self.in_channels {
            let plane = x.channel(ci);
            for ky in 0..k {
                for kx in 0..k {
                    let col = &mut cols[(ci * k * k + ky * k + kx) * m..][..m];
                    for r in 0..rows {
                        let iy = ((r0 + r) * s + ky) as isize - wy.before as isize;
                        let dst = &mut col[r * ow..(r + 1) * ow];
                        if iy < 0 || iy >= h as isize {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                        for (ox, v) in dst.iter_mut().enumerate() {
                            let ix = (ox * s + kx) as isize - wx.before as isize;
                            *v = if ix < 0 || ix >= w as isize { 0.0 } else { src[ix as usize] };
                        }
                    }
                }
            }
        }
    }
}

/// Output rows per im2col band of [`Conv2d::forward_direct_channels`].
pub const STEM_BAND_ROWS: usize = 8;
