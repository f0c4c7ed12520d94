//! The report of an experiment run (`report.md` + `report.ipynb` + plots), drawn with the generic
//! rendering of [`crate::report`]: provenance, the claims with
//! their tests and verdicts, the per-variant summary, and the figures of its kind — training curves
//! with 95% bands (Fig. 6), activation patterns (Fig. 7), sweeps over a numeric variant axis, spiral
//! panels and rates (Fig. 1), Theorem 1 against experiment.

use std::path::{Path, PathBuf};

use super::metrics::{metric_about, metrics_of};
use super::report_figures as figures;
use super::spec::{ClaimKind, Kind, Spec};
use super::summary::{ClaimResult, Summary};
use crate::analysis::stats::{Direction, MIN_SEEDS_FOR_VERDICT};
use crate::error::Result;
use crate::io::meta::{GIT_COMMIT, VERSION};
use crate::io::table::format_float;
use crate::report::document::Document;

/// `mean ± half-width` (or `n/a`).
fn cell(s: &Summary, variant: &str, metric: &str) -> String {
    match s.row(variant, metric) {
        Some(r) if r.ci.n == 0 => "n/a".into(),
        Some(r) if r.ci.n == 1 => format_float(r.ci.mean),
        Some(r) => format!("{} ± {}", format_float(r.ci.mean), format_float((r.ci.hi - r.ci.mean).abs())),
        None => "—".into(),
    }
}

/// The claims table in Markdown: tests (statistical, equivalence) and exact checks.
pub fn claims_markdown(claims: &[ClaimResult], alpha: f64) -> String {
    let mut t = String::from(
        "| claim | kind | metric | tested | mean a | mean b | a − b [CI] | t (df) | p → Holm | verdict |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in claims {
        let b = c.claim.b.clone().unwrap_or_else(|| format_float(c.claim.value.unwrap_or(f64::NAN)));
        let test = &c.test;
        let tested = match c.claim.kind {
            ClaimKind::Equivalence => format!("{} within ± {} of {b}", c.claim.a, format_float(c.claim.margin.unwrap_or(f64::NAN))),
            _ => {
                let op = match c.claim.direction {
                    Direction::Greater => ">",
                    Direction::Less => "<",
                    Direction::AtLeast => "≥",
                    Direction::AtMost => "≤",
                    Direction::Equal => "=",
                };
                let tol = c.claim.tolerance.map(|x| format!(" ± {}", format_float(x))).unwrap_or_default();
                format!("{} {op} {b}{tol}", c.claim.a)
            }
        };
        let (stat, p) = if c.claim.kind == ClaimKind::Exact {
            ("—".to_string(), "—".to_string())
        } else {
            (format!("{} ({})", format_float(test.t), format_float(test.df)), format!("{} → {}", format_float(test.p_claimed), format_float(c.p_holm)))
        };
        let mut verdict = format!("**{}**", c.verdict_text());
        if let Some(n) = c.seeds_for_power {
            verdict.push_str(&format!(" (δ = {}: {n} seeds per group for 80% power)", format_float(c.claim.delta.unwrap_or(f64::NAN))));
        }
        let diff = if c.claim.kind == ClaimKind::Exact {
            format_float(test.diff)
        } else {
            format!(
                "{} [{}, {}] ({}%)",
                format_float(test.diff),
                format_float(test.diff_lo),
                format_float(test.diff_hi),
                format_float(100.0 * crate::experiment::summary::claim_ci_level(&c.claim, alpha))
            )
        };
        t.push_str(&format!(
            "| {} — {} | {} | {} | {tested} (n = {}, {}) | {} | {} | {diff} | {stat} | {p} | {verdict} |\n",
            c.claim.id,
            c.claim.statement,
            c.claim.kind.as_str(),
            c.claim.metric,
            test.n_a,
            test.n_b,
            format_float(test.mean_a),
            format_float(test.mean_b),
        ));
    }
    t
}

