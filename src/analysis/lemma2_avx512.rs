//! AVX-512 versions of the Lemma 2 kernels whose dependent chains dominate at small n (16–32,
//! where most positions of MobileNetV2 1.0 are), for orders that are multiples of 8 (all of
//! MobileNetV2's):
//! - [`solve2`], the triangular solves of
//!   [`cholesky_solve2`](super::lemma2_kernels::cholesky_solve2) with the right-hand sides held in
//!   registers. Written as loops over memory, each substitution step stores a vector and the next
//!   one loads a scalar from it, and such a load waits for the store (measured: 450 ns for two
//!   16 × 16 solves, 140 ns here). Each step broadcasts the pivot lane with a permute and updates the
//!   lanes past it with a masked FMA.
//! - [`cholesky`], whose panel columns stay in registers through each 8-row block (470 → 250 ns
//!   at n = 16, 10.6 → 8.4 µs at n = 96).
//! - [`mirror`], by 8 × 8 transposes in registers (2.2 → 0.8 µs at n = 96).
//!
//! Every entry sees the same operations in the same order as the loops in
//! [`lemma2_kernels`](super::lemma2_kernels) (e.g. `bj = b_j · (1/l_jj)`, then
//! `b_i = fma(l_ij, −bj, b_i)`), so the results are the same to the bit; a test checks it.

/// f64 lanes of one AVX-512 vector.
pub const LANES: usize = 8;

/// Whether [`solve2`] takes order `n`: AVX-512F present and n = 8·q for q in {2, 3, 4, 8, 12} (both right-hand sides fit the 32
/// vector registers up to q = 12).
pub fn takes(n: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        n.is_multiple_of(LANES) && matches!(n / LANES, 2 | 3 | 4 | 8 | 12) && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = n;
        false
    }
}

/// Solves `L Lᵀ x = b` for two right-hand sides in place, L the mirrored factor of
/// [`cholesky_lower`](super::lemma2_kernels::cholesky_lower) (n × n column-major, Lᵀ above the
/// diagonal) and `inv` the reciprocals of its diagonal.
///
/// # Panics
/// When [`takes`] is false for n, or a slice is shorter than n (or n² for `l`).
pub fn solve2(n: usize, l: &[f64], inv: &[f64], b: &mut [f64], c: &mut [f64]) {
    assert!(takes(n), "lemma2_avx512::solve2: order {n} not supported here");
    assert!(l.len() >= n * n && inv.len() >= n && b.len() >= n && c.len() >= n, "lemma2_avx512::solve2: slices shorter than n = {n}");
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is present (`takes`), and every slice holds what the kernel reads (asserted).
    unsafe {
        match n / LANES {
            2 => imp::solve2::<2>(l, inv, b, c),
            3 => imp::solve2::<3>(l, inv, b, c),
            4 => imp::solve2::<4>(l, inv, b, c),
            8 => imp::solve2::<8>(l, inv, b, c),
            _ => imp::solve2::<12>(l, inv, b, c),
        }
    }
}

/// Whether [`mirror`] takes order `n`: AVX-512F present and n a multiple of 8.
pub fn mirrors(n: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        n.is_multiple_of(LANES) && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = n;
        false
    }
}

/// [`mirror_lower`](super::lemma2_kernels::mirror_lower) by 8 × 8 blocks transposed in registers
/// (the strided scalar copy cost 2 µs at n = 96, a sizeable part of a position).
///
/// # Panics
/// When [`mirrors`] is false for n, or `a` holds fewer than n² values.
pub fn mirror(n: usize, a: &mut [f64]) {
    assert!(mirrors(n) && a.len() >= n * n, "lemma2_avx512::mirror: order {n}, {} values", a.len());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is present, n is a multiple of 8 and a holds n² values (asserted).
    unsafe {
        imp::mirror(n, a)
    }
}

