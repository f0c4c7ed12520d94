//! Lemma 2 of Sandler et al. 2018 at every position of every expansion layer.
//!
//! For an expansion `y = B x + b` (B: m×n with BatchNorm folded in) followed by a ReLU-type
//! activation, let S be the active set at one position: `{i : 0 < y_i < cap}` (the linear region of
//! ReLU6; the positive set for ReLU). The activation output determines `x` — the layer is invertible
//! there — iff `|S| ≥ n` and `rank(B_S) = n` ([`lemma2_check`]). Then `x = B_S⁺ (y_S − b_S)`.
//!
//! **Numerical rank** follows NumPy/PyTorch's `matrix_rank` default: σ_i counts when
//! `σ_i > σ_max · max(|S|, n) · ε`, with ε the machine epsilon of the weights' dtype (f32;
//! [`RANK_EPS`]). **Speed without changing verdicts:** the Gram matrix `G = B_Sᵀ B_S` is kept in f64
//! and carried from one position to the next by the rows that enter and leave S
//! ([`GramTracker`](super::lemma2_gram::GramTracker): a rank-d update instead of `|S|` outer
//! products), with a proven bound `e` on its accumulated rounding. Its eigenvalues are `σ_i(B_S)²`.
//! σ_min exceeds the tolerance τ iff `G − τ²I` is positive definite, which one Cholesky
//! factorisation decides: a factorisation of `Ĝ − (τ² + e + c)I` that completes proves it, `c`
//! bounding the factorisation's own rounding ([`lemma2_verdict`]; both bounds are far below τ² ≈
//! (max(|S|,n)·ε_f32·σ_max)²). Positions within [`BORDERLINE_MARGIN`] of the tolerance, and
//! rank-deficient ones, are decided by an exact f64 SVD of `B_S`, as `matrix_rank` would. σ_max comes
//! from power iteration on `G`, the reported σ_min of an invertible position from inverse iteration;
//! the reconstruction `x̂ = G⁻¹ B_Sᵀ (y_S − b_S)` uses the Cholesky factor of `G`. The dense kernels
//! (register-tiled rank updates and factorisation) are in [`lemma2_kernels`](super::lemma2_kernels).

use nalgebra::{DMatrix, DVector};

use super::lemma2_gram::GramTracker;
use super::lemma2_kernels::{axpy_cols, cholesky_lower, cholesky_solve, cholesky_solve2, dot, frobenius_lower, gamma, mirror_lower, symv, UNIT_ROUNDOFF};

use crate::layers::ConvBn;

/// ε of the rank tolerance: the machine epsilon of f32, the weights' dtype (NumPy/PyTorch default).
pub const RANK_EPS: f64 = f32::EPSILON as f64;
/// Relative margin around the tolerance inside which the exact SVD decides.
pub const BORDERLINE_MARGIN: f64 = 0.05;
/// Iteration caps of the power / inverse iterations.
const MAX_ITERS: usize = 60;
/// Relative convergence of σ_max² by power iteration (the verdict margin is 5%).
const POWER_RTOL: f64 = 1e-7;
/// Power iterations of the reported σ_max when the verdict did not need it precisely.
const ESTIMATE_ITERS: usize = 4;
/// Most fixed-point steps of the shifted solve; it is used while each step shrinks the previous
/// one by at least this ratio (λ_min beyond about 20 shifts).
const REFINE_MAX_STEPS: usize = 12;
const REFINE_MIN_RATIO: f64 = 20.0;
/// Inverse iterations of the σ_min estimate.
const INVERSE_ITERS: usize = 8;

/// One expansion layer as Lemma 2 sees it.
#[derive(Clone, Debug)]
pub struct Lemma2Layer {
    /// `n × m`: column i is row i of B (BN folded).
    pub bt: DMatrix<f64>,
    /// The folded bias b (m values).
    pub bias: Vec<f64>,
    /// Upper end of the linear region (6 for ReLU6); `None` for ReLU.
    pub cap: Option<f32>,
    /// `BᵀB`, so a Gram matrix over a large active set is formed from its small complement.
    full_gram: DMatrix<f64>,
    /// ‖b_i‖² of each row of B (the weights of the rounding bound of a tracked Gram matrix).
    row_sq: Vec<f64>,
    /// Distinct for every layer built (clones share it), so a Gram matrix carried between positions
    /// is never carried into another layer of the same shape.
    id: u64,
}

