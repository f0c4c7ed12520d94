//! Experiment runner: every spec rejection, overrides, resume after an interruption, shard + merge,
//! determinism across jobs and thread counts, the statistics against hand-computed values, the
//! notebook's nbformat-4 structure, and the shipped specs.

use std::path::{Path, PathBuf};

use infoloss::analysis::stats::{holm, seeds_for_power, tost, verdicts, welch_test, welch_test_value, Direction, Verdict};
use infoloss::experiment::merge::merge;
use infoloss::experiment::summary::summarize;
use infoloss::experiment::{run_spec, Kind, RunOptions, Spec};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("infoloss-exp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn parse(text: &str) -> infoloss::Result<Spec> {
    Spec::parse(text, Path::new("."), &[])
}

/// The error text of a spec that must be rejected.
fn rejected(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("spec accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(err: &str, words: &[&str]) {
    for w in words {
        assert!(err.contains(w), "error {err:?} does not mention {w:?}");
    }
}

/// A tiny training experiment: 2 variants × 2 seeds, seconds per run.
const TINY: &str = r#"
name = "tiny"
kind = "train"
seeds = [0, 1]
data = "synthetic"
[model]
width = 0.1
[train]
epochs = 1
batch = 32
optimizer = "adamw"
train-limit = 64
val-limit = 32
[analysis]
images = 4
lemma2 = true
[grid]
"model.bottleneck" = ["linear", "relu6"]
[[claims]]
id = "linear-beats-relu6"
statement = "test"
metric = "val_acc"
a = "bottleneck=linear"
b = "bottleneck=relu6"
"#;

const SPIRAL: &str = r#"
name = "sp"
kind = "spiral"
seeds = "0..6"
[spiral]
points = 60
[grid]
"spiral.n" = [2, 15]
[[claims]]
id = "c"
statement = "s"
metric = "pinv_shape_error"
a = "n=2"
b = "n=15"
"#;

// ---- spec validation: one test per rejection --------------------------------------------------

#[test]
fn rejects_unknown_top_level_key() {
    let err = rejected(&TINY.replace("seeds = [0, 1]", "seeds = [0, 1]\nsead = 3"));
    assert_mentions(&err, &["sead", "expected one of"]);
}

#[test]
fn rejects_unknown_key_in_a_section() {
    let err = rejected(&TINY.replace("width = 0.1", "widht = 0.1"));
    assert_mentions(&err, &["model.widht", "an unknown key", "`width`"]);
}

#[test]
fn rejects_a_section_of_another_kind() {
    let err = rejected(&format!("{TINY}\n[spiral]\npoints = 5\n"));
    assert_mentions(&err, &["spiral", "train spec takes"]);
}

#[test]
fn rejects_train_spec_without_data() {
    let err = rejected(&TINY.replace("data = \"synthetic\"", ""));
    assert_mentions(&err, &["data", "synthetic"]);
}

#[test]
fn rejects_bad_data_spec() {
    let err = rejected(&TINY.replace("data = \"synthetic\"", "data = \"imagenet\""));
    assert_mentions(&err, &["imagenet", "cifar:DIR"]);
}

#[test]
fn rejects_bad_seeds() {
    for bad in ["seeds = []", "seeds = \"5..2\"", "seeds = [0, -1]", "seeds = \"a..b\"", "seeds = [1, 1]", "seeds = 3"] {
        let err = rejected(&TINY.replace("seeds = [0, 1]", bad));
        assert_mentions(&err, &["seeds"]);
    }
}

#[test]
fn rejects_out_of_range_width() {
    let err = rejected(&TINY.replace("width = 0.1", "width = 0.0"));
    assert_mentions(&err, &["width", "(0, 10]"]);
}

#[test]
fn rejects_zero_epochs() {
    let err = rejected(&TINY.replace("epochs = 1", "epochs = 0"));
    assert_mentions(&err, &["train", "epochs", "at least 1"]);
}

#[test]
fn rejects_expansion_ratio_below_one_in_theory() {
    let err = rejected("name = \"t\"\nkind = \"theory\"\n[theory]\nn = 8\nt = 0.5\n");
    assert_mentions(&err, &["theory.t = 0.5", "from 1 to 64"]);
}

#[test]
fn rejects_spiral_with_too_few_points() {
    let err = rejected("name = \"s\"\nkind = \"spiral\"\n[spiral]\npoints = 1\n");
    assert_mentions(&err, &["points", "at least 2"]);
}

#[test]
fn rejects_grid_key_without_section() {
    let err = rejected(&TINY.replace("\"model.bottleneck\" =", "\"bottleneck\" ="));
    assert_mentions(&err, &["grid.bottleneck", "section and key"]);
}

#[test]
fn rejects_grid_over_a_section_of_another_kind() {
    let err = rejected(&TINY.replace("\"model.bottleneck\" =", "\"spiral.n\" ="));
    assert_mentions(&err, &["grid.spiral.n", "model, train, analysis"]);
}

#[test]
fn rejects_empty_grid_list() {
    let err = rejected(&TINY.replace("[\"linear\", \"relu6\"]", "[]"));
    assert_mentions(&err, &["non-empty list"]);
}

#[test]
fn rejects_invalid_grid_value() {
    let err = rejected(&TINY.replace("[\"linear\", \"relu6\"]", "[\"linear\", \"sigmoid\"]"));
    assert_mentions(&err, &["bottleneck=sigmoid", "sigmoid"]);
}

#[test]
fn rejects_claim_naming_an_unknown_variant() {
    let err = rejected(&TINY.replace("b = \"bottleneck=relu6\"", "b = \"bottleneck=relu7\""));
    assert_mentions(&err, &["claims[0].b", "relu7", "did you mean 'bottleneck=relu6'"]);
}

#[test]
fn rejects_claim_with_unknown_metric() {
    let err = rejected(&TINY.replace("metric = \"val_acc\"", "metric = \"accuracy\""));
    assert_mentions(&err, &["claims[0].metric", "accuracy", "val_acc"]);
}

#[test]
fn rejects_claim_on_a_metric_the_analyses_do_not_produce() {
    let err = rejected(&TINY.replace("metric = \"val_acc\"", "metric = \"jacobian_rank\""));
    assert_mentions(&err, &["jacobian_rank", "analysis.jacobian = true"]);
    let err = rejected(&TINY.replace("metric = \"val_acc\"", "metric = \"init_lemma2_rate\""));
    assert_mentions(&err, &["analysis.at-init = true"]);
}

#[test]
fn rejects_claim_with_both_or_neither_comparison() {
    let err = rejected(&TINY.replace("b = \"bottleneck=relu6\"", "b = \"bottleneck=relu6\"\nvalue = 0.5"));
    assert_mentions(&err, &["claims[0].b", "either"]);
    let err = rejected(&TINY.replace("b = \"bottleneck=relu6\"", ""));
    assert_mentions(&err, &["claims[0].b", "either"]);
}

#[test]
fn rejects_duplicate_claim_ids() {
    let claim = &TINY[TINY.find("[[claims]]").unwrap()..];
    let err = rejected(&format!("{TINY}{claim}"));
    assert_mentions(&err, &["claims[1].id", "its own id"]);
}

#[test]
fn rejects_variants_that_resolve_to_the_same_config() {
    let text =
        "name = \"s\"\nkind = \"spiral\"\n[[variants]]\nname = \"a\"\nspiral = { n = 5 }\n[[variants]]\nname = \"b\"\nspiral = { n = 5, points = 600 }\n";
    let err = rejected(text);
    assert_mentions(&err, &["a and b", "same config"]);
}

#[test]
fn rejects_duplicate_variant_names() {
    let err = rejected(&TINY.replace("[\"linear\", \"relu6\"]", "[\"linear\", \"relu6\"]\n\"model.width\" = [0.1, 0.10]"));
    assert_mentions(&err, &["bottleneck=linear,width=0.1", "same name"]);
}

#[test]
fn rejects_a_variant_section_of_another_kind() {
    let err = rejected(&format!("{SPIRAL}\n[[variants]]\nname = \"x\"\nmodel = {{ width = 1.0 }}\n"));
    assert_mentions(&err, &["variants.x.model", "spiral"]);
}

#[test]
fn rejects_lemma2_on_mobilenet_v1() {
    let err = rejected(&TINY.replace("width = 0.1", "width = 0.25\narch = \"mobilenet_v1\""));
    assert_mentions(&err, &["analysis.lemma2", "no expansion layers"]);
}

#[test]
fn rejects_training_a_detector() {
    let err = rejected(&TINY.replace("width = 0.1", "width = 0.1\narch = \"ssdlite_mobilenet_v2\"").replace("lemma2 = true", "lemma2 = false"));
    assert_mentions(&err, &["model.arch", "classifiers"]);
}

#[test]
fn rejects_expansion_together_with_stage_expansion() {
    let err = rejected(&TINY.replace("width = 0.1", "width = 0.1\nexpansion = 4\nstage-expansion = [1, 6, 6, 6, 6, 6, 6]"));
    assert_mentions(&err, &["expansion", "not both"]);
}

#[test]
fn rejects_alpha_out_of_range() {
    let err = rejected(&TINY.replace("seeds = [0, 1]", "seeds = [0, 1]\nalpha = 1.5"));
    assert_mentions(&err, &["alpha", "(0, 1)"]);
}

#[test]
fn rejects_a_bad_name() {
    let err = rejected(&TINY.replace("name = \"tiny\"", "name = \"../x\""));
    assert_mentions(&err, &["name", "output folder"]);
}

#[test]
fn rejects_malformed_and_misspelt_overrides() {
    let err = Spec::parse(TINY, Path::new("."), &["train.epochs".into()]).unwrap_err().to_string();
    assert_mentions(&err, &["--set", "key=value"]);
    let err = Spec::parse(TINY, Path::new("."), &["train.epoch=3".into()]).unwrap_err().to_string();
    assert_mentions(&err, &["epoch", "epochs"]);
}

#[test]
fn rejects_nested_suites_missing_parts_and_unused_overrides() {
    let dir = tmp("suite-reject");
    std::fs::write(dir.join("sp.toml"), SPIRAL).unwrap();
    std::fs::write(dir.join("inner.toml"), "name = \"inner\"\nkind = \"suite\"\n[[parts]]\nspec = \"sp.toml\"\n").unwrap();
    std::fs::write(dir.join("outer.toml"), "name = \"outer\"\nkind = \"suite\"\n[[parts]]\nspec = \"inner.toml\"\n").unwrap();
    let err = Spec::load(&dir.join("outer.toml"), &[]).unwrap_err().to_string();
    assert_mentions(&err, &["parts[0].spec", "cannot contain a suite"]);
    std::fs::write(dir.join("missing.toml"), "name = \"m\"\nkind = \"suite\"\n[[parts]]\nspec = \"nope.toml\"\n").unwrap();
    let err = Spec::load(&dir.join("missing.toml"), &[]).unwrap_err().to_string();
    assert_mentions(&err, &["nope.toml", "relative to the suite"]);
    let err = Spec::load(&dir.join("inner.toml"), &["train.epochs=2".into()]).unwrap_err().to_string();
    assert_mentions(&err, &["train.epochs=2", "no part of the suite has this key"]);
    // A suite-level override that does apply reaches the part.
    let ok = Spec::load(&dir.join("inner.toml"), &["seeds=0..2".into()]).unwrap();
    assert_eq!(ok.parts[0].seeds, vec![0, 1]);
}

// ---- overrides ----------------------------------------------------------------------------------

#[test]
fn overrides_change_the_spec_and_are_recorded() {
    let spec = Spec::parse(TINY, Path::new("."), &["train.epochs=2".into(), "data=synthetic".into(), "seeds=\"3..5\"".into()]).unwrap();
    assert_eq!(spec.seeds, vec![3, 4]);
    let infoloss::experiment::setup::Setup::Train(t) = &spec.variants[0].setup else { panic!() };
    assert_eq!(t.train.epochs, 2);
    assert_eq!(spec.overrides.len(), 3);
    assert!(spec.source.contains("epochs = 2"));
}

// ---- statistics against hand-computed values ----------------------------------------------------

#[test]
fn welch_test_matches_hand_computed_values() {
    // a = 1..5: mean 3, s² = 2.5; b = a − 2.306: mean 0.694, s² = 2.5.
    // se = √(2.5/5 + 2.5/5) = 1, t = 2.306, Welch df = (0.5 + 0.5)² / (0.25/4 + 0.25/4) = 8.
    // Student-t tables: t(0.975, 8) = 2.306, so the one-sided p is 0.025 and the 95% CI of the
    // difference is 2.306 ± 2.306·1 = [0, 4.612].
    let a = [1.0, 2.0, 3.0, 4.0, 5.0];
    let b: Vec<f64> = a.iter().map(|x| x - 2.306).collect();
    let t = welch_test(&a, &b, Direction::Greater, 0.95);
    assert!((t.t - 2.306).abs() < 1e-9 && (t.df - 8.0).abs() < 1e-9, "{t:?}");
    assert!((t.p_claimed - 0.025).abs() < 2e-5, "{t:?}");
    assert!((t.p_opposite - 0.975).abs() < 2e-5);
    assert!(t.diff_lo.abs() < 1e-3 && (t.diff_hi - 4.612).abs() < 1e-3, "{t:?}");
    // The other direction swaps the p-values.
    let l = welch_test(&a, &b, Direction::Less, 0.95);
    assert!((l.p_claimed - 0.975).abs() < 2e-5);
    // One sample against a constant: mean 3, se = √(2.5/5) = 0.70711, t = (3 − 1)/0.70711 = 2.8284,
    // df 4; t(0.975, 4) = 2.776 → CI 2 ± 1.963 and p just under 0.025 (table: t(0.98, 4) = 2.999).
    let o = welch_test_value(&a, 1.0, Direction::Greater, 0.95);
    assert!((o.t - 2.828_427).abs() < 1e-5 && o.df == 4.0);
    assert!(o.p_claimed < 0.025 && o.p_claimed > 0.02, "{o:?}");
    assert!((o.diff_lo - (2.0 - 2.776 * std::f64::consts::FRAC_1_SQRT_2)).abs() < 2e-3);
}

#[test]
fn tost_matches_scipy_and_statsmodels() {
    let a = [0.51, 0.56, 0.53, 0.55, 0.54, 0.57, 0.52, 0.55];
    let b = [0.50, 0.53, 0.49, 0.55, 0.52, 0.51];
    // scipy.stats.ttest_1samp(a, 0.53, alternative="greater") and (a, 0.57, alternative="less"): the
    // larger is 0.08058424764073194.
    let one = tost(&a, &[], 0.55, 0.02, 0.95);
    assert!((one.p_claimed - 0.08058424764073194).abs() < 1e-12, "{one:?}");
    // statsmodels.stats.weightstats.ttost_ind(a, b, -0.03, 0.03, usevar="unequal")[0].
    let two = tost(&a, &b, f64::NAN, 0.03, 0.95);
    assert!((two.p_claimed - 0.3218037796505329).abs() < 1e-12, "{two:?}");
    assert!((two.df - 10.523379811080654).abs() < 1e-9);
    // Far outside the margin, the opposite test is significant; zero spread gives no p at all.
    let far = tost(&a, &[], 0.70, 0.02, 0.95);
    assert!(far.p_claimed > 0.99 && far.p_opposite < 1e-6, "{far:?}");
    let flat = tost(&[1.0; 5], &[], 1.0, 0.01, 0.95);
    assert!(flat.zero_spread() && flat.p_claimed.is_nan());
    // A constant computed in floating point is constant although its sd is 1e-16, not 0.
    let rounded = [0.25000000000000094, 0.25000000000000094, 0.25, 0.25000000000000094];
    assert!(infoloss::analysis::stats::constant_group(&rounded));
    assert!(welch_test_value(&rounded, 0.2, Direction::Greater, 0.95).zero_spread());
    assert!(!infoloss::analysis::stats::constant_group(&[0.25, 0.2500001]));
}

#[test]
fn seeds_for_power_agree_with_statsmodels_within_one_seed() {
    // statsmodels TTestIndPower / TTestPower .solve_power(effect_size = δ/σ, alpha, power = 0.8,
    // alternative = "larger") use the noncentral t; ours the shifted central t: within one seed.
    for (effect, alpha, two_sample, one_sample) in [
        (0.01 / 0.012, 0.025, 23.60472057481529f64, 13.34957056995399f64),
        (0.5, 0.05, 50.15078338685744, 26.137503817059283),
        (0.2, 0.01, 503.15664014063697, 253.61381519534507),
    ] {
        let n2 = seeds_for_power(effect, 1.0, Some(1.0), alpha, 0.8).unwrap() as f64;
        let n1 = seeds_for_power(effect, 1.0, None, alpha, 0.8).unwrap() as f64;
        assert!((n2 - two_sample.ceil()).abs() <= 1.0, "two-sample {effect} {alpha}: {n2} vs {two_sample}");
        assert!((n1 - one_sample.ceil()).abs() <= 1.0, "one-sample {effect} {alpha}: {n1} vs {one_sample}");
    }
    assert_eq!(seeds_for_power(0.0, 1.0, None, 0.05, 0.8), None);
    assert_eq!(seeds_for_power(1e-6, 1.0, None, 0.05, 0.8), None, "beyond the bound");
}

#[test]
fn holm_matches_hand_computed_values() {
    // p = [0.01, 0.04, 0.03]: sorted 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 → max(0.06, 0.04) = 0.06.
    let adj = holm(&[0.01, 0.04, 0.03]);
    for (x, want) in adj.iter().zip([0.03, 0.06, 0.06]) {
        assert!((x - want).abs() < 1e-12, "{adj:?}");
    }
    // Capped at 1; NaN is left out of the family.
    let adj = holm(&[0.6, f64::NAN, 0.5]);
    assert!((adj[0] - 1.0).abs() < 1e-12 && adj[1].is_nan() && (adj[2] - 1.0).abs() < 1e-12);
}

#[test]
fn verdict_rule_needs_five_seeds_and_significance() {
    let strong_a = [10.0, 11.0, 12.0, 10.5, 11.5];
    let strong_b = [1.0, 2.0, 1.5, 2.5, 1.2];
    let reproduced = welch_test(&strong_a, &strong_b, Direction::Greater, 0.95);
    let contradicted = welch_test(&strong_b, &strong_a, Direction::Greater, 0.95);
    let noisy = welch_test(&[1.0, 3.0, 2.0, 5.0, 0.0], &[2.0, 1.0, 4.0, 1.5, 2.5], Direction::Greater, 0.95);
    let few = welch_test(&strong_a[..4], &strong_b[..4], Direction::Greater, 0.95);
    let v: Vec<Verdict> = verdicts(&[reproduced, contradicted, noisy, few], 0.05).into_iter().map(|x| x.0).collect();
    assert_eq!(v, vec![Verdict::Reproduced, Verdict::Contradicted, Verdict::Inconclusive, Verdict::Inconclusive]);
}

// ---- runs, resume, shards, determinism ---------------------------------------------------------

fn opts(out: &Path) -> RunOptions {
    RunOptions { out: out.to_path_buf(), shard: None, jobs: 1, max_runs: None }
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The reproducible outputs of an experiment folder.
fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["summary.csv", "claims.csv", "runs.csv", "curves.csv", "report.md"]
        .iter()
        .filter(|f| dir.join(f).exists())
        .map(|f| (f.to_string(), read(dir.join(f))))
        .collect()
}

#[test]
fn interrupted_sweep_resumes_without_redoing_runs() {
    let spec = parse(TINY).unwrap();
    let full = tmp("resume-full");
    let o = run_spec(&spec, &opts(&full), &|_| {}).unwrap();
    assert_eq!((o.executed.len(), o.skipped.len()), (4, 0));
    let part = tmp("resume-part");
    // "Killed" after two runs; a third run left half-done (no result.json).
    let first = run_spec(&spec, &RunOptions { max_runs: Some(3), ..opts(&part) }, &|_| {}).unwrap();
    assert_eq!(first.executed.len(), 3);
    let half = part.join("runs").join(&first.executed[2]);
    std::fs::remove_file(half.join("result.json")).unwrap();
    let summary = summarize(&spec, &part);
    assert_eq!((summary.results.len(), summary.expected), (2, 4));
    assert!(std::fs::read_to_string(part.join("report.md")).unwrap().contains("Partial results"));
    let second = run_spec(&spec, &opts(&part), &|_| {}).unwrap();
    assert!(second.failed.is_empty(), "{:?}", second.failed);
    assert_eq!(second.skipped, first.executed[..2].to_vec(), "finished runs are not redone");
    assert_eq!(second.executed.len(), 2);
    assert_eq!(outputs(&part), outputs(&full));
    // A third call does nothing.
    let third = run_spec(&spec, &opts(&part), &|_| {}).unwrap();
    assert_eq!((third.executed.len(), third.skipped.len()), (0, 4));
}

#[test]
fn shards_merged_equal_an_unsharded_run() {
    let spec = parse(TINY).unwrap();
    let whole = tmp("shard-whole");
    run_spec(&spec, &opts(&whole), &|_| {}).unwrap();
    let (s1, s2, merged) = (tmp("shard-1"), tmp("shard-2"), tmp("shard-merged"));
    let a = run_spec(&spec, &RunOptions { shard: Some((1, 2)), ..opts(&s1) }, &|_| {}).unwrap();
    let b = run_spec(&spec, &RunOptions { shard: Some((2, 2)), ..opts(&s2) }, &|_| {}).unwrap();
    assert_eq!((a.executed.len(), a.other_shards, b.executed.len()), (2, 2, 2));
    assert!(a.executed.iter().all(|k| !b.executed.contains(k)), "shards are disjoint");
    let m = merge(&[s1.clone(), s2.clone()], &merged).unwrap();
    assert_eq!((m.copied, m.finished, m.expected), (4, 4, 4));
    assert_eq!(outputs(&merged), outputs(&whole));
    // Merging shards of a different experiment is refused.
    let other = tmp("shard-other");
    run_spec(&Spec::parse(TINY, Path::new("."), &["train.val-limit=16".into()]).unwrap(), &RunOptions { max_runs: Some(1), ..opts(&other) }, &|_| {}).unwrap();
    let err = merge(&[s1, other], &tmp("shard-bad")).unwrap_err().to_string();
    assert_mentions(&err, &["another spec"]);
}

#[test]
fn results_do_not_depend_on_jobs_or_threads() {
    let spec = parse(TINY).unwrap();
    let one = tmp("jobs-1");
    rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| run_spec(&spec, &opts(&one), &|_| {}).unwrap());
    let two = tmp("jobs-2");
    rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap().install(|| run_spec(&spec, &RunOptions { jobs: 2, ..opts(&two) }, &|_| {}).unwrap());
    assert_eq!(outputs(&one), outputs(&two));
    assert!(read(one.join("summary.csv")).starts_with(b"variant,metric,n,mean,std,ci95_lo,ci95_hi\n"));
}

