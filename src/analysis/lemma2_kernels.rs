//! Dense f64 kernels of the Lemma 2 check on the lower triangle of a symmetric n × n matrix stored
//! column-major (entry (i, j), i ≥ j, at `j·n + i`; the strict upper triangle is never read):
//! rank-k updates of the Gram matrix, Cholesky factorisation, and (on the mirrored matrix)
//! triangular solves and the symmetric matrix-vector product. All of them are one pattern, [`axpy_cols`]: a column segment
//! minus (or plus) a combination of other column segments, vectorised with FMA where the CPU has it.
//!
//! Each kernel carries the rounding-error bound that the certificate in
//! [`invertibility`](super::invertibility) needs ([`gamma`]): floating-point sums of N products
//! are within γ_N·Σ|products| of the exact sum in any order of evaluation (Higham, *Accuracy and
//! Stability of Numerical Algorithms*, 2nd ed., §3.1), and a Cholesky factorisation that completes
//! in floating point is the exact factor of `H + ΔH` with `|ΔH| ≤ γ_{n+1}|L||Lᵀ|` (ibid., Thm 10.3).

/// Unit roundoff of f64 (2⁻⁵³).
pub const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;

/// γ_k = k·u / (1 − k·u): the relative bound on k accumulated f64 roundings.
pub fn gamma(k: usize) -> f64 {
    let ku = k as f64 * UNIT_ROUNDOFF;
    ku / (1.0 - ku)
}

/// A matrix order, either known only at run time (`usize`) or fixed at compile time ([`Fixed`]).
/// Most positions of MobileNetV2 1.0 have n = 16, 24 or 32, where a kernel's loop overhead and
/// remainder handling cost more than its arithmetic: there, [`with_dim!`] runs a copy of the kernel
/// compiled for that n (every loop with a fixed trip count, the same operations in the same order,
/// so the results are the same to the bit).
trait Dim: Copy {
    fn n(self) -> usize;
}

impl Dim for usize {
    #[inline(always)]
    fn n(self) -> usize {
        self
    }
}

#[derive(Clone, Copy)]
struct Fixed<const N: usize>;

impl<const N: usize> Dim for Fixed<N> {
    #[inline(always)]
    fn n(self) -> usize {
        N
    }
}

/// Runs `$body` with `$d` bound to a [`Dim`] for the order `$n`: a [`Fixed`] one for 16, 24 and 32.
macro_rules! with_dim {
    ($n:expr, $d:ident => $body:expr) => {
        match $n {
            16 => {
                let $d = Fixed::<16>;
                $body
            }
            24 => {
                let $d = Fixed::<24>;
                $body
            }
            32 => {
                let $d = Fixed::<32>;
                $body
            }
            n => {
                let $d: usize = n;
                $body
            }
        }
    };
}

/// `dst[i] += Σ_t coef[t] · cols[t][i]`, four columns per pass (one load and store of `dst` per four
/// fused multiply-adds). `cols` are slices of at least `dst.len()` values.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn axpy_cols(dst: &mut [f64], cols: &[&[f64]], coef: &[f64]) {
    with_dim!(dst.len(), d => axpy(&mut dst[..d.n()], cols, coef))
}

/// [`axpy_cols`], inlined into the vectorised kernels below.
#[inline(always)]
fn axpy(dst: &mut [f64], cols: &[&[f64]], coef: &[f64]) {
    let len = dst.len();
    let mut t = 0;
    while t + 4 <= cols.len() {
        let (c0, c1, c2, c3) = (&cols[t][..len], &cols[t + 1][..len], &cols[t + 2][..len], &cols[t + 3][..len]);
        let (a0, a1, a2, a3) = (coef[t], coef[t + 1], coef[t + 2], coef[t + 3]);
        for i in 0..len {
            dst[i] = c3[i].mul_add(a3, c2[i].mul_add(a2, c1[i].mul_add(a1, c0[i].mul_add(a0, dst[i]))));
        }
        t += 4;
    }
    while t < cols.len() {
        let (c0, a0) = (&cols[t][..len], coef[t]);
        for i in 0..len {
            dst[i] = c0[i].mul_add(a0, dst[i]);
        }
        t += 1;
    }
}

/// Dot product of two equal-length slices with four independent accumulators.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    with_dim!(a.len().min(b.len()), d => dot_inl(&a[..d.n()], &b[..d.n()]))
}

