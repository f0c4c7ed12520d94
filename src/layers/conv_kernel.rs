//! The full 3×3 convolution (MobileNetV2's stem: 3 → 32 channels, stride 2) on CPUs with AVX-512,
//! straight from the input planes: no im2col matrix. For 16 output positions at a time, each of the
//! `cin·9` taps is formed once in registers (the depthwise kernel's row taps: load masks as padding,
//! even/odd split at stride 2) and multiplied into 16 output channels' accumulators.
//!
//! Each output is one chain of fused multiply-adds over `(cin, ky, kx)` in order, then the bias and
//! the clamp: the operations of [`super::gemm_kernel`] on the im2col matrix, so the two give the same
//! bits. [`super::conv`] uses this kernel exactly where it would use that one.

use super::gemm_kernel::Fused;

/// A 3×3 convolution of `cin` planes of `h × w` into `cout` planes of `oh × ow`, with stride 1 or 2
/// and `top`/`left` zero rows/columns before the input.
#[derive(Clone, Copy, Debug)]
pub struct Direct {
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub stride: usize,
    pub top: usize,
    pub left: usize,
}

/// Output channels per pass over the taps (one accumulator each).
pub const GROUP: usize = 16;

impl Direct {
    /// Output rows `r0..r1` of `out = act(conv(x) + bias)` (`fused`; else the plain sums), with
    /// `weight` the `cin·9 × cout` column-major matrix of [`super::conv`] and `out` the whole
    /// `cout × oh × ow` output (row bands of it may be computed in parallel).
    ///
    /// # Safety
    /// `out` must hold `cout·oh·ow` values, and nothing else may access rows `r0..r1` of its planes
    /// during the call.
    ///
    /// # Panics
    /// When AVX-512F is missing, the stride is not 1 or 2, or a slice is shorter than its shape.
    pub unsafe fn rows(&self, x: &[f32], weight: &[f32], out: *mut f32, r0: usize, r1: usize, fused: Option<&Fused>) {
        assert!(super::gemm_kernel::available(), "conv_kernel: AVX-512F is required");
        assert!(self.stride == 1 || self.stride == 2, "conv_kernel: stride {} (1 or 2)", self.stride);
        assert!(x.len() >= self.cin * self.h * self.w && weight.len() >= self.cin * 9 * self.cout, "conv_kernel: operand sizes");
        assert!(r1 <= self.oh, "conv_kernel: rows {r0}..{r1} of {}", self.oh);
        assert!(fused.is_none_or(|f| f.bias.len() >= self.cout), "conv_kernel: bias shorter than the channels");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F is present, the slices hold their shapes (checked above), `out` is the
        // caller's.
        unsafe {
            avx512::rows(self, x.as_ptr(), weight.as_ptr(), out, r0, r1, fused)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (x, weight, out, r0, r1, fused);
            unreachable!("conv_kernel needs AVX-512F, absent off x86_64")
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::super::depthwise_kernel::avx512::{inside, taps, Split};
    use super::super::gemm_kernel::Fused;
    use super::{Direct, GROUP};

    const LANES: usize = 16;
    /// Output rows ahead whose input rows are prefetched.
    const AHEAD: usize = 2;

    /// See [`Direct::rows`].
    ///
    /// # Safety
    /// AVX-512F; the pointers hold the shapes [`Direct::rows`] checks.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn rows(d: &Direct, x: *const f32, weight: *const f32, out: *mut f32, r0: usize, r1: usize, fused: Option<&Fused>) {
        let split = Split::new();
        let fan_in = d.cin * 9;
        // The weights as rows of taps: row p holds tap p of every output channel, padded with zero
        // channels to whole groups, so a group's broadcasts are one contiguous run.
        let groups = d.cout.div_ceil(GROUP);
        let mut packed = vec![0.0f32; groups * fan_in * GROUP];
        for j in 0..d.cout {
            for p in 0..fan_in {
                packed[((j / GROUP) * fan_in + p) * GROUP + j % GROUP] = *weight.add(j * fan_in + p);
            }
        }
        for oy in r0..r1 {
            // The input rows arrive from memory (a batch's images are read once): the hardware
            // prefetchers do not follow nine interleaved rows, so the rows two output rows ahead are
            // requested here (measured: the loads stalled for most of the kernel's time without).
            for ci in 0..d.cin {
                for ky in 0..3 {
                    let iy = ((oy + AHEAD) * d.stride + ky) as isize - d.top as isize;
                    if (0..d.h as isize).contains(&iy) {
                        let row = x.add(ci * d.h * d.w + iy as usize * d.w);
                        for c in (0..d.w).step_by(16) {
                            _mm_prefetch::<_MM_HINT_T0>(row.add(c) as *const i8);
                        }
                    }
                }
            }
            let mut ox0 = 0;
            while ox0 < d.ow {
                let ix = (d.stride * ox0) as isize - d.left as isize;
                let m = [inside(ix, d.w), if d.stride == 1 { u16::MAX } else { inside(ix + 16, d.w) }];
                let store = if d.ow - ox0 >= LANES { u16::MAX } else { (1u16 << (d.ow - ox0)) - 1 };
                for g in 0..groups {
                    let wg = packed.as_ptr().add(g * fan_in * GROUP);
                    let acc = if d.stride == 1 { group::<1>(d, &split, x, wg, oy, ix, m) } else { group::<2>(d, &split, x, wg, oy, ix, m) };
                    let c0 = g * GROUP;
                    for (j, &a) in acc.iter().enumerate().take(d.cout - c0) {
                        let mut v = a;
                        if let Some(f) = fused {
                            v = _mm512_add_ps(v, _mm512_set1_ps(f.bias[c0 + j]));
                            v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(f.lo)), _mm512_set1_ps(f.hi));
                        }
                        _mm512_mask_storeu_ps(out.add((c0 + j) * d.oh * d.ow + oy * d.ow + ox0), store, v);
                    }
                }
                ox0 += LANES;
            }
        }
    }

    /// The sums of 16 output positions (row `oy`, input column `ix` onward) for one group of
    /// [`GROUP`] output channels, whose packed weights (tap-major, [`GROUP`] per tap) start at `w`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn group<const S: usize>(d: &Direct, split: &Split, x: *const f32, w: *const f32, oy: usize, ix: isize, m: [u16; 2]) -> [__m512; GROUP] {
        let mut acc = [_mm512_setzero_ps(); GROUP];
        let mut wp = w;
        for ci in 0..d.cin {
            let plane = x.add(ci * d.h * d.w);
            for ky in 0..3 {
                let iy = (oy * S + ky) as isize - d.top as isize;
                let (row, ok) = if (0..d.h as isize).contains(&iy) { (plane.add(iy as usize * d.w), u16::MAX) } else { (plane, 0) };
                // Masked loads cost far more than plain ones: only the plane's edges pay them.
                let t = if ok == u16::MAX && m == [u16::MAX; 2] {
                    taps::<S, false>(split, row, ok, ix, d.w, m)
                } else {
                    taps::<S, true>(split, row, ok, ix, d.w, m)
                };
                for tv in t {
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a = _mm512_fmadd_ps(tv, _mm512_set1_ps(*wp.add(j)), *a);
                    }
                    wp = wp.add(GROUP);
                }
            }
        }
        acc
    }
}