#[test]
fn expansion_one_reports_lemma2_as_not_applicable() {
    let text = TINY
        .replace("\"model.bottleneck\" = [\"linear\", \"relu6\"]", "\"model.expansion\" = [1, 2]")
        .replace("bottleneck=linear", "expansion=2")
        .replace("bottleneck=relu6", "expansion=1");
    let spec = parse(&text).unwrap();
    let out = tmp("t1");
    run_spec(&spec, &opts(&out), &|_| {}).unwrap();
    let s = summarize(&spec, &out);
    assert_eq!(s.row("expansion=1", "lemma2_rate").unwrap().ci.n, 0);
    assert_eq!(s.row("expansion=2", "lemma2_rate").unwrap().ci.n, 2);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.lines().any(|l| l.starts_with("| lemma2_rate | n/a |")), "{report}");
}

#[test]
fn run_refuses_a_folder_of_another_experiment() {
    let out = tmp("other-exp");
    run_spec(&parse(SPIRAL).unwrap(), &opts(&out), &|_| {}).unwrap();
    let err = run_spec(&parse(TINY).unwrap(), &opts(&out), &|_| {}).unwrap_err().to_string();
    assert_mentions(&err, &["holds experiment 'sp'", "another folder"]);
}

#[test]
fn spiral_experiment_matches_the_standalone_analysis() {
    let spec = parse(SPIRAL).unwrap();
    let out = tmp("spiral");
    run_spec(&spec, &opts(&out), &|_| {}).unwrap();
    let s = summarize(&spec, &out);
    // Independent reference: the spiral analysis called directly for (n = 15, seed 3).
    let settings = infoloss::analysis::manifold::SpiralSettings { dims: vec![15], seeds: vec![3], points: 60, ..Default::default() };
    let (row, _) = infoloss::analysis::manifold::spiral_run(15, 3, &settings);
    let run = s.results.iter().find(|r| r.variant == "n=15" && r.seed == 3).unwrap();
    assert_eq!(run.metric("invertible_fraction"), row.invertible_fraction);
    assert_eq!(s.claims[0].verdict, Verdict::Reproduced, "{:?}", s.claims[0]);
}