#[inline(always)]
fn dot_inl(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [0.0f64; 4];
    let mut i = 0;
    while i + 4 <= len {
        for l in 0..4 {
            acc[l] = a[i + l].mul_add(b[i + l], acc[l]);
        }
        i += 4;
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    while i < len {
        s = a[i].mul_add(b[i], s);
        i += 1;
    }
    s
}

/// Rows × columns of the register tile of [`tile_update`].
const TILE_ROWS: usize = 8;
const TILE_COLS: usize = 4;

/// `g[c, r] += sign · Σ_{t<terms} b_t[r] · b_t[c]` (b_t = `base[t·n..]`, the columns of an n-row
/// column-major `base`) for the columns `c` in
/// `cols` and the rows `r ≥ c` of an n × n column-major `g` whose column `c` starts at
/// `(c − col_base)·n`. Works in 8 × 4 register tiles that sum all terms before touching `g` (a GEMM
/// micro-kernel); tiles on the diagonal also write some entries of the strict upper triangle, which
/// no kernel reads.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // fixed-size tiles: indices keep the loops unrollable
fn tile_update(n: impl Dim, g: &mut [f64], col_base: usize, cols: std::ops::Range<usize>, base: &[f64], terms: usize, sign: f64) {
    let n = n.n();
    for j0 in cols.clone().step_by(TILE_COLS) {
        let jc = TILE_COLS.min(cols.end - j0);
        let mut i0 = j0 / TILE_ROWS * TILE_ROWS;
        while i0 < n {
            if jc == TILE_COLS && i0 + TILE_ROWS <= n {
                let mut acc = [[0.0f64; TILE_ROWS]; TILE_COLS];
                for col in base[..terms * n].chunks_exact(n) {
                    let wi: &[f64; TILE_ROWS] = col[i0..i0 + TILE_ROWS].try_into().unwrap();
                    let vj: &[f64; TILE_COLS] = col[j0..j0 + TILE_COLS].try_into().unwrap();
                    for c in 0..TILE_COLS {
                        for r in 0..TILE_ROWS {
                            acc[c][r] = wi[r].mul_add(vj[c], acc[c][r]);
                        }
                    }
                }
                for c in 0..TILE_COLS {
                    let at = (j0 + c - col_base) * n + i0;
                    let col = &mut g[at..at + TILE_ROWS];
                    for r in 0..TILE_ROWS {
                        col[r] = acc[c][r].mul_add(sign, col[r]);
                    }
                }
            } else {
                // Edge tile: one entry at a time.
                for c in j0..j0 + jc {
                    for r in i0.max(c)..n.min(i0 + TILE_ROWS) {
                        let mut acc = 0.0f64;
                        for o in (0..terms).map(|t| t * n) {
                            acc = base[o + r].mul_add(base[o + c], acc);
                        }
                        let at = (c - col_base) * n + r;
                        g[at] = acc.mul_add(sign, g[at]);
                    }
                }
            }
            i0 += TILE_ROWS;
        }
    }
}

/// Packs the vectors b_t = `base[offs[t]..offs[t] + n]` for [`rank_update_lower`]: in panels of 8
/// rows, each panel holding its 8 rows of every b_t in turn (zeros past row n), so the register
/// tiles stream through memory in order.
///
/// # Panics
/// When a vector `base[offs[t]..offs[t] + n]` runs past the end of `base`.
pub fn pack_panels(n: usize, base: &[f64], offs: &[usize], pack: &mut Vec<f64>) {
    with_dim!(n, d => pack_panels_in(d, base, offs, pack))
}

#[inline(always)]
fn pack_panels_in(n: impl Dim, base: &[f64], offs: &[usize], pack: &mut Vec<f64>) {
    let n = n.n();
    let panels = n.div_ceil(TILE_ROWS);
    let terms = offs.len();
    pack.clear();
    pack.resize(panels * terms * TILE_ROWS, 0.0);
    for (t, &o) in offs.iter().enumerate() {
        let b = &base[o..o + n];
        // Whole panels as fixed-size copies (a `memcpy` call per 64 bytes cost more than the copy).
        let mut chunks = b.chunks_exact(TILE_ROWS);
        for (p, rows) in (&mut chunks).enumerate() {
            let at = (p * terms + t) * TILE_ROWS;
            let dst: &mut [f64; TILE_ROWS] = (&mut pack[at..at + TILE_ROWS]).try_into().unwrap();
            *dst = rows.try_into().unwrap();
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let at = ((n / TILE_ROWS) * terms + t) * TILE_ROWS;
            pack[at..at + rest.len()].copy_from_slice(rest);
        }
    }
}

/// `G += sign · Σ_t b_t b_tᵀ` on the lower triangle of `g` (n × n), the b_t packed by
/// [`pack_panels`]. Works in 8 × 4 register tiles that sum all terms before touching `g` (a GEMM
/// micro-kernel); tiles on the diagonal also write some entries of the strict upper triangle, which
/// no kernel reads.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
#[allow(clippy::needless_range_loop)] // fixed-size tiles: indices keep the loops unrollable
pub fn rank_update_lower(n: usize, g: &mut [f64], pack: &[f64], sign: f64) {
    with_dim!(n, d => rank_update_in(d, g, pack, sign))
}

#[inline(always)]
#[allow(clippy::needless_range_loop)] // fixed-size tiles: indices keep the loops unrollable
fn rank_update_in(n: impl Dim, g: &mut [f64], pack: &[f64], sign: f64) {
    let n = n.n();
    let panels = n.div_ceil(TILE_ROWS);
    let terms = if panels == 0 { 0 } else { pack.len() / (panels * TILE_ROWS) };
    if terms == 0 {
        return;
    }
    let panel = |p: usize| &pack[p * terms * TILE_ROWS..(p + 1) * terms * TILE_ROWS];
    for j0 in (0..n).step_by(TILE_COLS) {
        let (pj, jo) = (j0 / TILE_ROWS, (j0 % TILE_ROWS) & TILE_COLS);
        let vp = panel(pj);
        for p in pj..panels {
            let i0 = p * TILE_ROWS;
            let mut acc = [[0.0f64; TILE_ROWS]; TILE_COLS];
            for (w8, v8) in panel(p).chunks_exact(TILE_ROWS).zip(vp.chunks_exact(TILE_ROWS)) {
                let v4 = &v8[jo..jo + TILE_COLS];
                for c in 0..TILE_COLS {
                    for r in 0..TILE_ROWS {
                        acc[c][r] = w8[r].mul_add(v4[c], acc[c][r]);
                    }
                }
            }
            let (rows, cols) = ((n - i0).min(TILE_ROWS), (n - j0).min(TILE_COLS));
            for c in 0..cols {
                let col = &mut g[(j0 + c) * n + i0..(j0 + c) * n + i0 + rows];
                for r in 0..rows {
                    col[r] = acc[c][r].mul_add(sign, col[r]);
                }
            }
        }
    }
}

/// In-place Cholesky factorisation `A = L Lᵀ` of the lower triangle of `a`, by panels of four
/// columns: each panel first takes the update from all columns to its left in register tiles
/// ([`tile_update`]), then is factorised column by column. Returns false, leaving `a` partly
/// overwritten, when a pivot is not positive (A is not positive definite in floating point).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn cholesky_lower(n: usize, a: &mut [f64]) -> bool {
    if super::lemma2_avx512::mirrors(n) {
        return super::lemma2_avx512::cholesky(n, a);
    }
    with_dim!(n, d => cholesky_in(d, a))
}

