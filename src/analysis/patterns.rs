//! Activation patterns of a network over a stream of inputs (paper appendix, Fig. 7): at every
//! `.post` site, per spatial position, how many channels are positive / in the linear region /
//! saturated, against the rank threshold n; optionally Lemma 2 at every expansion position.

use serde::Serialize;

use super::invertibility::RANK_EPS;
use super::lemma2_observer::Lemma2Observer;
use crate::data::BatchSource;
use crate::error::{Error, Result};
use crate::hooks::observers::{ChannelActivity, ValueHistogram};
use crate::hooks::{HookSet, HookSite, NameFilter};
use crate::io::table::Table;
use crate::model::hooked::Hooked;
use crate::model::Network;

/// Settings of `analyze` (recorded in every output's metadata).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnalyzeSettings {
    /// Images per forward pass.
    pub batch: usize,
    /// Run the Lemma-2 check at every expansion position.
    pub lemma2: bool,
    /// ε of the rank tolerance σ_max · max(|S|, n) · ε.
    pub rank_eps: f64,
    /// Value histogram: bins over [lo, hi).
    pub histogram_bins: usize,
    pub histogram_range: (f32, f32),
}

impl Default for AnalyzeSettings {
    fn default() -> Self {
        AnalyzeSettings { batch: 32, lemma2: false, rank_eps: RANK_EPS, histogram_bins: 60, histogram_range: (0.0, 6.0) }
    }
}

/// Everything `analyze` measured.
pub struct AnalyzeResult {
    /// The activated sites (every `.post`, and activated projections) in firing order.
    pub sites: Vec<HookSite>,
    pub activity: ChannelActivity,
    pub histogram: ValueHistogram,
    pub lemma2: Option<Lemma2Observer>,
    pub images: usize,
}

/// Runs `model` over every batch of `source`, calling `progress(done, total)` after each batch.
///
/// # Errors
/// A batch the network cannot run, an unreadable source, no images at all.
pub fn analyze(model: &Network, source: &mut dyn BatchSource, settings: &AnalyzeSettings, progress: &mut dyn FnMut(usize, usize)) -> Result<AnalyzeResult> {
    if settings.batch == 0 {
        return Err(Error::config("batch", 0, "use at least 1 image per batch"));
    }
    if !(1..=crate::hooks::observers::MAX_HISTOGRAM_BINS).contains(&settings.histogram_bins) {
        let most = crate::hooks::observers::MAX_HISTOGRAM_BINS;
        return Err(Error::config("histogram_bins", settings.histogram_bins, format!("use 1 to {most} bins")));
    }
    super::invertibility::check_rank_eps(settings.rank_eps)?;
    let cap = model.config().activation.activation().cap();
    let sites: Vec<HookSite> = model.sites(model.config().resolution).into_iter().filter(|s| s.activated).collect();
    let filter = NameFilter::activated_sites(&sites);
    let mut activity = ChannelActivity::new(cap);
    let (lo, hi) = settings.histogram_range;
    let mut histogram = ValueHistogram::new(lo, hi, settings.histogram_bins);
    let mut lemma2 = settings.lemma2.then(|| Lemma2Observer::for_model(model.backbone(), settings.rank_eps));
    let total = source.total();
    let mut done = 0;
    while let Some(batch) = source.next_batch(settings.batch)? {
        let mut hooks = HookSet::new();
        let a = hooks.observe(filter.clone(), std::mem::take(&mut activity));
        let h = hooks.observe(filter.clone(), histogram.clone());
        let l = lemma2.take().map(|obs| hooks.observe(Lemma2Observer::filter(), obs));
        model.run_with_hooks_at(&batch, done, &mut hooks)?;
        activity = hooks.take(a)?;
        histogram = hooks.take(h)?;
        lemma2 = l.map(|id| hooks.take(id)).transpose()?;
        done += batch.len();
        progress(done, total);
    }
    if done == 0 {
        return Err(Error::input("inputs", "no images to analyse"));
    }
    Ok(AnalyzeResult { sites, activity, histogram, lemma2, images: done })
}

impl AnalyzeResult {
    /// Per `.post` site: counts of positive and linear-region channels per position against n.
    pub fn patterns_table(&self) -> Table {
        let mut t = PatternColumns::default();
        for (k, s) in self.sites.iter().enumerate() {
            let Some(a) = self.activity.sites.get(&s.name) else { continue };
            let (p, l) = (a.positive_stats(), a.linear_stats());
            t.layer.push(k as u64 + 1);
            t.site.push(s.name.to_string());
            t.channels.push(s.channels as u64);
            t.threshold.push(s.threshold as u64);
            t.positions.push(a.positions);
            for (dst, st) in [(&mut t.positive, p), (&mut t.linear, l)] {
                dst[0].push(st.min as f64);
                dst[1].push(st.mean);
                dst[2].push(st.max as f64);
                dst[3].push(st.std);
                dst[4].push(st.p1 as f64);
                dst[5].push(st.p5 as f64);
                dst[6].push(st.p50 as f64);
                dst[7].push(st.p95 as f64);
            }
            t.mean_saturated.push(a.mean_saturated());
            t.below_pos.push(a.fraction_positive_below(s.threshold));
            t.below_lin.push(a.fraction_linear_below(s.threshold));
            t.dead.push(a.dead_fraction());
        }
        let mut table =
            Table::new().u64("layer", t.layer).str("site", t.site).u64("channels", t.channels).u64("threshold", t.threshold).u64("positions", t.positions);
        for (prefix, cols) in [("positive", t.positive), ("linear", t.linear)] {
            for (name, col) in STAT_NAMES.iter().zip(cols) {
                table = table.f64(&format!("{prefix}_{name}"), col);
            }
        }
        table
            .f64("mean_saturated", t.mean_saturated)
            .f64("frac_positive_below_threshold", t.below_pos)
            .f64("frac_linear_below_threshold", t.below_lin)
            .f64("dead_fraction", t.dead)
    }

