//! Lemma 2 of Sandler et al. 2018 at every position of every expansion layer.
//!
//! For an expansion `y = B x + b` (B: m×n with BatchNorm folded in) followed by a ReLU-type
//! activation, let S be the active set at one position: `{i : 0 < y_i < cap}` (the linear region of
//! ReLU6; the positive set for ReLU). The activation output determines `x` — the layer is invertible
//! there — iff `|S| ≥ n` and `rank(B_S) = n` ([`lemma2_check`]). Then `x = B_S⁺ (y_S − b_S)`.
//!
//! **Numerical rank** follows NumPy/PyTorch's `matrix_rank` default: σ_i counts when
//! `σ_i > σ_max · max(|S|, n) · ε`, with ε the machine epsilon of the weights' dtype (f32;
//! [`RANK_EPS`]). **Speed without changing verdicts:** the Gram matrix `G = B_Sᵀ B_S` is formed in f64
//! (one GEMM: `|S|·n²` flops, less than an SVD of `B_S`); its eigenvalues are `σ_i(B_S)²`. σ_min
//! exceeds the tolerance τ iff `G − τ²I` is positive definite, which one Cholesky factorisation decides
//! (f64 rounding, ≈ n·ε_f64·σ_max², is far below τ² ≈ (max(|S|,n)·ε_f32·σ_max)²). Positions within
//! [`BORDERLINE_MARGIN`] of the tolerance, and rank-deficient ones, are decided by an exact f64 SVD of
//! `B_S`, as `matrix_rank` would. σ_max comes from power iteration on `G`, the reported σ_min of an
//! invertible position from inverse iteration; the reconstruction `x̂ = G⁻¹ B_Sᵀ (y_S − b_S)` uses the
//! Cholesky factor of `G`.

use nalgebra::{Cholesky, DMatrix, DVector};

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
/// Fixed-point steps of the shifted solve, used when λ_min exceeds this multiple of the shift.
const REFINE_MAX_STEPS: usize = 12;
const REFINE_MIN_RATIO: f64 = 20.0;
/// Inverse iterations of the σ_min estimate.
const INVERSE_ITERS: usize = 8;

/// One expansion layer as Lemma 2 sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Lemma2Layer {
    /// `n × m`: column i is row i of B (BN folded).
    pub bt: DMatrix<f64>,
    /// The folded bias b (m values).
    pub bias: Vec<f64>,
    /// Upper end of the linear region (6 for ReLU6); `None` for ReLU.
    pub cap: Option<f32>,
    /// `BᵀB`, so a Gram matrix over a large active set is formed from its small complement.
    full_gram: DMatrix<f64>,
}