#[inline(always)]
fn cholesky_in(dim: impl Dim, a: &mut [f64]) -> bool {
    let n = dim.n();
    debug_assert!(a.len() >= n * n);
    for j0 in (0..n).step_by(TILE_COLS) {
        let j1 = (j0 + TILE_COLS).min(n);
        let (left, right) = a.split_at_mut(j0 * n);
        // a[j0.., j0..j1] −= L[j0.., 0..j0] · L[j0..j1, 0..j0]ᵀ
        tile_update(dim, right, j0, j0..j1, left, j0, -1.0);
        for j in j0..j1 {
            let (done, rest) = right.split_at_mut((j - j0) * n);
            let dst = &mut rest[j..n];
            for k in j0..j {
                let col = &done[(k - j0) * n + j..(k - j0) * n + n];
                let c = -col[0];
                axpy(dst, &[col], &[c]);
            }
            let d = dst[0];
            if !(d > 0.0) {
                return false;
            }
            let l = d.sqrt();
            dst[0] = l;
            dst[1..].iter_mut().for_each(|v| *v /= l);
        }
    }
    true
}

/// Copies the strict lower triangle of `a` (n × n, column-major) onto the strict upper one: a
/// symmetric matrix whole, or a Cholesky factor L with Lᵀ above it for [`cholesky_solve`].
///
/// # Panics
/// When `a` holds fewer than n² values.
pub fn mirror_lower(n: usize, a: &mut [f64]) {
    assert!(n.checked_mul(n).is_some_and(|nn| a.len() >= nn), "mirror_lower: {} values for n = {n}", a.len());
    if super::lemma2_avx512::mirrors(n) {
        return super::lemma2_avx512::mirror(n, a);
    }
    with_dim!(n, d => mirror_in(d, a))
}

