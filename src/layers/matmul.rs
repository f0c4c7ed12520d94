//! The one matrix product of the network: column-major `out = a · b` on nalgebra storage, computed by
//! the `gemm` crate (run-time AVX-512/AVX2 dispatch; 1.3–3× faster than nalgebra's own
//! `matrixmultiply` backend on MobileNetV2's shapes, measured in `shared/STACK.md`).

use gemm::Parallelism;

use super::activation::bias_clamp;
use super::gemm_channels::{self, Layout};
use super::gemm_kernel::{self, Epilogue, Fused, PackedB, MIN_POSITIONS, MR};
use super::packed_weights::PackedWeights;

/// `out (m×n) = a (m×k) · b (k×n)`; all three column-major and contiguous. `threads > 1` lets the
/// product itself use that many rayon workers (used when a batch is too small to parallelise over).
pub fn matmul(out: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, threads: usize) {
    matmul_strided(out, m, n, k, (a, m, 1), (b, k, 1), false, threads);
}

/// With a layer's [`PackedWeights`] and AVX-512, products over fewer positions than this run on
/// [`gemm_channels`] (channels as vectors; 49 positions fill its 7-position tiles, but leave a
/// quarter of [`gemm_kernel`]'s 16-lane vectors idle), the rest on [`gemm_kernel`] (measured at 196
/// positions, Zen 5, one thread: 111–120 GMAC/s prepacked against 97–106 for the `gemm` crate).
pub const CHANNEL_POSITIONS: usize = 128;

/// Bands per thread on our kernels: claimed one at a time ([`crate::fork_join`]), so a thread that
/// starts late or runs slow leaves less for the others to wait on.
const OVERSPLIT: usize = 2;

/// Band boundaries fall on multiples of this many rows.
const BAND_ROWS: usize = 8;
/// `gemm`'s small-product size: a product with m and n at most this blocks k by 512 instead.
const SMALL_GEMM: usize = 64;
/// Rows of the `gemm` crate's widest f32 micro-kernel with AVX-512 (4 × 16).
const KERNEL_ROWS: usize = 64;
/// Columns of that micro-kernel: column bands end on multiples of it.
const COL_UNIT: usize = 6;

