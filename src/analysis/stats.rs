//! Statistics (statrs): Student-t confidence intervals of a mean, Wilson intervals of a proportion,
//! one-sided Welch t-tests of paper claims, equivalence by two one-sided tests (TOST), the seeds a
//! test needs for 80% power, Holm correction and the verdict rule of experiment reports.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Mean with a two-sided confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MeanCi {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1 denominator).
    pub std: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Mean ± Student-t interval at `confidence` (e.g. 0.95). With one value the interval is the point;
/// with none everything is NaN.
pub fn mean_ci(values: &[f64], confidence: f64) -> MeanCi {
    let n = values.len();
    if n == 0 {
        return MeanCi { n, mean: f64::NAN, std: f64::NAN, lo: f64::NAN, hi: f64::NAN };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return MeanCi { n, mean, std: f64::NAN, lo: mean, hi: mean };
    }
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).map(|d| d.inverse_cdf(0.5 + confidence / 2.0)).unwrap_or(f64::NAN);
    let half = t * std / (n as f64).sqrt();
    MeanCi { n, mean, std, lo: mean - half, hi: mean + half }
}

/// Wilson score interval of `successes / trials` at `confidence`.
pub fn wilson_interval(successes: u64, trials: u64, confidence: f64) -> (f64, f64) {
    if trials == 0 {
        return (f64::NAN, f64::NAN);
    }
    let z = Normal::new(0.0, 1.0).map(|d| d.inverse_cdf(0.5 + confidence / 2.0)).unwrap_or(1.959_963_984_540_054);
    let n = trials as f64;
    let p = successes as f64 / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt()) / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The direction a paper claims: the first group's mean is greater (or less) than the second's. Exact
/// checks also take the bounds `at-least`, `at-most` and `equal` (within a tolerance).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    #[default]
    Greater,
    Less,
    AtLeast,
    AtMost,
    Equal,
}

impl Direction {
    /// The name as specs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Greater => "greater",
            Direction::Less => "less",
            Direction::AtLeast => "at-least",
            Direction::AtMost => "at-most",
            Direction::Equal => "equal",
        }
    }

    /// Whether `a` stands in this relation to `b` (`Equal`: within `tolerance`).
    pub fn holds(self, a: f64, b: f64, tolerance: f64) -> bool {
        match self {
            Direction::Greater => a > b,
            Direction::Less => a < b,
            Direction::AtLeast => a >= b,
            Direction::AtMost => a <= b,
            Direction::Equal => (a - b).abs() <= tolerance,
        }
    }

    /// Whether a t-test can test it (a strict one-sided direction).
    pub fn is_one_sided(self) -> bool {
        matches!(self, Direction::Greater | Direction::Less)
    }
}

/// A one-sided Welch t-test of `mean(a) − mean(b)` in a claimed direction, with the two-sided
/// confidence interval of the difference (Welch–Satterthwaite degrees of freedom). Against a constant
/// (`b` empty, [`welch_test_value`]) it is the one-sample t-test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WelchTest {
    pub n_a: usize,
    pub n_b: usize,
    pub mean_a: f64,
    pub mean_b: f64,
    /// mean(a) − mean(b).
    pub diff: f64,
    pub diff_lo: f64,
    pub diff_hi: f64,
    pub t: f64,
    pub df: f64,
    /// One-sided p in the claimed direction.
    pub p_claimed: f64,
    /// One-sided p in the opposite direction.
    pub p_opposite: f64,
    /// Standard error of the difference (0 when every group has zero spread).
    pub se: f64,
    /// A group of two or more values has zero spread ([`constant_group`]).
    pub degenerate: bool,
}

impl WelchTest {
    /// A group of two or more values with zero spread: its standard error is zero, so the test says
    /// nothing about replication (a deterministic quantity repeated, or a saturated one).
    pub fn zero_spread(&self) -> bool {
        self.degenerate
    }
}

/// A group of two or more values that are all equal, up to rounding: `max − min ≤ 1e-12 · max(1, |mean|)`
/// (a constant computed in floating point, e.g. 0.25000000000000094 in every seed, has a standard
/// deviation of 1e-16, not 0).
pub fn constant_group(v: &[f64]) -> bool {
    if v.len() < 2 || v.iter().any(|x| !x.is_finite()) {
        return false;
    }
    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    hi - lo <= 1e-12 * mean.abs().max(1.0)
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { f64::NAN };
    (mean, var)
}

