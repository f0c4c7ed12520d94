//! One run: a variant's setup and a seed, keyed by a hash of both. Executing it writes its folder
//! `runs/<key>/`: `run.json` (what it is), the training outputs (`metrics.csv`, checkpoints while it
//! trains, so a killed run resumes at its last epoch), `patterns.csv`, and last, atomically,
//! `result.json` — the only file that marks the run finished.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::metrics::metrics_of;
use super::setup::{MemorySetup, Setup, SpiralSetup, TheorySetup, TrainSetup};
use crate::analysis::jacobian::block_jacobian;
use crate::analysis::manifold::{spiral_run, SpiralSettings};
use crate::analysis::patterns::{analyze, AnalyzeResult, AnalyzeSettings};
use crate::analysis::theory::{theorem1_noncollapsed, theory_trials};
use crate::data::{DataSpec, DatasetSource, Split};
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use crate::io::meta::RunMeta;
use crate::model::block_setting::hidden_width;
use crate::model::{MobileNetV2, Network};
use crate::train::trainer::{train, EpochMetrics};

/// A planned run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunPlan {
    pub key: String,
    pub variant: String,
    pub seed: u64,
    pub setup: Setup,
}

impl RunPlan {
    pub fn new(variant: &str, seed: u64, setup: &Setup) -> Self {
        RunPlan { key: run_key(setup, seed), variant: variant.to_string(), seed, setup: setup.clone() }
    }

    /// Its folder under an experiment's output folder.
    pub fn dir(&self, out: &Path) -> PathBuf {
        out.join("runs").join(&self.key)
    }
}

/// The first 16 hex digits of SHA-256 over the canonical JSON of (setup, seed). The variant's name is
/// not part of it: renaming a variant does not redo its runs.
pub fn run_key(setup: &Setup, seed: u64) -> String {
    let json = serde_json::to_string(&serde_json::json!({ "setup": setup, "seed": seed })).unwrap_or_default();
    let digest = Sha256::digest(json.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A metric's name and value (`None`: does not apply).
type Metric = (String, Option<f64>);

/// Per-epoch training curve: the trainer's [`EpochMetrics`] without the wall time, so a run's result
/// holds only what is reproducible.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub lr: f64,
}

impl From<&EpochMetrics> for CurvePoint {
    fn from(e: &EpochMetrics) -> Self {
        CurvePoint { epoch: e.epoch, train_loss: e.train_loss, train_acc: e.train_acc, val_loss: e.val_loss, val_acc: e.val_acc, lr: e.lr }
    }
}

/// Activation pattern of one `.post` site (Fig. 7).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SitePattern {
    pub site: String,
    pub channels: usize,
    pub threshold: usize,
    pub positive_min: f64,
    pub positive_mean: f64,
    pub positive_max: f64,
}

/// What a finished run measured. NaN (a metric that does not apply, e.g. the Lemma-2 rate of a
/// network without expansion layers) is stored as `null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub key: String,
    pub variant: String,
    pub seed: u64,
    pub metrics: Vec<(String, Option<f64>)>,
    #[serde(default)]
    pub curve: Vec<CurvePoint>,
    #[serde(default)]
    pub patterns: Vec<SitePattern>,
    #[serde(default)]
    pub init_patterns: Vec<SitePattern>,
}

impl RunResult {
    /// A result with these metrics and nothing else (key and variant are filled in by [`execute`]).
    fn with_metrics(seed: u64, metrics: Vec<(String, Option<f64>)>) -> Self {
        RunResult { key: String::new(), variant: String::new(), seed, metrics, curve: Vec::new(), patterns: Vec::new(), init_patterns: Vec::new() }
    }

    /// The value of `metric` (NaN when absent or not applicable).
    pub fn metric(&self, metric: &str) -> f64 {
        self.metrics.iter().find(|(m, _)| m == metric).and_then(|(_, v)| *v).unwrap_or(f64::NAN)
    }
}