/// `out (m×n) = act(a (m×k) · b (k×n) + bias)` (`fused`; else the plain product) computed in up to
/// `threads` bands in parallel, the bias and activation applied while each band is in cache. Every
/// element is summed exactly as in the one-band product, so the result is the same bits for any
/// `threads`: a test checks this on every MobileNetV2 shape and a few others.
///
/// `packs`, a layer's [`PackedWeights`] for `b`, lets the product skip packing `b`. With AVX-512
/// and `packs`, products over fewer than [`CHANNEL_POSITIONS`] positions run on
/// [`gemm_channels`] (bands of output channels), the rest on [`gemm_kernel`] (bands of rows). Without
/// `packs`, products of at least [`MIN_POSITIONS`] rows run on [`gemm_kernel`] (AVX-512 or AVX2),
/// `b` packed per call: below that, packing `b` would cost a third of the product. The rest is the
/// `gemm` crate's: each band an independent product over the same `k`, which the crate blocks by
/// `k` alone — except in products of at most 64 × 64, so no band is made that small unless the
/// whole is — followed by the epilogue on the band; products too short for two of the crate's
/// 64-row tiles per band are split into bands of columns instead.
///
/// # Panics
/// When a slice is shorter than its matrix, or `packs` was packed from a matrix of another shape.
#[allow(clippy::too_many_arguments)]
pub fn matmul_bands(out: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, threads: usize, fused: Option<&Fused>, packs: Option<&PackedWeights>) {
    assert!(out.len() >= m * n && a.len() >= m * k && b.len() >= k * n, "matmul_bands: operand too small");
    assert!(fused.is_none_or(|f| f.bias.len() >= n), "matmul_bands: bias shorter than the columns");
    let epilogue = |j: usize, band: &mut [f32]| {
        if let Some(f) = fused {
            bias_clamp(band, f.bias[j], f.lo, f.hi);
        }
    };
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out[..m * n].fill(0.0);
        (0..n).for_each(|j| epilogue(j, &mut out[j * m..(j + 1) * m]));
        return;
    }
    let dst = SendPtr(out.as_mut_ptr());
    #[cfg(target_arch = "x86_64")]
    if let Some(packs) = packs.filter(|_| gemm_channels::available() && m < CHANNEL_POSITIONS) {
        let packed = packs.channels(b, k, n);
        // Bands of whole 16-channel vectors.
        let units = n.div_ceil(16);
        let bands = (threads * OVERSPLIT).min(units).max(1);
        let edge = |i: usize| if i == bands { n } else { units * i / bands * 16 };
        let band = |i: usize| {
            // SAFETY: available() holds; a is m×k and out m×n column-major (asserted above), the bands
            // are disjoint channel ranges starting on multiples of 16, and out does not alias a.
            unsafe { gemm_channels::gemm_channels(a.as_ptr(), m, packed, dst.get(), edge(i), edge(i + 1), fused.into()) }
        };
        run_bands(bands, threads, band);
        return;
    }
    let prepacked = packs.filter(|_| gemm_kernel::available() || m >= MIN_POSITIONS);
    if gemm_kernel::rows_available() && (prepacked.is_some() || m >= MIN_POSITIONS) {
        // Without `packs`, taken out of the thread-local, not borrowed: a thread waiting for its
        // bands may run another product (rayon work stealing) that needs the slot meanwhile.
        let mut scratch = None;
        let packed = match prepacked {
            Some(p) => p.rows(b, k, n),
            None => {
                let mut p = PACKED_B.take();
                p.pack(b, k, n, k);
                &*scratch.insert(p)
            }
        };
        if threads > 1 && m < MIN_POSITIONS && gemm_kernel::available() {
            // Few row tiles (196 positions: four): bands of channel panels instead.
            let units = n.div_ceil(gemm_kernel::NR);
            let bands = (threads * OVERSPLIT).min(units).max(1);
            let edge = |i: usize| if i == bands { n } else { units * i / bands * gemm_kernel::NR };
            let band = |i: usize| {
                // SAFETY: available() holds; a is m×k and out m×n column-major (asserted above), the
                // bands are disjoint ranges of whole panels, and out does not alias a.
                unsafe { gemm_kernel::gemm_channel_bands(a.as_ptr(), m, packed, dst.get(), m, m, edge(i), edge(i + 1), fused.into()) }
            };
            run_bands(bands, threads, band);
        } else {
            let bands = (threads * OVERSPLIT).min(m / MR).max(1);
            let edge = |i: usize| if i == bands { m } else { (m * i / bands) / MR * MR };
            let band = |i: usize| {
                // SAFETY: rows_available() holds; a is m×k and out m×n column-major (asserted above),
                // the bands are disjoint row ranges, and out does not alias a.
                unsafe { gemm_kernel::gemm_rows(a.as_ptr(), m, packed, dst.get(), m, edge(i), edge(i + 1), fused.into()) }
            };
            run_bands(bands, threads, band);
        }
        if let Some(p) = scratch {
            PACKED_B.set(p);
        }
        return;
    }
    // Short products split their columns instead of their rows (at batch 1, 196 positions in two
    // row bands left most rows to the crate's narrow 32-row kernel): each column band keeps every
    // 64-row tile whole. The crate blocks k by k alone, except in products of at most 64 × 64 with
    // k > 512, so no column band is made that small unless the whole is.
    let min_cols = if m <= SMALL_GEMM && k > 512 && n > SMALL_GEMM { SMALL_GEMM + COL_UNIT } else { COL_UNIT };
    let col_bands = threads.min(n / min_cols).max(1);
    if m < 2 * KERNEL_ROWS * threads && col_bands > 1 {
        let edge = |i: usize| if i == col_bands { n } else { (n * i / col_bands) / COL_UNIT * COL_UNIT };
        let band = |i: usize| {
            let (c0, c1) = (edge(i), edge(i + 1));
            // SAFETY: bands are disjoint column ranges of `out` (asserted large enough above); each
            // element is written by exactly one band, and `out` does not alias `a` or `b`.
            unsafe {
                let p = dst.get().add(c0 * m);
                gemm_raw(p, m, m, c1 - c0, k, a.as_ptr(), m, b.as_ptr().add(c0 * k), k);
                for j in c0..c1 {
                    epilogue(j, std::slice::from_raw_parts_mut(dst.get().add(j * m), m));
                }
            }
        };
        run_bands(col_bands, threads, band);
        return;
    }
    // `gemm` blocks k differently for a product of at most 64 × 64 (k in blocks of 512), so where
    // that could apply to a band but not to the whole, bands keep more than 64 rows.
    // (Edges round down to whole 8 rows, so a band is at least m / bands − 7 rows long.)
    let min_rows = if n <= SMALL_GEMM && k > 512 && m > SMALL_GEMM { SMALL_GEMM + BAND_ROWS } else { BAND_ROWS };
    let bands = threads.min(m / min_rows).max(1);
    // Long bands end on whole 64-row tiles of the kernel (else its narrower tail kernels run more).
    let unit = if m / bands >= 4 * KERNEL_ROWS { KERNEL_ROWS } else { BAND_ROWS };
    let edge = |i: usize| if i == bands { m } else { (m * i / bands) / unit * unit };
    let band = |i: usize| {
        let (r0, r1) = (edge(i), edge(i + 1));
        if r1 <= r0 {
            return;
        }
        // SAFETY: bands are disjoint row ranges of `out` (asserted large enough above); each element
        // is written by exactly one band, and `out` does not alias `a` or `b`.
        unsafe {
            let p = dst.get();
            gemm_raw(p.add(r0), m, r1 - r0, n, k, a.as_ptr().add(r0), m, b.as_ptr(), k);
            if fused.is_some() {
                for j in 0..n {
                    epilogue(j, std::slice::from_raw_parts_mut(p.add(j * m + r0), r1 - r0));
                }
            }
        }
    };
    run_bands(bands, threads, band);
}

