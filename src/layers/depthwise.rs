//! Depthwise 3×3 convolution (one filter per channel), stride 1 or 2, either padding convention.
//!
//! Cache-friendly kernel: each channel plane is copied once into a zero-padded scratch plane (for
//! stride 2, split into even and odd columns), so the inner loops run over contiguous, equally long
//! slices that the compiler vectorises, with no bounds tests at the borders. The BN-folded bias and
//! the activation are applied while the output row is still in cache.

use nalgebra::DMatrix;

use super::activation::Activation;
use super::padding::Padding;
use crate::tensor::FeatureMap;

/// Kernel size of every depthwise convolution in MobileNetV2.
pub const DEPTHWISE_KERNEL: usize = 3;

/// Geometry of a depthwise 3×3 convolution (no bias: BatchNorm follows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Depthwise {
    pub channels: usize,
    pub stride: usize,
    pub padding: Padding,
}

impl Depthwise {
    pub fn fan_in(&self) -> usize {
        DEPTHWISE_KERNEL * DEPTHWISE_KERNEL
    }

    /// PyTorch's weight shape `[c, 1, 3, 3]`.
    pub fn torch_shape(&self) -> Vec<usize> {
        vec![self.channels, 1, DEPTHWISE_KERNEL, DEPTHWISE_KERNEL]
    }

    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        (
            self.padding.window(h, DEPTHWISE_KERNEL, self.stride).output,
            self.padding.window(w, DEPTHWISE_KERNEL, self.stride).output,
        )
    }

    /// `out = act(dwconv(x) + bias)` with `weight` of shape `9 × C` (column `c` = channel `c`'s 3×3
    /// filter, row-major). `scratch` holds the padded plane.
    pub fn forward(
        &self,
        x: &FeatureMap,
        weight: &DMatrix<f32>,
        bias: &[f32],
        act: Activation,
        out: &mut FeatureMap,
        scratch: &mut Vec<f32>,
    ) {
        self.forward_channels(x, 0, weight.as_slice(), bias, act, out, scratch);
    }

    /// The same over the channels `first..first + out.channels()` of `weight`/`bias`, reading the
    /// same channels of `x` from 0 — used by split execution, where `x` holds one slice.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_channels(
        &self,
        x: &FeatureMap,
        first: usize,
        weight: &[f32],
        bias: &[f32],
        act: Activation,
        out: &mut FeatureMap,
        scratch: &mut Vec<f32>,
    ) {
        let (h, w) = (x.height(), x.width());
        let k = DEPTHWISE_KERNEL;
        let wy = self.padding.window(h, k, self.stride);
        let wx = self.padding.window(w, k, self.stride);
        let (oh, ow) = (wy.output, wx.output);
        let ph = wy.before + h + wy.after;
        let pw = wx.before + w + wx.after;
        out.reshape(x.channels(), oh, ow);
        let plane_len = match self.stride {
            1 => ph * pw,
            _ => ph * (pw.div_ceil(2) + pw / 2),
        };
        scratch.clear();
        scratch.resize(plane_len, 0.0);
        for c in 0..x.channels() {
            let filt: &[f32; 9] = weight[(first + c) * 9..(first + c + 1) * 9].try_into().expect("3×3 filter");
            let b = bias[first + c];
            let src = x.channel(c);
            let dst = out.channel_mut(c);
            if self.stride == 1 {
                pad_plane(src, h, w, wy.before, wx.before, pw, scratch);
                for oy in 0..oh {
                    let acc = &mut dst[oy * ow..(oy + 1) * ow];
                    acc.fill(b);
                    for ky in 0..k {
                        let row = &scratch[(oy + ky) * pw..(oy + ky + 1) * pw];
                        let (w0, w1, w2) = (filt[ky * 3], filt[ky * 3 + 1], filt[ky * 3 + 2]);
                        let (r0, r1, r2) = (&row[0..ow], &row[1..ow + 1], &row[2..ow + 2]);
                        for i in 0..ow {
                            acc[i] += w0 * r0[i] + w1 * r1[i] + w2 * r2[i];
                        }
                    }
                    act.apply_slice(acc);
                }
            } else {
                let (ew, odw) = (pw.div_ceil(2), pw / 2);
                pad_plane_split(src, h, w, wy.before, wx.before, ph, ew, odw, scratch);
                let (even, odd) = scratch.split_at(ph * ew);
                let s = self.stride;
                for oy in 0..oh {
                    let acc = &mut dst[oy * ow..(oy + 1) * ow];
                    acc.fill(b);
                    for ky in 0..k {
                        let r = oy * s + ky;
                        let e = &even[r * ew..(r + 1) * ew];
                        let o = &odd[r * odw..(r + 1) * odw];
                        let (w0, w1, w2) = (filt[ky * 3], filt[ky * 3 + 1], filt[ky * 3 + 2]);
                        let (r0, r1, r2) = (&e[0..ow], &o[0..ow], &e[1..ow + 1]);
                        for i in 0..ow {
                            acc[i] += w0 * r0[i] + w1 * r1[i] + w2 * r2[i];
                        }
                    }
                    act.apply_slice(acc);
                }
            }
        }
    }
}

/// Copies an `h×w` plane into a zero-padded plane of row length `pw`, offset by `(top, left)`.
fn pad_plane(src: &[f32], h: usize, w: usize, top: usize, left: usize, pw: usize, dst: &mut [f32]) {
    dst.fill(0.0);
    for y in 0..h {
        dst[(top + y) * pw + left..][..w].copy_from_slice(&src[y * w..(y + 1) * w]);
    }
}

/// Like [`pad_plane`] but stores even padded columns in the first `ph·ew` values and odd ones after.
#[allow(clippy::too_many_arguments)]
fn pad_plane_split(src: &[f32], h: usize, w: usize, top: usize, left: usize, ph: usize, ew: usize, odw: usize, dst: &mut [f32]) {
    dst.fill(0.0);
    let (even, odd) = dst.split_at_mut(ph * ew);
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        let (er, or) = (&mut even[(top + y) * ew..(top + y + 1) * ew], &mut odd[(top + y) * odw..(top + y + 1) * odw]);
        for (x, &v) in row.iter().enumerate() {
            let j = left + x;
            if j % 2 == 0 {
                er[j / 2] = v;
            } else {
                or[j / 2] = v;
            }
        }
    }
}