/// The result of a finished run in `dir`, if it is finished: a `result.json` for this key with every
/// metric the catalogue now lists for its setup (a result written before a metric was added or
/// renamed is not finished: the run is computed again rather than reported with holes).
pub fn finished(plan: &RunPlan, out: &Path) -> Option<RunResult> {
    let bytes = std::fs::read(plan.dir(out).join("result.json")).ok()?;
    let r = serde_json::from_slice::<RunResult>(&bytes).ok().filter(|r| r.key == plan.key)?;
    let complete = metrics_of(&plan.setup).iter().all(|m| r.metrics.iter().any(|(k, _)| k == m));
    complete.then_some(r)
}

/// Files of a finished run that a sibling copies (what [`execute`] leaves once the run is tidied):
/// never checkpoints or weights.
const ADOPTED_FILES: [&str; 11] = [
    "run.json",
    "metrics.csv",
    "metrics.csv.meta.json",
    "timing.csv",
    "timing.csv.meta.json",
    "patterns.csv",
    "patterns.csv.meta.json",
    "init_patterns.csv",
    "init_patterns.csv.meta.json",
    "timing.json",
    "result.json",
];

/// A finished run with the same key in a sibling experiment folder (`out/../*/runs/<key>`, siblings
/// being folders that hold an experiment's `spec.resolved.json`), copied into this one: the key is a
/// hash of the full setup and seed, and runs are deterministic, so the copy is what executing would
/// write (Fig. 6a, 6b and 7 share the default network's runs this way). The finished run's files are
/// copied atomically, `result.json` last, with `adopted_from.txt` naming the source; a sibling that
/// cannot be read is passed over (the run is then executed).
///
/// # Errors
/// The copy cannot be written.
pub fn adopt_sibling(plan: &RunPlan, out: &Path) -> Result<Option<RunResult>> {
    let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) else { return Ok(None) };
    let Ok(entries) = std::fs::read_dir(parent) else { return Ok(None) };
    let own = std::fs::canonicalize(out).ok();
    let mut siblings: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("spec.resolved.json").is_file()).collect();
    siblings.sort();
    for sib in siblings {
        if std::fs::canonicalize(&sib).ok() == own {
            continue;
        }
        let Some(mut found) = finished(plan, &sib) else { continue };
        // The variant's name is this spec's (the key does not depend on it).
        found.variant = plan.variant.clone();
        let src = plan.dir(&sib);
        // Read everything first: a sibling that changes under us is passed over, not half-copied.
        let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut readable = true;
        for name in ADOPTED_FILES {
            let bytes = match name {
                "run.json" => serde_json::to_string_pretty(plan).map_err(|e| Error::internal("serialising a run plan", e))?.into_bytes(),
                "result.json" => serde_json::to_string_pretty(&found).map_err(|e| Error::internal("serialising a run result", e))?.into_bytes(),
                _ => match std::fs::read(src.join(name)) {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(_) => {
                        readable = false;
                        break;
                    }
                },
            };
            files.push((name, bytes));
        }
        if !readable {
            continue;
        }
        let dst = plan.dir(out);
        std::fs::create_dir_all(&dst).map_err(|e| Error::io(&dst, e))?;
        write_atomic(&dst.join("adopted_from.txt"), format!("{}\n", src.display()).as_bytes())?;
        for (name, bytes) in files {
            write_atomic(&dst.join(name), &bytes)?;
        }
        return Ok(Some(found));
    }
    Ok(None)
}