impl PartialEq for Lemma2Layer {
    fn eq(&self, other: &Self) -> bool {
        self.bt == other.bt && self.bias == other.bias && self.cap == other.cap
    }
}

static NEXT_LAYER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Lemma2Layer {
    /// From `Bᵀ` (n × m), the bias and the activation cap.
    pub fn new(bt: DMatrix<f64>, bias: Vec<f64>, cap: Option<f32>) -> Self {
        let all: Vec<usize> = (0..bt.ncols()).collect();
        let full_gram = outer_sum(&bt, &all, None);
        let row_sq = bt.column_iter().map(|c| c.norm_squared()).collect();
        let id = NEXT_LAYER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Lemma2Layer { bt, bias, cap, full_gram, row_sq, id }
    }

    /// From a BN-folded 1×1 expansion conv (weight `n × m` column-major = PyTorch `[m, n, 1, 1]`).
    pub fn from_conv(expand: &ConvBn) -> Self {
        let w = expand.folded_weight();
        Lemma2Layer::new(
            DMatrix::from_iterator(w.nrows(), w.ncols(), w.iter().map(|&v| v as f64)),
            expand.folded_bias().iter().map(|&v| v as f64).collect(),
            expand.activation.cap(),
        )
    }
    /// `BᵀB` (n × n).
    pub(crate) fn full_gram(&self) -> &DMatrix<f64> {
        &self.full_gram
    }
    /// The layer's identity (see the field).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
    /// ‖b_i‖² of each row of B.
    pub(crate) fn row_norms_sq(&self) -> &[f64] {
        &self.row_sq
    }
    /// Input width n.
    pub fn n(&self) -> usize {
        self.bt.nrows()
    }
    /// Output width m.
    pub fn m(&self) -> usize {
        self.bt.ncols()
    }
    /// The active set of a pre-activation vector y: `0 < y_i < cap`.
    pub fn active_set(&self, y: &[f32]) -> Vec<usize> {
        let cap = self.cap.unwrap_or(f32::INFINITY);
        (0..y.len()).filter(|&i| y[i] > 0.0 && y[i] < cap).collect()
    }
}

/// The outcome of Lemma 2 at one position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lemma2Verdict {
    /// |S|.
    pub active: usize,
    /// |S| ≥ n.
    pub enough_active: bool,
    /// rank(B_S) = n (false when |S| < n).
    pub full_rank: bool,
    /// Smallest and largest singular values of B_S (σ_min = 0 when |S| < n).
    pub sigma_min: f64,
    pub sigma_max: f64,
    /// The tolerance σ_max · max(|S|, n) · ε used.
    pub tolerance: f64,
    /// ‖x̂ − x‖ / ‖x‖ of `x̂ = B_S⁺ (y_S − b_S)` (NaN when |S| < n or x = 0).
    pub reconstruction_error: f64,
    /// Whether the exact SVD decided: every position the Cholesky tests could not certify full rank
    /// (near the tolerance, or rank-deficient).
    pub exact_svd: bool,
}

impl Lemma2Verdict {
    /// Lemma 2 holds: the activation is invertible at this position.
    pub fn invertible(&self) -> bool {
        self.enough_active && self.full_rank
    }
    /// σ_max / σ_min (∞ when σ_min = 0).
    pub fn condition(&self) -> f64 {
        if self.sigma_min > 0.0 {
            self.sigma_max / self.sigma_min
        } else {
            f64::INFINITY
        }
    }
}

/// Largest rank-tolerance factor accepted: with ε ≥ 1/max(|S|, n) the tolerance reaches σ_max and no
/// position can be full rank, so a larger value is a typo, not an experiment.
pub const MAX_RANK_EPS: f64 = 1e-2;

