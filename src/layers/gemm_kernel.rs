//! The register-tiled GEMM behind every 1×1 convolution (and the stem's im2col product) on CPUs with
//! AVX-512: `out (m×n) = act(a (m×k) · b (k×n) + bias)`, column-major, the BN bias and the activation
//! applied to each 48 × 8 tile while it is still in registers (no second pass over the output).
//!
//! Positions are the vector dimension (three 16-lane vectors per tile), output channels the broadcast
//! one (eight per tile, from `b` packed once per call into panels of eight). Each output element is
//! one chain of fused multiply-adds over `k` in order, whatever the tile, band or thread that computes
//! it — so the result does not depend on how the rows are split. Machines without AVX-512 use the
//! AVX2 kernel of [`super::gemm_avx2`] (24 × 4 tiles), machines without either the `gemm` crate
//! ([`super::matmul`]).

/// The BN-folded bias and the activation's clamp `[lo, hi]` fused into the product's stores.
#[derive(Clone, Copy, Debug)]
pub struct Fused<'a> {
    pub bias: &'a [f32],
    pub lo: f32,
    pub hi: f32,
}

/// What a tile does with its sums on the way to `out`.
#[derive(Clone, Copy, Debug)]
pub enum Epilogue<'a> {
    /// Stores them: `out = a · b`.
    Store,
    /// Adds the bias and clamps ([`Fused`]): `out = act(a · b + bias)`.
    Fused(&'a Fused<'a>),
    /// Adds them to what `out` holds: `out += a · b` (split execution's projection, summed over the
    /// slices of the expansion).
    Accumulate,
}

impl<'a> From<Option<&'a Fused<'a>>> for Epilogue<'a> {
    fn from(fused: Option<&'a Fused<'a>>) -> Self {
        fused.map_or(Epilogue::Store, Epilogue::Fused)
    }
}

/// Output channels per tile (the broadcast operand).
pub const NR: usize = 8;
/// f32 lanes of one AVX-512 vector.
const LANES: usize = 16;
/// Vectors of positions per full tile.
const MV: usize = 3;
/// Positions per full tile.
pub const MR: usize = MV * LANES;
/// Bytes of `a` a block of rows may span before the panels sweep it again (half of a 1 MiB L2).
const BLOCK_BYTES: usize = 512 * 1024;

/// Whether this machine runs the kernel (AVX-512F, detected once).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Products over fewer positions than this stay with the `gemm` crate, whose 64-row kernel loses
/// less at the edge of 49 or 196 positions than a 48-row tile does (measured: 84 against 67 GFLOP/s
/// at 49 positions; a channel-vector tile did worse still).
pub const MIN_POSITIONS: usize = 256;

/// `b` (k×n, column-major) packed once per product in panels of `nr` columns ([`NR`] for the
/// AVX-512 kernel, [`super::gemm_avx2::NR`] for the AVX2 one): panel `q` holds, for each `p` in
/// `0..k`, the row `b[p, q·nr .. q·nr + nr]` (zeros past `n`).
#[derive(Clone, Debug, Default)]
pub struct PackedB {
    data: Vec<f32>,
    k: usize,
    n: usize,
    nr: usize,
}

impl PackedB {
    /// The depth `k` and the column count `n` it was packed for.
    pub fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// Packs `b` (column stride `ldb`) for the kernel [`gemm_rows`] runs here, reusing the allocation.
    pub fn pack(&mut self, b: &[f32], k: usize, n: usize, ldb: usize) {
        self.pack_for(available(), b, k, n, ldb)
    }

    /// Packs `b` for the AVX-512 kernel (`avx512`) or the AVX2 one.
    pub fn pack_for(&mut self, avx512: bool, b: &[f32], k: usize, n: usize, ldb: usize) {
        let nr = panel_width(avx512);
        let panels = n.div_ceil(nr);
        (self.k, self.n, self.nr) = (k, n, nr);
        self.data.clear();
        self.data.resize(panels * k * nr, 0.0);
        for q in 0..panels {
            let panel = &mut self.data[q * k * nr..(q + 1) * k * nr];
            for j in 0..nr.min(n - q * nr) {
                let col = &b[(q * nr + j) * ldb..][..k];
                for (p, &v) in col.iter().enumerate() {
                    panel[p * nr + j] = v;
                }
            }
        }
    }
}

/// Columns per packed panel of the AVX-512 kernel (`avx512`) or the AVX2 one.
fn panel_width(avx512: bool) -> usize {
    #[cfg(target_arch = "x86_64")]
    if !avx512 {
        return super::gemm_avx2::NR;
    }
    let _ = avx512;
    NR
}