/// Where a numeric sweep is not monotone: each adjacent pair (in axis order) whose mean goes against
/// the overall direction (last point against the first), with a two-sided Welch p (descriptive, not
/// part of the claims' family).
pub fn monotonicity_markdown(spec: &Spec, s: &Summary) -> Option<String> {
    use crate::analysis::stats::welch_test;
    let (key, mut points) = figures::numeric_axis(spec)?;
    points.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut lines = Vec::new();
    for m in ["test_acc", "lemma2_rate"] {
        let vals: Vec<Vec<f64>> = points.iter().map(|&(i, _)| s.values(&spec.variants[i].name, m)).collect();
        let means: Vec<(f64, f64, usize)> =
            vals.iter().zip(&points).filter(|(v, _)| !v.is_empty()).map(|(v, p)| (p.1, v.iter().sum::<f64>() / v.len() as f64, p.0)).collect();
        if means.len() < 3 {
            continue;
        }
        let rising = means[means.len() - 1].1 >= means[0].1;
        let mut breaks = Vec::new();
        for w in means.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            if (hi.1 < lo.1) == rising && hi.1 != lo.1 {
                let t = welch_test(&s.values(&spec.variants[lo.2].name, m), &s.values(&spec.variants[hi.2].name, m), Direction::Greater, 0.95);
                let p2 = (2.0 * t.p_claimed.min(t.p_opposite)).min(1.0);
                breaks.push(format!(
                    "{key} = {} → {}: {} → {} (two-sided Welch p = {})",
                    format_float(lo.0),
                    format_float(hi.0),
                    format_float(lo.1),
                    format_float(hi.1),
                    format_float(p2)
                ));
            }
        }
        let trend = if rising { "rises" } else { "falls" };
        if breaks.is_empty() {
            lines.push(format!("- `{m}` {trend} monotonically with {key}."));
        } else {
            lines.push(format!("- `{m}` {trend} overall with {key} but is **not monotone**: {}.", breaks.join("; ")));
        }
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn rule(spec: &Spec, claims: usize) -> String {
    format!(
        "Claims come in three kinds. A **statistical** claim is a one-sided Welch t-test over seeds (one-sample against a constant) in the paper's direction; \
         an **equivalence** claim is two one-sided tests (TOST) that the mean lies within the stated margin of the predicted value. Their p-values are Holm-corrected together \
         across the {claims} claim(s) of this experiment that have one at α = {}; the interval of a statistical claim is 95%, of an equivalence claim 1 − 2α (90%), the one a TOST at α reads. **reproduced**: significant in the paper's direction (for equivalence: inside the margin); \
         **contradicted**: significant the other way (outside the margin); **inconclusive**: neither, or fewer than {MIN_SEEDS_FOR_VERDICT} seeds in a group — with the seeds \
         per group that 80% power would need for the declared smallest effect δ; **invalid**: a group with zero spread, where a t-test means nothing. \
         An **exact** check compares a deterministic quantity (or a property of each seed's network) with a bound, once per seed: **holds**, **fails** or \
         \"holds in k of N seeds\"; it has no p-value and is not replication.{}",
        spec.alpha,
        if spec.preliminary { " This is a smoke-scale run: its verdicts are **preliminary**." } else { "" }
    )
}

/// The commit recorded when the runs were started (`spec.resolved.json`), if any.
fn run_commit(out: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("spec.resolved.json")).ok()?).ok()?;
    v["git_commit"].as_str().map(str::to_string)
}

fn provenance(spec: &Spec, s: &Summary, out: &Path) -> String {
    let commit = match run_commit(out) {
        Some(c) if c != GIT_COMMIT => format!("runs made at commit `{c}`, report built at `{GIT_COMMIT}`"),
        _ => format!("commit `{GIT_COMMIT}`"),
    };
    let mut p = format!(
        "Kind `{}`; {} variant(s) × {} seed(s) ({}); **{} of {} runs finished**. infoloss {VERSION}, {commit}.",
        spec.kind.as_str(),
        spec.variants.len(),
        spec.seeds.len(),
        seeds_text(&spec.seeds),
        s.results.len(),
        s.expected
    );
    if !spec.overrides.is_empty() {
        p.push_str(&format!(" Overrides: `{}`.", spec.overrides.join("`, `")));
    }
    if !s.complete() {
        p.push_str(" **Partial results**: rerun the same command to finish the missing runs (finished runs are kept), or `infoloss merge` the other shards.");
    }
    p.push_str(" The resolved spec is in `spec.resolved.json`.");
    p
}

fn seeds_text(seeds: &[u64]) -> String {
    let contiguous = seeds.windows(2).all(|w| w[1] == w[0] + 1);
    match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) if contiguous && seeds.len() > 2 => format!("{a}..{}", b + 1),
        _ => seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
    }
}