#[test]
fn a_t_test_on_a_group_with_zero_spread_is_invalid_not_a_verdict() {
    // At n = 15 with 60 points Lemma 2 holds at every point for every seed: zero spread.
    let text = SPIRAL.replace("metric = \"pinv_shape_error\"\na = \"n=2\"\nb = \"n=15\"", "metric = \"invertible_fraction\"\na = \"n=15\"\nb = \"n=2\"");
    let spec = parse(&text).unwrap();
    let out = tmp("zero-spread");
    run_spec(&spec, &opts(&out), &|_| {}).unwrap();
    let s = summarize(&spec, &out);
    assert!(s.values("n=15", "invertible_fraction").iter().all(|&v| v == 1.0), "the premise: every seed 1.0");
    let c = &s.claims[0];
    assert_eq!(c.verdict, Verdict::Invalid, "{c:?}");
    assert!(c.p_holm.is_nan());
    let csv = String::from_utf8(read(out.join("claims.csv"))).unwrap();
    assert!(csv.lines().nth(1).unwrap().ends_with(",invalid,s"), "{csv}");
}

#[test]
fn exact_checks_count_the_seeds_where_the_bound_holds() {
    let text = SPIRAL.replace(
        "metric = \"pinv_shape_error\"\na = \"n=2\"\nb = \"n=15\"",
        "kind = \"exact\"\nmetric = \"invertible_fraction\"\na = \"n=2\"\nvalue = 0.25\ndirection = \"greater\"\n\
         [[claims]]\nid = \"all\"\nstatement = \"t\"\nkind = \"exact\"\nmetric = \"invertible_fraction\"\na = \"n=15\"\nvalue = 1.0\ndirection = \"equal\"\n\
         [[claims]]\nid = \"none\"\nstatement = \"u\"\nkind = \"exact\"\nmetric = \"invertible_fraction\"\na = \"n=2\"\nb = \"n=15\"\ndirection = \"at-least\"",
    );
    let spec = parse(&text).unwrap();
    let out = tmp("exact");
    run_spec(&spec, &opts(&out), &|_| {}).unwrap();
    let s = summarize(&spec, &out);
    // Naive count over the runs.
    let above = s.results.iter().filter(|r| r.variant == "n=2" && r.metric("invertible_fraction") > 0.25).count();
    let (first, all, none) = (&s.claims[0], &s.claims[1], &s.claims[2]);
    assert_eq!(first.holds, Some((above, 6)));
    let want = match above {
        6 => Verdict::Holds,
        0 => Verdict::Fails,
        _ => Verdict::Partial,
    };
    assert_eq!(first.verdict, want);
    if want == Verdict::Partial {
        assert_eq!(first.verdict_text(), format!("holds in {above} of 6 seeds"));
    }
    assert_eq!((all.verdict, all.holds), (Verdict::Holds, Some((6, 6))));
    assert_eq!((none.verdict, none.holds), (Verdict::Fails, Some((0, 6))));
    assert!(first.p_holm.is_nan() && all.p_holm.is_nan(), "exact checks have no p-value");
}

