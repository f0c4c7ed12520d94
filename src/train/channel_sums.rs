//! BatchNorm's per-channel f64 sums over eight channels at once, vectorised across the channels.
//!
//! Each channel's sum stays a sequential f64 sum in element order (what makes training bit-identical
//! for any thread count), so it cannot be vectorised along the elements. The eight channels of a group
//! are independent, though: with AVX2 a block of 8 elements of each of the 8 channels is loaded and
//! transposed in registers, so that one vector holds element i of all eight channels, and the eight
//! chains advance together — the same additions in the same order, four f64 lanes per instruction.
//! Elsewhere (or for the last `m mod 8` elements) the scalar loops do the same arithmetic.

/// Channels summed together.
pub(crate) const LANES: usize = 8;

/// Eight channels of `m` values each.
pub(crate) type Lanes<'a> = [&'a [f32]; LANES];

/// `init + Σ_i x[j][i]` in f64, element order, per channel.
// The tail indexes eight channels' slices at once, as the kernels do.
#[allow(clippy::needless_range_loop)]
pub(crate) fn sums(x: &Lanes, m: usize, init: f64) -> [f64; LANES] {
    let mut acc = [init; LANES];
    // SAFETY: the kernel runs only where the CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    let done = if has_avx2() { unsafe { avx2::sums(x, m, &mut acc) } } else { 0 };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for i in done..m {
        for j in 0..LANES {
            acc[j] += x[j][i] as f64;
        }
    }
    acc
}

/// `init + Σ_i (x[j][i] − mean[j])²` in f64, element order, per channel.
#[allow(clippy::needless_range_loop)]
pub(crate) fn squares(x: &Lanes, m: usize, mean: &[f64; LANES], init: f64) -> [f64; LANES] {
    let mut acc = [init; LANES];
    // SAFETY: the kernel runs only where the CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    let done = if has_avx2() { unsafe { avx2::squares(x, m, mean, &mut acc) } } else { 0 };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for i in done..m {
        for j in 0..LANES {
            acc[j] += (x[j][i] as f64 - mean[j]).powi(2);
        }
    }
    acc
}

