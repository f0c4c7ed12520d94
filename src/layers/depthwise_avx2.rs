//! The depthwise 3×3 kernel on CPUs with AVX2 but no AVX-512: like [`super::depthwise_kernel`]'s
//! AVX-512 kernel, one channel plane straight from the unpadded input to the output with the zero
//! padding as load masks (`vmaskmovps`, taken only at the plane's edges), so no padded copy is made.
//! AVX2 has no cheap lane shift across its two 128-bit halves, so each tap column is its own
//! (unaligned) load: at stride 1 three loads per input row and 8 outputs, at stride 2 four loads split
//! into even and odd columns (`vshufps` + `vpermpd`).
//!
//! Each output is `clamp(b + w₀·t₀ + … + w₈·t₈, lo, hi)` summed left to right with separate
//! multiplies and adds, the order of the portable path in [`super::depthwise`]: the same bits.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::depthwise_kernel::Plane;

const LANES: usize = 8;
/// Output rows per block: four accumulators, three taps and the filter leave AVX2's sixteen
/// registers about full.
const ROWS: usize = 4;

/// Whether this machine runs the kernel (AVX2 and FMA, detected once by the standard library).
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// See [`Plane::run`].
///
/// # Safety
/// AVX2; `src` holds `h·w` values, `dst` `oh·ow`; the stride is 1 or 2.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn plane(p: &Plane, src: *const f32, dst: *mut f32, filt: &[f32; 9], b: f32, lo: f32, hi: f32) {
    let k = Consts::new(filt, b, lo, hi);
    let mut oy = 0;
    while oy < p.oh {
        let n = (p.oh - oy).min(ROWS);
        // SAFETY: forwarded from the caller; rows oy..oy + n are inside the output.
        unsafe {
            match (n, p.stride) {
                (1, 1) => rows::<1, 1>(p, &k, src, dst, oy),
                (2, 1) => rows::<2, 1>(p, &k, src, dst, oy),
                (3, 1) => rows::<3, 1>(p, &k, src, dst, oy),
                (4, 1) => rows::<4, 1>(p, &k, src, dst, oy),
                (1, _) => rows::<1, 2>(p, &k, src, dst, oy),
                (2, _) => rows::<2, 2>(p, &k, src, dst, oy),
                (3, _) => rows::<3, 2>(p, &k, src, dst, oy),
                _ => rows::<4, 2>(p, &k, src, dst, oy),
            }
        }
        oy += n;
    }
}

/// The filter, bias and clamp as vectors, and the lane indices that make the load masks.
struct Consts {
    w: [__m256; 9],
    b: __m256,
    lo: __m256,
    hi: __m256,
    lane: __m256i,
}

impl Consts {
    #[target_feature(enable = "avx2,fma")]
    fn new(filt: &[f32; 9], b: f32, lo: f32, hi: f32) -> Self {
        Consts {
            w: filt.map(|x| _mm256_set1_ps(x)),
            b: _mm256_set1_ps(b),
            lo: _mm256_set1_ps(lo),
            hi: _mm256_set1_ps(hi),
            lane: _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        }
    }

    /// All-ones in the lanes `j` whose column `ix + j` lies inside `0..w`.
    #[target_feature(enable = "avx2,fma")]
    fn inside(&self, ix: isize, w: usize) -> __m256i {
        let col = _mm256_add_epi32(self.lane, _mm256_set1_epi32(ix as i32));
        let ge0 = _mm256_cmpgt_epi32(col, _mm256_set1_epi32(-1));
        let ltw = _mm256_cmpgt_epi32(_mm256_set1_epi32(w as i32), col);
        _mm256_and_si256(ge0, ltw)
    }
}

/// 8 columns from `row + ix`; with `MASKED`, the columns outside `0..w` load as zero (and are not read).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load<const MASKED: bool>(k: &Consts, row: *const f32, ix: isize, w: usize) -> __m256 {
    // SAFETY: unmasked only where the caller knows all 8 columns are inside the row; masked lanes
    // outside it are not accessed.
    unsafe {
        if MASKED {
            _mm256_maskload_ps(row.wrapping_offset(ix), k.inside(ix, w))
        } else {
            _mm256_loadu_ps(row.offset(ix))
        }
    }
}

