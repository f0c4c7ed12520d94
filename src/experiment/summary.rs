//! From finished runs to tables: per variant and metric the mean ± 95% Student-t interval over seeds
//! (`summary.csv`), every run's metrics (`runs.csv`), training curves with intervals (`curves.csv`),
//! and each claim decided in its kind (`claims.csv`): a statistical claim by Welch's test, an
//! equivalence claim by TOST — both Holm-adjusted together — and an exact check seed by seed.
//! Everything is read in plan order, so the tables are byte-identical however the runs were scheduled.

use std::path::{Path, PathBuf};

use super::metrics::metrics_of;
use super::run::{finished, RunResult};
use super::runner::plan;
use super::spec::{Claim, ClaimKind, Kind, Spec};
use crate::analysis::stats::{
    holm_levels, mean_ci, seeds_for_power, tost, verdicts, welch_test, welch_test_value, MeanCi, Verdict, WelchTest, MIN_SEEDS_FOR_VERDICT,
};
use crate::error::Result;
use crate::io::meta::RunMeta;
use crate::io::table::Table;

/// Confidence of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// One (variant, metric) cell.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    pub variant: String,
    pub metric: String,
    /// Seeds with a value (NaN values — not applicable — are left out).
    pub ci: MeanCi,
}

/// Power a statistical claim's seed count is planned for.
pub const POWER: f64 = 0.8;

/// One claim, tested.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimResult {
    pub claim: Claim,
    /// The t-test (statistical), the TOST (equivalence) or, for an exact check, the means compared.
    pub test: WelchTest,
    pub p_holm: f64,
    pub p_opposite_holm: f64,
    pub verdict: Verdict,
    /// Exact checks: seeds where the bound holds, and seeds checked.
    pub holds: Option<(usize, usize)>,
    /// Inconclusive statistical claims with a `delta`: seeds per group for [`POWER`] at the claim's
    /// Holm level (`None`: not computed, or more than the bound of [`seeds_for_power`]).
    pub seeds_for_power: Option<usize>,
}

impl ClaimResult {
    /// The verdict in words, e.g. "holds in 4 of 5 seeds" for a partial exact check.
    pub fn verdict_text(&self) -> String {
        match (self.verdict, self.holds) {
            (Verdict::Partial, Some((k, n))) => format!("holds in {k} of {n} seeds"),
            (Verdict::Holds, Some((_, n))) if n > 1 => format!("holds ({n} of {n} seeds)"),
            (Verdict::Invalid, _) => "invalid (zero spread)".into(),
            (v, _) => v.as_str().into(),
        }
    }
}

/// Everything a report shows.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Finished runs in plan order.
    pub results: Vec<RunResult>,
    pub expected: usize,
    pub rows: Vec<SummaryRow>,
    pub claims: Vec<ClaimResult>,
    /// The family-wise α the claims were decided at.
    pub alpha: f64,
}

impl Summary {
    /// All runs of the plan are finished.
    pub fn complete(&self) -> bool {
        self.results.len() == self.expected
    }

    /// The values of `metric` for `variant` over its finished seeds (NaN dropped), in seed order.
    pub fn values(&self, variant: &str, metric: &str) -> Vec<f64> {
        self.results.iter().filter(|r| r.variant == variant).map(|r| r.metric(metric)).filter(|v| v.is_finite()).collect()
    }

    /// The summary row of (variant, metric).
    pub fn row(&self, variant: &str, metric: &str) -> Option<&SummaryRow> {
        self.rows.iter().find(|r| r.variant == variant && r.metric == metric)
    }
}

/// Reads the finished runs of a (non-suite) spec from `out` and computes the statistics.
pub fn summarize(spec: &Spec, out: &Path) -> Summary {
    let mut planned = plan(spec, out);
    // Tables list runs variant by variant, seeds in spec order.
    let rank = |p: &super::run::RunPlan| (spec.variants.iter().position(|v| v.name == p.variant), spec.seeds.iter().position(|&s| s == p.seed));
    planned.sort_by_key(|(_, p)| rank(p));
    let results: Vec<RunResult> = planned.iter().filter_map(|(dir, p)| finished(p, dir)).collect();
    let mut s = Summary { results, expected: planned.len(), rows: Vec::new(), claims: Vec::new(), alpha: spec.alpha };
    for v in &spec.variants {
        for m in metrics_of(&v.setup) {
            let ci = mean_ci(&s.values(&v.name, &m), CONFIDENCE);
            s.rows.push(SummaryRow { variant: v.name.clone(), metric: m, ci });
        }
    }
    s.claims = decide_claims(spec, &s);
    s
}

