//! Depthwise 3×3 convolution (one filter per channel), stride 1 or 2, either padding convention.
//!
//! On CPUs with AVX-512 each channel plane goes straight from input to output through
//! [`super::depthwise_kernel`], whose load masks are the zero padding. Elsewhere (and as its
//! reference) the portable kernel copies each plane once into a zero-padded scratch plane (for
//! stride 2, split into even and odd columns), so the inner loops run over contiguous, equally long
//! slices that the compiler vectorises, with no bounds tests at the borders. Both give the same bits.
//! The BN-folded bias and the activation are applied while the output row is still in cache.

use nalgebra::DMatrix;

use super::activation::Activation;
use super::depthwise_kernel;
use super::matmul::SendPtr;
use super::padding::Padding;
use crate::tensor::FeatureMap;

thread_local! {
    /// The padded plane of a band of channels on a thread of [`crate::fork_join`] (the portable path).
    static BAND_SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

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
        (self.padding.window(h, DEPTHWISE_KERNEL, self.stride).output, self.padding.window(w, DEPTHWISE_KERNEL, self.stride).output)
    }

    /// `out = act(dwconv(x) + bias)` with `weight` of shape `9 × C` (column `c` = channel `c`'s 3×3
    /// filter, row-major). `scratch` holds the padded plane.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(&self, x: &FeatureMap, weight: &DMatrix<f32>, bias: &[f32], act: Activation, out: &mut FeatureMap, scratch: &mut Vec<f32>, threads: usize) {
        self.forward_channels(x, 0, weight.as_slice(), bias, act, out, scratch, threads);
    }

    /// The same over the channels `first..first + out.channels()` of `weight`/`bias`, reading the
    /// same channels of `x` from 0 — used by split execution, where `x` holds one slice. With
    /// `threads > 1` the channels are spread over `threads` threads of [`crate::fork_join`] in `4·threads`
    /// bands (batch-of-one latency).
    ///
    /// # Panics
    /// When the weight or bias slices are shorter than the channels they are indexed by.
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
            let (channels, bands) = (x.channels(), (4 * threads).min(x.channels()));
            let dst = SendPtr(out.as_mut_slice().as_mut_ptr());
            let band = |i: usize| {
                BAND_SCRATCH.with_borrow_mut(|scratch| {
                    for c in channels * i / bands..channels * (i + 1) / bands {
                        // SAFETY: `out` holds `channels` planes of `plane_out` (reshaped above) and is
                        // borrowed here; the bands are disjoint channel ranges, each plane written by one.
                        let plane = unsafe { std::slice::from_raw_parts_mut(dst.get().add(c * plane_out), plane_out) };
                        run(c, plane, scratch);
                    }
                })
            };
            crate::fork_join::fork_join(bands, threads, &band);
        } else if plane_out > 0 {
            for (c, dst) in out.as_mut_slice().chunks_mut(plane_out).enumerate() {
                run(c, dst, scratch);
            }
        }
    }
}