/// Checks a rank-tolerance factor ε: finite and in (0, [`MAX_RANK_EPS`]].
///
/// # Errors
/// A non-finite, non-positive or too large value, named with the fix.
pub fn check_rank_eps(eps: f64) -> crate::Result<()> {
    if eps.is_finite() && eps > 0.0 && eps <= MAX_RANK_EPS {
        Ok(())
    } else {
        Err(crate::Error::config(
            "rank-eps",
            eps,
            format!("use a tolerance factor in (0, {MAX_RANK_EPS}]; the default {RANK_EPS:e} is f32's machine epsilon, as NumPy's matrix_rank"),
        ))
    }
}

/// Lemma 2 at one position: `x` the layer input (n values), `y` the pre-activation `B x + b` as the
/// network computed it (m values), `eps` the rank tolerance factor ([`RANK_EPS`]).
///
/// # Errors
/// Lengths that do not match the layer, non-finite values, a bad `eps`.
pub fn lemma2_check(layer: &Lemma2Layer, x: &[f32], y: &[f32], eps: f64) -> crate::Result<Lemma2Verdict> {
    let s = layer.active_set(y);
    lemma2_check_set(layer, &s, x, y, eps)
}

/// [`lemma2_check`] for a given active set (strictly increasing indices below m).
///
/// # Errors
/// As [`lemma2_check`], and an active set with an index out of range or out of order.
pub fn lemma2_check_set(layer: &Lemma2Layer, s: &[usize], x: &[f32], y: &[f32], eps: f64) -> crate::Result<Lemma2Verdict> {
    let bad = |what: &str, why: String| crate::Error::input(format!("Lemma 2 {what}"), why);
    check_rank_eps(eps)?;
    if layer.bias.len() != layer.m() {
        return Err(bad("layer", format!("has {} bias values for m = {} rows", layer.bias.len(), layer.m())));
    }
    if x.len() != layer.n() || y.len() != layer.m() {
        return Err(bad("position", format!("x has {} values and y {}; the layer needs n = {} and m = {}", x.len(), y.len(), layer.n(), layer.m())));
    }
    if let Some(v) = x.iter().chain(y).find(|v| !v.is_finite()) {
        return Err(bad("position", format!("holds the non-finite value {v}")));
    }
    if s.windows(2).any(|w| w[0] >= w[1]) || s.last().is_some_and(|&i| i >= layer.m()) {
        return Err(bad("active set", format!("{s:?} is not a strictly increasing list of row indices below m = {}", layer.m())));
    }
    Ok(lemma2_verdict(layer, s, x, y, eps, &mut Lemma2Scratch::default()))
}

/// Work space carried from one position to the next: the Gram matrix, maintained by row updates
/// ([`GramTracker`]), buffers, and warm starts for the iterations (neighbouring positions have
/// similar Gram matrices, so they converge in a few steps). Verdicts do not depend on it.
#[derive(Clone, Debug, Default)]
pub struct Lemma2Scratch {
    gram: GramTracker,
    /// The shifted (or plain) Gram matrix, factorised in place.
    factor: Vec<f64>,
    top: Vec<f64>,
    bottom: Vec<f64>,
    tmp: Vec<f64>,
    rhs: Vec<f64>,
    xhat: Vec<f64>,
    /// Reciprocals of the factor's diagonal.
    inv: Vec<f64>,
    /// The inverse iteration's next iterate.
    w: Vec<f64>,
}