/// [`mirror_lower`] once `a` is known to hold n² values.
#[inline(always)]
fn mirror_in(n: impl Dim, a: &mut [f64]) {
    let n = n.n();
    // In 8 × 8 blocks, so the strided reads stay within a few cache lines.
    const B: usize = 8;
    let p = a.as_mut_ptr();
    for jb in (0..n).step_by(B) {
        for ib in (jb..n).step_by(B) {
            for i in ib..(ib + B).min(n) {
                for j in jb..(jb + B).min(i) {
                    // SAFETY: i, j < n, so both indices are below n² ≤ a.len() (asserted above);
                    // unchecked, the small-n mirrors (most positions) cost half as much.
                    unsafe { *p.add(i * n + j) = *p.add(j * n + i) };
                }
            }
        }
    }
}

/// Solves `L Lᵀ x = b` in place (`b` becomes x) with the factor from [`cholesky_lower`], mirrored
/// by [`mirror_lower`] (so both substitutions run down contiguous columns). `inv` is a buffer for
/// the reciprocals of the diagonal (one division per row instead of one per substitution step).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn cholesky_solve(n: usize, l: &[f64], inv: &mut Vec<f64>, b: &mut [f64]) {
    with_dim!(n, d => solve_many(d, l, inv, [b]))
}

/// [`cholesky_solve`] for two right-hand sides in one pass over the factor: their substitution
/// chains are independent, so the second one runs in the latency of the first.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn cholesky_solve2(n: usize, l: &[f64], inv: &mut Vec<f64>, b: &mut [f64], c: &mut [f64]) {
    if super::lemma2_avx512::takes(n) {
        inv.clear();
        inv.extend((0..n).map(|j| 1.0 / l[j * n + j]));
        return super::lemma2_avx512::solve2(n, l, inv, b, c);
    }
    with_dim!(n, d => solve_many(d, l, inv, [b, c]))
}

#[inline(always)]
fn solve_many<const R: usize>(n: impl Dim, l: &[f64], inv: &mut Vec<f64>, mut bs: [&mut [f64]; R]) {
    let n = n.n();
    inv.clear();
    inv.extend((0..n).map(|j| 1.0 / l[j * n + j]));
    for j in 0..n {
        let col = &l[j * n + j + 1..j * n + n];
        for b in bs.iter_mut() {
            let bj = b[j] * inv[j];
            b[j] = bj;
            for (x, c) in b[j + 1..n].iter_mut().zip(col) {
                *x = c.mul_add(-bj, *x);
            }
        }
    }
    for j in (0..n).rev() {
        // Column j of Lᵀ above the diagonal: row j of L.
        let col = &l[j * n..j * n + j];
        for b in bs.iter_mut() {
            let bj = b[j] * inv[j];
            b[j] = bj;
            for (x, c) in b[..j].iter_mut().zip(col) {
                *x = c.mul_add(-bj, *x);
            }
        }
    }
}

/// Rows of the register block of [`symv`].
const SYMV_ROWS: usize = 16;

/// `out = G v` for a whole (mirrored) symmetric matrix G: 16 rows at a time held in registers
/// while every column passes.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
#[allow(clippy::needless_range_loop)] // fixed-size blocks: indices keep the loops unrollable
pub fn symv(n: usize, g: &[f64], v: &[f64], out: &mut [f64]) {
    with_dim!(n, d => symv_in(d, g, v, out))
}