impl Depthwise {
    /// [`Depthwise::forward`] on the blocked layout ([`super::gemm_channels::Layout::Blocked`]):
    /// `x` holds `channels` (a multiple of 16) channels of `h × w` in blocks of 16, `out` receives the
    /// output the same way (resized to `channels · oh · ow`). The blocks are spread over `threads`
    /// threads of [`crate::fork_join`]. The same bits as [`Depthwise::forward`] channel by channel.
    /// (`out` is reshaped to `channels × oh × ow` but holds the blocked layout.)
    ///
    /// # Panics
    /// Without AVX-512F, when the channels are not a multiple of 16, or the slices are short.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_blocked(&self, x: &[f32], h: usize, w: usize, weight: &[f32], bias: &[f32], act: Activation, out: &mut FeatureMap, threads: usize) {
        let c = self.channels;
        assert!(c.is_multiple_of(16) && x.len() >= c * h * w && weight.len() >= 9 * c && bias.len() >= c, "depthwise: blocked operands");
        let plane = Geometry::new(self, h, w).direct();
        let plane_out = plane.oh * plane.ow * 16;
        out.reshape(c, plane.oh, plane.ow);
        let (lo, hi) = act.bounds();
        let dst = SendPtr(out.as_mut_slice().as_mut_ptr());
        let band = |cb: usize| {
            let filt: [[f32; 16]; 9] = std::array::from_fn(|t| std::array::from_fn(|l| weight[(cb * 16 + l) * 9 + t]));
            let b: [f32; 16] = std::array::from_fn(|l| bias[cb * 16 + l]);
            // SAFETY: `out` holds c/16 blocks of `plane_out` (resized above) and is borrowed here; each
            // block is written by one band.
            let o = unsafe { std::slice::from_raw_parts_mut(dst.get().add(cb * plane_out), plane_out) };
            plane.run_blocked(&x[cb * h * w * 16..(cb + 1) * h * w * 16], o, &filt, &b, lo, hi);
        };
        crate::fork_join::fork_join(c / 16, threads, &band);
    }

    /// One `h × w` plane through filter `filt` (no bias, no activation) into `dst` (`oh × ow`): the
    /// building block of the training engine's batched layout.
    pub fn forward_plane(&self, src: &[f32], h: usize, w: usize, filt: &[f32; 9], dst: &mut [f32], scratch: &mut Vec<f32>) {
        let g = Geometry::new(self, h, w);
        g.channel(src, dst, filt, 0.0, f32::NEG_INFINITY, f32::INFINITY, scratch);
    }

    /// [`Depthwise::forward_plane`] for `n` images of one channel (planes back to back). At stride 1
    /// the padded planes are stacked and the nine taps run as one long row over all of them (rows of
    /// the tall output that straddle two images are computed and dropped).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_planes(&self, n: usize, src: &[f32], h: usize, w: usize, filt: &[f32; 9], dst: &mut [f32], scratch: &mut Vec<f32>) {
        let g = Geometry::new(self, h, w);
        let (hw, ohw) = (h * w, g.oh * g.ow);
        if self.stride != 1 || g.ph != g.oh + 2 || g.pw != g.ow + 2 {
            for i in 0..n {
                self.forward_plane(&src[i * hw..(i + 1) * hw], h, w, filt, &mut dst[i * ohw..(i + 1) * ohw], scratch);
            }
            return;
        }
        let (pw, ow, plane) = (g.pw, g.ow, g.ph * g.pw);
        let total = n * plane;
        if scratch.len() < 2 * total {
            scratch.resize(2 * total, 0.0);
        }
        let (xp, out) = scratch.split_at_mut(total);
        for i in 0..n {
            g.pad(&src[i * hw..(i + 1) * hw], &mut xp[i * plane..(i + 1) * plane]);
        }
        let len = total - 2 * pw - 2;
        let t = |o: usize| &xp[o..];
        let taps = [t(0), t(1), t(2), t(pw), t(pw + 1), t(pw + 2), t(2 * pw), t(2 * pw + 1), t(2 * pw + 2)];
        dw_row(&mut out[..len], taps, filt, 0.0, f32::NEG_INFINITY, f32::INFINITY);
        for i in 0..n {
            for oy in 0..g.oh {
                dst[i * ohw + oy * ow..i * ohw + (oy + 1) * ow].copy_from_slice(&out[i * plane + oy * pw..][..ow]);
            }
        }
    }

    /// [`Depthwise::backward_plane`] for `n` images of one channel (planes back to back in `x`, `dy`,
    /// `dx`). At stride 1 the padded planes are stacked into one tall plane, so each of the nine taps
    /// is a single long vector pass over all images (the zero rows and columns between images keep
    /// them apart); small late-stage planes (4×4, 2×2) gain the most.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_planes(
        &self,
        n: usize,
        x: &[f32],
        h: usize,
        w: usize,
        filt: &[f32; 9],
        dy: &[f32],
        dx: &mut [f32],
        dfilt: &mut [f32; 9],
        scratch: &mut Vec<f32>,
    ) {
        let g = Geometry::new(self, h, w);
        let (hw, ohw) = (h * w, g.oh * g.ow);
        if self.stride != 1 {
            for i in 0..n {
                self.backward_plane(&x[i * hw..(i + 1) * hw], h, w, filt, &dy[i * ohw..(i + 1) * ohw], &mut dx[i * hw..(i + 1) * hw], dfilt, scratch);
            }
            return;
        }
        let (pw, ow, plane) = (g.pw, g.ow, g.ph * g.pw);
        let total = n * plane;
        if scratch.len() < 3 * total {
            scratch.resize(3 * total, 0.0);
        }
        let (xp, rest) = scratch.split_at_mut(total);
        let (dxp, rest) = rest.split_at_mut(total);
        let dyp = &mut rest[..total];
        dxp.fill(0.0);
        dyp.fill(0.0);
        for i in 0..n {
            g.pad(&x[i * hw..(i + 1) * hw], &mut xp[i * plane..(i + 1) * plane]);
            let block = &mut dyp[i * plane..(i + 1) * plane];
            for oy in 0..g.oh {
                block[oy * pw..oy * pw + ow].copy_from_slice(&dy[i * ohw + oy * ow..i * ohw + (oy + 1) * ow]);
            }
        }
        for ky in 0..DEPTHWISE_KERNEL {
            for kx in 0..DEPTHWISE_KERNEL {
                let o = ky * pw + kx;
                let len = total - o;
                dfilt[ky * 3 + kx] += tap_backward(&dyp[..len], &xp[o..], &mut dxp[o..], filt[ky * 3 + kx]);
            }
        }
        for i in 0..n {
            for y in 0..h {
                let src = &dxp[i * plane + (g.top + y) * pw + g.left..][..w];
                dx[i * hw + y * w..i * hw + (y + 1) * w].iter_mut().zip(src).for_each(|(d, v)| *d += v);
            }
        }
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
        if s == 1 && scratch.len() < 3 * plane {
            scratch.resize(3 * plane, 0.0);
        }
        let (xp, rest) = scratch.split_at_mut(plane);
        let (dxp, rest) = rest.split_at_mut(plane);
        g.pad(x, xp);
        dxp.fill(0.0);
        if s == 1 {
            // dy laid out at the padded row pitch (zeros past each row's end), so every tap is one
            // long fused dot + axpy over the whole plane instead of a short pass per output row; the
            // zero columns add nothing, and the last tap's window stops at most pw − ow zeros early.
            let dyp = &mut rest[..g.oh * pw];
            for oy in 0..g.oh {
                dyp[oy * pw..oy * pw + ow].copy_from_slice(&dy[oy * ow..(oy + 1) * ow]);
                dyp[oy * pw + ow..(oy + 1) * pw].fill(0.0);
            }
            for ky in 0..DEPTHWISE_KERNEL {
                for kx in 0..DEPTHWISE_KERNEL {
                    let o = ky * pw + kx;
                    let len = dyp.len().min(plane - o);
                    dfilt[ky * 3 + kx] += tap_backward(&dyp[..len], &xp[o..o + len], &mut dxp[o..o + len], filt[ky * 3 + kx]);
                }
            }
        } else {
            for oy in 0..g.oh {
                let dyrow = &dy[oy * ow..(oy + 1) * ow];
                for ky in 0..DEPTHWISE_KERNEL {
                    let r = (oy * s + ky) * pw;
                    for kx in 0..DEPTHWISE_KERNEL {
                        let wv = filt[ky * 3 + kx];
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

/// One tap of the depthwise backward: `dx += w·dy` and returns `Σ dy·x`, summed in 16 fixed lanes
/// (then the lanes in order), so the result does not depend on the machine's vector width.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn tap_backward(dy: &[f32], x: &[f32], dx: &mut [f32], w: f32) -> f32 {
    let n = dy.len();
    let (x, dx) = (&x[..n], &mut dx[..n]);
    let mut acc = [0.0f32; 16];
    let (dyc, xc) = (dy.chunks_exact(16), x.chunks_exact(16));
    let (dyr, xr) = (dyc.remainder(), xc.remainder());
    let mut dxc = dx.chunks_exact_mut(16);
    for ((d, xx), o) in dyc.zip(xc).zip(&mut dxc) {
        let d: &[f32; 16] = d.try_into().expect("16 lanes");
        let xx: &[f32; 16] = xx.try_into().expect("16 lanes");
        let o: &mut [f32; 16] = o.try_into().expect("16 lanes");
        for l in 0..16 {
            acc[l] += d[l] * xx[l];
            o[l] += d[l] * w;
        }
    }
    let mut tail = 0.0f32;
    for ((d, xx), o) in dyr.iter().zip(xr).zip(dxc.into_remainder()) {
        tail += d * xx;
        *o += d * w;
    }
    acc.iter().sum::<f32>() + tail
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
    /// The direct kernel's flat form of the plane, where it has one (small stride-1 planes).
    flat: Option<depthwise_kernel::Flat>,
}

impl Geometry {
    fn new(d: &Depthwise, h: usize, w: usize) -> Self {
        let k = DEPTHWISE_KERNEL;
        let wy = d.padding.window(h, k, d.stride);
        let wx = d.padding.window(w, k, d.stride);
        let mut g = Geometry {
            stride: d.stride,
            h,
            w,
            top: wy.before,
            left: wx.before,
            oh: wy.output,
            ow: wx.output,
            ph: wy.before + h + wy.after,
            pw: wx.before + w + wx.after,
            flat: None,
        };
        g.flat = g.direct().flat();
        g
    }

    /// One channel: the direct AVX-512 or AVX2 kernel where the machine has one; else pad into `scratch`, then all
    /// nine taps in one pass — per output row where rows are
    /// whole vectors long, else as one long row over the padded plane (see [`Geometry::long_row`]).
    #[allow(clippy::too_many_arguments)]
    fn channel(&self, src: &[f32], dst: &mut [f32], filt: &[f32; 9], b: f32, lo: f32, hi: f32, scratch: &mut Vec<f32>) {
        if let Some(flat) = &self.flat {
            self.direct().run_flat(flat, src, dst, filt, b, lo, hi);
            return;
        }
        if depthwise_kernel::available() && (self.stride == 1 || self.stride == 2) {
            self.direct().run(src, dst, filt, b, lo, hi);
            return;
        }
        let long = self.long_row(self.pitch());
        self.channel_as(long, src, dst, filt, b, lo, hi, scratch);
    }

    /// The same plane for the direct kernels, which pad by their load masks.
    fn direct(&self) -> depthwise_kernel::Plane {
        depthwise_kernel::Plane { h: self.h, w: self.w, oh: self.oh, ow: self.ow, stride: self.stride, top: self.top, left: self.left }
    }

    /// Row pitch of the padded planes: both planes of the stride-2 split have the pitch `⌈pw/2⌉` (the
    /// odd one a zero column more where pw is odd), so one offset per tap walks all of them.
    fn pitch(&self) -> usize {
        if self.stride == 1 {
            self.pw
        } else {
            self.pw.div_ceil(2)
        }
    }

    /// [`Geometry::channel`] as one long row (`long`) or a row at a time: the same bits either way.
    #[allow(clippy::too_many_arguments)]
    fn channel_as(&self, long: bool, src: &[f32], dst: &mut [f32], filt: &[f32; 9], b: f32, lo: f32, hi: f32, scratch: &mut Vec<f32>) {
        let (oh, ow, ph, s) = (self.oh, self.ow, self.ph, self.stride);
        debug_assert_eq!(dst.len(), oh * ow, "depthwise: output plane size");
        let pitch = self.pitch();
        let planes = if s == 1 { 1 } else { 2 };
        let padded = planes * ph * pitch;
        let long = long && oh > 1 && ow > 0;
        let need = padded + if long { oh * s * pitch } else { 0 };
        if scratch.len() < need {
            scratch.resize(need, 0.0);
        }
        let (xp, rest) = scratch.split_at_mut(padded);
        if s == 1 {
            self.pad(src, xp);
        } else {
            self.pad_split(src, pitch, xp);
        }
        let (even, odd) = xp.split_at(ph * pitch);
        // Tap k of output (oy, ox) reads `plane_k[oy·s·pitch + ox + offset_k]`.
        let taps = |at: usize| -> [&[f32]; 9] {
            let r = |ky: usize| at + ky * pitch;
            if s == 1 {
                let t = |o: usize| &even[o..];
                [t(r(0)), t(r(0) + 1), t(r(0) + 2), t(r(1)), t(r(1) + 1), t(r(1) + 2), t(r(2)), t(r(2) + 1), t(r(2) + 2)]
            } else {
                let (e, o) = (|i: usize| &even[i..], |i: usize| &odd[i..]);
                [e(r(0)), o(r(0)), e(r(0) + 1), e(r(1)), o(r(1)), e(r(1) + 1), e(r(2)), o(r(2)), e(r(2) + 1)]
            }
        };
        if long {
            // Output (oy, ox) at oy·s·pitch + ox of one long row; the columns past ow are dropped.
            let step = s * pitch;
            let len = (oh - 1) * step + ow;
            let out = &mut rest[..len];
            dw_row(out, taps(0), filt, b, lo, hi);
            for (oy, row) in dst.chunks_exact_mut(ow).take(oh).enumerate() {
                row.copy_from_slice(&out[oy * step..oy * step + ow]);
            }
        } else {
            for oy in 0..oh {
                dw_row(&mut dst[oy * ow..(oy + 1) * ow], taps(oy * s * pitch), filt, b, lo, hi);
            }
        }
    }

    /// Whether one long row over the padded plane (computing `s·pitch − ow` dropped columns per output
    /// row) costs less than a row at a time, whose last `ow mod 8` columns are scalar: it does for the
    /// short rows of the late stages (`ow` = 7 and 14, and 28 at stride 1).
    fn long_row(&self, pitch: usize) -> bool {
        const LANES: usize = 8;
        let per_row = (self.ow / LANES) * LANES + (self.ow % LANES) * 6;
        self.oh > 1 && self.ow > 0 && self.stride * pitch < per_row
    }

    /// Zero-padded copy (row length `pw`): one fill of the whole plane, then the rows (two short fills
    /// per row cost more than the one long fill on the small planes of a network's late stages).
    fn pad(&self, src: &[f32], dst: &mut [f32]) {
        let (pw, top, left, w) = (self.pw, self.top, self.left, self.w);
        dst.fill(0.0);
        for (y, row) in src.chunks_exact(w.max(1)).take(self.h).enumerate() {
            dst[(top + y) * pw + left..][..w].copy_from_slice(row);
        }
    }

    /// Zero-padded copy split by column parity: even padded columns first (`ph × pitch`), odd after
    /// (`ph × pitch`, `pitch = ⌈pw/2⌉`).
    fn pad_split(&self, src: &[f32], pitch: usize, dst: &mut [f32]) {
        let (top, left, w, ph) = (self.top, self.left, self.w, self.ph);
        let (even, odd) = dst.split_at_mut(ph * pitch);
        even.fill(0.0);
        odd.fill(0.0);
        for py in top..top + self.h {
            let er = &mut even[py * pitch..(py + 1) * pitch];
            let or = &mut odd[py * pitch..(py + 1) * pitch];
            let row = &src[(py - top) * w..(py - top + 1) * w];
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512 and AVX2 kernels, which pad by their load masks, give the padded copy's bits on
    /// every plane size, stride and padding rule, with and without the clamp, including inputs of
    /// ±0, ∞ and NaN.
    #[test]
    fn direct_kernel_equals_padded_path_bit_for_bit() {
        let kernels: Vec<bool> = [true, false]
            .into_iter()
            .filter(|&avx512| if avx512 { crate::layers::gemm_kernel::available() } else { depthwise_kernel::avx2_available() })
            .collect();
        if kernels.is_empty() {
            eprintln!("no AVX-512 or AVX2 here: the padded path serves every plane");
            return;
        }
        let (mut flats, mut blockeds) = (0, 0);
        for avx512 in kernels.iter().copied() {
            let filt: [f32; 9] = std::array::from_fn(|k| 0.37 * k as f32 - 1.1);
            for padding in [Padding::Torch, Padding::Tf] {
                for stride in [1, 2] {
                    for (h, w) in [(7, 7), (14, 14), (28, 28), (9, 13), (2, 2), (3, 1), (1, 6), (56, 56), (5, 17), (4, 33), (3, 32), (6, 31), (112, 112)] {
                        let g = Geometry::new(&Depthwise { channels: 1, stride, padding }, h, w);
                        let mut src: Vec<f32> = (0..h * w).map(|i| ((i * 7919) % 1013) as f32 * 3.1e-3 - 1.5).collect();
                        for (i, special) in [0.0, -0.0, f32::INFINITY, f32::NAN].into_iter().enumerate() {
                            if let Some(v) = src.get_mut(3 * i + 1) {
                                *v = special;
                            }
                        }
                        // ∞ and NaN at the ends of middle rows: in the flat form the taps of the next
                        // and previous row's edge outputs load them in lanes the padding masks out.
                        if h >= 4 {
                            src[(h / 2) * w - 1] = f32::NAN;
                            src[(h / 2 + 1) * w] = f32::INFINITY;
                        }
                        for (b, lo, hi) in [(0.25, 0.0, 6.0), (-0.0, f32::NEG_INFINITY, f32::INFINITY)] {
                            let (mut a, mut want) = (vec![f32::NAN; g.oh * g.ow + 3], vec![f32::NAN; g.oh * g.ow + 3]);
                            let n = g.oh * g.ow;
                            g.direct().run_on(avx512, &src, &mut a[..n], &filt, b, lo, hi);
                            g.channel_as(false, &src, &mut want[..n], &filt, b, lo, hi, &mut Vec::new());
                            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                            assert_eq!(bits(&a), bits(&want), "avx512 {avx512} {padding:?} s{stride} {h}x{w} b{b}");
                            if avx512 && h * w > 0 {
                                // The blocked kernel: lane l holds the plane shifted by l positions,
                                // with its own filter and bias; each lane must give the padded path's
                                // bits for its channel.
                                let plane = |l: usize| -> Vec<f32> { (0..h * w).map(|i| src[(i + l) % (h * w)]).collect() };
                                let filt_of = |l: usize| -> [f32; 9] { std::array::from_fn(|t| filt[t] * (1.0 + l as f32 / 16.0)) };
                                let bias_of = |l: usize| if l == 0 { b } else { b + l as f32 * 0.125 };
                                let planes: Vec<Vec<f32>> = (0..16).map(plane).collect();
                                let blocked: Vec<f32> = (0..h * w).flat_map(|i| (0..16).map(|l| planes[l][i]).collect::<Vec<_>>()).collect();
                                let mut out = vec![f32::NAN; n * 16];
                                let filt16: [[f32; 16]; 9] = std::array::from_fn(|t| std::array::from_fn(|l| filt_of(l)[t]));
                                g.direct().run_blocked(&blocked, &mut out, &filt16, &std::array::from_fn(bias_of), lo, hi);
                                for (lane, lane_src) in planes.iter().enumerate() {
                                    let mut reference = vec![f32::NAN; n];
                                    g.channel_as(false, lane_src, &mut reference, &filt_of(lane), bias_of(lane), lo, hi, &mut Vec::new());
                                    let got: Vec<f32> = (0..n).map(|i| out[i * 16 + lane]).collect();
                                    assert_eq!(bits(&got), bits(&reference), "blocked {padding:?} s{stride} {h}x{w} b{b} lane {lane}");
                                }
                                blockeds += 1;
                            }
                            if let Some(flat) = g.direct().flat().filter(|_| avx512) {
                                flats += 1;
                                let mut f = vec![f32::NAN; n + 3];
                                g.direct().run_flat(&flat, &src, &mut f[..n], &filt, b, lo, hi);
                                assert_eq!(bits(&f), bits(&want), "flat {padding:?} {h}x{w} b{b}");
                            }
                        }
                    }
                }
            }
        }
        // Stride 1 at 7×7, 14×14, 9×13, 2×2, 3×1 and 1×6 (narrower than 16), both paddings, two biases.
        assert!(!kernels.contains(&true) || flats >= 2 * 2 * 6, "the flat form was not exercised ({flats} planes)");
        assert!(!kernels.contains(&true) || blockeds >= 2 * 2 * 2 * 13, "the blocked kernel was not exercised ({blockeds} planes)");
    }

    /// The long-row and row-at-a-time paths give the same bits on every plane size and stride.
    #[test]
    fn long_row_equals_row_at_a_time_bit_for_bit() {
        let filt: [f32; 9] = std::array::from_fn(|k| 0.37 * k as f32 - 1.1);
        for padding in [Padding::Torch, Padding::Tf] {
            for stride in [1, 2] {
                for (h, w) in [(7, 7), (14, 14), (28, 28), (9, 13), (2, 2), (3, 1), (1, 6), (56, 56)] {
                    let g = Geometry::new(&Depthwise { channels: 1, stride, padding }, h, w);
                    let src: Vec<f32> = (0..h * w).map(|i| ((i * 7919) % 1013) as f32 * 3.1e-3 - 1.5).collect();
                    let (mut a, mut b) = (vec![0.0; g.oh * g.ow], vec![0.0; g.oh * g.ow]);
                    let mut scratch = vec![f32::NAN; 7];
                    g.channel_as(true, &src, &mut a, &filt, 0.25, 0.0, 6.0, &mut scratch);
                    g.channel_as(false, &src, &mut b, &filt, 0.25, 0.0, 6.0, &mut scratch);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a), bits(&b), "{padding:?} s{stride} {h}x{w}");
                }
            }
        }
    }
}