/// Writes the plots and both reports of one experiment.
///
/// # Errors
/// A table, plot or report that cannot be written.
pub fn write_experiment_report(spec: &Spec, s: &Summary, out: &Path) -> Result<Vec<PathBuf>> {
    let mut doc = Document::default();
    let mut files = Vec::new();
    doc.md(format!("# {}\n\n{}", spec.name, spec.description.trim()));
    doc.md(provenance(spec, s, out));
    if !spec.claims.is_empty() {
        doc.md(format!("## Claims\n\n{}\n{}", claims_markdown(&s.claims, s.alpha), rule(spec, crate::experiment::summary::holm_family_size(s))));
    }
    doc.md(format!("## Results (mean ± 95% Student-t half-width over seeds)\n\n{}", results_markdown(spec, s)));
    if let Some(text) = monotonicity_markdown(spec, s) {
        doc.md(format!("### Along the sweep\n\n{text}"));
    }
    let metrics = spec.variants.first().map(|v| metrics_of(&v.setup)).unwrap_or_default();
    let glossary: Vec<String> = metrics.iter().map(|m| format!("- `{m}`: {}", metric_about(m))).collect();
    doc.md(format!("Metrics:\n\n{}", glossary.join("\n")));
    doc.md("## Figures");
    let figures = match spec.kind {
        Kind::Train => figures::train_figures(spec, s, out)?,
        Kind::Spiral => figures::spiral_figures(spec, s, out)?,
        Kind::Theory => figures::theory_figures(spec, s, out)?,
        Kind::Memory => figures::memory_figures(spec, s, out)?,
        Kind::Suite => Vec::new(),
    };
    for (stem, caption) in figures {
        files.push(out.join(format!("{stem}.png")));
        files.push(out.join(format!("{stem}.svg")));
        doc.image(stem, caption);
    }
    doc.md("## Load the tables\n\n`summary.csv` (variant × metric: n, mean, std, 95% CI), `claims.csv` (tests and verdicts), `runs.csv` (every run), `timing.csv` (wall times), and for training experiments `curves.csv` and each run's `runs/<key>/metrics.csv`.");
    doc.code(
        "import pandas as pd\nsummary = pd.read_csv(\"summary.csv\")\nclaims = pd.read_csv(\"claims.csv\")\nruns = pd.read_csv(\"runs.csv\")\nprint(claims[[\"id\", \"diff\", \"p_holm\", \"verdict\"]])\nsummary.pivot(index=\"metric\", columns=\"variant\", values=\"mean\")",
    );
    files.extend(doc.write(out)?);
    Ok(files)
}

/// Metric rows × variant columns.
fn results_markdown(spec: &Spec, s: &Summary) -> String {
    let mut metrics: Vec<String> = Vec::new();
    for v in &spec.variants {
        for m in metrics_of(&v.setup) {
            if !metrics.contains(&m) {
                metrics.push(m);
            }
        }
    }
    let mut t = format!(
        "| metric | {} |\n|---|{}\n",
        spec.variants.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(" | "),
        "---|".repeat(spec.variants.len())
    );
    for m in &metrics {
        let cells: Vec<String> = spec.variants.iter().map(|v| cell(s, &v.name, m)).collect();
        t.push_str(&format!("| {m} | {} |\n", cells.join(" | ")));
    }
    t
}

/// Mean and band over seeds of `f(run)` per x.
/// The suite's index: every part's claims with verdicts and a link to its report.
///
/// # Errors
/// A report that cannot be written.
pub fn write_suite_report(spec: &Spec, parts: &[(&Spec, Summary)], out: &Path) -> Result<Vec<PathBuf>> {
    let mut doc = Document::default();
    doc.md(format!("# {}\n\n{}", spec.name, spec.description.trim()));
    if spec.preliminary {
        doc.md("This is a smoke-scale cut of the shipped experiments: its verdicts are **preliminary** (most groups have fewer seeds than a verdict needs).");
    }
    let mut t = String::from(
        "| part | kind | runs finished | reproduced | contradicted | inconclusive | invalid | exact: holds | exact: fails or partial |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (p, s) in parts {
        let count = |v: &str| s.claims.iter().filter(|c| c.verdict.as_str() == v).count();
        t.push_str(&format!(
            "| [{}]({}/report.md) | {} | {} / {} | {} | {} | {} | {} | {} | {} |\n",
            p.name,
            p.name,
            p.kind.as_str(),
            s.results.len(),
            s.expected,
            count("reproduced"),
            count("contradicted"),
            count("inconclusive"),
            count("invalid"),
            count("holds"),
            count("fails") + count("partial")
        ));
    }
    doc.md(format!("infoloss {VERSION}, commit `{GIT_COMMIT}`.\n\n{t}"));
    for (p, s) in parts {
        doc.md(format!("## {}\n\n{}", p.name, p.description.trim()));
        if !s.claims.is_empty() {
            doc.md(claims_markdown(&s.claims, s.alpha));
        }
        doc.md(format!("Full report: [{0}/report.md]({0}/report.md) ([notebook]({0}/report.ipynb)).", p.name));
    }
    let loads: Vec<String> = parts.iter().map(|(p, _)| format!("claims[\"{0}\"] = pd.read_csv(\"{0}/claims.csv\")", p.name)).collect();
    doc.md("## Load the tables");
    doc.code(format!(
        "import pandas as pd\nclaims = {{}}\n{}\npd.concat(claims, names=[\"part\"])[[\"id\", \"diff\", \"p_holm\", \"verdict\"]]",
        loads.join("\n")
    ));
    doc.write(out)
}