/// Each claim of `spec` decided in its kind: the statistical and equivalence claims as one Holm family.
fn decide_claims(spec: &Spec, s: &Summary) -> Vec<ClaimResult> {
    let tests: Vec<WelchTest> = spec.claims.iter().map(|c| claim_test(c, s, spec.alpha)).collect();
    let tested: Vec<bool> = spec.claims.iter().map(|c| c.kind != ClaimKind::Exact).collect();
    // Exact checks stay out of the family: their p-values are NaN there.
    let family: Vec<WelchTest> =
        tests.iter().zip(&tested).map(|(t, &f)| if f { *t } else { WelchTest { p_claimed: f64::NAN, p_opposite: f64::NAN, ..*t } }).collect();
    let decided = verdicts(&family, spec.alpha);
    let levels = holm_levels(&family.iter().map(|t| if t.zero_spread() { f64::NAN } else { t.p_claimed }).collect::<Vec<_>>(), spec.alpha);
    spec.claims
        .iter()
        .zip(tests)
        .zip(decided)
        .zip(levels)
        .map(|(((c, test), (verdict, p_holm, p_opposite_holm)), level)| {
            if c.kind == ClaimKind::Exact {
                let (k, n) = exact_check(c, s);
                let verdict = match (k, n) {
                    // Seeds without a value (unfinished runs, NaN): no verdict until they are in.
                    (_, n) if n < spec.seeds.len() => Verdict::Inconclusive,
                    (k, n) if k == n => Verdict::Holds,
                    (0, _) => Verdict::Fails,
                    _ => Verdict::Partial,
                };
                return ClaimResult {
                    claim: c.clone(),
                    test,
                    p_holm: f64::NAN,
                    p_opposite_holm: f64::NAN,
                    verdict,
                    holds: Some((k, n)),
                    seeds_for_power: None,
                };
            }
            let power = match (c.kind, verdict, c.delta) {
                (ClaimKind::Statistical, Verdict::Inconclusive, Some(delta)) => {
                    let sd = |v: &str| mean_ci(&s.values(v, &c.metric), CONFIDENCE).std;
                    // The level the claim was compared with in the step-down (approximate: another
                    // run's p-values would order the family differently); never fewer seeds than a
                    // verdict needs.
                    seeds_for_power(delta, sd(&c.a), c.b.as_deref().map(sd), if level.is_finite() { level } else { spec.alpha }, POWER)
                        .map(|n| n.max(MIN_SEEDS_FOR_VERDICT))
                }
                _ => None,
            };
            ClaimResult { claim: c.clone(), test, p_holm, p_opposite_holm, verdict, holds: None, seeds_for_power: power }
        })
        .collect()
}

/// The interval that matches a TOST at level α: 1 − 2α (90% at α = 0.05); equivalence is shown
/// when it lies inside the margin.
pub fn equivalence_confidence(alpha: f64) -> f64 {
    1.0 - 2.0 * alpha
}

/// The interval level of a claim's `diff_lo`/`diff_hi`.
pub fn claim_ci_level(c: &Claim, alpha: f64) -> f64 {
    if c.kind == ClaimKind::Equivalence {
        equivalence_confidence(alpha)
    } else {
        CONFIDENCE
    }
}

/// Statistical and equivalence claims with a p-value: the size of the Holm family.
pub fn holm_family_size(s: &Summary) -> usize {
    s.claims.iter().filter(|c| c.claim.kind != ClaimKind::Exact && c.test.p_claimed.is_finite() && !c.test.zero_spread()).count()
}

/// The test of one claim: Welch / one-sample t, or TOST for equivalence; for an exact check only
/// its means and difference matter.
fn claim_test(c: &Claim, s: &Summary, alpha: f64) -> WelchTest {
    let a = s.values(&c.a, &c.metric);
    let b = c.b.as_ref().map(|b| s.values(b, &c.metric)).unwrap_or_default();
    let value = c.value.unwrap_or(f64::NAN);
    match c.kind {
        ClaimKind::Equivalence => tost(&a, &b, value, c.margin.unwrap_or(f64::NAN), equivalence_confidence(alpha)),
        _ if c.b.is_some() => welch_test(&a, &b, c.direction, CONFIDENCE),
        _ => welch_test_value(&a, value, c.direction, CONFIDENCE),
    }
}

