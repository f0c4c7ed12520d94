//! The depthwise 3×3 kernel on CPUs with AVX-512 (and, through [`super::depthwise_avx2`], AVX2): one channel plane straight from the unpadded input
//! to the output, with no padded copy. The zero padding is the load masks: a tap that falls outside
//! the plane loads as zero, lane by lane, exactly as it would from a zero-padded copy. Masked loads
//! cost far more than plain ones (measured on an AVX-512 AMD EPYC, the depthwise planes of one
//! MobileNetV2 image, one thread: 1.94 ms through the padded copy, 1.38 ms with a masked load per tap,
//! 1.19 ms as follows), so each input row is loaded once per 16 outputs: at stride 1 the taps one and
//! two columns further are the same vector shifted by a lane (`valignd`) with the next column
//! broadcast in; at stride 2 two loads are split into even and odd columns by one lane permutation
//! each. Only the plane's edges take masked loads.
//!
//! Each output is `clamp(b + w₀·t₀ + … + w₈·t₈, lo, hi)` summed left to right with separate
//! multiplies and adds: the same operations in the same order as the portable path in
//! [`super::depthwise`], so the two give the same bits.

/// One `h × w` plane of a 3×3 depthwise convolution with stride `stride` (1 or 2) and `top`/`left`
/// zero rows/columns before the input, into `dst` (`oh × ow`).
#[derive(Clone, Copy, Debug)]
pub struct Plane {
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub stride: usize,
    pub top: usize,
    pub left: usize,
}

/// Whether this machine runs a direct kernel: AVX-512F, or else AVX2 and FMA
/// ([`super::depthwise_avx2`]).
pub fn available() -> bool {
    super::gemm_kernel::available() || avx2_available()
}