/// [`cholesky_lower`](super::lemma2_kernels::cholesky_lower) for n a multiple of 8 ([`mirrors`]):
/// the same panels of four columns and the same operations in the same order, but each 8-row block
/// of a panel takes the update from the columns to its left and its own panel columns in registers,
/// stored once (the loops stored every column segment and reloaded its pivot as a scalar).
///
/// # Panics
/// When [`mirrors`] is false for n, or `a` holds fewer than n² values.
pub fn cholesky(n: usize, a: &mut [f64]) -> bool {
    assert!(mirrors(n) && a.len() >= n * n, "lemma2_avx512::cholesky: order {n}, {} values", a.len());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is present, n is a multiple of 8 and a holds n² values (asserted).
    unsafe {
        imp::cholesky(n, a)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!()
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    use super::LANES;

    /// See [`super::solve2`]; n = 8·Q.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::needless_range_loop)] // register arrays: fixed indices keep them in registers
    pub unsafe fn solve2<const Q: usize>(l: &[f64], inv: &[f64], b: &mut [f64], c: &mut [f64]) {
        let n = Q * LANES;
        let lp = l.as_ptr();
        // SAFETY (all loads and stores below): the caller checked l.len() ≥ n², inv, b, c ≥ n.
        unsafe {
            let mut x = [[_mm512_setzero_pd(); Q]; 2];
            for q in 0..Q {
                x[0][q] = _mm512_loadu_pd(b.as_ptr().add(q * LANES));
                x[1][q] = _mm512_loadu_pd(c.as_ptr().add(q * LANES));
            }
            // L y = b: step j scales lane j and takes column j from the lanes below it.
            for q in 0..Q {
                for e in 0..LANES {
                    let j = q * LANES + e;
                    let pick = _mm512_set1_epi64(e as i64);
                    let iv = _mm512_set1_pd(*inv.get_unchecked(j));
                    let at = (0xFFu32 << (e + 1)) as u8;
                    let col = lp.add(j * n);
                    for x in x.iter_mut() {
                        let bj = _mm512_mul_pd(_mm512_permutexvar_pd(pick, x[q]), iv);
                        x[q] = _mm512_mask_blend_pd(1 << e, x[q], bj);
                        x[q] = _mm512_mask3_fnmadd_pd(_mm512_loadu_pd(col.add(q * LANES)), bj, x[q], at);
                        for r in q + 1..Q {
                            x[r] = _mm512_fnmadd_pd(_mm512_loadu_pd(col.add(r * LANES)), bj, x[r]);
                        }
                    }
                }
            }
            // Lᵀ x = y: step j scales lane j and takes row j of L (stored above the diagonal of
            // column j) from the lanes above it.
            for q in (0..Q).rev() {
                for e in (0..LANES).rev() {
                    let j = q * LANES + e;
                    let pick = _mm512_set1_epi64(e as i64);
                    let iv = _mm512_set1_pd(*inv.get_unchecked(j));
                    let at = ((1u32 << e) - 1) as u8;
                    let col = lp.add(j * n);
                    for x in x.iter_mut() {
                        let bj = _mm512_mul_pd(_mm512_permutexvar_pd(pick, x[q]), iv);
                        x[q] = _mm512_mask_blend_pd(1 << e, x[q], bj);
                        x[q] = _mm512_mask3_fnmadd_pd(_mm512_loadu_pd(col.add(q * LANES)), bj, x[q], at);
                        for r in 0..q {
                            x[r] = _mm512_fnmadd_pd(_mm512_loadu_pd(col.add(r * LANES)), bj, x[r]);
                        }
                    }
                }
            }
            for q in 0..Q {
                _mm512_storeu_pd(b.as_mut_ptr().add(q * LANES), x[0][q]);
                _mm512_storeu_pd(c.as_mut_ptr().add(q * LANES), x[1][q]);
            }
        }
    }

    /// The 8 × 8 transpose of `v` (element r of `v[c]` becomes element c of the result's r).
    #[inline(always)]
    unsafe fn transpose(v: [__m512d; 8]) -> [__m512d; 8] {
        // SAFETY: register shuffles only; the caller runs with AVX-512F.
        unsafe {
            let t: [__m512d; 8] = std::array::from_fn(|i| {
                let (a, b) = (v[i / 2 * 2], v[i / 2 * 2 + 1]);
                if i % 2 == 0 {
                    _mm512_unpacklo_pd(a, b)
                } else {
                    _mm512_unpackhi_pd(a, b)
                }
            });
            let (even, odd) = (_mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0), _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2));
            // s[0] = (v0..v3)[0, 4], s[1] = [2, 6], s[2] = [1, 5], s[3] = [3, 7]; s[4..] the same for v4..v7.
            let s = [
                _mm512_permutex2var_pd(t[0], even, t[2]),
                _mm512_permutex2var_pd(t[0], odd, t[2]),
                _mm512_permutex2var_pd(t[1], even, t[3]),
                _mm512_permutex2var_pd(t[1], odd, t[3]),
                _mm512_permutex2var_pd(t[4], even, t[6]),
                _mm512_permutex2var_pd(t[4], odd, t[6]),
                _mm512_permutex2var_pd(t[5], even, t[7]),
                _mm512_permutex2var_pd(t[5], odd, t[7]),
            ];
            let lo = |a, b| _mm512_shuffle_f64x2::<0b01_00_01_00>(a, b);
            let hi = |a, b| _mm512_shuffle_f64x2::<0b11_10_11_10>(a, b);
            [lo(s[0], s[4]), lo(s[2], s[6]), lo(s[1], s[5]), lo(s[3], s[7]), hi(s[0], s[4]), hi(s[2], s[6]), hi(s[1], s[5]), hi(s[3], s[7])]
        }
    }

    /// See [`super::mirror`].
    #[target_feature(enable = "avx512f")]
    pub unsafe fn mirror(n: usize, a: &mut [f64]) {
        let p = a.as_mut_ptr();
        // SAFETY: every block lies within the n × n matrix (n a multiple of 8, a.len() ≥ n²).
        unsafe {
            for jb in (0..n).step_by(LANES) {
                // The diagonal block: each column takes the rows above its diagonal entry.
                let v: [__m512d; 8] = std::array::from_fn(|c| _mm512_loadu_pd(p.add((jb + c) * n + jb)));
                let w = transpose(v);
                for (c, w) in w.iter().enumerate() {
                    _mm512_mask_storeu_pd(p.add((jb + c) * n + jb), ((1u32 << c) - 1) as u8, *w);
                }
                for ib in (jb + LANES..n).step_by(LANES) {
                    let v: [__m512d; 8] = std::array::from_fn(|c| _mm512_loadu_pd(p.add((jb + c) * n + ib)));
                    let w = transpose(v);
                    for (r, w) in w.iter().enumerate() {
                        _mm512_storeu_pd(p.add((ib + r) * n + jb), *w);
                    }
                }
            }
        }
    }

    /// Columns of one panel of [`cholesky`].
    const PANEL: usize = 4;

    /// Rows `ib..ib + 8` of the panel columns `j0..j0 + 4`, less Σ_{k<j0} L[rows, k]·L[j, k] (one
    /// accumulator per column, k ascending, then `fma(acc, −1, a)`, as the register tiles do).
    #[inline(always)]
    unsafe fn panel_block(p: *mut f64, n: usize, j0: usize, ib: usize) -> [__m512d; PANEL] {
        // SAFETY: the caller keeps ib + 8 ≤ n and j0 + 4 ≤ n.
        unsafe {
            let mut acc = [_mm512_setzero_pd(); PANEL];
            for k in 0..j0 {
                let w = _mm512_loadu_pd(p.add(k * n + ib));
                for (c, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_fmadd_pd(w, _mm512_set1_pd(*p.add(k * n + j0 + c)), *acc);
                }
            }
            let minus = _mm512_set1_pd(-1.0);
            std::array::from_fn(|c| _mm512_fmadd_pd(acc[c], minus, _mm512_loadu_pd(p.add((j0 + c) * n + ib))))
        }
    }

    /// See [`super::cholesky`].
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::needless_range_loop)] // register arrays: fixed indices keep them in registers
    pub unsafe fn cholesky(n: usize, a: &mut [f64]) -> bool {
        let p = a.as_mut_ptr();
        // SAFETY: every block lies within the n × n matrix (n a multiple of 8, a.len() ≥ n²).
        unsafe {
            for j0 in (0..n).step_by(PANEL) {
                let i0 = j0 / LANES * LANES;
                // The diagonal block: column by column, each pivot from its lane.
                let mut v = panel_block(p, n, j0, i0);
                let mut ljk = [[_mm512_setzero_pd(); PANEL]; PANEL];
                let mut piv = [_mm512_setzero_pd(); PANEL];
                for c in 0..PANEL {
                    let e = j0 + c - i0;
                    let lane = _mm512_set1_epi64(e as i64);
                    for k in 0..c {
                        ljk[c][k] = _mm512_permutexvar_pd(lane, v[k]);
                        v[c] = _mm512_fnmadd_pd(v[k], ljk[c][k], v[c]);
                    }
                    let d = _mm512_permutexvar_pd(lane, v[c]);
                    if !(_mm512_cvtsd_f64(d) > 0.0) {
                        return false;
                    }
                    piv[c] = _mm512_sqrt_pd(d);
                    v[c] = _mm512_mask_blend_pd(1 << e, _mm512_div_pd(v[c], piv[c]), piv[c]);
                }
                for (c, v) in v.iter().enumerate() {
                    _mm512_storeu_pd(p.add((j0 + c) * n + i0), *v);
                }
                // The blocks below: independent of each other.
                for ib in (i0 + LANES..n).step_by(LANES) {
                    let mut v = panel_block(p, n, j0, ib);
                    for c in 0..PANEL {
                        for k in 0..c {
                            v[c] = _mm512_fnmadd_pd(v[k], ljk[c][k], v[c]);
                        }
                        v[c] = _mm512_div_pd(v[c], piv[c]);
                        _mm512_storeu_pd(p.add((j0 + c) * n + ib), v[c]);
                    }
                }
            }
        }
        true
    }
}