/// [`lemma2_check_set`] with warm starts from `scratch`, for callers that built `s`, `x` and `y` from
/// the layer itself (lengths and indices are not checked again).
///
/// **Certificate.** Ĝ (the stored Gram matrix) is within `e` = [`GramTracker::error_bound`] of the
/// exact G in spectral norm. A Cholesky factorisation of `Ĝ − σI` that completes in floating point
/// proves `λ_min(Ĝ) > σ − c`, with `c = γ_{n+1}/(1−γ_{n+1})·trace(Ĝ) + u·(max ĝ_ii + σ)` covering
/// its own rounding and that of the shift. With `σ = τ + e + c` a completed factorisation therefore
/// proves `λ_min(G) > τ`: σ_min(B_S) exceeds the rank tolerance whenever τ ≥ (σ_max·max(|S|,n)·ε)².
pub(crate) fn lemma2_verdict(layer: &Lemma2Layer, s: &[usize], x: &[f32], y: &[f32], eps: f64, scratch: &mut Lemma2Scratch) -> Lemma2Verdict {
    let n = layer.n();
    let k = s.len();
    let tol_factor = k.max(n) as f64 * eps;
    if k < n {
        let sigma_max = if k == 0 { 0.0 } else { gram(layer, s).map(|g| power_max(&g, &mut None, MAX_ITERS).sqrt()).unwrap_or(0.0) };
        return Lemma2Verdict {
            active: k,
            enough_active: false,
            full_rank: false,
            sigma_min: 0.0,
            sigma_max,
            tolerance: sigma_max * tol_factor,
            reconstruction_error: f64::NAN,
            exact_svd: false,
        };
    }
    scratch.gram.move_to(layer, s);
    let mut certified = certify_full_rank(n, tol_factor, scratch);
    // A long run of updates can leave a rounding bound e that is a sizeable part of τ (e grows with
    // the square of the terms: about a quarter of τ at the term cap for m = 960, more for rows of very
    // uneven norms): a fresh Gram matrix gets one more try before the exact SVD.
    if certified.is_none() && !scratch.gram.is_fresh() {
        scratch.gram.restart(layer, s);
        certified = certify_full_rank(n, tol_factor, scratch);
    }
    let Some((shift, sigma_max)) = certified else {
        let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        return svd_verdict(layer, s, &xs, y, tol_factor);
    };
    let tol = sigma_max * tol_factor;
    rhs_into(layer, s, y, &mut scratch.rhs);
    let lmin = solve_and_estimate(n, shift, scratch);
    let Lemma2Scratch { gram, factor, rhs, xhat, inv, .. } = scratch;
    if xhat.is_empty() {
        // The shifted solve contracts too slowly (λ_min within a few shifts): the unshifted factor.
        let g = gram.lower();
        factor.clear();
        factor.extend_from_slice(g);
        xhat.extend_from_slice(rhs);
        if cholesky_lower(n, factor) {
            mirror_lower(n, factor);
            cholesky_solve(n, factor, inv, xhat);
        } else {
            xhat.iter_mut().for_each(|v| *v = f64::NAN);
        }
    }
    let xs = x.iter().map(|&v| v as f64);
    Lemma2Verdict {
        active: k,
        enough_active: true,
        full_rank: true,
        sigma_min: lmin.max(0.0).sqrt(),
        sigma_max,
        tolerance: tol,
        reconstruction_error: rel_error_iter(&scratch.xhat, xs),
        exact_svd: false,
    }
}