/// Whether [`gemm_rows`] runs here: AVX-512F, or else AVX2 and FMA ([`super::gemm_avx2`]).
pub fn rows_available() -> bool {
    available() || avx2_available()
}

/// Whether the AVX2 kernel can run here (whether or not AVX-512 takes precedence).
pub fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::gemm_avx2::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Rows `r0..r1` of `out = a · b`, `act(a · b + bias)` or `out + a · b` (the [`Epilogue`]): `a` column
/// stride `lda`, `out` column stride `ldc`; on the AVX-512 kernel where the machine has it, else on
/// the AVX2 one (the same bits). Rows outside `r0..r1` are neither read nor written.
///
/// # Safety
/// [`rows_available`] must be true; `a` must hold every `(i, p)` with `i < r1`, `p < k` at
/// `p·lda + i`, `out` every `(i, j)`, `j < n`, at `j·ldc + i`; `out` must not alias `a`; a
/// [`Epilogue::Fused`] bias must hold `n` values.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_rows(a: *const f32, lda: usize, packed: &PackedB, out: *mut f32, ldc: usize, r0: usize, r1: usize, epilogue: Epilogue) {
    // SAFETY: forwarded from the caller.
    unsafe { gemm_rows_on(available(), a, lda, packed, out, ldc, r0, r1, epilogue) }
}

