//! The catalogue of per-run metrics: one list per experiment kind, with what each means. Claims,
//! `summary.csv` and the reports take names from here.

use super::setup::Setup;
use super::spec::Kind;

/// A metric and its meaning.
pub struct MetricInfo {
    pub name: &'static str,
    pub about: &'static str,
}

const fn m(name: &'static str, about: &'static str) -> MetricInfo {
    MetricInfo { name, about }
}

/// Metrics of a `train` run (the analysis ones also exist with an `init_` prefix when `at-init`).
pub const TRAIN_METRICS: [MetricInfo; 15] = [
    m("test_acc", "accuracy on the whole test split after the last epoch (measured once)"),
    m("test_loss", "cross-entropy on the whole test split after the last epoch"),
    m("val_acc", "validation accuracy after the last epoch"),
    m("best_val_acc", "best validation accuracy over the epochs"),
    m("val_loss", "validation cross-entropy after the last epoch"),
    m("train_acc", "training accuracy of the last epoch (augmented, train-mode BN)"),
    m("train_loss", "training loss of the last epoch"),
    m("params", "parameters"),
    m("macs", "multiply-adds per image"),
    m("positive_fraction", "mean over .post sites of (positive channels per position / channels)"),
    m(
        "below_threshold",
        "mean over all .post sites of the fraction of positions with fewer positive channels than the block input n (Fig. 7's threshold); includes the depthwise output of t = 1 blocks, below n almost everywhere",
    ),
    m("below_threshold_expanded", "below_threshold without the depthwise outputs of t = 1 blocks"),
    m(
        "expand_layers_below",
        "Fig. 7 per layer: expansion layers (blocks.{i}.expand.post) whose fewest positive channels over all positions and analysed images fall below n",
    ),
    m("dead_fraction", "mean over .post sites of the fraction of channels never positive"),
    m("lemma2_rate", "fraction of expansion-layer positions where Lemma 2 holds (|S| ≥ n and rank B_S = n); n/a without expansion layers"),
];
/// Appended after [`TRAIN_METRICS`]: the Jacobian rank.
pub const JACOBIAN_METRIC: MetricInfo =
    m("jacobian_rank", "mean over blocks of rank(block Jacobian) / min(input, output) dimension on a crop of the first image");
/// Analysis metrics that exist at initialisation too.
pub const ANALYSIS_METRICS: [&str; 7] =
    ["positive_fraction", "below_threshold", "below_threshold_expanded", "expand_layers_below", "dead_fraction", "lemma2_rate", "jacobian_rank"];

pub const SPIRAL_METRICS: [MetricInfo; 5] = [
    m("invertible_fraction", "fraction of spiral points where Lemma 2 holds for ReLU(T x)"),
    m("theory_lemma2_invertible", "Lemma 2's invertibility probability for ReLU(T x) with a Gaussian T: 1 − (n + 1)/2ⁿ (P(Binomial(n, ½) ≥ 2))"),
    m("collapsed_fraction", "fraction of points mapped onto a distant part of the spiral"),
    m("pinv_error", "mean ‖T⁺ ReLU(T x) − x‖ / mean ‖x‖"),
    m("pinv_shape_error", "the same after the best rescaling of the output (shape distortion)"),
];

pub const THEORY_METRICS: [MetricInfo; 2] =
    [m("empirical", "fraction of random expansion layers (one Gaussian input each) where Lemma 2 holds"), m("theory", "Theorem 1: P(Binomial(m, ½) ≥ n)")];

pub const MEMORY_METRICS: [MetricInfo; 6] = [
    m("params", "parameters"),
    m("macs", "multiply-adds per image"),
    m("max_tensor_bytes", "largest tensor materialised layer by layer (at bytes-per-element)"),
    m("fused_max_tensor_bytes", "largest tensor materialised when each block is one fused op (§5.1) — Table 3's figure"),
    m("fused_peak_bytes", "Eq. 2 for the fused schedule: the largest sum of one op's inputs and outputs"),
    m(
        "peak_heap_bytes",
        "measured peak live heap of one image's f32 forward run with `splits` (counting allocator; n/a without splits or outside the infoloss binary)",
    ),
];
/// Appended for runs with `splits`.
pub const SPLIT_DIFF_METRIC: MetricInfo = m("max_abs_diff", "largest |Δ logit| of the split forward against the plain forward");