/// Proves `σ_min(B_S) > σ_max(B_S)·tol_factor` for the Gram matrix in `scratch` (within
/// [`BORDERLINE_MARGIN`]), leaving the factor of `Ĝ − σI` in `scratch.factor`; returns the shift σ and
/// the estimate of σ_max, or `None` when it cannot (the exact SVD decides).
///
/// Both tests are proofs: a Cholesky factorisation that completes on `Ĝ − σI` shows
/// `λ_min(Ĝ) > σ − c`, one on `μI − Ĝ` shows `λ_max(Ĝ) < μ + c`, with `c` bounding the
/// factorisation's rounding; `e` bounds `‖Ĝ − G‖₂`.
fn certify_full_rank(n: usize, tol_factor: f64, scratch: &mut Lemma2Scratch) -> Option<(f64, f64)> {
    let Lemma2Scratch { gram, factor, top, tmp, .. } = scratch;
    let e = gram.error_bound();
    let g = gram.lower();
    let diag = (0..n).map(|i| g[i * n + i]);
    let trace: f64 = diag.clone().sum::<f64>() * (1.0 + gamma(n));
    let max_diag = diag.fold(0.0, f64::max);
    let growth = gamma(n + 1) / (1.0 - gamma(n + 1));
    let chol_err = |trace: f64, shift: f64| (growth * trace + UNIT_ROUNDOFF * (max_diag + shift)) * 1.01;
    // λ_min(G) > τ: factorise Ĝ − σI with σ = τ + e + c.
    let above = |tau: f64, factor: &mut Vec<f64>| {
        let shift = tau + e + chol_err(trace, tau + e);
        factor.clear();
        factor.extend_from_slice(g);
        (0..n).for_each(|i| factor[i * n + i] -= shift);
        cholesky_lower(n, factor).then(|| {
            mirror_lower(n, factor);
            shift
        })
    };
    // Fast path: ‖Ĝ‖_F + e ≥ ‖G‖_F ≥ λ_max(G) bounds the tolerance from above, so passing the test
    // with it certifies full rank without knowing σ_max precisely (nearly every position:
    // λ_min/λ_max ≫ n·(k·ε)²).
    let fro = frobenius_lower(n, g) * (1.0 + gamma(n * n)) + e;
    if let Some(shift) = above(fro * tol_factor * tol_factor * (1.0 + BORDERLINE_MARGIN), factor) {
        return Some((shift, power_max_lower(n, g, top, tmp, ESTIMATE_ITERS).sqrt()));
    }
    // Near the tolerance: σ_max by power iteration, whose Rayleigh quotient is a lower estimate of
    // λ_max. λ_max(G) < (1 + margin)·λ̂ is proved by factorising μI − Ĝ, μ = (1 + margin)·λ̂ − e − c.
    let lmax = power_max_lower(n, g, top, tmp, MAX_ITERS);
    let bound = lmax * (1.0 + BORDERLINE_MARGIN);
    let mu = bound - e - chol_err(n as f64 * bound, bound);
    factor.clear();
    factor.extend(g.iter().map(|v| -v));
    (0..n).for_each(|i| factor[i * n + i] += mu);
    if !(mu > 0.0 && cholesky_lower(n, factor)) {
        return None;
    }
    above(bound * tol_factor * tol_factor, factor).map(|shift| (shift, lmax.sqrt()))
}

/// `B_Sᵀ (y_S − b_S)` into `out` (n values).
fn rhs_into(layer: &Lemma2Layer, s: &[usize], y: &[f32], out: &mut Vec<f64>) {
    let n = layer.n();
    out.clear();
    out.resize(n, 0.0);
    let bt = layer.bt.as_slice();
    let (mut cols, mut coef): ([&[f64]; 8], [f64; 8]) = ([&[]; 8], [0.0; 8]);
    for chunk in s.chunks(8) {
        for (slot, &i) in chunk.iter().enumerate() {
            cols[slot] = &bt[i * n..i * n + n];
            coef[slot] = y[i] as f64 - layer.bias[i];
        }
        axpy_cols(out, &cols[..chunk.len()], &coef[..chunk.len()]);
    }
}

/// Largest eigenvalue of a symmetric PSD matrix (lower triangle) by power iteration, warm-started
/// from `warm` when it has the right length; leaves the last iterate there.
fn power_max_lower(n: usize, g: &[f64], warm: &mut Vec<f64>, w: &mut Vec<f64>, max_iters: usize) -> f64 {
    if warm.len() != n {
        warm.clear();
        warm.extend((0..n).map(|i| 1.0 + (i as f64 * 0.618_033_988_75).fract()));
    }
    let norm = dot(warm, warm).sqrt();
    warm.iter_mut().for_each(|v| *v /= norm);
    w.clear();
    w.resize(n, 0.0);
    let mut lambda = 0.0;
    for _ in 0..max_iters {
        symv(n, g, warm, w);
        let next = dot(warm, w);
        let norm = dot(w, w).sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        warm.iter_mut().zip(w.iter()).for_each(|(v, x)| *v = x / norm);
        let converged = (next - lambda).abs() <= POWER_RTOL * next.abs();
        lambda = next;
        if converged {
            break;
        }
    }
    lambda
}

