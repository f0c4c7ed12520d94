//! Theorem 1 of Sandler et al. 2018 against experiment.
//!
//! For an m×n matrix B with a distribution symmetric under sign flips of its rows, the expected
//! fraction of inputs where `ReLU(Bx)` keeps all information (Lemma 2 holds) is
//! `N_{m,n} / 2^m = P(Binomial(m, ½) ≥ n)`. We compare it with the Lemma-2 rate of randomly initialised
//! expansion layers — Kaiming-normal B (fan-out), BatchNorm at its initial state so the bias is 0 —
//! on Gaussian inputs, for fractional expansion ratios `m = round(t·n)`. Every trial draws a fresh
//! layer and input, so trials are independent and the Wilson interval is valid (one fixed layer has
//! its own rate, which varies from layer to layer).

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, StandardNormal};
use serde::Serialize;
use statrs::distribution::{Binomial, DiscreteCDF};

use super::invertibility::{lemma2_verdict, Lemma2Layer, Lemma2Scratch};
use super::stats::wilson_interval;
use crate::io::table::Table;
use crate::model::block_setting::hidden_width;

/// `P(Binomial(m, ½) ≥ n)`: Theorem 1's expected non-collapsed fraction.
pub fn theorem1_noncollapsed(m: u64, n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    if n > m {
        return 0.0;
    }
    Binomial::new(0.5, m).map(|b| b.sf(n - 1)).unwrap_or(f64::NAN)
}

/// Settings of the theory sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TheorySettings {
    /// Input widths n.
    pub n: Vec<usize>,
    /// Expansion ratios t (m = round(t·n)).
    pub t: Vec<f64>,
    /// Independent streams; each draws `samples` fresh (layer, input) pairs.
    pub seeds: Vec<u64>,
    /// Random layers per seed, each checked at one Gaussian input (independent trials, so the
    /// Wilson interval applies).
    pub samples: usize,
    pub rank_eps: f64,
    pub confidence: f64,
}

impl TheorySettings {
    /// Checks every value against its documented range: n 1..=1024, t in [1, 64], samples
    /// 1..=1000000, at least one seed, confidence in (0, 1), rank-eps as
    /// [`super::invertibility::check_rank_eps`].
    ///
    /// # Errors
    /// The first value out of range, named with the fix.
    pub fn validate(&self) -> crate::Result<()> {
        use crate::Error;
        if self.n.is_empty() || self.n.iter().any(|&n| !(1..=1024).contains(&n)) {
            return Err(Error::config("n", format!("{:?}", self.n), "give input widths from 1 to 1024, e.g. 8,16,32"));
        }
        if self.t.is_empty() || self.t.iter().any(|&t| !(t.is_finite() && (1.0..=64.0).contains(&t))) {
            return Err(Error::config("t", format!("{:?}", self.t), "give expansion ratios from 1 to 64, e.g. 1,2,6"));
        }
        if !(1..=1_000_000).contains(&self.samples) {
            return Err(Error::config("samples", self.samples, "use 1 to 1000000 random layers per seed; with 0 there is no rate to report"));
        }
        if self.seeds.is_empty() {
            return Err(Error::config("seeds", "an empty list", "give at least one seed"));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(Error::config("confidence", self.confidence, "use a level in (0, 1), e.g. 0.95"));
        }
        super::invertibility::check_rank_eps(self.rank_eps)
    }
}

/// One (n, t) cell of the sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TheoryRow {
    pub n: usize,
    pub t: f64,
    pub m: usize,
    pub theory: f64,
    pub trials: u64,
    pub invertible: u64,
    pub empirical: f64,
    pub wilson_lo: f64,
    pub wilson_hi: f64,
}

/// A random expansion layer at initialisation: Kaiming-normal `m × n` (std √(2/m)), bias 0.
///
/// # Panics
/// When n or m is 0 (the theory command and setup refuse them first).
pub fn random_expansion(n: usize, m: usize, seed: u64) -> Lemma2Layer {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0, (2.0 / m as f64).sqrt()).expect("finite std");
    Lemma2Layer::new(nalgebra::DMatrix::from_fn(n, m, |_, _| normal.sample(&mut rng)), vec![0.0; m], None)
}

/// One seed of one (n, m) cell: `samples` fresh random expansion layers, each checked at one Gaussian
/// input. Returns (invertible, trials).
pub fn theory_trials(n: usize, m: usize, seed: u64, samples: usize, rank_eps: f64) -> (u64, u64) {
    let stream = seed ^ ((n as u64) << 32) ^ ((m as u64) << 48);
    let mut rng = StdRng::seed_from_u64(stream);
    let mut invertible = 0u64;
    for k in 0..samples {
        let layer = random_expansion(n, m, stream.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(k as u64));
        let x: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        let y: Vec<f32> = (0..m).map(|i| (0..n).map(|j| layer.bt[(j, i)] * x[j] as f64).sum::<f64>() as f32).collect();
        invertible += lemma2_verdict(&layer, &layer.active_set(&y), &x, &y, rank_eps, &mut Lemma2Scratch::default()).invertible() as u64;
    }
    (invertible, samples as u64)
}

/// Runs the sweep.
pub fn theory_sweep(s: &TheorySettings) -> Vec<TheoryRow> {
    let mut rows = Vec::new();
    for &n in &s.n {
        for &t in &s.t {
            let m = hidden_width(n, t);
            let (mut invertible, mut trials) = (0u64, 0u64);
            for &seed in &s.seeds {
                let (i, k) = theory_trials(n, m, seed, s.samples, s.rank_eps);
                invertible += i;
                trials += k;
            }
            let (lo, hi) = wilson_interval(invertible, trials, s.confidence);
            rows.push(TheoryRow {
                n,
                t,
                m,
                theory: theorem1_noncollapsed(m as u64, n as u64),
                trials,
                invertible,
                empirical: invertible as f64 / trials.max(1) as f64,
                wilson_lo: lo,
                wilson_hi: hi,
            });
        }
    }
    rows
}

/// The sweep as a table (`theory.csv`).
pub fn theory_table(rows: &[TheoryRow]) -> Table {
    Table::new()
        .u64("n", rows.iter().map(|r| r.n as u64).collect())
        .f64("t", rows.iter().map(|r| r.t).collect())
        .u64("m", rows.iter().map(|r| r.m as u64).collect())
        .f64("theory_noncollapsed", rows.iter().map(|r| r.theory).collect())
        .u64("trials", rows.iter().map(|r| r.trials).collect())
        .u64("invertible", rows.iter().map(|r| r.invertible).collect())
        .f64("empirical_lemma2_rate", rows.iter().map(|r| r.empirical).collect())
        .f64("wilson_lo", rows.iter().map(|r| r.wilson_lo).collect())
        .f64("wilson_hi", rows.iter().map(|r| r.wilson_hi).collect())
        .bool("theory_within_ci", rows.iter().map(|r| r.theory >= r.wilson_lo && r.theory <= r.wilson_hi).collect())
}