#[inline(always)]
#[allow(clippy::needless_range_loop)] // fixed-size blocks: indices keep the loops unrollable
fn symv_in(n: impl Dim, g: &[f64], v: &[f64], out: &mut [f64]) {
    let n = n.n();
    let mut r0 = 0;
    while r0 + SYMV_ROWS <= n {
        let mut acc = [0.0f64; SYMV_ROWS];
        for j in 0..n {
            let col: &[f64; SYMV_ROWS] = g[j * n + r0..j * n + r0 + SYMV_ROWS].try_into().unwrap();
            let vj = v[j];
            for r in 0..SYMV_ROWS {
                acc[r] = col[r].mul_add(vj, acc[r]);
            }
        }
        out[r0..r0 + SYMV_ROWS].copy_from_slice(&acc);
        r0 += SYMV_ROWS;
    }
    if r0 < n {
        let rest = &mut out[r0..n];
        rest.iter_mut().for_each(|o| *o = 0.0);
        for j in 0..n {
            let vj = v[j];
            for (o, c) in rest.iter_mut().zip(&g[j * n + r0..j * n + n]) {
                *o = c.mul_add(vj, *o);
            }
        }
    }
}

/// Frobenius norm of a symmetric matrix given by its lower triangle.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub fn frobenius_lower(n: usize, g: &[f64]) -> f64 {
    with_dim!(n, d => frobenius_in(d, g))
}