/// With the factor of `Ĝ − σI` in `scratch.factor` (σ = `shift`): the reconstruction
/// `x̂ = Ĝ⁻¹ r` (r = `scratch.rhs`) into `scratch.xhat` by the fixed-point iteration
/// `x ← (Ĝ − σI)⁻¹ (r − σ x)`, and an estimate of λ_min(Ĝ) for reporting σ_min by inverse iteration
/// warm-started from `scratch.bottom` — one step of each per pass over the factor
/// ([`cholesky_solve2`]). The iteration contracts by ρ ≈ σ/(λ_min − σ); it stops once the step
/// predicts a remaining error `Δ·ρ/(1 − ρ)` below 1e-13·‖x̂‖. Where ρ exceeds
/// 1/[`REFINE_MIN_RATIO`] it leaves `xhat` empty (the caller solves with the unshifted factor).
/// Returns the Rayleigh quotient of the last iterate, an upper bound on λ_min that converges to it
/// (the verdict never depends on it).
fn solve_and_estimate(n: usize, shift: f64, scratch: &mut Lemma2Scratch) -> f64 {
    let Lemma2Scratch { gram, factor, bottom, tmp, rhs, xhat, inv, w, .. } = scratch;
    // Warm from the last position, unless there is none or it went non-finite.
    let warm = bottom.len() == n && dot(bottom, bottom).is_finite();
    let mut iters = if warm {
        INVERSE_ITERS / 4
    } else {
        bottom.clear();
        bottom.extend((0..n).map(|i| 1.0 + (i as f64 * 0.754_877_666).fract()));
        INVERSE_ITERS
    };
    let norm = dot(bottom, bottom).sqrt();
    bottom.iter_mut().for_each(|v| *v /= norm);
    xhat.clear();
    xhat.resize(n, 0.0);
    let mut refining = true;
    let mut last_step = f64::NAN;
    let mut steps = 0;
    while refining || iters > 0 {
        if refining {
            tmp.clear();
            tmp.extend(rhs.iter().zip(xhat.iter()).map(|(r, v)| (-v).mul_add(shift, *r)));
        }
        if iters > 0 {
            w.clear();
            w.extend_from_slice(bottom);
        }
        match (refining, iters > 0) {
            (true, true) => cholesky_solve2(n, factor, inv, tmp, w),
            (true, false) => cholesky_solve(n, factor, inv, tmp),
            _ => cholesky_solve(n, factor, inv, w),
        }
        if iters > 0 {
            iters -= 1;
            let norm = dot(w, w).sqrt();
            if norm.is_finite() && norm > 0.0 {
                bottom.iter_mut().zip(w.iter()).for_each(|(v, x)| *v = x / norm);
            } else {
                iters = 0;
            }
        }
        if refining {
            let step = tmp.iter().zip(xhat.iter()).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
            std::mem::swap(xhat, tmp);
            steps += 1;
            let size = dot(xhat, xhat).sqrt();
            let rate = step / last_step;
            if !(size.is_finite() && step.is_finite()) || (steps >= 2 && !(rate * REFINE_MIN_RATIO < 1.0)) {
                // Diverging, or contracting too slowly for the shifted factor.
                xhat.clear();
                refining = false;
            } else if step <= 1e-13 * size || (steps >= 2 && step * rate / (1.0 - rate) <= 1e-13 * size) || steps == REFINE_MAX_STEPS {
                refining = false;
            }
            last_step = step;
        }
    }
    w.clear();
    w.resize(n, 0.0);
    symv(n, gram.lower(), bottom, w);
    let lmin = dot(bottom, w);
    // The observed contraction can understate the true one (a component along the smallest
    // eigenvector that was tiny in the first steps): where λ_min is within REFINE_MIN_RATIO shifts,
    // the unshifted factor decides (the Rayleigh quotient is an upper bound, so this never misses).
    if !(lmin > REFINE_MIN_RATIO * shift) {
        xhat.clear();
    }
    lmin
}