/// An exact check seed by seed: (seeds where it holds, seeds with a value). Against `b`, each seed of
/// `a` is compared with the same seed of `b`.
fn exact_check(c: &Claim, s: &Summary) -> (usize, usize) {
    let tolerance = c.tolerance.unwrap_or(0.0);
    let (mut k, mut n) = (0, 0);
    for r in s.results.iter().filter(|r| r.variant == c.a) {
        let a = r.metric(&c.metric);
        let b = match &c.b {
            Some(b) => s.results.iter().find(|o| &o.variant == b && o.seed == r.seed).map_or(f64::NAN, |o| o.metric(&c.metric)),
            None => c.value.unwrap_or(f64::NAN),
        };
        if a.is_finite() && b.is_finite() {
            n += 1;
            k += usize::from(c.direction.holds(a, b, tolerance));
        }
    }
    (k, n)
}

/// `summary.csv`.
pub fn summary_table(s: &Summary) -> Table {
    Table::new()
        .str("variant", s.rows.iter().map(|r| r.variant.clone()).collect())
        .str("metric", s.rows.iter().map(|r| r.metric.clone()).collect())
        .u64("n", s.rows.iter().map(|r| r.ci.n as u64).collect())
        .f64("mean", s.rows.iter().map(|r| r.ci.mean).collect())
        .f64("std", s.rows.iter().map(|r| r.ci.std).collect())
        .f64("ci95_lo", s.rows.iter().map(|r| r.ci.lo).collect())
        .f64("ci95_hi", s.rows.iter().map(|r| r.ci.hi).collect())
}

/// `claims.csv`.
pub fn claims_table(s: &Summary) -> Table {
    let c = &s.claims;
    Table::new()
        .str("id", c.iter().map(|r| r.claim.id.clone()).collect())
        .str("kind", c.iter().map(|r| r.claim.kind.as_str().to_string()).collect())
        .str("metric", c.iter().map(|r| r.claim.metric.clone()).collect())
        .str("a", c.iter().map(|r| r.claim.a.clone()).collect())
        .str(
            "direction",
            c.iter().map(|r| if r.claim.kind == ClaimKind::Equivalence { "within".into() } else { r.claim.direction.as_str().to_string() }).collect(),
        )
        .str("b", c.iter().map(|r| r.claim.b.clone().unwrap_or_else(|| format!("{}", r.claim.value.unwrap_or(f64::NAN)))).collect())
        .f64("margin", c.iter().map(|r| r.claim.margin.unwrap_or(f64::NAN)).collect())
        .f64("tolerance", c.iter().map(|r| r.claim.tolerance.unwrap_or(f64::NAN)).collect())
        .u64("n_a", c.iter().map(|r| r.test.n_a as u64).collect())
        .u64("n_b", c.iter().map(|r| r.test.n_b as u64).collect())
        .f64("mean_a", c.iter().map(|r| r.test.mean_a).collect())
        .f64("mean_b", c.iter().map(|r| r.test.mean_b).collect())
        .f64("diff", c.iter().map(|r| r.test.diff).collect())
        .f64("ci_level", c.iter().map(|r| claim_ci_level(&r.claim, s.alpha)).collect())
        .f64("diff_ci_lo", c.iter().map(|r| r.test.diff_lo).collect())
        .f64("diff_ci_hi", c.iter().map(|r| r.test.diff_hi).collect())
        .f64("t", c.iter().map(|r| if r.claim.kind == ClaimKind::Exact { f64::NAN } else { r.test.t }).collect())
        .f64("df", c.iter().map(|r| if r.claim.kind == ClaimKind::Exact { f64::NAN } else { r.test.df }).collect())
        .f64("p", c.iter().map(|r| if r.claim.kind == ClaimKind::Exact { f64::NAN } else { r.test.p_claimed }).collect())
        .f64("p_holm", c.iter().map(|r| r.p_holm).collect())
        .f64("p_opposite_holm", c.iter().map(|r| r.p_opposite_holm).collect())
        .f64("delta", c.iter().map(|r| r.claim.delta.unwrap_or(f64::NAN)).collect())
        .f64("seeds_for_80pct_power", c.iter().map(|r| r.seeds_for_power.map_or(f64::NAN, |n| n as f64)).collect())
        .f64("seeds_holding", c.iter().map(|r| r.holds.map_or(f64::NAN, |h| h.0 as f64)).collect())
        .f64("seeds_checked", c.iter().map(|r| r.holds.map_or(f64::NAN, |h| h.1 as f64)).collect())
        .str("verdict", c.iter().map(|r| r.verdict.as_str().to_string()).collect())
        .str("statement", c.iter().map(|r| r.claim.statement.clone()).collect())
}