/// Welch's test of `a` against `b` in `direction`, interval at `confidence`.
pub fn welch_test(a: &[f64], b: &[f64], direction: Direction, confidence: f64) -> WelchTest {
    let (ma, va) = mean_var(a);
    let (mb, vb) = mean_var(b);
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    let df = (sa + sb).powi(2) / (sa * sa / (a.len() as f64 - 1.0) + sb * sb / (b.len() as f64 - 1.0));
    let mut t = finish(a.len(), b.len(), ma, mb, (sa + sb).sqrt(), df, direction, confidence);
    t.degenerate = constant_group(a) || constant_group(b);
    t
}

/// The one-sample t-test of `mean(a)` against the constant `value`.
pub fn welch_test_value(a: &[f64], value: f64, direction: Direction, confidence: f64) -> WelchTest {
    let (ma, va) = mean_var(a);
    let mut t = finish(a.len(), 0, ma, value, (va / a.len() as f64).sqrt(), a.len() as f64 - 1.0, direction, confidence);
    t.degenerate = constant_group(a);
    t
}

#[allow(clippy::too_many_arguments)]
fn finish(n_a: usize, n_b: usize, mean_a: f64, mean_b: f64, se: f64, df: f64, direction: Direction, confidence: f64) -> WelchTest {
    let diff = mean_a - mean_b;
    let (t, p_greater, half) = if se == 0.0 && diff.is_finite() {
        // No spread: the difference is exact.
        let p = if diff > 0.0 { 0.0 } else { 1.0 };
        (diff.signum() * f64::INFINITY, p, 0.0)
    } else {
        let t = diff / se;
        match StudentsT::new(0.0, 1.0, df) {
            Ok(d) if t.is_finite() => (t, d.sf(t), d.inverse_cdf(0.5 + confidence / 2.0) * se),
            _ => (t, f64::NAN, f64::NAN),
        }
    };
    let p_less = if se == 0.0 && diff.is_finite() {
        if diff < 0.0 {
            0.0
        } else {
            1.0
        }
    } else {
        1.0 - p_greater
    };
    let (p_claimed, p_opposite) = match direction {
        Direction::Greater | Direction::AtLeast => (p_greater, p_less),
        Direction::Less | Direction::AtMost | Direction::Equal => (p_less, p_greater),
    };
    WelchTest { n_a, n_b, mean_a, mean_b, diff, diff_lo: diff - half, diff_hi: diff + half, t, df, p_claimed, p_opposite, se, degenerate: false }
}

/// Equivalence of `mean(a) − mean(b)` (or, with `b` empty, of `mean(a) − value`) to zero within
/// `± margin`, by two one-sided tests (TOST, Schuirmann 1987): `p_claimed` is the larger of the two
/// one-sided p-values (H₀: diff ≤ −margin, H₀: diff ≥ +margin); `p_opposite` tests that the difference
/// lies outside the margin (twice the smaller one-sided p, at most 1). `t` is the statistic of the
/// binding side. Welch degrees of freedom for two groups.
pub fn tost(a: &[f64], b: &[f64], value: f64, margin: f64, confidence: f64) -> WelchTest {
    let base = if b.is_empty() { welch_test_value(a, value, Direction::Greater, confidence) } else { welch_test(a, b, Direction::Greater, confidence) };
    let (diff, se, df) = (base.diff, base.se, base.df);
    let mut out = WelchTest { p_claimed: f64::NAN, p_opposite: f64::NAN, t: f64::NAN, ..base };
    if !(se > 0.0) || !diff.is_finite() {
        return out;
    }
    let Ok(d) = StudentsT::new(0.0, 1.0, df) else { return out };
    let t_low = (diff + margin) / se; // against diff ≤ −margin
    let t_high = (diff - margin) / se; // against diff ≥ +margin
    let (p_low, p_high) = (d.sf(t_low), d.cdf(t_high));
    out.p_claimed = p_low.max(p_high);
    out.t = if p_low >= p_high { t_low } else { t_high };
    // Outside the margin: diff > +margin or diff < −margin.
    out.p_opposite = (2.0 * d.sf(t_high).min(d.cdf(t_low))).min(1.0);
    out
}

/// Most seeds per group [`seeds_for_power`] reports; beyond it, `None`.
pub const MAX_POWER_SEEDS: usize = 100_000;