/// Executes `plan` in its folder under `out` (resuming a half-trained run) and returns its result.
/// Runs on the caller's rayon pool (training is bit-identical for any thread count).
///
/// # Errors
/// Whatever the run's computation returns (bad data, a diverging loss), or an output that cannot be written.
pub fn execute(plan: &RunPlan, out: &Path) -> Result<RunResult> {
    let dir = plan.dir(out);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let described = serde_json::to_string_pretty(plan).map_err(|e| Error::internal("serialising a run plan", e))?;
    write_atomic(&dir.join("run.json"), described.as_bytes())?;
    let start = std::time::Instant::now();
    let mut result = match &plan.setup {
        Setup::Train(t) => execute_train(t, plan.seed, &dir)?,
        Setup::Spiral(s) => execute_spiral(s, plan.seed),
        Setup::Theory(t) => execute_theory(t, plan.seed),
        Setup::Memory(m) => execute_memory(m)?,
    };
    result.key = plan.key.clone();
    result.variant = plan.variant.clone();
    result.seed = plan.seed;
    // Order the metrics as the catalogue does.
    let order = metrics_of(&plan.setup);
    result.metrics.sort_by_key(|(m, _)| order.iter().position(|o| o == m).unwrap_or(usize::MAX));
    let timing = serde_json::json!({ "seconds": start.elapsed().as_secs_f64(), "threads": rayon::current_num_threads() });
    write_atomic(&dir.join("timing.json"), timing.to_string().as_bytes())?;
    let text = serde_json::to_string_pretty(&result).map_err(|e| Error::internal("serialising a run result", e))?;
    crate::failpoint!("run-before-result");
    write_atomic(&dir.join("result.json"), text.as_bytes())?;
    crate::failpoint!("run-after-result");
    tidy_finished(plan, out);
    Ok(result)
}

/// Removes what a finished training run no longer needs: its checkpoint (it is finished) and, unless
/// the spec keeps them, its weights. Best effort: the run is finished whatever this finds, and the
/// next `run` of the spec tries again.
pub fn tidy_finished(plan: &RunPlan, out: &Path) {
    if let Setup::Train(t) = &plan.setup {
        let dir = plan.dir(out);
        let _ = crate::train::checkpoint::remove(&dir);
        if !t.analysis.keep_weights {
            let _ = std::fs::remove_file(dir.join(crate::train::trainer::WEIGHTS_FILE));
        }
    }
}

fn metric(name: &str, v: f64) -> (String, Option<f64>) {
    (name.to_string(), v.is_finite().then_some(v))
}

fn execute_train(t: &TrainSetup, seed: u64, dir: &Path) -> Result<RunResult> {
    let cfg = t.train.resolve(&t.data, seed)?;
    // The test split is read after training: a missing test file must stop the run before it.
    let data: DataSpec = t.data.parse()?;
    if data.open(Split::Test, t.model.resolution, seed)?.is_empty() {
        return Err(Error::config("test split", &t.data, "it has no images; use a data set with a test file"));
    }
    let mut metrics = Vec::new();
    let mut result = RunResult::with_metrics(seed, Vec::new());
    if t.analysis.at_init {
        let init = MobileNetV2::seeded(&t.model, seed)?;
        let (m, p) = analyse(init, t, seed, dir, "init_")?;
        metrics.extend(m);
        result.init_patterns = p;
    }
    let mut model = MobileNetV2::seeded(&t.model, seed)?;
    // Resume a killed run from its last complete checkpoint (the pointer names only complete ones).
    let resume = crate::train::checkpoint::exists(dir);
    let epochs = train(&mut model, &cfg, dir, resume, &mut |_| {})?;
    let last = epochs.last().ok_or_else(|| Error::input("training", "no epoch ran"))?;
    let cost = model.cost(t.model.resolution);
    let test = crate::train::trainer::evaluate_test(&mut model, &cfg)?;
    metrics.extend([
        metric("test_acc", test.accuracy),
        metric("test_loss", test.loss),
        metric("val_acc", last.val_acc),
        metric("best_val_acc", epochs.iter().map(|e| e.val_acc).fold(f64::NAN, f64::max)),
        metric("val_loss", last.val_loss),
        metric("train_acc", last.train_acc),
        metric("train_loss", last.train_loss),
        metric("params", cost.params as f64),
        metric("macs", cost.macs as f64),
    ]);
    result.curve = epochs.iter().map(CurvePoint::from).collect();
    let (m, p) = analyse(model, t, seed, dir, "")?;
    metrics.extend(m);
    result.patterns = p;
    result.metrics = metrics;
    Ok(result)
}