#[test]
fn statistical_or_equivalence_claims_on_deterministic_metrics_are_rejected() {
    let text = TINY.replace("metric = \"val_acc\"", "metric = \"params\"");
    assert_mentions(&rejected(&text), &["claims[0].kind", "deterministic", "kind = \"exact\""]);
    let text = TINY.replace("metric = \"val_acc\"", "kind = \"equivalence\"\nmargin = 0.1\nmetric = \"macs\"");
    assert_mentions(&rejected(&text), &["deterministic"]);
    assert_mentions(&rejected(&TINY.replace("metric = \"val_acc\"", "kind = \"equivalence\"\nmetric = \"val_acc\"")), &["margin", "missing"]);
    assert_mentions(&rejected(&TINY.replace("metric = \"val_acc\"", "direction = \"at-most\"\nmetric = \"val_acc\"")), &["direction", "exact"]);
    let ok = TINY.replace("metric = \"val_acc\"", "kind = \"exact\"\ndirection = \"less\"\nmetric = \"params\"");
    assert_eq!(parse(&ok).unwrap().claims[0].kind, infoloss::experiment::spec::ClaimKind::Exact);
}

#[test]
fn equivalence_claims_join_the_holm_family_of_the_statistical_ones() {
    let text = SPIRAL.replace(
        "a = \"n=2\"\nb = \"n=15\"",
        "a = \"n=2\"\nb = \"n=15\"\n[[claims]]\nid = \"eq\"\nstatement = \"e\"\nkind = \"equivalence\"\nmetric = \"invertible_fraction\"\na = \"n=2\"\nvalue = 0.25\nmargin = 0.2",
    );
    let spec = parse(&text).unwrap();
    let out = tmp("equivalence");
    run_spec(&spec, &opts(&out), &|_| {}).unwrap();
    let s = summarize(&spec, &out);
    let eq = &s.claims[1];
    let direct = tost(&s.values("n=2", "invertible_fraction"), &[], 0.25, 0.2, 0.95);
    assert_eq!(eq.test.p_claimed, direct.p_claimed);
    // Holm over the two claims' p-values.
    let p = [s.claims[0].test.p_claimed, direct.p_claimed];
    assert_eq!(eq.p_holm, holm(&p)[1]);
}

