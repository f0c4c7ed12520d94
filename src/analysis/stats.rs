//! Interval statistics (statrs): Student-t confidence intervals of a mean, Wilson intervals of a
//! proportion.

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