/// The analyses of `t.analysis` on `model`, metrics named with `prefix`; writes
/// `{prefix}patterns.csv` into `dir`.
fn analyse(model: MobileNetV2, t: &TrainSetup, seed: u64, dir: &Path, prefix: &str) -> Result<(Vec<Metric>, Vec<SitePattern>)> {
    let a = &t.analysis;
    let mut out = Vec::new();
    let mut patterns = Vec::new();
    let spec: DataSpec = t.data.parse()?;
    let first_image = if a.jacobian { Some(spec.open(Split::Val, t.model.resolution, seed)?.image(0)?.0) } else { None };
    let net = Network::Classifier(model);
    if a.patterns || a.lemma2 {
        let settings = AnalyzeSettings { lemma2: a.lemma2, ..Default::default() };
        let mut source = DatasetSource::new(spec.open(Split::Val, t.model.resolution, seed)?, Some(a.images));
        let r = analyze(&net, &mut source, &settings, &mut |_, _| {})?;
        if a.patterns {
            let (m, p) = pattern_metrics(&r);
            out.extend(m.into_iter().map(|(k, v)| metric(&format!("{prefix}{k}"), v)));
            patterns = p;
            let meta = RunMeta::new("infoloss run", serde_json::json!({ "setup": t, "seed": seed, "at_init": !prefix.is_empty() }));
            r.patterns_table().write_csv(&dir.join(format!("{prefix}patterns.csv")), &meta)?;
        }
        if a.lemma2 {
            let l = r.lemma2.as_ref().map(|l| l.sites.values().fold((0u64, 0u64), |(i, p), s| (i + s.invertible, p + s.positions)));
            let rate = l.map_or(f64::NAN, |(i, p)| if p == 0 { f64::NAN } else { i as f64 / p as f64 });
            out.push(metric(&format!("{prefix}lemma2_rate"), rate));
        }
    }
    if let (true, Some(image), Network::Classifier(model)) = (a.jacobian, first_image, &net) {
        let mut sum = 0.0;
        for b in &model.blocks {
            let j = block_jacobian(model, b.plan.index, &image, a.jacobian_crop)?;
            sum += j.rank as f64 / j.input_dim.min(j.output_dim).max(1) as f64;
        }
        out.push(metric(&format!("{prefix}jacobian_rank"), sum / model.blocks.len().max(1) as f64));
    }
    Ok((out, patterns))
}

/// The block index and layer of a `blocks.{i}.{layer}.post` site.
fn block_site(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix("blocks.")?.strip_suffix(".post")?.split_once('.')
}