/// Even and odd lanes of `a` then `b`: columns 0, 2, …, 14 and 1, 3, …, 15 of the 16 they hold.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn split(a: __m256, b: __m256) -> (__m256, __m256) {
    // Per 128-bit half: a0 a2 b0 b2 | a4 a6 b4 b6; then the 64-bit pairs reordered to a0 a2 a4 a6 b0 b2 b4 b6.
    let ev = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
    let od = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
    let fix = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
    (fix(ev), fix(od))
}

/// The three taps (kx = 0, 1, 2) of one input row for 8 output columns starting at input column `ix`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn taps<const S: usize, const MASKED: bool>(k: &Consts, row: *const f32, ok: bool, ix: isize, w: usize) -> [__m256; 3] {
    if !ok {
        return [_mm256_setzero_ps(); 3];
    }
    // SAFETY: forwarded from the caller (see `load`).
    unsafe {
        if S == 1 {
            [load::<MASKED>(k, row, ix, w), load::<MASKED>(k, row, ix + 1, w), load::<MASKED>(k, row, ix + 2, w)]
        } else {
            let (t0, t1) = split(load::<MASKED>(k, row, ix, w), load::<MASKED>(k, row, ix + 8, w));
            let (t2, _) = split(load::<MASKED>(k, row, ix + 2, w), load::<MASKED>(k, row, ix + 10, w));
            [t0, t1, t2]
        }
    }
}

/// Output rows `oy0..oy0 + R`, 8 columns at a time; input row `r` of the block feeds output row `j`
/// with filter row `r − j·S`, visited so that each output adds its taps in the order (ky, kx).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn rows<const R: usize, const S: usize>(p: &Plane, k: &Consts, src: *const f32, dst: *mut f32, oy0: usize) {
    let (w, left) = (p.w, p.left as isize);
    let span = (R - 1) * S + 3;
    let mut inrows = [(src, false); 2 * ROWS + 1];
    for (r, slot) in inrows.iter_mut().enumerate().take(span) {
        let iy = (oy0 * S + r) as isize - p.top as isize;
        if (0..p.h as isize).contains(&iy) {
            // SAFETY: row iy is inside the plane.
            *slot = (unsafe { src.add(iy as usize * w) }, true);
        }
    }
    // The last input column a vector's loads touch: ix + 9 at stride 1; ix + 17 at stride 2 (the
    // load at ix + 10, whose last, odd lane is discarded).
    let reach = if S == 1 { 9 } else { 17 };
    let mut ox0 = 0;
    while ox0 < p.ow {
        let ix = S as isize * ox0 as isize - left;
        let inner = ix >= 0 && ix + reach < w as isize;
        // SAFETY: unmasked loads only where every column is inside the row (`inner`).
        let acc = unsafe {
            if inner {
                sums::<R, S, false>(k, &inrows, ix, w)
            } else {
                sums::<R, S, true>(k, &inrows, ix, w)
            }
        };
        let cols = (p.ow - ox0).min(LANES);
        for (j, a) in acc.iter().enumerate() {
            let v = _mm256_min_ps(_mm256_max_ps(*a, k.lo), k.hi);
            // SAFETY: output row oy0 + j, columns ox0..ox0 + cols, are inside dst.
            unsafe {
                let at = dst.add((oy0 + j) * p.ow + ox0);
                if cols == LANES {
                    _mm256_storeu_ps(at, v);
                } else {
                    let m = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols as i32), k.lane);
                    _mm256_maskstore_ps(at, m, v);
                }
            }
        }
        ox0 += LANES;
    }
}

/// The unclamped sums of one vector of 8 output columns for the block's `R` output rows.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn sums<const R: usize, const S: usize, const MASKED: bool>(k: &Consts, inrows: &[(*const f32, bool)], ix: isize, w: usize) -> [__m256; R] {
    let span = (R - 1) * S + 3;
    let mut acc = [k.b; R];
    for (r, &(row, ok)) in inrows.iter().enumerate().take(span) {
        // SAFETY: forwarded from the caller.
        let t = unsafe { taps::<S, MASKED>(k, row, ok, ix, w) };
        for ky in 0..3 {
            if r >= ky && (r - ky) % S == 0 && (r - ky) / S < R {
                let a = &mut acc[(r - ky) / S];
                for (kx, &tv) in t.iter().enumerate() {
                    // Separate multiply and add (no FMA): the portable path's rounding.
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(k.w[ky * 3 + kx], tv));
                }
            }
        }
    }
    acc
}