/// `out (m×n) = act(a (m×k) · b (k×n) + bias)` on [`gemm_channels`] with `a` and `out` in the given
/// layouts (a blocked operand's channels a multiple of 16), `b` from the layer's `packs`, over
/// `threads` threads: in bands of whole 7-position tiles from [`MIN_POSITIONS`] positions up, else in
/// bands of 16-channel units. The same bits as [`matmul_bands`] on our kernels.
///
/// # Panics
/// Without AVX-512F, or when a slice is shorter than its matrix.
#[allow(clippy::too_many_arguments)]
pub fn matmul_channels_in(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
    fused: Option<&Fused>,
    packs: &PackedWeights,
    layouts: (Layout, Layout),
) {
    assert!(gemm_channels::available(), "matmul_channels_in: AVX-512F is required");
    assert!(out.len() >= m * n && a.len() >= m * k && b.len() >= k * n, "matmul_channels_in: operand too small");
    assert!(fused.is_none_or(|f| f.bias.len() >= n), "matmul_channels_in: bias shorter than the columns");
    if m == 0 || n == 0 {
        return;
    }
    let packed = packs.channels(b, k, n);
    let dst = SendPtr(out.as_mut_ptr());
    // Long products in bands of positions (whole 7-position tiles; every band all channels: their
    // weights are small), short ones in bands of 16-channel units.
    let (bands, by_positions) = if m >= MIN_POSITIONS {
        ((threads * OVERSPLIT).min(m / gemm_channels::NP).max(1), true)
    } else {
        ((threads * OVERSPLIT).min(n.div_ceil(16)).max(1), false)
    };
    let units = if by_positions { m.div_ceil(gemm_channels::NP) } else { n.div_ceil(16) };
    let edge = |i: usize| {
        let (unit, len) = if by_positions { (gemm_channels::NP, m) } else { (16, n) };
        if i == bands {
            len
        } else {
            units * i / bands * unit
        }
    };
    let band = |i: usize| {
        let (positions, c0, c1) = if by_positions { (edge(i)..edge(i + 1), 0, n) } else { (0..m, edge(i), edge(i + 1)) };
        #[cfg(target_arch = "x86_64")]
        // SAFETY: available() holds; a and out hold their matrices (asserted above), the bands are
        // disjoint (position ranges, or channel ranges starting on multiples of 16), and out does
        // not alias a.
        unsafe {
            gemm_channels::gemm_channels_in(layouts.0, layouts.1, a.as_ptr(), m, packed, dst.get(), positions, c0, c1, fused.into())
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (positions, c0, c1, packed, &dst, layouts);
    };
    run_bands(bands, threads, band);
}

/// Runs `band(0..bands)` on up to `threads` threads ([`crate::fork_join`]).
fn run_bands(bands: usize, threads: usize, band: impl Fn(usize) + Sync + Send) {
    crate::fork_join::fork_join(bands, threads, &band);
}

thread_local! {
    /// The packed weights of the current [`gemm_kernel`] product (kept to reuse the allocation).
    static PACKED_B: std::cell::Cell<PackedB> = std::cell::Cell::new(PackedB::default());
}

/// A pointer shared by parallel bands that write disjoint parts of one buffer ([`matmul_bands`],
/// the direct convolution).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: only used for disjoint writes, joined before the borrow of the buffer ends.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// `dst (rows×n, column stride dst_cs) = lhs (rows×k, column stride lhs_cs) · rhs (k×n, column
/// stride rhs_cs)`, single-threaded.
///
/// # Safety
/// Every index the sizes and strides reach must be in bounds, and `dst` must not alias the operands.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw(dst: *mut f32, dst_cs: usize, rows: usize, n: usize, k: usize, lhs: *const f32, lhs_cs: usize, rhs: *const f32, rhs_cs: usize) {
    if k == 0 {
        for j in 0..n {
            std::slice::from_raw_parts_mut(dst.add(j * dst_cs), rows).fill(0.0);
        }
        return;
    }
    gemm::gemm(
        rows,
        n,
        k,
        dst,
        dst_cs as isize,
        1,
        false,
        lhs,
        lhs_cs as isize,
        1,
        rhs,
        rhs_cs as isize,
        1,
        1.0f32,
        1.0f32,
        false,
        false,
        false,
        Parallelism::None,
    );
}

