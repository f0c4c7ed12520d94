//! [`super::gemm_kernel`]'s register-tiled product on CPUs with AVX2 and FMA but no AVX-512:
//! `out = act(a · b + bias)`, column-major, tiles of 16 positions (two 8-lane vectors) × 6 output
//! channels — twelve independent accumulators (two FMA pipes × five cycles of latency need ten),
//! two loads of `a` and six broadcasts of `b` per step of `k` — with the bias and the clamp applied
//! in registers before the store. `b` is a [`super::gemm_kernel::PackedB`] in panels of six.
//! (Measured on an AVX2 EPYC, batch 32: three vectors × four channels spilled an accumulator and
//! ran 10% slower than the `gemm` crate; two × four, eight chains, 4% faster; this shape is the
//! crate's own micro-kernel with the epilogue in registers and no packing of `a`.)
//!
//! Each output element is one chain of fused multiply-adds over `k` in order from zero, as in the
//! AVX-512 kernel and the `gemm` crate: the same bits whichever computes it.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::gemm_kernel::Epilogue;

/// f32 lanes of one AVX2 vector.
const LANES: usize = 8;
/// Vectors of positions per full tile.
const MV: usize = 2;
/// Positions per full tile.
pub const MR: usize = MV * LANES;
/// Output channels per tile and per packed panel.
pub const NR: usize = 6;
/// Bytes of `a` a block of rows may span before the panels sweep it again (half of a 512 KiB L2).
const BLOCK_BYTES: usize = 256 * 1024;

/// Whether this machine runs the kernel (AVX2 and FMA, detected once by the standard library).
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Rows `r0..r1` of `out = a · b`, `act(a · b + bias)` or `out + a · b`; see
/// [`super::gemm_kernel::gemm_rows`].
///
/// # Safety
/// AVX2 and FMA; the operand layout of [`super::gemm_kernel::gemm_rows`]; `packed` holds
/// `⌈n/NR⌉·k·NR` values.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_rows(a: *const f32, lda: usize, packed: &[f32], k: usize, n: usize, out: *mut f32, ldc: usize, r0: usize, r1: usize, epilogue: Epilogue) {
    let block = (BLOCK_BYTES / (4 * k.max(1)) / MR * MR).max(MR);
    let mut b0 = r0;
    while b0 < r1 {
        let b1 = (b0 + block).min(r1);
        // SAFETY: forwarded from the caller.
        unsafe { block_panels(a.add(b0), lda, b1 - b0, packed, k, n, out.add(b0), ldc, epilogue) };
        b0 = b1;
    }
}

/// Every panel of `b` against `rows` rows of `a` (and of `out`).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn block_panels(a: *const f32, lda: usize, rows: usize, packed: &[f32], k: usize, n: usize, out: *mut f32, ldc: usize, epilogue: Epilogue) {
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let rest = rows % MR;
    // Lane masks of the last, partial tile's vectors.
    let tail: [__m256i; MV] = std::array::from_fn(|v| _mm256_cmpgt_epi32(_mm256_set1_epi32(rest as i32 - (v * LANES) as i32), lane));
    for q in 0..n.div_ceil(NR) {
        let col0 = q * NR;
        // SAFETY: panel q lies inside `packed` (caller).
        let bp = unsafe { packed.as_ptr().add(q * k * NR) };
        let cols = NR.min(n - col0);
        // SAFETY: column col0 is inside out (caller).
        let c = unsafe { out.add(col0 * ldc) };
        let full = rows / MR;
        for t in 0..full {
            // SAFETY: rows t·MR.. + MR ≤ rows and columns col0.. < n are in range (caller).
            unsafe { tile::<MV, false>(a.add(t * MR), lda, bp, k, c.add(t * MR), ldc, cols, tail, col0, epilogue) };
        }
        if rest > 0 {
            let (ap, cp) = unsafe { (a.add(full * MR), c.add(full * MR)) };
            // SAFETY: the masks cover only rows < rows.
            unsafe {
                match rest.div_ceil(LANES) {
                    1 => tile::<1, true>(ap, lda, bp, k, cp, ldc, cols, [tail[0]], col0, epilogue),

                    _ => tile::<2, true>(ap, lda, bp, k, cp, ldc, cols, tail, col0, epilogue),
                }
            }
        }
    }
}

/// One tile of `V` vectors of rows × `cols` (≤ [`NR`]) columns: the k-loop in registers, then the
/// epilogue (the bias and the clamp, or the add of `out`'s values) and the stores (loads and stores
/// masked by `masks` where `MASKED`).
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)] // register tiles read best by index
unsafe fn tile<const V: usize, const MASKED: bool>(
    a: *const f32,
    lda: usize,
    bp: *const f32,
    k: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    masks: [__m256i; V],
    col0: usize,
    epilogue: Epilogue,
) {
    let mut acc = [[_mm256_setzero_ps(); NR]; V];
    let mut ap = a;
    let mut bq = bp;
    for _ in 0..k {
        let mut av = [_mm256_setzero_ps(); V];
        // SAFETY: rows of this tile (masked at the edge) of column p of a, and row p of the panel.
        unsafe {
            for (v, x) in av.iter_mut().enumerate() {
                *x = if MASKED { _mm256_maskload_ps(ap.add(v * LANES), masks[v]) } else { _mm256_loadu_ps(ap.add(v * LANES)) };
            }
            for j in 0..NR {
                let b = _mm256_broadcast_ss(&*bq.add(j));
                for v in 0..V {
                    acc[v][j] = _mm256_fmadd_ps(av[v], b, acc[v][j]);
                }
            }
            ap = ap.add(lda);
            bq = bq.add(NR);
        }
    }
    // Over all NR columns (a constant trip count), then skipping the columns past `cols`.
    for j in 0..NR {
        if j >= cols {
            break;
        }
        // SAFETY: column col0 + j < n of out (caller).
        let col = unsafe { c.add(j * ldc) };
        for v in 0..V {
            let mut x = acc[v][j];
            match epilogue {
                Epilogue::Store => {}
                Epilogue::Fused(f) => {
                    x = _mm256_add_ps(x, _mm256_set1_ps(f.bias[col0 + j]));
                    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(f.lo)), _mm256_set1_ps(f.hi));
                }
                // SAFETY: rows of this tile (masked at the edge) of column col0 + j.
                Epilogue::Accumulate => unsafe {
                    let old = if MASKED { _mm256_maskload_ps(col.add(v * LANES), masks[v]) } else { _mm256_loadu_ps(col.add(v * LANES)) };
                    x = _mm256_add_ps(old, x);
                },
            }
            // SAFETY: rows of this tile (masked at the edge) of column col0 + j.
            unsafe {
                if MASKED {
                    _mm256_maskstore_ps(col.add(v * LANES), masks[v], x);
                } else {
                    _mm256_storeu_ps(col.add(v * LANES), x);
                }
            }
        }
    }
}