impl Lemma2Layer {
    /// From `Bᵀ` (n × m), the bias and the activation cap.
    pub fn new(bt: DMatrix<f64>, bias: Vec<f64>, cap: Option<f32>) -> Self {
        let all: Vec<usize> = (0..bt.ncols()).collect();
        let full_gram = outer_sum(&bt, &all, None);
        Lemma2Layer { bt, bias, cap, full_gram }
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

/// Warm starts carried from one position to the next (neighbouring positions have similar Gram
/// matrices, so the iterations converge in a few steps). Verdicts do not depend on them.
#[derive(Clone, Debug, Default)]
pub struct Lemma2Scratch {
    top: Option<DVector<f64>>,
    bottom: Option<DVector<f64>>,
}

/// [`lemma2_check_set`] with warm starts from `scratch`, for callers that built `s`, `x` and `y` from
/// the layer itself (lengths and indices are not checked again).
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
    let g = gram(layer, s).expect("non-empty active set");
    let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    // λ_min(G) > τ  ⟺  G − τI is positive definite: a Cholesky factorisation decides it. f64 rounding
    // (≈ n·ε_f64·λ_max) is far below τ ≈ (k·ε_f32)²·λ_max, so a success certifies full rank.
    let shifted = |tau: f64| {
        let mut m = g.clone();
        for i in 0..n {
            m[(i, i)] -= tau;
        }
        Cholesky::new(m)
    };
    // Fast path: ‖G‖_F ≥ λ_max bounds the tolerance from above, so passing the test with it certifies
    // full rank without knowing σ_max precisely (nearly every position: λ_min/λ_max ≫ n·(k·ε)²).
    let fro = g.norm();
    let tau_up = fro * tol_factor * tol_factor * (1.0 + BORDERLINE_MARGIN);
    let (ch, tau, sigma_max) = match shifted(tau_up) {
        Some(ch) => (ch, tau_up, power_max(&g, &mut scratch.top, ESTIMATE_ITERS).sqrt()),
        None => {
            let sigma_max = power_max(&g, &mut scratch.top, MAX_ITERS).sqrt();
            let tau = (sigma_max * tol_factor).powi(2) * (1.0 + BORDERLINE_MARGIN);
            match shifted(tau) {
                Some(ch) => (ch, tau, sigma_max),
                None => return svd_verdict(layer, s, &xs, y, tol_factor),
            }
        }
    };
    let tol = sigma_max * tol_factor;
    let r = rhs(layer, s, y);
    let lmin = inverse_iteration_lmin(&ch, &g, &mut scratch.bottom);
    // Solve G x = r with the shifted factor: x ← (G − τI)⁻¹ (r − τ x) contracts by τ/(λ_min − τ);
    // near the tolerance the unshifted factor is used instead.
    let xhat = if lmin > REFINE_MIN_RATIO * tau {
        // Steps for a contraction of 1e-12 at rate τ/λ_min.
        let steps = (12.0 / (lmin / tau).log10()).ceil().clamp(1.0, REFINE_MAX_STEPS as f64) as usize;
        let mut xk = DVector::zeros(n);
        for _ in 0..steps {
            xk = chol_solve(&ch, &(&r - &xk * tau));
        }
        xk
    } else {
        Cholesky::new(g.clone()).map(|c| c.solve(&r)).unwrap_or_else(|| DVector::from_element(n, f64::NAN))
    };
    Lemma2Verdict {
        active: k,
        enough_active: true,
        full_rank: true,
        sigma_min: lmin.max(0.0).sqrt(),
        sigma_max,
        tolerance: tol,
        reconstruction_error: rel_error(xhat.as_slice(), &xs),
        exact_svd: false,
    }
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

/// B_Sᵀ (y_S − b_S).
fn rhs(layer: &Lemma2Layer, s: &[usize], y: &[f32]) -> DVector<f64> {
    let mut r = DVector::zeros(layer.n());
    for &i in s {
        r.axpy(y[i] as f64 - layer.bias[i], &layer.bt.column(i), 1.0);
    }
    r
}

/// Estimate of λ_min(G) for reporting σ_min: the Rayleigh quotient after a few inverse iterations
/// (an upper bound on λ_min that converges to it; the verdict never depends on it).
fn inverse_iteration_lmin(ch: &Cholesky<f64, nalgebra::Dyn>, g: &DMatrix<f64>, warm: &mut Option<DVector<f64>>) -> f64 {
    let n = g.nrows();
    let (mut v, iters) = match warm.take().filter(|w| w.len() == n) {
        Some(w) => (w, INVERSE_ITERS / 4),
        None => (DVector::from_fn(n, |i, _| 1.0 + (i as f64 * 0.754_877_666).fract()), INVERSE_ITERS),
    };
    v /= v.norm();
    for _ in 0..iters {
        let w = chol_solve(ch, &v);
        let norm = w.norm();
        if !norm.is_finite() || norm == 0.0 {
            break;
        }
        v = w / norm;
    }
    let lmin = v.dot(&symv(g, &v));
    *warm = Some(v);
    lmin
}

/// Largest eigenvalue of a symmetric PSD matrix by power iteration (warm-started when possible).
fn power_max(g: &DMatrix<f64>, warm: &mut Option<DVector<f64>>, max_iters: usize) -> f64 {
    let n = g.nrows();
    let mut v = warm.take().filter(|w| w.len() == n).unwrap_or_else(|| DVector::from_fn(n, |i, _| 1.0 + (i as f64 * 0.618_033_988_75).fract()));
    v /= v.norm();
    let mut lambda = 0.0;
    for _ in 0..max_iters {
        let w = symv(g, &v);
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
fn symv(g: &DMatrix<f64>, v: &DVector<f64>) -> DVector<f64> {
    let n = g.nrows();
    let mut out = vec![0.0; n];
    for (j, &vj) in v.iter().enumerate() {
        let col = &g.as_slice()[j * n..(j + 1) * n];
        out.iter_mut().zip(col).for_each(|(o, c)| *o += c * vj);
    }
    DVector::from_vec(out)
}

/// Solves `L Lᵀ x = b` with the Cholesky factor by column-oriented substitution.
fn chol_solve(ch: &Cholesky<f64, nalgebra::Dyn>, b: &DVector<f64>) -> DVector<f64> {
    let l = ch.l_dirty();
    let n = l.nrows();
    let ls = l.as_slice();
    let mut z: Vec<f64> = b.as_slice().to_vec();
    for j in 0..n {
        let col = &ls[j * n..(j + 1) * n];
        z[j] /= col[j];
        let zj = z[j];
        z[j + 1..].iter_mut().zip(&col[j + 1..]).for_each(|(v, c)| *v -= c * zj);
    }
    for j in (0..n).rev() {
        let col = &ls[j * n..(j + 1) * n];
        let d: f64 = col[j + 1..].iter().zip(&z[j + 1..]).map(|(c, v)| c * v).sum();
        z[j] = (z[j] - d) / col[j];
    }
    DVector::from_vec(z)
}

fn rel_error(xhat: &[f64], x: &[f64]) -> f64 {
    let nx = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    if nx == 0.0 {
        return f64::NAN;
    }
    xhat.iter().zip(x).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt() / nx
}