/// [`gemm_rows`] on the AVX-512 kernel (`avx512`) or the AVX2 one.
///
/// # Safety
/// The chosen kernel's instruction set must be present ([`available`], [`avx2_available`]); the
/// operands as for [`gemm_rows`].
///
/// # Panics
/// When `packed` was packed for the other kernel (see [`PackedB::pack_for`]).
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_rows_on(avx512: bool, a: *const f32, lda: usize, packed: &PackedB, out: *mut f32, ldc: usize, r0: usize, r1: usize, epilogue: Epilogue) {
    assert_eq!(packed.nr, panel_width(avx512), "gemm_rows_on: b was packed for the other kernel");
    #[cfg(target_arch = "x86_64")]
    {
        let (k, n, data) = (packed.k, packed.n, packed.data.as_slice());
        // SAFETY: forwarded from the caller.
        unsafe {
            if avx512 {
                avx512::gemm_rows(a, lda, data, k, n, out, ldc, r0, r1, 0..n.div_ceil(NR), epilogue)
            } else {
                super::gemm_avx2::gemm_rows(a, lda, data, k, n, out, ldc, r0, r1, epilogue)
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (avx512, a, lda, packed, out, ldc, r0, r1, epilogue);
        unreachable!("gemm_kernel::rows_available() is false off x86_64")
    }
}

/// Output channels `c0..c1` (`c0`, and `c1` unless it is `n`, multiples of [`NR`]) of `out = a · b` or its [`Epilogue`], every
/// row `0..m`, on the AVX-512 kernel: the same tiles and bits as [`gemm_rows`], split by panels of
/// channels instead of rows. At batch 1 a 196-position product has four 48-row tiles, too few to
/// balance two threads by rows, and every row band streams all of `b`; a channel band streams only
/// its panels.
///
/// # Safety
/// [`available`] must be true; the operands as for [`gemm_rows`] with `r1 = m`.
///
/// # Panics
/// When `packed` was not packed for the AVX-512 kernel, or the channel range is not as above.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_channel_bands(a: *const f32, lda: usize, packed: &PackedB, out: *mut f32, ldc: usize, m: usize, c0: usize, c1: usize, epilogue: Epilogue) {
    assert_eq!(packed.nr, NR, "gemm_channel_bands: b was not packed for the AVX-512 kernel");
    assert!(
        c0.is_multiple_of(NR) && c0 <= c1 && (c1.is_multiple_of(NR) || c1 == packed.n) && c1 <= packed.n,
        "gemm_channel_bands: channels {c0}..{c1} of {}",
        packed.n
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: forwarded from the caller.
    unsafe {
        avx512::gemm_rows(a, lda, &packed.data, packed.k, packed.n, out, ldc, 0, m, c0 / NR..c1.div_ceil(NR), epilogue)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, lda, out, ldc, m, epilogue);
        unreachable!("gemm_kernel::available() is false off x86_64")
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Epilogue, BLOCK_BYTES, LANES, MR, MV, NR};

    /// See [`super::gemm_rows`].
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm_rows(
        a: *const f32,
        lda: usize,
        packed: &[f32],
        k: usize,
        n: usize,
        out: *mut f32,
        ldc: usize,
        r0: usize,
        r1: usize,
        panels: std::ops::Range<usize>,
        epilogue: Epilogue,
    ) {
        let block = (BLOCK_BYTES / (4 * k.max(1)) / MR * MR).max(MR);
        let mut b0 = r0;
        while b0 < r1 {
            let b1 = (b0 + block).min(r1);
            // SAFETY: forwarded from the caller.
            unsafe { block_panels(a.add(b0), lda, MR, b1 - b0, packed, k, n, panels.clone(), out.add(b0), ldc, epilogue) };
            b0 = b1;
        }
    }

    /// Panels `panels` of `b` against `rows` rows of `a` whose tile `t` starts at `a + t·tile_step`,
    /// row `p` of a tile `lda` further.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block_panels(
        a: *const f32,
        lda: usize,
        tile_step: usize,
        rows: usize,
        packed: &[f32],
        k: usize,
        n: usize,
        panels: std::ops::Range<usize>,
        out: *mut f32,
        ldc: usize,
        epilogue: Epilogue,
    ) {
        let end = panels.end;
        for q in panels {
            let bp = packed.as_ptr().add(q * k * NR);
            let cols = NR.min(n - q * NR);
            let c = out.add(q * NR * ldc);
            // The first tile of a panel fetches the next panel into L2 (at batch 1 the weights of the
            // late layers come from L3 or memory).
            let next = if q + 1 < end { packed.as_ptr().add((q + 1) * k * NR) } else { std::ptr::null() };
            let mut t = 0;
            while (t + 1) * MR <= rows {
                let pf = if t == 0 { next } else { std::ptr::null() };
                // SAFETY: rows t·MR.. < rows and columns q·NR.. < n are in range (caller).
                unsafe { tile::<MV>(a.add(t * tile_step), lda, bp, k, c.add(t * MR), ldc, cols, [u16::MAX; MV], [u16::MAX; MV], q * NR, epilogue, pf) };
                t += 1;
            }
            let next = if t == 0 { next } else { std::ptr::null() };
            let rest = rows - t * MR;
            if rest > 0 {
                let st = tail_masks(rest);
                let ld = st;
                let (ap, cp) = (a.add(t * tile_step), c.add(t * MR));
                // SAFETY: the masks cover only rows < rows.
                unsafe {
                    match rest.div_ceil(LANES) {
                        1 => tile::<1>(ap, lda, bp, k, cp, ldc, cols, [ld[0]], [st[0]], q * NR, epilogue, next),
                        2 => tile::<2>(ap, lda, bp, k, cp, ldc, cols, [ld[0], ld[1]], [st[0], st[1]], q * NR, epilogue, next),
                        _ => tile::<3>(ap, lda, bp, k, cp, ldc, cols, ld, st, q * NR, epilogue, next),
                    }
                }
            }
        }
    }

    /// Lane masks of the vectors of a partial tile of `rest` (< [`MR`]) rows.
    fn tail_masks(rest: usize) -> [u16; MV] {
        let mut m = [0u16; MV];
        for (v, mask) in m.iter_mut().enumerate() {
            let lanes = rest.saturating_sub(v * LANES).min(LANES);
            *mask = if lanes == LANES { u16::MAX } else { (1u16 << lanes) - 1 };
        }
        m
    }

    /// One tile of `V` vectors of rows × `cols` (≤ [`NR`]) columns: the k-loop in registers, then the
    /// epilogue (the bias and the clamp, or the add of `out`'s values, loaded with the store masks)
    /// and the (masked) stores. A non-null `next` (a packed panel of `k·NR` values) is prefetched
    /// into L2 along the way, a 64-byte line every other step.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)] // register tiles read best by index
    unsafe fn tile<const V: usize>(
        a: *const f32,
        lda: usize,
        bp: *const f32,
        k: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        masks: [u16; V],
        store: [u16; V],
        col0: usize,
        epilogue: Epilogue,
        next: *const f32,
    ) {
        let mut acc = [[_mm512_setzero_ps(); NR]; V];
        let full = masks.iter().all(|&m| m == u16::MAX);
        let mut ap = a;
        let mut bq = bp;
        // `full` is loop-invariant: the compiler unswitches it, so whole tiles load without masks.
        for p in 0..k {
            if !next.is_null() && p % 2 == 0 {
                _mm_prefetch::<_MM_HINT_T1>(next.add(p * NR) as *const i8);
            }
            let mut av = [_mm512_setzero_ps(); V];
            for (v, x) in av.iter_mut().enumerate() {
                *x = if full { _mm512_loadu_ps(ap.add(v * LANES)) } else { _mm512_maskz_loadu_ps(masks[v], ap.add(v * LANES)) };
            }
            for j in 0..NR {
                let b = _mm512_set1_ps(*bq.add(j));
                for v in 0..V {
                    acc[v][j] = _mm512_fmadd_ps(av[v], b, acc[v][j]);
                }
            }
            ap = ap.add(lda);
            bq = bq.add(NR);
        }
        // Column by column with literal indices: a loop over the columns was left rolled, indexing
        // `acc` at run time, so the accumulators went through the stack (24 stores and loads and a
        // 1.5 KiB memset per tile; measured 2.4% of a batch-1 forward).
        macro_rules! columns {
            ($($j:literal)*) => {$(
                if $j < cols {
                    let col = c.add($j * ldc);
                    for v in 0..V {
                        let mut x = acc[v][$j];
                        match epilogue {
                            Epilogue::Store => {}
                            Epilogue::Fused(f) => {
                                x = _mm512_add_ps(x, _mm512_set1_ps(f.bias[col0 + $j]));
                                x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(f.lo)), _mm512_set1_ps(f.hi));
                            }
                            Epilogue::Accumulate => x = _mm512_add_ps(_mm512_maskz_loadu_ps(store[v], col.add(v * LANES)), x),
                        }
                        _mm512_mask_storeu_ps(col.add(v * LANES), store[v], x);
                    }
                }
            )*};
        }
        const _: () = assert!(NR == 8, "columns! lists NR literals");
        columns!(0 1 2 3 4 5 6 7);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel against a naive loop on edge shapes: rows that end mid-vector and mid-tile, columns
    /// that end mid-panel, `a` and `out` wider than the rows computed (bands), with the fused bias and
    /// ReLU6, without, and adding to `out`; the AVX-512 and the AVX2 kernel, each where the machine has it (skipped,
    /// and said so, where it has neither).
    #[test]
    fn kernel_equals_naive_loop_on_edge_shapes() {
        let kernels: Vec<bool> = [true, false].into_iter().filter(|&avx512| if avx512 { available() } else { avx2_available() }).collect();
        if kernels.is_empty() {
            eprintln!("no AVX-512 or AVX2 here: the gemm crate serves every product");
            return;
        }
        for avx512 in kernels {
            for (m, k, n, r0, r1) in [(300, 5, 13, 0, 300), (300, 17, 8, 48, 251), (257, 1, 1, 1, 257), (96, 33, 24, 0, 47), (600, 200, 9, 17, 599)] {
                let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 997) as f32 / 997.0 - 0.5).collect();
                let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 991) as f32 / 991.0 - 0.5).collect();
                let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.3 - 1.0).collect();
                let mut packed = PackedB::default();
                packed.pack_for(avx512, &b, k, n, k);
                for fused in [None, Some(Fused { bias: &bias, lo: 0.0, hi: 0.75 })] {
                    let mut out = vec![f32::NAN; m * n];
                    // SAFETY: the kernel's instruction set is present; a is m×k and out m×n, column-major.
                    unsafe { gemm_rows_on(avx512, a.as_ptr(), m, &packed, out.as_mut_ptr(), m, r0, r1, fused.as_ref().into()) };
                    for j in 0..n {
                        for i in 0..m {
                            let got = out[j * m + i];
                            if !(r0..r1).contains(&i) {
                                assert!(got.is_nan(), "row {i} outside {r0}..{r1} was written");
                                continue;
                            }
                            let mut want = (0..k).fold(0.0f32, |acc, p| a[p * m + i].mul_add(b[j * k + p], acc));
                            if let Some(f) = &fused {
                                want = (want + f.bias[j]).max(f.lo).min(f.hi);
                            }
                            assert_eq!(got.to_bits(), want.to_bits(), "avx512 {avx512}: {m}×{k}→{n} ({i}, {j})");
                        }
                    }
                }
                // Accumulate: the sums added to what `out` held, rows outside r0..r1 untouched.
                let before: Vec<f32> = (0..m * n).map(|i| ((i * 31) % 17) as f32 * 0.25 - 2.0).collect();
                let mut out = before.clone();
                // SAFETY: as above.
                unsafe { gemm_rows_on(avx512, a.as_ptr(), m, &packed, out.as_mut_ptr(), m, r0, r1, Epilogue::Accumulate) };
                for j in 0..n {
                    for i in 0..m {
                        let sum = (0..k).fold(0.0f32, |acc, p| a[p * m + i].mul_add(b[j * k + p], acc));
                        let want = if (r0..r1).contains(&i) { before[j * m + i] + sum } else { before[j * m + i] };
                        assert_eq!(out[j * m + i].to_bits(), want.to_bits(), "accumulate, avx512 {avx512}: {m}×{k}→{n} ({i}, {j})");
                    }
                }
            }
        }
    }
}
