//! Full k×k convolution (MobileNetV2's stem: 3×3, stride 2, 3→32) as im2col + GEMM, or on CPUs
//! with AVX-512 the same sums by [`super::conv_kernel`] without the im2col matrix.
//!
//! Weights are a `fan_in × cout` matrix whose column `j` is PyTorch's `weight[j]` flattened in
//! `(cin, ky, kx)` order. The im2col matrix has one row per output position and one column per
//! `(cin, ky, kx)`, so `out = cols · W` lands directly in the [`FeatureMap`] layout.

use nalgebra::DMatrix;

use super::activation::Activation;
use super::conv_kernel::Direct;
use super::gemm_kernel::{self, Fused, MIN_POSITIONS};
use super::matmul::{matmul, matmul_bands, SendPtr};
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
        out.reshape(self.out_channels, oh, ow);
        // Where the product would run on the AVX-512 GEMM kernel, the direct kernel computes the same
        // bits without the im2col matrix.
        if k == 3 && (s == 1 || s == 2) && m >= MIN_POSITIONS && gemm_kernel::available() {
            let d = Direct { cin: self.in_channels, cout: self.out_channels, h, w, oh, ow, stride: s, top: wy.before, left: wx.before };
            let bands = threads.clamp(1, oh);
            let dst = SendPtr(out.as_mut_slice().as_mut_ptr());
            let band = |i: usize| {
                // SAFETY: `out` holds cout × oh × ow (reshaped above); the bands are disjoint row
                // ranges of its planes, each written by one band only, while `out` is borrowed here.
                unsafe { d.rows(x.as_slice(), weight.as_slice(), dst.get(), oh * i / bands, oh * (i + 1) / bands, fused) };
            };
            crate::fork_join::fork_join(bands, threads, &band);
            return;
        }
        if cols.len() < m * fan_in {
            cols.resize(m * fan_in, 0.0);
        }
        self.im2col_rows(x, 0, oh, &mut cols[..m * fan_in]);
        matmul_bands(out.as_mut_slice(), cols, weight.as_slice(), m, fan_in, self.out_channels, threads, fused, None);
    }

    /// Output channels `first..first + count` only, computed in bands of output rows (im2col of one
    /// band + GEMM; with AVX-512, the direct kernel straight from the input planes): what split
    /// execution uses so that neither the full output nor a full im2col matrix is ever materialised.
    pub fn forward_direct_channels(&self, x: &FeatureMap, weight: &DMatrix<f32>, first: usize, count: usize, out: &mut FeatureMap) {
        let (h, w) = (x.height(), x.width());
        let (k, s) = (self.kernel, self.stride);
        let wy = self.padding.window(h, k, s);
        let wx = self.padding.window(w, k, s);
        let (oh, ow) = (wy.output, wx.output);
        out.reshape(count, oh, ow);
        let fan_in = self.fan_in();
        let wcols = &weight.as_slice()[first * fan_in..(first + count) * fan_in];
        // The direct kernel where the whole-output path uses it: the same bits, and no im2col band
        // or GEMM packing buffer (which the split schedule's peak memory would count).
        if k == 3 && (s == 1 || s == 2) && oh * ow >= MIN_POSITIONS && gemm_kernel::available() {
            let d = Direct { cin: self.in_channels, cout: count, h, w, oh, ow, stride: s, top: wy.before, left: wx.before };
            // SAFETY: `out` holds count × oh × ow values (reshaped above) and is borrowed mutably here.
            unsafe { d.rows(x.as_slice(), wcols, out.as_mut_slice().as_mut_ptr(), 0, oh, None) };
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gemm_kernel::{gemm_rows, PackedB};

    /// The direct kernel equals im2col + the AVX-512 GEMM kernel bit for bit: both strides and
    /// padding rules, odd sizes, output channels that end mid-group, with and without the fused
    /// bias and ReLU6, in 1 and 3 row bands. Skipped (and said so) without AVX-512.
    #[test]
    fn direct_kernel_equals_im2col_gemm_bit_for_bit() {
        if !gemm_kernel::available() {
            eprintln!("no AVX-512 here: im2col + the gemm crate serve every convolution");
            return;
        }
        for padding in [Padding::Torch, Padding::Tf] {
            for (stride, h, w, cin, cout) in [(2, 40, 38, 3, 32), (1, 17, 19, 2, 21), (2, 33, 64, 3, 16), (1, 23, 23, 1, 5)] {
                let conv = Conv2d { in_channels: cin, out_channels: cout, kernel: 3, stride, padding };
                let x = FeatureMap::from_chw(cin, h, w, (0..cin * h * w).map(|i| ((i * 7919) % 1013) as f32 * 3.1e-3 - 1.5).collect()).expect("shape");
                let weight = DMatrix::from_fn(cin * 9, cout, |p, j| ((p * 31 + j * 17) % 23) as f32 * 0.07 - 0.8);
                let bias: Vec<f32> = (0..cout).map(|j| j as f32 * 0.05 - 0.5).collect();
                let (oh, ow) = conv.output_size(h, w);
                let m = oh * ow;
                assert!(m >= MIN_POSITIONS, "the shape must reach the direct kernel");
                let mut cols = vec![0.0; m * cin * 9];
                conv.im2col_rows(&x, 0, oh, &mut cols);
                let mut packed = PackedB::default();
                packed.pack(weight.as_slice(), cin * 9, cout, cin * 9);
                for fused in [None, Some(Activation::Relu6.fused(&bias))] {
                    let mut want = vec![f32::NAN; m * cout];
                    // SAFETY: AVX-512 is present; cols is m × fan_in and want m × cout, column-major.
                    unsafe { gemm_rows(cols.as_ptr(), m, &packed, want.as_mut_ptr(), m, 0, m, fused.as_ref().into()) };
                    for threads in [1, 3] {
                        let mut out = FeatureMap::zeros(0, 0, 0);
                        conv.forward_with(&x, &weight, &mut out, &mut Vec::new(), threads, fused.as_ref());
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(out.as_slice()), bits(&want), "{padding:?} s{stride} {h}×{w} {cin}→{cout} fused {} threads {threads}", fused.is_some());
                    }
                }
            }
        }
    }
}