fn rel_error_iter(xhat: &[f64], x: impl Iterator<Item = f64> + Clone) -> f64 {
    let nx = x.clone().map(|v| v * v).sum::<f64>().sqrt();
    if nx == 0.0 {
        return f64::NAN;
    }
    xhat.iter().zip(x).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt() / nx
}

/// The exact path: SVD of B_S decides rank (as `matrix_rank`) and gives the min-norm reconstruction.
/// Reached by the positions within the margin of the tolerance and by the rank-deficient ones.
fn svd_verdict(layer: &Lemma2Layer, s: &[usize], xs: &[f64], y: &[f32], tol_factor: f64) -> Lemma2Verdict {
    let (n, k) = (layer.n(), s.len());
    let bs = rows(layer, s);
    let svd = bs.clone().svd(true, true);
    let sv = &svd.singular_values;
    let smax = sv.iter().copied().fold(0.0, f64::max);
    let smin = sv.iter().copied().fold(f64::INFINITY, f64::min);
    let tol = smax * tol_factor;
    let full = sv.iter().filter(|&&v| v > tol).count() == n;
    let ys: DVector<f64> = DVector::from_iterator(k, s.iter().map(|&i| y[i] as f64 - layer.bias[i]));
    let xhat = svd.solve(&ys, tol).unwrap_or_else(|_| DVector::zeros(n));
    Lemma2Verdict {
        active: k,
        enough_active: true,
        full_rank: full,
        sigma_min: smin,
        sigma_max: smax,
        tolerance: tol,
        reconstruction_error: rel_error(xhat.as_slice(), xs),
        exact_svd: true,
    }
}

/// Numerical rank of a matrix by NumPy's rule (`σ_i > σ_max · max(rows, cols) · eps`), exact SVD.
pub fn numerical_rank(m: &DMatrix<f64>, eps: f64) -> usize {
    let sv = m.clone().svd(false, false).singular_values;
    let smax = sv.iter().copied().fold(0.0, f64::max);
    let tol = smax * m.nrows().max(m.ncols()) as f64 * eps;
    sv.iter().filter(|&&v| v > tol).count()
}

/// B_S as a k × n matrix.
fn rows(layer: &Lemma2Layer, s: &[usize]) -> DMatrix<f64> {
    let n = layer.n();
    DMatrix::from_fn(s.len(), n, |r, c| layer.bt[(c, s[r])])
}

/// G = B_Sᵀ B_S (n × n), `None` for an empty set: from S directly or as `BᵀB` minus the complement's
/// outer products, whichever has fewer rows.
fn gram(layer: &Lemma2Layer, s: &[usize]) -> Option<DMatrix<f64>> {
    if s.is_empty() {
        return None;
    }
    let m = layer.m();
    if 2 * s.len() <= m {
        return Some(outer_sum(&layer.bt, s, None));
    }
    let mut inside = vec![false; m];
    s.iter().for_each(|&i| inside[i] = true);
    let rest: Vec<usize> = (0..m).filter(|&i| !inside[i]).collect();
    Some(outer_sum(&layer.bt, &rest, Some(&layer.full_gram)))
}