#[test]
fn a_run_finished_in_a_sibling_experiment_is_copied_not_recomputed() {
    let parent = tmp("siblings");
    let (a_out, b_out) = (parent.join("a"), parent.join("b"));
    let a = parse(SPIRAL).unwrap();
    run_spec(&a, &opts(&a_out), &|_| {}).unwrap();
    // Another experiment whose variant "two" is the same setup as a's "n=2" (the key ignores names).
    let b = parse("name = \"other\"\nkind = \"spiral\"\nseeds = [0, 1]\n[spiral]\npoints = 60\n[[variants]]\nname = \"two\"\nspiral = { n = 2 }\n").unwrap();
    let outcome = run_spec(&b, &opts(&b_out), &|_| {}).unwrap();
    assert_eq!(outcome.executed.len(), 2);
    let sb = summarize(&b, &b_out);
    let sa = summarize(&a, &a_out);
    for r in &sb.results {
        let twin = sa.results.iter().find(|x| x.key == r.key).expect("same key as a's run");
        assert_eq!((twin.variant.as_str(), r.variant.as_str()), ("n=2", "two"));
        assert_eq!(twin.metrics, r.metrics);
        // Copied: the wall-time record is a's, byte for byte (a fresh run would time itself).
        let dir = |out: &Path| out.join("runs").join(&r.key);
        assert_eq!(read(dir(&a_out).join("timing.json")), read(dir(&b_out).join("timing.json")));
        let run: serde_json::Value = serde_json::from_slice(&read(dir(&b_out).join("run.json"))).unwrap();
        assert_eq!(run["variant"], "two");
    }
    assert_eq!(sb.values("two", "invertible_fraction"), sa.values("n=2", "invertible_fraction")[..2].to_vec());
}