#[inline(always)]
fn frobenius_in(n: impl Dim, g: &[f64]) -> f64 {
    let n = n.n();
    let mut diag = 0.0;
    let mut off = 0.0;
    for j in 0..n {
        let col = &g[j * n + j..j * n + n];
        diag += col[0] * col[0];
        off += dot_inl(&col[1..], &col[1..]);
    }
    (diag + 2.0 * off).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    /// A random n × k matrix (column-major).
    fn random(n: usize, k: usize, seed: u64) -> DMatrix<f64> {
        let mut s = seed;
        DMatrix::from_fn(n, k, |_, _| lcg(&mut s))
    }

    #[test]
    fn rank_update_matches_naive_outer_products() {
        for &(n, terms) in &[(1, 1), (5, 3), (8, 4), (16, 9), (33, 17), (70, 8), (24, 0)] {
            let w = random(n, terms, n as u64 * 31 + terms as u64);
            let sign: Vec<f64> = (0..terms).map(|t| if t % 3 == 1 { -1.0 } else { 1.0 }).collect();
            let start = random(n, n, 7);
            let mut g = start.as_slice().to_vec();
            let (plus, minus): (Vec<usize>, Vec<usize>) = (0..terms).map(|t| t * n).partition(|o| sign[o / n] > 0.0);
            let mut pack = Vec::new();
            pack_panels(n, w.as_slice(), &plus, &mut pack);
            rank_update_lower(n, &mut g, &pack, 1.0);
            pack_panels(n, w.as_slice(), &minus, &mut pack);
            rank_update_lower(n, &mut g, &pack, -1.0);
            for j in 0..n {
                for i in j..n {
                    let mut want = start[(i, j)];
                    for t in 0..terms {
                        want += sign[t] * w[(i, t)] * w[(j, t)];
                    }
                    assert!((g[j * n + i] - want).abs() <= 1e-13 * (1.0 + want.abs()), "n={n} ({i},{j}): {} vs {want}", g[j * n + i]);
                }
            }
        }
    }

    #[test]
    fn cholesky_solve_and_symv_match_nalgebra() {
        for &n in &[1usize, 2, 7, 8, 9, 31, 64] {
            let b = random(n, 2 * n + 3, n as u64);
            let g = &b * b.transpose();
            let mut a = g.as_slice().to_vec();
            assert!(cholesky_lower(n, &mut a), "n={n}");
            let want = g.clone().cholesky().unwrap().l();
            for j in 0..n {
                for i in j..n {
                    assert!((a[j * n + i] - want[(i, j)]).abs() <= 1e-12 * want[(j, j)].abs().max(1.0), "n={n} L({i},{j})");
                }
            }
            let rhs: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut x = rhs.clone();
            mirror_lower(n, &mut a);
            for j in 0..n {
                for i in 0..j {
                    assert_eq!(a[j * n + i], a[i * n + j], "n={n} mirror ({i},{j})");
                }
            }
            let mut inv = Vec::new();
            cholesky_solve(n, &a, &mut inv, &mut x);
            let back = &g * nalgebra::DVector::from_vec(x.clone());
            for i in 0..n {
                assert!((back[i] - rhs[i]).abs() <= 1e-9, "n={n} residual {}", back[i] - rhs[i]);
            }
            // Two right-hand sides at once give each one's own solution, bit for bit.
            let other: Vec<f64> = (0..n).map(|i| (i as f64 * 1.3).cos()).collect();
            let (mut p, mut q) = (rhs.clone(), other.clone());
            cholesky_solve2(n, &a, &mut inv, &mut p, &mut q);
            let mut alone = other.clone();
            cholesky_solve(n, &a, &mut inv, &mut alone);
            assert_eq!((&p, &q), (&x, &alone), "n={n}");
            let mut out = vec![0.0; n];
            symv(n, g.as_slice(), &rhs, &mut out);
            let want = &g * nalgebra::DVector::from_vec(rhs.clone());
            for i in 0..n {
                assert!((out[i] - want[i]).abs() <= 1e-12 * (1.0 + want[i].abs()));
            }
            assert!((frobenius_lower(n, g.as_slice()) - g.norm()).abs() <= 1e-12 * g.norm());
        }
    }

    #[test]
    fn the_avx512_kernels_equal_the_loops_to_the_bit() {
        for &n in &[8usize, 16, 24, 32, 40, 64, 96, 160] {
            let b = random(n, 2 * n + 5, 100 + n as u64);
            let g = &b * b.transpose();
            // The dispatching kernels (AVX-512 where the CPU has it) against the plain loops.
            let (mut fast, mut slow) = (g.as_slice().to_vec(), g.as_slice().to_vec());
            assert!(cholesky_lower(n, &mut fast) && cholesky_in(n, &mut slow), "n={n}");
            for j in 0..n {
                assert_eq!(fast[j * n + j..j * n + n], slow[j * n + j..j * n + n], "n={n}: column {j} of L");
            }
            let mut mirrored = fast.clone();
            mirror_lower(n, &mut mirrored);
            mirror_in(n, &mut fast);
            assert_eq!(mirrored, fast, "n={n}: mirror");
            let p0: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let q0: Vec<f64> = (0..n).map(|i| (i as f64 * 1.3).cos()).collect();
            let (mut p, mut q, mut pl, mut ql) = (p0.clone(), q0.clone(), p0, q0);
            let mut inv = Vec::new();
            cholesky_solve2(n, &fast, &mut inv, &mut p, &mut q);
            solve_many(n, &fast, &mut inv, [&mut pl[..], &mut ql[..]]);
            assert_eq!((p, q), (pl, ql), "n={n}: solves");
            // A matrix that is not positive definite in a late panel fails in both.
            let (mut fast, mut slow) = (g.as_slice().to_vec(), g.as_slice().to_vec());
            fast[(n - 3) * n + n - 3] = -1.0;
            slow[(n - 3) * n + n - 3] = -1.0;
            assert!(!cholesky_lower(n, &mut fast) && !cholesky_in(n, &mut slow), "n={n}: indefinite");
        }
    }

    #[test]
    fn cholesky_rejects_indefinite_and_singular_matrices() {
        // [[1, 2], [2, 1]] has eigenvalues 3 and −1.
        assert!(!cholesky_lower(2, &mut [1.0, 2.0, 2.0, 1.0]));
        // Rank one: the second pivot is exactly 0.
        assert!(!cholesky_lower(2, &mut [1.0, 2.0, 2.0, 4.0]));
        assert!(!cholesky_lower(1, &mut [0.0]));
        assert!(!cholesky_lower(1, &mut [f64::NAN]));
        // Past the first panels: a 13 × 13 matrix, positive definite but for one entry.
        let n = 13;
        let b = random(n, 2 * n, 3);
        let g = &b * b.transpose();
        let mut a = g.as_slice().to_vec();
        assert!(cholesky_lower(n, &mut a));
        let mut a = g.as_slice().to_vec();
        a[10 * n + 10] = -1.0; // indefinite
        assert!(!cholesky_lower(n, &mut a));
        let mut a = g.as_slice().to_vec();
        a[3 * n + 11] = f64::NAN; // a NaN below the diagonal, in a later panel
        assert!(!cholesky_lower(n, &mut a));
    }

    #[test]
    fn gamma_is_the_textbook_bound() {
        assert_eq!(gamma(0), 0.0);
        let g = gamma(1000);
        assert!((g - 1000.0 * 2f64.powi(-53) / (1.0 - 1000.0 * 2f64.powi(-53))).abs() < 1e-30);
    }
}