    /// Per channel of every `.post` site: fraction of positions positive / saturated, dead flag.
    pub fn channels_table(&self) -> Table {
        let (mut site, mut channel, mut pos, mut sat, mut dead) = (vec![], vec![], vec![], vec![], vec![]);
        for s in &self.sites {
            let Some(a) = self.activity.sites.get(&s.name) else { continue };
            let satf = a.channel_saturated_fraction();
            for (c, (&positive, &saturated)) in a.channel_positive.iter().zip(&satf).enumerate().take(a.channels) {
                site.push(s.name.to_string());
                channel.push(c as u64);
                pos.push(positive as f64 / a.positions.max(1) as f64);
                sat.push(saturated);
                dead.push(positive == 0);
            }
        }
        Table::new().str("site", site).u64("channel", channel).f64("positive_fraction", pos).f64("saturated_fraction", sat).bool("dead", dead)
    }

    /// Value histogram per `.post` site: exact zeros, values below / inside bins / above the range.
    pub fn histogram_table(&self) -> Table {
        let (mut site, mut kind, mut lo, mut hi, mut count) = (vec![], vec![], vec![], vec![], vec![]);
        let h = &self.histogram;
        for s in &self.sites {
            let Some(sh) = h.sites.get(&s.name) else { continue };
            let mut push = |k: &str, a: f64, b: f64, c: u64| {
                site.push(s.name.to_string());
                kind.push(k.to_string());
                lo.push(a);
                hi.push(b);
                count.push(c);
            };
            push("zero", 0.0, 0.0, sh.zeros);
            push("below", f64::NEG_INFINITY, h.lo as f64, sh.below);
            for (k, &c) in sh.counts.iter().enumerate() {
                push("bin", h.edge(k) as f64, h.edge(k + 1) as f64, c);
            }
            push("above", h.hi as f64, f64::INFINITY, sh.above);
            push("nonfinite", f64::NAN, f64::NAN, sh.nonfinite);
        }
        Table::new().str("site", site).str("kind", kind).f64("lo", lo).f64("hi", hi).u64("count", count)
    }

    /// Per expansion layer: Lemma-2 verdict fractions and conditioning (empty without `--lemma2`).
    pub fn lemma2_table(&self) -> Table {
        let mut t = Table::new();
        let Some(l) = &self.lemma2 else { return t };
        let rows: Vec<(usize, &super::lemma2_observer::Lemma2Stats)> = l.sites.iter().map(|(k, v)| (*k, v)).collect();
        let col = |f: &dyn Fn(&super::lemma2_observer::Lemma2Stats) -> f64| rows.iter().map(|(_, s)| f(s)).collect::<Vec<f64>>();
        let ucol = |f: &dyn Fn(&super::lemma2_observer::Lemma2Stats) -> u64| rows.iter().map(|(_, s)| f(s)).collect::<Vec<u64>>();
        t = t
            .str("site", rows.iter().map(|(k, _)| format!("blocks.{k}.expand")).collect())
            .u64("block", rows.iter().map(|(k, _)| *k as u64).collect())
            .u64("n", ucol(&|s| s.n as u64))
            .u64("m", ucol(&|s| s.m as u64))
            .u64("positions", ucol(&|s| s.positions))
            .f64("frac_invertible", col(&|s| s.fraction_invertible()))
            .f64("frac_fail_count", col(&|s| s.fraction_fail_count()))
            .f64("frac_fail_rank", col(&|s| s.fraction_fail_rank()))
            .f64("mean_active", col(&|s| s.mean_active()))
            .f64("median_condition", col(&|s| s.median_condition()))
            .u64("exact_svd_positions", ucol(&|s| s.exact_svd))
            .f64("max_error_invertible", col(&|s| s.max_error_invertible))
            .f64("max_error_over_cond_eps", col(&|s| s.max_error_ratio))
            .u64("rank_fail_unrecoverable", ucol(&|s| s.rank_fail_unrecoverable));
        t
    }
}

/// Names of the count statistics, in column order.
pub const STAT_NAMES: [&str; 8] = ["min", "mean", "max", "std", "p1", "p5", "p50", "p95"];

#[derive(Default)]
struct PatternColumns {
    layer: Vec<u64>,
    site: Vec<String>,
    channels: Vec<u64>,
    threshold: Vec<u64>,
    positions: Vec<u64>,
    positive: [Vec<f64>; 8],
    linear: [Vec<f64>; 8],
    mean_saturated: Vec<f64>,
    below_pos: Vec<f64>,
    below_lin: Vec<f64>,
    dead: Vec<f64>,
}