/// Seeds per group a one-sided t-test at level `alpha` needs to detect a true difference `delta` with
/// probability `power`, for groups with the standard deviations `sd_a` and `sd_b` (`sd_b = None`: the
/// one-sample test against a constant). The usual t approximation: the smallest n with
/// `T_df(t_{1−α, df} − δ/se(n)) ≤ 1 − power`, df = Welch's for n per group (n − 1 for one sample).
/// `None` when the inputs are not finite and positive or n would exceed [`MAX_POWER_SEEDS`].
pub fn seeds_for_power(delta: f64, sd_a: f64, sd_b: Option<f64>, alpha: f64, power: f64) -> Option<usize> {
    let sds_ok = sd_a.is_finite() && sd_a >= 0.0 && sd_b.is_none_or(|s| s.is_finite() && s >= 0.0);
    let in_range = delta > 0.0 && sds_ok && alpha > 0.0 && alpha < 1.0 && power > 0.0 && power < 1.0;
    if !in_range {
        return None;
    }
    let meets = |n: usize| -> bool {
        let nf = n as f64;
        let (se, df) = match sd_b {
            None => (sd_a / nf.sqrt(), nf - 1.0),
            Some(sb) => {
                let (va, vb) = (sd_a * sd_a / nf, sb * sb / nf);
                let df = if va + vb > 0.0 { (va + vb).powi(2) / ((va * va + vb * vb) / (nf - 1.0)) } else { 2.0 * nf - 2.0 };
                ((va + vb).sqrt(), df)
            }
        };
        if se == 0.0 {
            return true;
        }
        match StudentsT::new(0.0, 1.0, df) {
            Ok(d) => d.cdf(d.inverse_cdf(1.0 - alpha) - delta / se) <= 1.0 - power,
            Err(_) => false,
        }
    };
    // Power grows with n: bisection on [2, MAX].
    if !meets(MAX_POWER_SEEDS) {
        return None;
    }
    if meets(2) {
        return Some(2);
    }
    let (mut lo, mut hi) = (2usize, MAX_POWER_SEEDS);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if meets(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// The level each test of a Holm family is compared with: α/(m − rank) for the test of rank `rank`
/// (0 = smallest p) among the `m` finite p-values; NaN for a NaN p.
pub fn holm_levels(p: &[f64], alpha: f64) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_finite()).collect();
    idx.sort_by(|&i, &j| p[i].total_cmp(&p[j]).then(i.cmp(&j)));
    let m = idx.len();
    let mut out = vec![f64::NAN; p.len()];
    for (rank, &i) in idx.iter().enumerate() {
        out[i] = alpha / (m - rank) as f64;
    }
    out
}

/// Holm–Bonferroni adjusted p-values (same order as `p`; NaN stays NaN and does not count).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_finite()).collect();
    idx.sort_by(|&i, &j| p[i].total_cmp(&p[j]).then(i.cmp(&j)));
    let m = idx.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running = 0.0f64;
    for (rank, &i) in idx.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// Verdict on a paper claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Significant in the paper's direction (Holm-adjusted one-sided p < α).
    Reproduced,
    /// Significant in the opposite direction.
    Contradicted,
    /// Neither, or too few seeds.
    Inconclusive,
    /// A t-test on a group with zero spread: no verdict (flagged, never counted as replication).
    Invalid,
    /// Exact check: holds for every seed.
    Holds,
    /// Exact check: fails for every seed.
    Fails,
    /// Exact check: holds for some seeds and fails for others.
    Partial,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::Contradicted => "contradicted",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Invalid => "invalid",
            Verdict::Holds => "holds",
            Verdict::Fails => "fails",
            Verdict::Partial => "partial",
        }
    }
}

/// Fewest seeds per group for a verdict other than inconclusive.
pub const MIN_SEEDS_FOR_VERDICT: usize = 5;

/// The verdicts of a family of claims: Holm across the family at `alpha`, separately for the claimed
/// and the opposite one-sided p-values; a claim with a group of fewer than
/// [`MIN_SEEDS_FOR_VERDICT`] seeds is inconclusive; a test with zero spread is invalid and left out
/// of the family. Returns (verdict, adjusted claimed p, adjusted opposite p) per test.
pub fn verdicts(tests: &[WelchTest], alpha: f64) -> Vec<(Verdict, f64, f64)> {
    let p_of = |f: fn(&WelchTest) -> f64| tests.iter().map(|t| if t.zero_spread() { f64::NAN } else { f(t) }).collect::<Vec<_>>();
    let claimed = holm(&p_of(|t| t.p_claimed));
    let opposite = holm(&p_of(|t| t.p_opposite));
    tests
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let enough = t.n_a >= MIN_SEEDS_FOR_VERDICT && (t.n_b == 0 || t.n_b >= MIN_SEEDS_FOR_VERDICT);
            let v = if t.zero_spread() && t.n_a >= 2 {
                Verdict::Invalid
            } else if !enough {
                Verdict::Inconclusive
            } else if claimed[i] < alpha {
                Verdict::Reproduced
            } else if opposite[i] < alpha {
                Verdict::Contradicted
            } else {
                Verdict::Inconclusive
            };
            (v, claimed[i], opposite[i])
        })
        .collect()
}
