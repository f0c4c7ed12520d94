//! Statistics (statrs): Student-t confidence intervals of a mean, Wilson intervals of a proportion,
//! one-sided Welch t-tests of paper claims with Holm correction and the verdict rule of experiment
//! reports.

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

/// The direction a paper claims: the first group's mean is greater (or less) than the second's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Greater,
    Less,
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
    finish(a.len(), b.len(), ma, mb, (sa + sb).sqrt(), df, direction, confidence)
}

/// The one-sample t-test of `mean(a)` against the constant `value`.
pub fn welch_test_value(a: &[f64], value: f64, direction: Direction, confidence: f64) -> WelchTest {
    let (ma, va) = mean_var(a);
    finish(a.len(), 0, ma, value, (va / a.len() as f64).sqrt(), a.len() as f64 - 1.0, direction, confidence)
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
        Direction::Greater => (p_greater, p_less),
        Direction::Less => (p_less, p_greater),
    };
    WelchTest { n_a, n_b, mean_a, mean_b, diff, diff_lo: diff - half, diff_hi: diff + half, t, df, p_claimed, p_opposite }
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
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::Contradicted => "contradicted",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Fewest seeds per group for a verdict other than inconclusive.
pub const MIN_SEEDS_FOR_VERDICT: usize = 5;

/// The verdicts of a family of claims: Holm across the family at `alpha`, separately for the claimed
/// and the opposite one-sided p-values; a claim with a group of fewer than
/// [`MIN_SEEDS_FOR_VERDICT`] seeds is inconclusive. Returns (verdict, adjusted claimed p, adjusted
/// opposite p) per test.
pub fn verdicts(tests: &[WelchTest], alpha: f64) -> Vec<(Verdict, f64, f64)> {
    let claimed = holm(&tests.iter().map(|t| t.p_claimed).collect::<Vec<_>>());
    let opposite = holm(&tests.iter().map(|t| t.p_opposite).collect::<Vec<_>>());
    tests
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let enough = t.n_a >= MIN_SEEDS_FOR_VERDICT && (t.n_b == 0 || t.n_b >= MIN_SEEDS_FOR_VERDICT);
            let v = if !enough {
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