/// Metrics that are the same for every seed of a variant (structure, cost, byte counts, formulas):
/// only exact checks may test them.
pub const DETERMINISTIC_METRICS: [&str; 8] =
    ["params", "macs", "theory", "theory_lemma2_invertible", "max_tensor_bytes", "fused_max_tensor_bytes", "fused_peak_bytes", "peak_heap_bytes"];

/// Whether `metric` (with or without `init_`) is deterministic.
pub fn is_deterministic(metric: &str) -> bool {
    DETERMINISTIC_METRICS.contains(&metric.strip_prefix("init_").unwrap_or(metric))
}

/// Every metric name a kind can report.
pub fn metric_names(kind: Kind) -> Vec<String> {
    match kind {
        Kind::Train => {
            let mut v: Vec<String> = TRAIN_METRICS.iter().map(|m| m.name.to_string()).collect();
            v.push(JACOBIAN_METRIC.name.into());
            v.extend(ANALYSIS_METRICS.iter().map(|m| format!("init_{m}")));
            v
        }
        Kind::Spiral => SPIRAL_METRICS.iter().map(|m| m.name.to_string()).collect(),
        Kind::Theory => THEORY_METRICS.iter().map(|m| m.name.to_string()).collect(),
        Kind::Memory => MEMORY_METRICS.iter().chain([&SPLIT_DIFF_METRIC]).map(|m| m.name.to_string()).collect(),
        Kind::Suite => Vec::new(),
    }
}

/// The meaning of a metric.
pub fn metric_about(name: &str) -> String {
    let (init, base) = match name.strip_prefix("init_") {
        Some(b) => (true, b),
        None => (false, name),
    };
    let about = TRAIN_METRICS
        .iter()
        .chain([&JACOBIAN_METRIC])
        .chain(SPIRAL_METRICS.iter())
        .chain(THEORY_METRICS.iter())
        .chain(MEMORY_METRICS.iter())
        .chain([&SPLIT_DIFF_METRIC])
        .find(|m| m.name == base)
        .map_or("", |m| m.about);
    if init {
        format!("{about}, at initialisation")
    } else {
        about.to_string()
    }
}

/// The metrics a variant's runs produce, in report order.
pub fn metrics_of(setup: &Setup) -> Vec<String> {
    match setup {
        Setup::Train(t) => {
            let mut v: Vec<String> = TRAIN_METRICS[..9].iter().map(|m| m.name.to_string()).collect();
            let mut analysis: Vec<&str> = Vec::new();
            if t.analysis.patterns {
                analysis.extend(["positive_fraction", "below_threshold", "below_threshold_expanded", "expand_layers_below", "dead_fraction"]);
            }
            if t.analysis.lemma2 {
                analysis.push("lemma2_rate");
            }
            if t.analysis.jacobian {
                analysis.push("jacobian_rank");
            }
            v.extend(analysis.iter().map(|s| s.to_string()));
            if t.analysis.at_init {
                v.extend(analysis.iter().map(|s| format!("init_{s}")));
            }
            v
        }
        Setup::Spiral(_) => SPIRAL_METRICS.iter().map(|m| m.name.to_string()).collect(),
        Setup::Theory(_) => THEORY_METRICS.iter().map(|m| m.name.to_string()).collect(),
        Setup::Memory(s) => {
            let mut v: Vec<String> = MEMORY_METRICS.iter().map(|m| m.name.to_string()).collect();
            if s.splits.is_some() {
                v.push(SPLIT_DIFF_METRIC.name.into());
            }
            v
        }
    }
}

/// Whether a variant's runs produce `metric`; the error is the fix.
///
/// # Errors
/// The metric is not produced by the setup; the message is the fix.
pub fn metric_available(metric: &str, setup: &Setup) -> Result<(), String> {
    if metrics_of(setup).iter().any(|m| m == metric) {
        return Ok(());
    }
    if let Setup::Train(t) = setup {
        if metric.starts_with("init_") && !t.analysis.at_init {
            return Err("set analysis.at-init = true".into());
        }
    }
    let base = metric.strip_prefix("init_").unwrap_or(metric);
    Err(match base {
        "positive_fraction" | "below_threshold" | "below_threshold_expanded" | "expand_layers_below" | "dead_fraction" => "set analysis.patterns = true".into(),
        "lemma2_rate" => "set analysis.lemma2 = true".into(),
        "jacobian_rank" => "set analysis.jacobian = true".into(),
        "max_abs_diff" => "set memory.splits".into(),
        _ if metric.starts_with("init_") => "set analysis.at-init = true".into(),
        _ => "this variant does not produce it".into(),
    })
}