/// BatchNorm's gradient sums per channel, from 0: `(Σ_i g·(v − mean)·invstd, Σ_i g)` with the product
/// in f32 and the sums in f64, element order.
pub(crate) fn grad_sums(g: &Lanes, v: &Lanes, m: usize, mean: &[f32; LANES], invstd: &[f32; LANES]) -> ([f64; LANES], [f64; LANES]) {
    let (mut dg, mut db) = ([0.0f64; LANES], [0.0f64; LANES]);
    // SAFETY: the kernel runs only where the CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    let done = if has_avx2() { unsafe { avx2::grad_sums(g, v, m, mean, invstd, &mut dg, &mut db) } } else { 0 };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for i in done..m {
        for j in 0..LANES {
            let gi = g[j][i];
            db[j] += gi as f64;
            dg[j] += (gi * (v[j][i] - mean[j]) * invstd[j]) as f64;
        }
    }
    (dg, db)
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The kernels: whole blocks of 8 elements; they return how many elements they consumed. Only
    //! plain IEEE additions, subtractions, multiplications and f32→f64 conversions — no FMA — so the
    //! results equal the scalar loops' bit for bit.
    use std::arch::x86_64::*;

    use super::{Lanes, LANES};

    /// The 8×8 transpose of rows `x[j][i0..i0 + 8]`: column `i` holds element `i0 + i` of each channel.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn columns(x: &Lanes, i0: usize) -> [__m256; 8] {
        // SAFETY (caller): i0 + 8 ≤ m ≤ x[j].len() for every j.
        let r: [__m256; 8] = std::array::from_fn(|j| unsafe { _mm256_loadu_ps(x[j].as_ptr().add(i0)) });
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ]
    }

    /// Channels 0–3 and 4–7 of an f32 vector, widened to f64.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn widen(x: __m256) -> (__m256d, __m256d) {
        (_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x)))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn load(a: &[f64; LANES]) -> (__m256d, __m256d) {
        // SAFETY: both halves are in bounds of the 8-element array.
        unsafe { (_mm256_loadu_pd(a.as_ptr()), _mm256_loadu_pd(a.as_ptr().add(4))) }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn store(a: &mut [f64; LANES], (lo, hi): (__m256d, __m256d)) {
        // SAFETY: both halves are in bounds of the 8-element array.
        unsafe {
            _mm256_storeu_pd(a.as_mut_ptr(), lo);
            _mm256_storeu_pd(a.as_mut_ptr().add(4), hi);
        }
    }

    /// Checks every lane holds at least `m` values.
    fn check(x: &Lanes, m: usize) {
        assert!(x.iter().all(|l| l.len() >= m), "channel sums: a channel is shorter than m");
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sums(x: &Lanes, m: usize, acc: &mut [f64; LANES]) -> usize {
        check(x, m);
        let (mut lo, mut hi) = load(acc);
        let blocks = m / 8 * 8;
        for i0 in (0..blocks).step_by(8) {
            // SAFETY: i0 + 8 ≤ m, checked above.
            for c in unsafe { columns(x, i0) } {
                let (a, b) = widen(c);
                lo = _mm256_add_pd(lo, a);
                hi = _mm256_add_pd(hi, b);
            }
        }
        store(acc, (lo, hi));
        blocks
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn squares(x: &Lanes, m: usize, mean: &[f64; LANES], acc: &mut [f64; LANES]) -> usize {
        check(x, m);
        let (mut lo, mut hi) = load(acc);
        let (mlo, mhi) = load(mean);
        let blocks = m / 8 * 8;
        for i0 in (0..blocks).step_by(8) {
            // SAFETY: i0 + 8 ≤ m, checked above.
            for c in unsafe { columns(x, i0) } {
                let (a, b) = widen(c);
                let (da, db) = (_mm256_sub_pd(a, mlo), _mm256_sub_pd(b, mhi));
                lo = _mm256_add_pd(lo, _mm256_mul_pd(da, da));
                hi = _mm256_add_pd(hi, _mm256_mul_pd(db, db));
            }
        }
        store(acc, (lo, hi));
        blocks
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn grad_sums(
        g: &Lanes,
        v: &Lanes,
        m: usize,
        mean: &[f32; LANES],
        invstd: &[f32; LANES],
        dg: &mut [f64; LANES],
        db: &mut [f64; LANES],
    ) -> usize {
        check(g, m);
        check(v, m);
        let (mut glo, mut ghi) = load(dg);
        let (mut blo, mut bhi) = load(db);
        // SAFETY: 8-element arrays.
        let (mu, inv) = unsafe { (_mm256_loadu_ps(mean.as_ptr()), _mm256_loadu_ps(invstd.as_ptr())) };
        let blocks = m / 8 * 8;
        for i0 in (0..blocks).step_by(8) {
            // SAFETY: i0 + 8 ≤ m, checked above.
            let (gc, vc) = unsafe { (columns(g, i0), columns(v, i0)) };
            for (gi, vi) in gc.into_iter().zip(vc) {
                let (a, b) = widen(gi);
                blo = _mm256_add_pd(blo, a);
                bhi = _mm256_add_pd(bhi, b);
                let t = _mm256_mul_ps(_mm256_mul_ps(gi, _mm256_sub_ps(vi, mu)), inv);
                let (a, b) = widen(t);
                glo = _mm256_add_pd(glo, a);
                ghi = _mm256_add_pd(ghi, b);
            }
        }
        store(dg, (glo, ghi));
        store(db, (blo, bhi));
        blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar definition, one channel at a time.
    fn reference(x: &[Vec<f32>], m: usize) -> Vec<f64> {
        x.iter().map(|c| c[..m].iter().fold(-0.0f64, |s, &v| s + v as f64)).collect()
    }

    fn data(seed: u32, m: usize) -> Vec<Vec<f32>> {
        // Values over 40 binary orders of magnitude and both signs, so that f64 sums round and a
        // different order of the additions shows in the bits (the negative control below checks it).
        (0..LANES)
            .map(|j| {
                (0..m)
                    .map(|i| {
                        let h = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed.wrapping_mul(40_503) + j as u32 * 97);
                        let mantissa = 1.0 + (h % 8_388_593) as f32 / 8_388_608.0;
                        let sign = if h & 1 == 0 { 1.0 } else { -1.0 };
                        sign * mantissa * 2f32.powi((h >> 8) as i32 % 41 - 20)
                    })
                    .collect()
            })
            .collect()
    }

    /// The same sums with each block of 8 elements taken in reverse order: must differ somewhere.
    fn reversed_blocks(x: &[Vec<f32>], m: usize) -> Vec<f64> {
        x.iter()
            .map(|c| {
                let mut s = -0.0f64;
                for b in c[..m].chunks(8) {
                    for &v in b.iter().rev() {
                        s += v as f64;
                    }
                }
                s
            })
            .collect()
    }

    #[test]
    fn test_data_tells_summation_orders_apart() {
        let x = data(1, 1000);
        let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
        assert_ne!(bits(reference(&x, 1000)), bits(reversed_blocks(&x, 1000)));
    }

    #[test]
    fn vectorised_sums_equal_one_channel_at_a_time_bit_for_bit() {
        for m in [0, 1, 7, 8, 9, 64, 133, 1000] {
            let x = data(1, m);
            let v = data(2, m);
            let lanes: Lanes = std::array::from_fn(|j| x[j].as_slice());
            let vl: Lanes = std::array::from_fn(|j| v[j].as_slice());
            let s = sums(&lanes, m, -0.0);
            assert_eq!(s.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), reference(&x, m).iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "m = {m}");
            let mean = s.map(|t| t / m.max(1) as f64);
            let q = squares(&lanes, m, &mean, -0.0);
            for j in 0..LANES {
                let r = x[j][..m].iter().fold(-0.0f64, |a, &v| a + (v as f64 - mean[j]).powi(2));
                assert_eq!(q[j].to_bits(), r.to_bits(), "squares m = {m} lane {j}");
            }
            let (mu, inv) = (std::array::from_fn(|j| 0.3 * j as f32 - 1.0), std::array::from_fn(|j| 1.0 / (1.0 + j as f32)));
            let (dg, db) = grad_sums(&lanes, &vl, m, &mu, &inv);
            for j in 0..LANES {
                let (mut rg, mut rb) = (0.0f64, 0.0f64);
                for i in 0..m {
                    rb += x[j][i] as f64;
                    rg += (x[j][i] * (v[j][i] - mu[j]) * inv[j]) as f64;
                }
                assert_eq!((dg[j].to_bits(), db[j].to_bits()), (rg.to_bits(), rb.to_bits()), "grad m = {m} lane {j}");
            }
        }
    }
}