/// Whether the AVX2 kernel can run here (whether or not AVX-512 takes precedence).
pub fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::depthwise_avx2::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl Plane {
    /// `dst = clamp(b + dwconv(src, filt), lo, hi)`.
    ///
    /// # Panics
    /// When [`available`] is false, the stride is not 1 or 2, or a slice is shorter than its plane.
    #[allow(clippy::too_many_arguments)]
    pub fn run(&self, src: &[f32], dst: &mut [f32], filt: &[f32; 9], b: f32, lo: f32, hi: f32) {
        self.run_on(super::gemm_kernel::available(), src, dst, filt, b, lo, hi)
    }

    /// [`Plane::run`] on the AVX-512 kernel (`avx512`) or the AVX2 one: both give the same bits.
    ///
    /// # Panics
    /// When the chosen kernel cannot run here, the stride is not 1 or 2, or a slice is shorter than
    /// its plane.
    #[allow(clippy::too_many_arguments)]
    pub fn run_on(&self, avx512: bool, src: &[f32], dst: &mut [f32], filt: &[f32; 9], b: f32, lo: f32, hi: f32) {
        let isa_ok = if avx512 { super::gemm_kernel::available() } else { avx2_available() };
        assert!(isa_ok, "depthwise_kernel: {} is required (check available() first)", if avx512 { "AVX-512F" } else { "AVX2" });
        assert!(self.stride == 1 || self.stride == 2, "depthwise_kernel: stride {} (1 or 2)", self.stride);
        assert!(src.len() >= self.h * self.w && dst.len() >= self.oh * self.ow, "depthwise_kernel: plane sizes");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the chosen instruction set is present and both slices hold their planes (checked
        // above).
        unsafe {
            if avx512 {
                avx512::plane(self, src.as_ptr(), dst.as_mut_ptr(), filt, b, lo, hi)
            } else {
                super::depthwise_avx2::plane(self, src.as_ptr(), dst.as_mut_ptr(), filt, b, lo, hi)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (src, dst, filt, b, lo, hi);
            unreachable!("depthwise_kernel::available() is false off x86_64")
        }
    }
}

/// Largest plane (positions) run flat: sixteen vectors of sixteen lanes.
const FLAT_MAX: usize = 256;

/// The tap masks of a stride-1 plane narrower than a vector (MobileNetV2's 14×14 and 7×7), run as
/// one flat sequence of `h·w` outputs, sixteen to a vector across the ends of rows: tap `(ky, kx)`
/// of output `i` is input `i + (ky − 1)·w + (kx − 1)`, a constant offset, so each tap is one load per
/// vector. Bit `l` of `taps[v][t]` says lane `l` of vector `v` is an output whose tap `t` lies inside
/// the plane; the other lanes add `w_t · 0`, as the zero padding would. Row by row, a 7-wide plane
/// fills 7 of 16 lanes and every load is an edge (masked) load; flat, it fills 49 of 64, and only
/// vectors some of whose loads could leave the plane take masked loads (at 7×7 that is still every
/// vector but the second; at 14×14, 3 of 13). Measured on an AVX-512 AMD EPYC (Zen 5), one
/// thread: 960 channels of 7×7 in 17–20 µs flat against 33 µs row by row; at 14×14 the two are level
/// (21–22 µs for 384 channels).
#[derive(Clone, Copy, Debug)]
pub struct Flat {
    taps: [[u16; 9]; FLAT_MAX / 16],
    vectors: usize,
    /// The plane it was made for.
    h: usize,
    w: usize,
}

impl Plane {
    /// The flat form of this plane, where it has one: stride 1, one zero row and column of padding on
    /// every side (so the output is the input's size), narrower than a vector and at most
    /// [`FLAT_MAX`] positions, on a machine with AVX-512.
    pub fn flat(&self) -> Option<Flat> {
        let n = self.h * self.w;
        let same = self.stride == 1 && self.top == 1 && self.left == 1 && self.oh == self.h && self.ow == self.w;
        if !(same && self.w < 16 && n > 0 && n <= FLAT_MAX && super::gemm_kernel::available()) {
            return None;
        }
        let (h, w) = (self.h as isize, self.w as isize);
        let mut taps = [[0u16; 9]; FLAT_MAX / 16];
        for (v, masks) in taps.iter_mut().enumerate().take(n.div_ceil(16)) {
            for lane in 0..16 {
                let i = (16 * v + lane) as isize;
                if i >= n as isize {
                    break;
                }
                let (y, x) = (i / w, i % w);
                for (t, mask) in masks.iter_mut().enumerate() {
                    let (iy, ix) = (y + t as isize / 3 - 1, x + t as isize % 3 - 1);
                    if (0..h).contains(&iy) && (0..w).contains(&ix) {
                        *mask |= 1 << lane;
                    }
                }
            }
        }
        Some(Flat { taps, vectors: n.div_ceil(16), h: self.h, w: self.w })
    }

    /// [`Plane::run`] on the plane's [`Flat`] form (from [`Plane::flat`] of this plane): the same bits.
    ///
    /// # Panics
    /// When `flat` was made for another plane, or a slice is shorter than its plane.
    #[allow(clippy::too_many_arguments)]
    pub fn run_flat(&self, flat: &Flat, src: &[f32], dst: &mut [f32], filt: &[f32; 9], b: f32, lo: f32, hi: f32) {
        let n = self.h * self.w;
        assert!((flat.h, flat.w) == (self.h, self.w), "depthwise_kernel: a flat form of {}×{} run on {}×{}", flat.h, flat.w, self.h, self.w);
        assert!(src.len() >= n && dst.len() >= n, "depthwise_kernel: flat plane sizes");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a Flat exists only where AVX-512F is present; both slices hold their planes.
        unsafe {
            avx512::flat(self.w, n, flat, src.as_ptr(), dst.as_mut_ptr(), filt, b, lo, hi)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (flat, src, dst, filt, b, lo, hi);
            unreachable!("Plane::flat is None off x86_64")
        }
    }
}

impl Plane {
    /// One block of 16 channels in the blocked layout ([`super::gemm_channels::Layout::Blocked`]):
    /// `src` holds the `h × w` positions' 16-channel vectors, `dst` the `oh × ow` outputs'. `filt[t]`
    /// holds tap `t` of the 16 channels, `b` their biases. Each output is the portable path's
    /// `clamp(b + w₀·t₀ + … + w₈·t₈)` (a padded tap adds `w·0`), sixteen channels per vector and no
    /// masks or lane permutes at either stride (measured, one thread: stride 2 at 14 × 14 → 7 × 7,
    /// 576 channels, 40 µs row by row, 9 µs blocked one output at a time).
    ///
    /// # Panics
    /// Without AVX-512F, at a stride other than 1 or 2, or when a slice is shorter than its plane.
    pub fn run_blocked(&self, src: &[f32], dst: &mut [f32], filt: &[[f32; 16]; 9], b: &[f32; 16], lo: f32, hi: f32) {
        assert!(super::gemm_kernel::available(), "depthwise_kernel: AVX-512F is required");
        assert!(self.stride == 1 || self.stride == 2, "depthwise_kernel: stride {} (1 or 2)", self.stride);
        assert!(src.len() >= self.h * self.w * 16 && dst.len() >= self.oh * self.ow * 16, "depthwise_kernel: blocked plane sizes");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F is present and both slices hold their planes (checked above).
        unsafe {
            avx512::blocked(self, src.as_ptr(), dst.as_mut_ptr(), filt, b, lo, hi)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (src, dst, filt, b, lo, hi);
            unreachable!("gemm_kernel::available() is false off x86_64")
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    use super::{Flat, Plane};

    const LANES: usize = 16;

    /// See [`Plane::run_flat`]: vector `v` holds outputs `16v..16v + 16`; each tap is a plain load
    /// whose invalid lanes take `w·0` through the masked multiply, or, where the load could leave the
    /// plane, a masked load (zeros) — either way the padded path's `w·0`.
    ///
    /// # Safety
    /// AVX-512F; `src` and `dst` hold `n` values; `flat` is the plane's (`w` wide, `n` positions).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn flat(w: usize, n: usize, flat: &Flat, src: *const f32, dst: *mut f32, filt: &[f32; 9], b: f32, lo: f32, hi: f32) {
        let k = filt.map(|x| _mm512_set1_ps(x));
        let kz = k.map(|x| _mm512_mul_ps(x, _mm512_setzero_ps()));
        let (bv, lov, hiv) = (_mm512_set1_ps(b), _mm512_set1_ps(lo), _mm512_set1_ps(hi));
        let offsets: [isize; 9] = std::array::from_fn(|t| (t as isize / 3 - 1) * w as isize + (t as isize % 3 - 1));
        // Vector v's nine loads (from 16v − w − 1 to 16v + 15 + w + 1) all stay inside the plane.
        let inner = |v: usize| v * LANES > w && v * LANES + LANES + w < n;
        let store = |v: usize, acc: __m512| {
            let out = _mm512_min_ps(_mm512_max_ps(acc, lov), hiv);
            let left = n - v * LANES;
            let mask = if left >= LANES { u16::MAX } else { (1u16 << left) - 1 };
            _mm512_mask_storeu_ps(dst.add(v * LANES), mask, out);
        };
        let mut v = 0;
        while v < flat.vectors {
            if v + 1 < flat.vectors && inner(v) && inner(v + 1) {
                // Two vectors at a time: two independent chains of nine adds.
                let (mut a0, mut a1) = (bv, bv);
                let (m0, m1) = (&flat.taps[v], &flat.taps[v + 1]);
                let at = src.wrapping_add(v * LANES);
                for t in 0..9 {
                    let p = at.wrapping_offset(offsets[t]);
                    a0 = _mm512_add_ps(a0, _mm512_mask_mul_ps(kz[t], m0[t], k[t], _mm512_loadu_ps(p)));
                    a1 = _mm512_add_ps(a1, _mm512_mask_mul_ps(kz[t], m1[t], k[t], _mm512_loadu_ps(p.add(LANES))));
                }
                store(v, a0);
                store(v + 1, a1);
                v += 2;
                continue;
            }
            let mut acc = bv;
            let at = src.wrapping_add(v * LANES);
            for t in 0..9 {
                let (mask, p) = (flat.taps[v][t], at.wrapping_offset(offsets[t]));
                acc = _mm512_add_ps(acc, _mm512_mul_ps(k[t], _mm512_maskz_loadu_ps(mask, p)));
            }
            store(v, acc);
            v += 1;
        }
    }

    /// See [`Plane::run_blocked`]: four outputs of a row at a time where all their taps are inside
    /// the plane (four independent chains of adds), one at a time with bounds tests elsewhere.
    ///
    /// # Safety
    /// AVX-512F; `src` holds `16·h·w` values, `dst` `16·oh·ow`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn blocked(p: &Plane, src: *const f32, dst: *mut f32, filt: &[[f32; 16]; 9], b: &[f32; 16], lo: f32, hi: f32) {
        if p.stride == 1 {
            blocked_at::<1>(p, src, dst, filt, b, lo, hi)
        } else {
            blocked_at::<2>(p, src, dst, filt, b, lo, hi)
        }
    }

    /// [`blocked`] at stride `S`: the taps of the four-output path are constant offsets from one
    /// pointer (computing each tap's address was most of the work).
    #[target_feature(enable = "avx512f")]
    unsafe fn blocked_at<const S: usize>(p: &Plane, src: *const f32, dst: *mut f32, filt: &[[f32; 16]; 9], b: &[f32; 16], lo: f32, hi: f32) {
        let k: [__m512; 9] = std::array::from_fn(|t| _mm512_loadu_ps(filt[t].as_ptr()));
        let (bv, lov, hiv) = (_mm512_loadu_ps(b.as_ptr()), _mm512_set1_ps(lo), _mm512_set1_ps(hi));
        let (h, w) = (p.h as isize, p.w as isize);
        let row_step = p.w * LANES;
        for oy in 0..p.oh {
            let iy0 = (oy * S) as isize - p.top as isize;
            let rows_inside = iy0 >= 0 && iy0 + 2 < h;
            let out = dst.add(oy * p.ow * LANES);
            let mut ox = 0;
            while ox < p.ow {
                let ix0 = (ox * S) as isize - p.left as isize;
                if rows_inside && ox + 4 <= p.ow && ix0 >= 0 && ix0 + 3 * S as isize + 2 < w {
                    let base = src.add((iy0 * w + ix0) as usize * LANES);
                    let mut acc = [bv; 4];
                    for ky in 0..3 {
                        let row = base.add(ky * row_step);
                        for kx in 0..3 {
                            for (j, a) in acc.iter_mut().enumerate() {
                                let t = _mm512_loadu_ps(row.add((j * S + kx) * LANES));
                                *a = _mm512_add_ps(*a, _mm512_mul_ps(k[ky * 3 + kx], t));
                            }
                        }
                    }
                    for (j, a) in acc.iter().enumerate() {
                        _mm512_storeu_ps(out.add((ox + j) * LANES), _mm512_min_ps(_mm512_max_ps(*a, lov), hiv));
                    }
                    ox += 4;
                    continue;
                }
                let mut acc = bv;
                for ky in 0..3 {
                    let iy = iy0 + ky as isize;
                    for kx in 0..3 {
                        let ix = ix0 + kx as isize;
                        let t = if (0..h).contains(&iy) && (0..w).contains(&ix) {
                            _mm512_loadu_ps(src.add((iy * w + ix) as usize * LANES))
                        } else {
                            _mm512_setzero_ps()
                        };
                        acc = _mm512_add_ps(acc, _mm512_mul_ps(k[ky * 3 + kx], t));
                    }
                }
                _mm512_storeu_ps(out.add(ox * LANES), _mm512_min_ps(_mm512_max_ps(acc, lov), hiv));
                ox += 1;
            }
        }
    }

    /// Lanes `j` of a load at input column `ix0 + j` that fall inside `0..w`.
    #[inline(always)]
    pub(crate) fn inside(ix0: isize, w: usize) -> u16 {
        let lo = (-ix0).clamp(0, LANES as isize) as u32;
        let hi = (w as isize - ix0).clamp(0, LANES as isize) as u32;
        let upto = |n: u32| if n >= 16 { u32::MAX } else { (1u32 << n) - 1 };
        (upto(hi) & !upto(lo)) as u16
    }

    /// See [`Plane::run`]: blocks of [`ROWS`] output rows (the last block shorter), so that several
    /// independent sums are in flight and each loaded tap serves every output row it reaches.
    ///
    /// # Safety
    /// AVX-512F; `src` holds `h·w` values, `dst` `oh·ow`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn plane(p: &Plane, src: *const f32, dst: *mut f32, filt: &[f32; 9], b: f32, lo: f32, hi: f32) {
        let k = Consts::new(filt, b, lo, hi);
        let mut oy = 0;
        while oy < p.oh {
            let n = (p.oh - oy).min(ROWS);
            macro_rules! block {
                ($($r:literal)*) => {
                    match (n, p.stride) {
                        $(($r, 1) => rows::<$r, 1>(p, &k, src, dst, oy),)*
                        $(($r, _) => rows::<$r, 2>(p, &k, src, dst, oy),)*
                        _ => unreachable!("block of {n} rows"),
                    }
                };
            }
            block!(1 2 3 4 5 6 7 8);
            oy += n;
        }
    }

    /// Output rows per block.
    const ROWS: usize = 8;

    /// The lane permutations of the stride-2 split: even and odd lanes of two consecutive vectors.
    pub(crate) struct Split {
        evens: __m512i,
        odds: __m512i,
    }

    impl Split {
        #[target_feature(enable = "avx512f")]
        pub(crate) fn new() -> Self {
            Split {
                evens: _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
                odds: _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31),
            }
        }
    }

    /// The filter, bias and clamp as vectors, and the stride-2 split.
    struct Consts {
        w: [__m512; 9],
        b: __m512,
        lo: __m512,
        hi: __m512,
        split: Split,
    }

    impl Consts {
        #[target_feature(enable = "avx512f")]
        fn new(filt: &[f32; 9], b: f32, lo: f32, hi: f32) -> Self {
            Consts { w: filt.map(|x| _mm512_set1_ps(x)), b: _mm512_set1_ps(b), lo: _mm512_set1_ps(lo), hi: _mm512_set1_ps(hi), split: Split::new() }
        }
    }

    /// Output rows `oy0..oy0 + R`, a vector of columns at a time. Input row `r` of the block
    /// (`oy0·s + r − top`) feeds output row `j` with filter row `ky = r − j·s`; visiting `r` in
    /// ascending order adds each output's taps in the portable path's order (ky, then kx).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn rows<const R: usize, const S: usize>(p: &Plane, k: &Consts, src: *const f32, dst: *mut f32, oy0: usize) {
        let (w, left) = (p.w, p.left as isize);
        let span = (R - 1) * S + 3;
        // The input rows of the block; a row outside the plane loads as zeros (mask 0).
        let mut inrows = [(src, 0u16); 2 * ROWS + 1];
        for (r, slot) in inrows.iter_mut().enumerate().take(span) {
            let iy = (oy0 * S + r) as isize - p.top as isize;
            if (0..p.h as isize).contains(&iy) {
                *slot = (src.add(iy as usize * w), u16::MAX);
            }
        }
        let rows_inside = inrows[..span].iter().all(|r| r.1 == u16::MAX);
        let mut ox0 = 0;
        while ox0 < p.ow {
            let ix = S as isize * ox0 as isize - left;
            // Masked loads cost far more than plain ones (measured): only the plane's edges pay them.
            let m = [inside(ix, w), if S == 1 { u16::MAX } else { inside(ix + 16, w) }];
            let acc = if rows_inside && m == [u16::MAX; 2] { sums::<R, S, false>(k, &inrows, ix, w, m) } else { sums::<R, S, true>(k, &inrows, ix, w, m) };
            let whole = p.ow - ox0 >= LANES;
            for (j, a) in acc.iter().enumerate() {
                let v = _mm512_min_ps(_mm512_max_ps(*a, k.lo), k.hi);
                let at = dst.add((oy0 + j) * p.ow + ox0);
                if whole {
                    _mm512_storeu_ps(at, v);
                } else {
                    _mm512_mask_storeu_ps(at, (1u16 << (p.ow - ox0)) - 1, v);
                }
            }
            ox0 += LANES;
        }
    }

    /// A load of 16 columns from `at`, lanes outside `mask` zero (`MASKED`), or all 16 when the
    /// caller knows they are inside the plane.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load<const MASKED: bool>(mask: u16, at: *const f32) -> __m512 {
        if MASKED {
            _mm512_maskz_loadu_ps(mask, at)
        } else {
            _mm512_loadu_ps(at)
        }
    }

    /// Input column `at` of `row` as all 16 lanes, or zeros outside `0..w`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn column(row: *const f32, at: isize, w: usize) -> __m512 {
        if (0..w as isize).contains(&at) {
            _mm512_set1_ps(*row.offset(at))
        } else {
            _mm512_setzero_ps()
        }
    }

    /// Lanes 1..16 of `lo` then lane 0 of `hi`: the vector one column to the right.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn next(lo: __m512, hi: __m512) -> __m512 {
        _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), 1))
    }

    /// The three taps (kx = 0, 1, 2) of one input row for 16 output columns. Stride 1: one load at
    /// `ix` (kx = 0) and its neighbour column `ix + 16`, the other taps shifted from it in registers.
    /// Stride 2: two loads, split into even and odd columns; kx = 2 is the even columns one further.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn taps<const S: usize, const MASKED: bool>(k: &Split, row: *const f32, ok: u16, ix: isize, w: usize, m: [u16; 2]) -> [__m512; 3] {
        if ok == 0 {
            return [_mm512_setzero_ps(); 3];
        }
        if S == 1 {
            let t0 = load::<MASKED>(m[0], row.wrapping_offset(ix));
            let t1 = next(t0, column(row, ix + 16, w));
            let t2 = next(t1, column(row, ix + 17, w));
            [t0, t1, t2]
        } else {
            let a0 = load::<MASKED>(m[0], row.wrapping_offset(ix));
            let a1 = load::<MASKED>(m[1], row.wrapping_offset(ix + 16));
            let t0 = _mm512_permutex2var_ps(a0, k.evens, a1);
            let t1 = _mm512_permutex2var_ps(a0, k.odds, a1);
            [t0, t1, next(t0, column(row, ix + 32, w))]
        }
    }

    /// The unclamped sums of one vector of columns (input column `ix` + lane·S onward) for the
    /// block's `R` output rows, from its input rows `inrows` (pointer, row mask) and the column masks
    /// `m` of the loads at `ix` and `ix + 16`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn sums<const R: usize, const S: usize, const MASKED: bool>(
        k: &Consts,
        inrows: &[(*const f32, u16)],
        ix: isize,
        w: usize,
        m: [u16; 2],
    ) -> [__m512; R] {
        let span = (R - 1) * S + 3;
        let mut acc = [k.b; R];
        for (r, &(row, ok)) in inrows.iter().enumerate().take(span) {
            let t = taps::<S, MASKED>(&k.split, row, ok, ix, w, m);
            // Input row r feeds output row j = (r − ky)/S with filter row ky.
            for ky in 0..3 {
                if r >= ky && (r - ky) % S == 0 && (r - ky) / S < R {
                    let a = &mut acc[(r - ky) / S];
                    for (kx, &tv) in t.iter().enumerate() {
                        *a = _mm512_add_ps(*a, _mm512_mul_ps(k.w[ky * 3 + kx], tv));
                    }
                }
            }
        }
        acc
    }
}