/// Means over `.post` sites, Fig. 7's per-layer count (expansion layers whose fewest positive
/// channels over positions and images fall below n), and each site's positive-count summary.
fn pattern_metrics(r: &AnalyzeResult) -> (Vec<(&'static str, f64)>, Vec<SitePattern>) {
    let mut sites = Vec::new();
    let (mut pos, mut below, mut dead) = (0.0, 0.0, 0.0);
    for s in &r.sites {
        let Some(a) = r.activity.sites.get(&s.name) else { continue };
        let p = a.positive_stats();
        pos += p.mean / s.channels as f64;
        below += a.fraction_positive_below(s.threshold);
        dead += a.dead_fraction();
        sites.push(SitePattern {
            site: s.name.to_string(),
            channels: s.channels,
            threshold: s.threshold,
            positive_min: p.min as f64,
            positive_mean: p.mean,
            positive_max: p.max as f64,
        });
    }
    let k = sites.len().max(1) as f64;
    let expanded: Vec<&str> = sites.iter().filter_map(|p| block_site(&p.site)).filter(|(_, l)| *l == "expand").map(|(b, _)| b).collect();
    let expand_sites: Vec<&SitePattern> = sites.iter().filter(|p| block_site(&p.site).is_some_and(|(_, l)| l == "expand")).collect();
    let layers_below = expand_sites.iter().filter(|p| p.positive_min < p.threshold as f64).count();
    // The all-site average without the depthwise outputs of t = 1 blocks (no expansion layer: n
    // channels against the threshold n, below it almost everywhere).
    let mut kept = (0.0, 0usize);
    for (p, a) in sites.iter().zip(r.sites.iter().filter_map(|s| r.activity.sites.get(&s.name))) {
        let t1 = block_site(&p.site).is_some_and(|(b, l)| l == "depthwise" && !expanded.contains(&b));
        if !t1 {
            kept = (kept.0 + a.fraction_positive_below(p.threshold), kept.1 + 1);
        }
    }
    let below_expanded = if kept.1 == 0 { f64::NAN } else { kept.0 / kept.1 as f64 };
    let layers_below = if expand_sites.is_empty() { f64::NAN } else { layers_below as f64 };
    (
        vec![
            ("positive_fraction", pos / k),
            ("below_threshold", below / k),
            ("below_threshold_expanded", below_expanded),
            ("expand_layers_below", layers_below),
            ("dead_fraction", dead / k),
        ],
        sites,
    )
}

fn execute_spiral(s: &SpiralSetup, seed: u64) -> RunResult {
    let (row, _) = spiral_run(s.n, seed, &spiral_settings(s, seed));
    RunResult::with_metrics(
        seed,
        vec![
            metric("invertible_fraction", row.invertible_fraction),
            metric("theory_lemma2_invertible", row.theory_lemma2_invertible),
            metric("collapsed_fraction", row.collapsed_fraction),
            metric("pinv_error", row.pinv_error),
            metric("pinv_shape_error", row.pinv_shape_error),
        ],
    )
}

/// The spiral experiment's settings for one cell.
pub fn spiral_settings(s: &SpiralSetup, seed: u64) -> SpiralSettings {
    SpiralSettings {
        dims: vec![s.n],
        seeds: vec![seed],
        points: s.points,
        turns: s.turns,
        collapse_ratio: s.collapse_ratio,
        neighbour_window: s.neighbour_window,
        rank_eps: s.rank_eps,
    }
}

fn execute_theory(t: &TheorySetup, seed: u64) -> RunResult {
    let m = hidden_width(t.n, t.t);
    let (inv, trials) = theory_trials(t.n, m, seed, t.samples, t.rank_eps);
    RunResult::with_metrics(seed, vec![metric("empirical", inv as f64 / trials as f64), metric("theory", theorem1_noncollapsed(m as u64, t.n as u64))])
}

/// Memory runs measure the process-wide heap, so they never overlap each other.
static MEMORY_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn execute_memory(m: &MemorySetup) -> Result<RunResult> {
    use crate::analysis::memory::account;
    let config = m.model();
    let model = MobileNetV2::new(&config)?;
    let cost = model.cost(m.resolution);
    let plain = account(&model, m.resolution, false, m.bytes_per_element);
    let fused = account(&model, m.resolution, true, m.bytes_per_element);
    let mut metrics = vec![
        metric("params", cost.params as f64),
        metric("macs", cost.macs as f64),
        metric("max_tensor_bytes", plain.max_tensor_bytes as f64),
        metric("fused_max_tensor_bytes", fused.max_tensor_bytes as f64),
        metric("fused_peak_bytes", fused.peak_bytes as f64),
    ];
    match &m.splits {
        None => metrics.push(metric("peak_heap_bytes", f64::NAN)),
        Some(k) => {
            let _guard = MEMORY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let splits: Vec<crate::model::split::Splits> = if k == "unsplit" { Vec::new() } else { vec![k.parse()?] };
            let rows = crate::bench::bench_split(&config, &splits, 1)?;
            let row = rows.last().ok_or_else(|| Error::input("split benchmark", "no rows"))?;
            metrics.push(metric("peak_heap_bytes", row.peak_bytes.map_or(f64::NAN, |b| b as f64)));
            metrics.push(metric("max_abs_diff", row.max_abs_diff as f64));
        }
    }
    Ok(RunResult::with_metrics(0, metrics))
}