/// `out (m×n) (+)= a (m×k) · B` where `B` is the k×n block starting at `b[0]` of a column-major matrix
/// with column stride `b_col_stride` (a row slice of a larger weight). `accumulate` adds to `out`.
/// With at least [`MIN_POSITIONS`] rows, where [`gemm_kernel::rows_available`], it runs on
/// [`gemm_kernel`]'s tiles, which add to `out` in registers: no packing buffer of the `gemm` crate
/// (1 MiB for the first block's 12 544 positions) enters the peak memory of split execution.
///
/// # Panics
/// When a slice is shorter than its matrix.
#[allow(clippy::too_many_arguments)]
pub fn matmul_rows_acc(out: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, b_col_stride: usize, accumulate: bool) {
    if m >= MIN_POSITIONS && k > 0 && n > 0 && gemm_kernel::rows_available() {
        assert!(out.len() >= m * n && a.len() >= m * k && b.len() >= (n - 1) * b_col_stride + k, "matmul_rows_acc: operand too small");
        let mut packed = PACKED_B.take();
        packed.pack(b, k, n, b_col_stride);
        let epilogue = if accumulate { Epilogue::Accumulate } else { Epilogue::Store };
        // SAFETY: rows_available() holds; a is m×k and out m×n column-major (asserted above), and
        // out does not alias a (one is borrowed mutably).
        unsafe { gemm_kernel::gemm_rows(a.as_ptr(), m, &packed, out.as_mut_ptr(), m, 0, m, epilogue) };
        PACKED_B.set(packed);
        return;
    }
    matmul_strided(out, m, n, k, (a, m, 1), (b, b_col_stride, 1), accumulate, 1);
}