/// `Σ_{i∈rows} b_i b_iᵀ` (b_i = column i of `bt`), or `base − Σ …` when `base` is given; one GEMM.
fn outer_sum(bt: &DMatrix<f64>, rows: &[usize], base: Option<&DMatrix<f64>>) -> DMatrix<f64> {
    let n = bt.nrows();
    let k = rows.len();
    let mut a = Vec::with_capacity(n * k);
    for &i in rows {
        a.extend_from_slice(bt.column(i).as_slice());
    }
    let mut out = base.cloned().unwrap_or_else(|| DMatrix::zeros(n, n));
    if k == 0 {
        return out;
    }
    let sign = if base.is_some() { -1.0 } else { 1.0 };
    // SAFETY: `a` is n×k column-major, read as lhs (n×k) and as rhs = aᵀ (k×n, row stride n); `out`
    // is n×n column-major and distinct from `a`.
    unsafe {
        gemm::gemm(
            n,
            n,
            k,
            out.as_mut_ptr(),
            n as isize,
            1,
            base.is_some(),
            a.as_ptr(),
            n as isize,
            1,
            a.as_ptr(),
            1,
            n as isize,
            1.0f64,
            sign,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    out
}

/// Largest eigenvalue of a symmetric PSD matrix by power iteration (warm-started when possible).
fn power_max(g: &DMatrix<f64>, warm: &mut Option<DVector<f64>>, max_iters: usize) -> f64 {
    let n = g.nrows();
    let mut v = warm.take().filter(|w| w.len() == n).unwrap_or_else(|| DVector::from_fn(n, |i, _| 1.0 + (i as f64 * 0.618_033_988_75).fract()));
    v /= v.norm();
    let mut lambda = 0.0;
    for _ in 0..max_iters {
        let w = symv_dense(g, &v);
        let next = v.dot(&w);
        let norm = w.norm();
        if norm == 0.0 {
            return 0.0;
        }
        v = w / norm;
        let converged = (next - lambda).abs() <= POWER_RTOL * next.abs();
        lambda = next;
        if converged {
            break;
        }
    }
    *warm = Some(v);
    lambda
}

/// `G v` for a column-major matrix (column axpys over contiguous slices).
fn symv_dense(g: &DMatrix<f64>, v: &DVector<f64>) -> DVector<f64> {
    let n = g.nrows();
    let mut out = vec![0.0; n];
    for (j, &vj) in v.iter().enumerate() {
        let col = &g.as_slice()[j * n..(j + 1) * n];
        out.iter_mut().zip(col).for_each(|(o, c)| *o += c * vj);
    }
    DVector::from_vec(out)
}

fn rel_error(xhat: &[f64], x: &[f64]) -> f64 {
    let nx = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    if nx == 0.0 {
        return f64::NAN;
    }
    xhat.iter().zip(x).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt() / nx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `solve_and_estimate` on Ĝ = diag(1, a²) with the factor of Ĝ − σI, for the solution `want`.
    fn solve_diag(a2: f64, shift: f64, want: [f64; 2]) -> Option<Vec<f64>> {
        let layer = Lemma2Layer::new(DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, a2.sqrt()]), vec![0.0; 2], None);
        let mut scratch = Lemma2Scratch::default();
        scratch.gram.move_to(&layer, &[0, 1]);
        let g = scratch.gram.lower().to_vec();
        scratch.factor = g.clone();
        scratch.factor[0] -= shift;
        scratch.factor[3] -= shift;
        assert!(cholesky_lower(2, &mut scratch.factor));
        mirror_lower(2, &mut scratch.factor);
        scratch.rhs = vec![g[0] * want[0], g[3] * want[1]];
        solve_and_estimate(2, shift, &mut scratch);
        (!scratch.xhat.is_empty()).then_some(scratch.xhat)
    }

    #[test]
    fn the_shifted_solve_is_exact_or_hands_over_to_the_unshifted_factor() {
        let want = [1.0, 1e-8];
        let err = |x: &[f64]| ((x[0] - want[0]).powi(2) + (x[1] - want[1]).powi(2)).sqrt();
        // Well separated: the shifted solve converges and is kept.
        let x = solve_diag(0.25, 1e-10, want).expect("a well-separated λ_min keeps the shifted solve");
        assert!(err(&x) <= 1e-13, "error {}", err(&x));
        // λ_min = 3σ, its component tiny at first: the first steps contract by ~1e-10 and would
        // predict convergence while the error along the small eigenvector is still 2.5e-9.
        if let Some(x) = solve_diag(3e-10, 1e-10, want) {
            assert!(err(&x) <= 1e-13, "stopped early: error {}", err(&x));
        }
    }
}
