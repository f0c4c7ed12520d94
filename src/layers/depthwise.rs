//! Depthwise 3×3 convolution (one filter per channel), stride 1 or 2, either padding convention.
//!
//! Cache-friendly kernel: each channel plane is copied once into a zero-padded scratch plane (for
//! stride 2, split into even and odd columns), so the inner loops run over contiguous, equally long
//! slices that the compiler vectorises, with no bounds tests at the borders. The BN-folded bias and
//! the activation are applied while the output row is still in cache.

use nalgebra::DMatrix;
use rayon::prelude::*;

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
        threads: usize,
    ) {
        self.forward_channels(x, 0, weight.as_slice(), bias, act, out, scratch, threads);
    }

    /// The same over the channels `first..first + out.channels()` of `weight`/`bias`, reading the
    /// same channels of `x` from 0 — used by split execution, where `x` holds one slice. With
    /// `threads > 1` the channels are spread over rayon's workers (batch-of-one latency).
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
        threads: usize,
    ) {
        let g = Geometry::new(self, x.height(), x.width());
        out.reshape(x.channels(), g.oh, g.ow);
        let (lo, hi) = act.bounds();
        let plane_out = g.oh * g.ow;
        let run = |c: usize, dst: &mut [f32], scratch: &mut Vec<f32>| {
            let filt: &[f32; 9] = weight[(first + c) * 9..(first + c + 1) * 9].try_into().expect("3×3 filter");
            g.channel(x.channel(c), dst, filt, bias[first + c], lo, hi, scratch);
        };
        if threads > 1 && x.channels() > 1 && plane_out > 0 {
            out.as_mut_slice()
                .par_chunks_mut(plane_out)
                .enumerate()
                .for_each_init(Vec::new, |scratch, (c, dst)| run(c, dst, scratch));
        } else if plane_out > 0 {
            for (c, dst) in out.as_mut_slice().chunks_mut(plane_out).enumerate() {
                run(c, dst, scratch);
            }
        }
    }
}

impl Depthwise {
    /// One `h × w` plane through filter `filt` (no bias, no activation) into `dst` (`oh × ow`): the
    /// building block of the training engine's batched layout.
    pub fn forward_plane(&self, src: &[f32], h: usize, w: usize, filt: &[f32; 9], dst: &mut [f32], scratch: &mut Vec<f32>) {
        let g = Geometry::new(self, h, w);
        g.channel(src, dst, filt, 0.0, f32::NEG_INFINITY, f32::INFINITY, scratch);
    }

    /// Backward of [`Depthwise::forward_plane`]: adds `∂L/∂x` into `dx` (`h × w`) and `∂L/∂w` into
    /// `dfilt`, given `dy` (`oh × ow`) and the input plane `x`. Works on zero-padded copies so the
    /// inner loops have no bounds tests (`scratch` holds them).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_plane(&self, x: &[f32], h: usize, w: usize, filt: &[f32; 9], dy: &[f32], dx: &mut [f32], dfilt: &mut [f32; 9], scratch: &mut Vec<f32>) {
        let g = Geometry::new(self, h, w);
        let (s, ph, pw, ow) = (self.stride, g.ph, g.pw, g.ow);
        let plane = ph * pw;
        if scratch.len() < 2 * plane {
            scratch.resize(2 * plane, 0.0);
        }
        let (xp, dxp) = scratch[..2 * plane].split_at_mut(plane);
        g.pad(x, xp);
        dxp.fill(0.0);
        for oy in 0..g.oh {
            let dyrow = &dy[oy * ow..(oy + 1) * ow];
            for ky in 0..DEPTHWISE_KERNEL {
                let r = (oy * s + ky) * pw;
                for kx in 0..DEPTHWISE_KERNEL {
                    let wv = filt[ky * 3 + kx];
                    if s == 1 {
                        let xs = &xp[r + kx..r + kx + ow];
                        dfilt[ky * 3 + kx] += dot_f32(dyrow, xs);
                        dxp[r + kx..r + kx + ow].iter_mut().zip(dyrow).for_each(|(d, &gy)| *d += gy * wv);
                    } else {
                        let mut acc = 0.0f32;
                        for (ox, &gy) in dyrow.iter().enumerate() {
                            let at = r + ox * s + kx;
                            acc += gy * xp[at];
                            dxp[at] += gy * wv;
                        }
                        dfilt[ky * 3 + kx] += acc;
                    }
                }
            }
        }
        for y in 0..h {
            let src = &dxp[(g.top + y) * pw + g.left..][..w];
            dx[y * w..(y + 1) * w].iter_mut().zip(src).for_each(|(d, v)| *d += v);
        }
    }
}

#[inline]
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Padding and sizes of one depthwise application.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    stride: usize,
    h: usize,
    w: usize,
    top: usize,
    left: usize,
    oh: usize,
    ow: usize,
    /// Padded height and width.
    ph: usize,
    pw: usize,
}

impl Geometry {
    fn new(d: &Depthwise, h: usize, w: usize) -> Self {
        let k = DEPTHWISE_KERNEL;
        let wy = d.padding.window(h, k, d.stride);
        let wx = d.padding.window(w, k, d.stride);
        Geometry {
            stride: d.stride,
            h,
            w,
            top: wy.before,
            left: wx.before,
            oh: wy.output,
            ow: wx.output,
            ph: wy.before + h + wy.after,
            pw: wx.before + w + wx.after,
        }
    }