// ---- notebook ----------------------------------------------------------------------------------

#[test]
fn notebook_is_valid_nbformat_4_with_embedded_plots() {
    let out = tmp("notebook");
    run_spec(&parse(SPIRAL).unwrap(), &opts(&out), &|_| {}).unwrap();
    let nb: serde_json::Value = serde_json::from_slice(&read(out.join("report.ipynb"))).unwrap();
    assert_eq!(nb["nbformat"], 4);
    assert!(nb["nbformat_minor"].as_u64().unwrap() >= 4);
    assert!(nb["metadata"]["kernelspec"]["name"].is_string());
    let cells = nb["cells"].as_array().unwrap();
    let mut ids = std::collections::HashSet::new();
    let (mut images, mut pandas, mut claims_table) = (0, false, false);
    for c in cells {
        let id = c["id"].as_str().unwrap();
        assert!(!id.is_empty() && id.len() <= 64 && id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        assert!(ids.insert(id.to_string()), "duplicate cell id {id}");
        assert!(c["metadata"].is_object());
        let source: String = c["source"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        match c["cell_type"].as_str().unwrap() {
            "markdown" => {
                assert!(c.get("outputs").is_none());
                claims_table |= source.contains("| claim |") && source.contains("**reproduced**");
            }
            "code" => {
                assert!(c["execution_count"].is_null());
                pandas |= source.contains("pd.read_csv(\"summary.csv\")");
                for o in c["outputs"].as_array().unwrap() {
                    assert_eq!(o["output_type"], "display_data");
                    let png = base64_decode(o["data"]["image/png"].as_str().unwrap());
                    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
                    images += 1;
                }
            }
            other => panic!("cell type {other}"),
        }
    }
    assert_eq!(images, 3, "the three spiral figures are embedded");
    assert!(pandas && claims_table);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

// ---- shipped specs -------------------------------------------------------------------------------

#[test]
fn shipped_specs_all_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let spec = Spec::load(&p, &[]).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            names.push(spec.name.clone());
            if spec.kind != Kind::Suite {
                assert!(!spec.claims.is_empty(), "{} tests no claim", spec.name);
            }
        }
    }
    names.sort();
    for want in [
        "expansion_sweep",
        "fig1_spiral",
        "fig6a_bottleneck_activation",
        "fig6b_shortcut_placement",
        "fig7_activation_patterns",
        "memory_table3",
        "quick",
        "theorem1_theory",
    ] {
        assert!(names.iter().any(|n| n == want), "missing experiments/{want}.toml");
    }
    let quick = Spec::load(&dir.join("quick.toml"), &[]).unwrap();
    assert!(quick.preliminary);
    assert_eq!(quick.parts.len(), 6, "quick cuts every shipped experiment");
}