/// `runs.csv`: one row per finished run, one column per metric (empty where not applicable).
pub fn runs_table(spec: &Spec, s: &Summary) -> Table {
    let mut metrics: Vec<String> = Vec::new();
    for v in &spec.variants {
        for m in metrics_of(&v.setup) {
            if !metrics.contains(&m) {
                metrics.push(m);
            }
        }
    }
    let mut t = Table::new()
        .str("key", s.results.iter().map(|r| r.key.clone()).collect())
        .str("variant", s.results.iter().map(|r| r.variant.clone()).collect())
        .u64("seed", s.results.iter().map(|r| r.seed).collect());
    for m in &metrics {
        t = t.f64(m, s.results.iter().map(|r| r.metric(m)).collect());
    }
    t
}

/// `curves.csv`: per variant and epoch, mean and 95% interval of validation accuracy and training loss.
pub fn curves_table(spec: &Spec, s: &Summary) -> Table {
    let (mut variant, mut epoch, mut what, mut n, mut mean, mut lo, mut hi) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for v in &spec.variants {
        let runs: Vec<&RunResult> = s.results.iter().filter(|r| r.variant == v.name).collect();
        let epochs = runs.iter().map(|r| r.curve.len()).max().unwrap_or(0);
        for (name, get) in [("val_acc", (|c: &super::run::CurvePoint| c.val_acc) as fn(&super::run::CurvePoint) -> f64), ("train_loss", |c| c.train_loss)] {
            for e in 0..epochs {
                let vals: Vec<f64> = runs.iter().filter_map(|r| r.curve.get(e)).map(get).collect();
                let ci = mean_ci(&vals, CONFIDENCE);
                variant.push(v.name.clone());
                epoch.push(e as u64 + 1);
                what.push(name.to_string());
                n.push(ci.n as u64);
                mean.push(ci.mean);
                lo.push(ci.lo);
                hi.push(ci.hi);
            }
        }
    }
    Table::new().str("variant", variant).u64("epoch", epoch).str("metric", what).u64("n", n).f64("mean", mean).f64("ci95_lo", lo).f64("ci95_hi", hi)
}

/// `timing.csv`: wall seconds per finished run (not reproducible, hence its own file).
pub fn timing_table(spec: &Spec, out: &Path) -> Table {
    let (mut key, mut variant, mut seed, mut secs, mut threads) = (vec![], vec![], vec![], vec![], vec![]);
    for (dir, p) in plan(spec, out) {
        let Ok(bytes) = std::fs::read(p.dir(&dir).join("timing.json")) else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
        key.push(p.key.clone());
        variant.push(p.variant.clone());
        seed.push(p.seed);
        secs.push(v["seconds"].as_f64().unwrap_or(f64::NAN));
        threads.push(v["threads"].as_u64().unwrap_or(0));
    }
    Table::new().str("key", key).str("variant", variant).u64("seed", seed).f64("seconds", secs).u64("threads", threads)
}

/// Writes the tables, plots and reports of `spec` (a suite: of each part, then its index) from the
/// finished runs in `out`.
///
/// # Errors
/// A table, plot or report that cannot be written.
pub fn write_report(spec: &Spec, out: &Path) -> Result<Vec<PathBuf>> {
    let meta = RunMeta::new("infoloss run", serde_json::json!({ "spec": spec.name, "overrides": spec.overrides }));
    if spec.kind == Kind::Suite {
        let mut files = Vec::new();
        let mut parts = Vec::new();
        for p in &spec.parts {
            let dir = out.join(&p.name);
            files.extend(write_report(p, &dir)?);
            parts.push((p, summarize(p, &dir)));
        }
        files.extend(super::report::write_suite_report(spec, &parts, out)?);
        return Ok(files);
    }
    let s = summarize(spec, out);
    let mut files = vec![out.join("summary.csv"), out.join("claims.csv"), out.join("runs.csv"), out.join("timing.csv")];
    summary_table(&s).write_csv(&files[0], &meta)?;
    crate::failpoint!("report-between-tables");
    claims_table(&s).write_csv(&files[1], &meta)?;
    runs_table(spec, &s).write_csv(&files[2], &meta)?;
    timing_table(spec, out).write_csv(&files[3], &meta)?;
    if spec.kind == Kind::Train {
        files.push(out.join("curves.csv"));
        curves_table(spec, &s).write_csv(&files[4], &meta)?;
    }
    files.extend(super::report::write_experiment_report(spec, &s, out)?);
    Ok(files)
}