/// General strided product `dst (m×n) (+)= lhs (m×k) · rhs (k×n)`: element (i, j) of a matrix with
/// strides (`cs`, `rs`) sits at `j·cs + i·rs`. Used by the training engine for transposed operands.
///
/// # Panics
/// When the slices are shorter than the strides and sizes say.
#[allow(clippy::too_many_arguments)]
pub fn matmul_strided(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
    accumulate: bool,
    threads: usize,
) {
    let reach = |len: usize, rows: usize, cols: usize, cs: usize, rs: usize| rows == 0 || cols == 0 || (cols - 1) * cs + (rows - 1) * rs < len;
    assert!(dst.len() >= m * n, "matmul_strided: destination too small");
    assert!(reach(lhs.0.len(), m, k, lhs.1, lhs.2) && reach(rhs.0.len(), k, n, rhs.1, rhs.2), "matmul_strided: operand out of range");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let par = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: the asserts bound every index the strides reach; `dst` does not alias the operands.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            m as isize,
            1,
            accumulate,
            lhs.0.as_ptr(),
            lhs.1 as isize,
            lhs.2 as isize,
            rhs.0.as_ptr(),
            rhs.1 as isize,
            rhs.2 as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / (1u32 << 24) as f32 - 0.5).collect()
    }

    /// With a layer's packed weights every product — on [`gemm_channels`] below
    /// [`CHANNEL_POSITIONS`] positions, on [`gemm_kernel`] above, or on the `gemm` crate where neither
    /// runs — gives the same bits for 1–4 threads, and where a kernel of ours runs, exactly the
    /// naive chain of fused multiply-adds over `k` in order, then bias and clamp.
    #[test]
    fn prepacked_products_equal_the_fma_chain_for_any_threads() {
        let ours = gemm_kernel::available() || gemm_kernel::avx2_available();
        for (m, k, n) in [(3136, 24, 144), (196, 384, 64), (196, 96, 576), (130, 33, 17), (49, 960, 160), (49, 320, 1280), (7, 64, 40), (1, 8, 20)] {
            let (a, b) = (filled(m * k, 4), filled(k * n, 5));
            let bias = filled(n, 6);
            let relu6 = Fused { bias: &bias, lo: 0.0, hi: 6.0 };
            let packs = PackedWeights::default();
            let mut whole = vec![f32::NAN; m * n];
            matmul_bands(&mut whole, &a, &b, m, k, n, 1, Some(&relu6), Some(&packs));
            for threads in [2, 3, 4] {
                let mut banded = vec![f32::NAN; m * n];
                matmul_bands(&mut banded, &a, &b, m, k, n, threads, Some(&relu6), Some(&packs));
                assert!(whole.iter().zip(&banded).all(|(x, y)| x.to_bits() == y.to_bits()), "{m}×{k}→{n}, {threads} bands");
            }
            let kernel = ours && (gemm_kernel::available() || m >= MIN_POSITIONS);
            for j in 0..n {
                for i in 0..m {
                    let chain = (0..k).fold(0.0f32, |acc, p| a[p * m + i].mul_add(b[j * k + p], acc));
                    let want = (chain + bias[j]).clamp(0.0, 6.0);
                    let got = whole[j * m + i];
                    if kernel {
                        assert_eq!(got.to_bits(), want.to_bits(), "{m}×{k}→{n} ({i}, {j})");
                    } else {
                        assert!((got - want).abs() <= 1e-4, "{m}×{k}→{n} ({i}, {j}): {got} vs {want}");
                    }
                }
            }
        }
    }

    /// Every 1×1 GEMM shape of MobileNetV2 1.0@224 (positions × in → out), split into 2–4 bands, equals
    /// the one-band product bit for bit, with and without the fused bias and ReLU6; and the one-band
    /// product equals a naive f64 loop to f32 rounding (the bias and clamp applied the same way).
    #[test]
    fn bands_equal_the_whole_product_bit_for_bit() {
        let shapes = [
            (12544, 32, 16),
            (12544, 16, 96),
            (3136, 96, 24),
            (3136, 24, 144),
            (3136, 144, 24),
            (784, 144, 32),
            (784, 32, 192),
            (784, 192, 32),
            (196, 192, 64),
            (196, 64, 384),
            (196, 384, 64),
            (196, 384, 96),
            (196, 96, 576),
            (196, 576, 96),
            (49, 576, 160),
            (49, 160, 960),
            (49, 960, 160),
            (49, 960, 320),
            (49, 320, 1280),
            (200, 27, 32),
            (25, 64, 128),
            (9, 320, 1280),
            (17, 33, 7),
            (40, 600, 150),
            (60, 700, 200),
        ];
        for (m, k, n) in shapes {
            let (a, b) = (filled(m * k, 1), filled(k * n, 2));
            let bias = filled(n, 3);
            let relu6 = Fused { bias: &bias, lo: 0.0, hi: 6.0 };
            for fused in [None, Some(&relu6)] {
                let mut whole = vec![f32::NAN; m * n];
                matmul_bands(&mut whole, &a, &b, m, k, n, 1, fused, None);
                for threads in [2, 3, 4] {
                    let mut banded = vec![f32::NAN; m * n];
                    matmul_bands(&mut banded, &a, &b, m, k, n, threads, fused, None);
                    assert!(whole.iter().zip(&banded).all(|(x, y)| x.to_bits() == y.to_bits()), "{m}×{k}→{n}, {threads} bands, fused {}", fused.is_some());
                }
                for j in 0..n {
                    for i in (0..m).step_by(7).chain([m - 1]) {
                        let dot: f64 = (0..k).map(|p| a[p * m + i] as f64 * b[j * k + p] as f64).sum();
                        let abs: f64 = (0..k).map(|p| (a[p * m + i] as f64 * b[j * k + p] as f64).abs()).sum();
                        let want = match fused {
                            Some(f) => (dot + f.bias[j] as f64).clamp(0.0, 6.0),
                            None => dot,
                        };
                        let got = whole[j * m + i] as f64;
                        assert!((got - want).abs() <= 1e-6 * (abs + 1.0), "{m}×{k}→{n} ({i}, {j}): {got} vs {want}");
                    }
                }
            }
        }
    }
}