#[test]
fn memory_experiment_reproduces_table3_figures() {
    let text = "name = \"m\"\nkind = \"memory\"\nseeds = [0]\n[[variants]]\nname = \"v2\"\nmemory = { arch = \"mobilenet_v2\" }\n[[variants]]\nname = \"v1\"\nmemory = { arch = \"mobilenet_v1\" }\n[[variants]]\nname = \"k3\"\nmemory = { splits = \"3\", resolution = 96, width = 0.35 }\n";
    let spec = parse(text).unwrap();
    let out = tmp("memory");
    run_spec(&spec, &opts(&out), &|_| {}).unwrap();
    let s = summarize(&spec, &out);
    // Table 3 (16-bit, 224×224): MobileNetV2 fused 200,704 elements = 401,408 bytes (112·112·16),
    // MobileNetV1 802,816 elements = 1,605,632 bytes (112·112·64).
    assert_eq!(s.row("v2", "fused_max_tensor_bytes").unwrap().ci.mean, 401_408.0);
    assert_eq!(s.row("v1", "fused_max_tensor_bytes").unwrap().ci.mean, 1_605_632.0);
    assert_eq!(s.row("v2", "params").unwrap().ci.mean, 3_504_872.0);
    // The split run computes the same logits; its peak heap needs the counting allocator of the binary.
    assert!(s.row("k3", "max_abs_diff").unwrap().ci.mean < 1e-4);
    assert_eq!(s.row("k3", "peak_heap_bytes").unwrap().ci.n, 0);
}