    /// One channel: pad into `scratch`, then one pass of all nine taps per output row.
    #[allow(clippy::too_many_arguments)]
    fn channel(&self, src: &[f32], dst: &mut [f32], filt: &[f32; 9], b: f32, lo: f32, hi: f32, scratch: &mut Vec<f32>) {
        let (ow, pw, ph) = (self.ow, self.pw, self.ph);
        if self.stride == 1 {
            if scratch.len() < ph * pw {
                scratch.resize(ph * pw, 0.0);
            }
            self.pad(src, &mut scratch[..ph * pw]);
            for oy in 0..self.oh {
                let r = |ky: usize| &scratch[(oy + ky) * pw..(oy + ky + 1) * pw];
                let (a, m, z) = (r(0), r(1), r(2));
                let taps = [&a[0..], &a[1..], &a[2..], &m[0..], &m[1..], &m[2..], &z[0..], &z[1..], &z[2..]];
                dw_row(&mut dst[oy * ow..(oy + 1) * ow], taps, filt, b, lo, hi);
            }
        } else {
            let (ew, odw) = (pw.div_ceil(2), pw / 2);
            if scratch.len() < ph * (ew + odw) {
                scratch.resize(ph * (ew + odw), 0.0);
            }
            self.pad_split(src, ew, odw, &mut scratch[..ph * (ew + odw)]);
            let (even, odd) = scratch.split_at(ph * ew);
            let s = self.stride;
            for oy in 0..self.oh {
                let e = |ky: usize| &even[(oy * s + ky) * ew..(oy * s + ky + 1) * ew];
                let o = |ky: usize| &odd[(oy * s + ky) * odw..(oy * s + ky + 1) * odw];
                let taps = [&e(0)[0..], &o(0)[0..], &e(0)[1..], &e(1)[0..], &o(1)[0..], &e(1)[1..], &e(2)[0..], &o(2)[0..], &e(2)[1..]];
                dw_row(&mut dst[oy * ow..(oy + 1) * ow], taps, filt, b, lo, hi);
            }
        }
    }

    /// Zero-padded copy (row length `pw`); only the border cells are zeroed.
    fn pad(&self, src: &[f32], dst: &mut [f32]) {
        let (pw, top, left, w) = (self.pw, self.top, self.left, self.w);
        dst[..top * pw].fill(0.0);
        dst[(top + self.h) * pw..].fill(0.0);
        for y in 0..self.h {
            let row = &mut dst[(top + y) * pw..(top + y + 1) * pw];
            row[..left].fill(0.0);
            row[left..left + w].copy_from_slice(&src[y * w..(y + 1) * w]);
            row[left + w..].fill(0.0);
        }
    }

    /// Zero-padded copy split by column parity: even padded columns first (`ph × ew`), odd after.
    fn pad_split(&self, src: &[f32], ew: usize, odw: usize, dst: &mut [f32]) {
        let (top, left, w, ph) = (self.top, self.left, self.w, self.ph);
        let (even, odd) = dst.split_at_mut(ph * ew);
        for py in 0..ph {
            let er = &mut even[py * ew..(py + 1) * ew];
            let or = &mut odd[py * odw..(py + 1) * odw];
            if py < top || py >= top + self.h {
                er.fill(0.0);
                or.fill(0.0);
                continue;
            }
            let row = &src[(py - top) * w..(py - top + 1) * w];
            er.fill(0.0);
            or.fill(0.0);
            // Padded column j = left + x goes to the even plane at j/2 when j is even, else the odd one.
            let (first, second) = if left % 2 == 0 { (&mut *er, &mut *or) } else { (&mut *or, &mut *er) };
            let (o1, o2) = (left / 2, left.div_ceil(2));
            let pairs = row.chunks_exact(2);
            let tail = pairs.remainder();
            for (k, p) in pairs.enumerate() {
                first[o1 + k] = p[0];
                second[o2 + k] = p[1];
            }
            if let [last] = tail {
                first[o1 + w / 2] = *last;
            }
        }
    }
}

/// `out[i] = clamp(b + Σ_k w_k · taps_k[i], lo, hi)`: all nine taps in one pass, vectorised for
/// AVX-512 or AVX2 at run time. The sum is always taken in the same order, so results do not depend on
/// the instruction set chosen.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn dw_row(out: &mut [f32], taps: [&[f32]; 9], w: &[f32; 9], b: f32, lo: f32, hi: f32) {
    let n = out.len();
    let (t0, t1, t2) = (&taps[0][..n], &taps[1][..n], &taps[2][..n]);
    let (t3, t4, t5) = (&taps[3][..n], &taps[4][..n], &taps[5][..n]);
    let (t6, t7, t8) = (&taps[6][..n], &taps[7][..n], &taps[8][..n]);
    let [w0, w1, w2, w3, w4, w5, w6, w7, w8] = *w;
    for i in 0..n {
        let v = b + w0 * t0[i] + w1 * t1[i] + w2 * t2[i] + w3 * t3[i] + w4 * t4[i] + w5 * t5[i] + w6 * t6[i] + w7 * t7[i] + w8 * t8[i];
        out[i] = v.max(lo).min(hi);
    }
}