#[test]
fn rejects_split_execution_of_mobilenet_v1() {
    let err = rejected("name = \"m\"\nkind = \"memory\"\n[memory]\narch = \"mobilenet_v1\"\nsplits = \"2\"\n");
    assert_mentions(&err, &["memory.splits", "MobileNetV2"]);
    let err = rejected("name = \"m\"\nkind = \"memory\"\n[memory]\nsplits = \"0\"\n");
    assert_mentions(&err, &["splits", "positive integers or C"]);
}

#[test]
fn rejects_a_missing_spec_file() {
    let err = Spec::load(Path::new("no/such/spec.toml"), &[]).unwrap_err().to_string();
    assert_mentions(&err, &["no/such/spec.toml", "experiments/quick.toml"]);
}

#[test]
fn rejects_toml_syntax_errors() {
    let err = rejected("name = \"x\"\nkind = \n");
    assert_mentions(&err, &["spec", "fix the syntax"]);
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_failing_run_is_reported_and_the_others_are_kept() {
    // One variant diverges (SGD at lr 1e300 makes the loss NaN); the other finishes normally.
    let text = TINY
        .replace("\"model.bottleneck\" = [\"linear\", \"relu6\"]", "\"train.lr\" = [0.001, 1e300]")
        .replace("optimizer = \"adamw\"", "optimizer = \"sgd\"")
        .replace("bottleneck=linear", "lr=0.001")
        .replace("bottleneck=relu6", "lr=1e300");
    let spec = parse(&text).unwrap();
    let out = tmp("failing");
    let o = run_spec(&spec, &RunOptions { jobs: 2, ..opts(&out) }, &|_| {}).unwrap();
    assert_eq!(o.executed.len(), 2, "{o:?}");
    assert_eq!(o.failed.len(), 2, "{o:?}");
    assert!(o.failed.iter().all(|(run, e)| run.contains("lr=1e300") && e.contains("loss became")), "{o:?}");
    let s = summarize(&spec, &out);
    assert_eq!((s.results.len(), s.expected), (2, 4));
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("Partial results"));
}

#[test]
fn merge_keeps_the_record_of_overrides() {
    let spec = Spec::parse(SPIRAL, Path::new("."), &["spiral.points=40".into()]).unwrap();
    let (a, b) = (tmp("ovr-a"), tmp("ovr-b"));
    run_spec(&spec, &opts(&a), &|_| {}).unwrap();
    merge(std::slice::from_ref(&a), &b).unwrap();
    assert_eq!(outputs(&a), outputs(&b));
    assert!(std::fs::read_to_string(b.join("report.md")).unwrap().contains("Overrides: `spiral.points=40`"));
}
