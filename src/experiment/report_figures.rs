//! The figures of an experiment report, by kind: training curves with 95% bands over seeds (Fig. 6),
//! activation patterns per site (Fig. 7), sweeps over a numeric variant axis, spiral panels and rates
//! (Fig. 1), Theorem 1 against experiment, and Table 3's memory. Each returns the (title, file) pairs
//! the report embeds.

use std::path::Path;

use super::metrics::metrics_of;
use super::run::{spiral_settings, RunResult, SitePattern};
use super::setup::Setup;
use super::spec::Spec;
use super::summary::{Summary, CONFIDENCE};
use crate::analysis::manifold::{spiral, spiral_run};
use crate::analysis::stats::mean_ci;
use crate::error::Result;
use crate::report::plot::{Band, LineChart, PanelGrid, ScatterPanel, Series};

fn band_of(xs: &[f64], values: impl Fn(usize) -> Vec<f64>, color: usize, name: &str) -> (Series, Band) {
    let (mut pts, mut band) = (Vec::new(), Band { x: Vec::new(), lower: Vec::new(), upper: Vec::new(), color });
    for (i, &x) in xs.iter().enumerate() {
        let ci = mean_ci(&values(i), CONFIDENCE);
        if ci.n == 0 {
            continue;
        }
        pts.push((x, ci.mean));
        band.x.push(x);
        band.lower.push(if ci.lo.is_finite() { ci.lo } else { ci.mean });
        band.upper.push(if ci.hi.is_finite() { ci.hi } else { ci.mean });
    }
    (Series::line(name, pts, color).with_markers(), band)
}

/// A numeric axis of the variants named `key=value` with one key and a number (e.g. the expansion
/// sweep's `t=1` … `t=10`): the key and (variant index, value) pairs, in spec order. Other variants
/// (e.g. the equal-cost arms `t=1,width=0.72`) are left out.
pub(super) fn numeric_axis(spec: &Spec) -> Option<(String, Vec<(usize, f64)>)> {
    let mut key: Option<String> = None;
    let mut points = Vec::new();
    for (i, v) in spec.variants.iter().enumerate() {
        let Some((k, val)) = v.name.split_once('=') else { continue };
        let Ok(x) = val.parse::<f64>() else { continue };
        if v.name.contains(',') || key.as_ref().is_some_and(|kk| kk != k) {
            continue;
        }
        key = Some(k.to_string());
        points.push((i, x));
    }
    (points.len() > 1).then(|| (key.unwrap_or_default(), points))
}

pub(super) fn train_figures(spec: &Spec, s: &Summary, out: &Path) -> Result<Vec<(String, String)>> {
    let mut figs = Vec::new();
    let mut chart = LineChart::new(format!("{}: validation accuracy (mean and 95% band over seeds)", spec.name), "epoch", "validation accuracy");
    for (k, v) in spec.variants.iter().enumerate() {
        let runs: Vec<_> = s.results.iter().filter(|r| r.variant == v.name).collect();
        let epochs = runs.iter().map(|r| r.curve.len()).max().unwrap_or(0);
        let xs: Vec<f64> = (1..=epochs).map(|e| e as f64).collect();
        let (line, band) = band_of(&xs, |e| runs.iter().filter_map(|r| r.curve.get(e)).map(|c| c.val_acc).collect(), k, &v.name);
        chart.series.push(line);
        chart.bands.push(band);
    }
    chart.write(&out.join("curves"))?;
    figs.push(("curves".to_string(), "Validation accuracy per epoch, mean over seeds with 95% Student-t band (Fig. 6 style)".to_string()));
    if let Some((key, points)) = numeric_axis(spec) {
        let xs: Vec<f64> = points.iter().map(|p| p.1).collect();
        let metrics = metrics_of(&spec.variants[points[0].0].setup);
        for m in ["test_acc", "lemma2_rate", "below_threshold"] {
            if !metrics.iter().any(|x| x == m) {
                continue;
            }
            let mut c = LineChart::new(format!("{}: {m} against {key} (mean and 95% band)", spec.name), key.clone(), m);
            let (line, band) = band_of(&xs, |i| s.values(&spec.variants[points[i].0].name, m), 0, m);
            c.series.push(line);
            c.bands.push(band);
            if metrics.iter().any(|x| x == &format!("init_{m}")) {
                let (line, band) = band_of(&xs, |i| s.values(&spec.variants[points[i].0].name, &format!("init_{m}")), 1, &format!("{m} at initialisation"));
                c.series.push(line.dashed());
                c.bands.push(band);
            }
            let stem = format!("sweep_{m}");
            c.write(&out.join(&stem))?;
            figs.push((stem, format!("{m} against {key}; points with no applicable value (e.g. the Lemma-2 rate of t = 1) are left out")));
        }
    }
    let with_patterns: Vec<_> = spec.variants.iter().filter(|v| matches!(&v.setup, Setup::Train(t) if t.analysis.patterns)).collect();
    if !with_patterns.is_empty() {
        let per_variant = with_patterns.len() <= 3;
        let mut combined = LineChart::new(
            format!("{}: mean positive channels / channels at each .post site", spec.name),
            "layer (post-activation site, in order)",
            "fraction of channels",
        );
        combined.y_range = Some((0.0, 1.05));
        for (k, v) in with_patterns.iter().enumerate() {
            let runs: Vec<_> = s.results.iter().filter(|r| r.variant == v.name && !r.patterns.is_empty()).collect();
            let Some(first) = runs.first() else { continue };
            let sites = first.patterns.len();
            let xs: Vec<f64> = (1..=sites).map(|i| i as f64).collect();
            let runs = &runs;
            let frac = |get: fn(&SitePattern) -> f64, init: bool| move |i: usize| site_fractions(runs, i, get, init);
            if per_variant {
                // All .post sites, then the expansion layers alone (Fig. 7's per-layer statement).
                let all: Vec<usize> = (0..sites).collect();
                let expand: Vec<usize> = (0..sites).filter(|&i| first.patterns[i].site.ends_with(".expand.post")).collect();
                for (which, idx) in [("all", all), ("expand", expand)] {
                    if idx.is_empty() {
                        continue;
                    }
                    let xs: Vec<f64> = (1..=idx.len()).map(|i| i as f64).collect();
                    let at = |get: fn(&SitePattern) -> f64, init: bool| {
                        let idx = idx.clone();
                        move |i: usize| site_fractions(runs, idx[i], get, init)
                    };
                    let (title, xlabel) = match which {
                        "all" => ("active channels per position / channels at every .post site", "layer (post-activation site, in order)"),
                        _ => ("active channels per position / channels at each expansion layer", "expansion layer (blocks.i.expand.post, in order)"),
                    };
                    let mut c = LineChart::new(format!("{} — {}: {title} (Fig. 7)", spec.name, v.name), xlabel, "fraction of channels");
                    c.y_range = Some((0.0, 1.05));
                    for (name, get, color) in [
                        ("trained: min", (|p: &SitePattern| p.positive_min) as fn(&_) -> f64, 0),
                        ("trained: mean", |p| p.positive_mean, 1),
                        ("trained: max", |p| p.positive_max, 2),
                    ] {
                        let (line, band) = band_of(&xs, at(get, false), color, name);
                        c.series.push(line);
                        if name == "trained: mean" {
                            c.bands.push(band);
                        }
                    }
                    if !first.init_patterns.is_empty() {
                        let (line, _) = band_of(&xs, at(|p| p.positive_min, true), 4, "initialisation: min");
                        c.series.push(line.dashed());
                        let (line, _) = band_of(&xs, at(|p| p.positive_mean, true), 5, "initialisation: mean");
                        c.series.push(line.dashed());
                    }
                    let threshold: Vec<(f64, f64)> = idx
                        .iter()
                        .enumerate()
                        .map(|(j, &i)| (j as f64 + 1.0, first.patterns[i].threshold as f64 / first.patterns[i].channels as f64))
                        .collect();
                    c.series.push(Series::line("threshold n / channels", threshold, 3).dashed());
                    let stem = if which == "all" { format!("patterns_{}", k + 1) } else { format!("expansion_layers_{}", k + 1) };
                    c.write(&out.join(&stem))?;
                    let about = if which == "all" {
                        format!("Variant {}: positive channels per position at every .post site relative to the channel count, mean over seeds (band: 95% of the per-seed mean), against the invertibility threshold n (Fig. 7)", v.name)
                    } else {
                        format!("Variant {}: the expansion layers alone — fewest, mean and most positive channels per position over the analysed images, relative to the channel count, mean over seeds, against n (Fig. 7 as the paper draws it; a min below the threshold line is a layer that dips below n)", v.name)
                    };
                    figs.push((stem, about));
                }
            } else {
                let (line, _) = band_of(&xs, frac(|p| p.positive_mean, false), k, &v.name);
                combined.series.push(line);
            }
        }
        if !per_variant {
            combined.write(&out.join("patterns"))?;
            figs.push((
                "patterns".into(),
                "Mean positive channels per position relative to the channel count at every .post site, per variant (Fig. 7 style)".into(),
            ));
        }
    }
    Ok(figs)
}

/// `get(site i) / channels` over runs (trained or at initialisation).
fn site_fractions(runs: &[&RunResult], i: usize, get: fn(&SitePattern) -> f64, init: bool) -> Vec<f64> {
    runs.iter().filter_map(|r| if init { r.init_patterns.get(i) } else { r.patterns.get(i) }).map(|p| get(p) / p.channels as f64).collect()
}

pub(super) fn spiral_figures(spec: &Spec, s: &Summary, out: &Path) -> Result<Vec<(String, String)>> {
    let cells: Vec<_> = spec.variants.iter().filter_map(|v| if let Setup::Spiral(c) = &v.setup { Some((v.name.clone(), c.clone())) } else { None }).collect();
    let xs: Vec<f64> = cells.iter().map(|(_, c)| c.n as f64).collect();
    let mut rate = LineChart::new("Fig. 1: fraction of spiral points where ReLU(T x) is invertible (Lemma 2)", "embedding dimension n", "fraction");
    rate.y_range = Some((0.0, 1.05));
    let (line, band) = band_of(&xs, |i| s.values(&cells[i].0, "invertible_fraction"), 0, "empirical (mean, 95% band)");
    rate.series.push(line);
    rate.bands.push(band);
    let (line, _) = band_of(&xs, |i| s.values(&cells[i].0, "collapsed_fraction"), 1, "collapsed onto another part");
    rate.series.push(line);
    rate.series.push(
        Series::line(
            "Theorem 1: P(Bin(n, ½) ≥ 2)",
            cells.iter().map(|(_, c)| (c.n as f64, crate::analysis::theory::theorem1_noncollapsed(c.n as u64, 2))).collect(),
            3,
        )
        .dashed(),
    );
    rate.write(&out.join("spiral_rate"))?;
    let mut err = LineChart::new("Fig. 1: reconstruction error of T⁺ ReLU(T x)", "embedding dimension n", "relative error");
    for (k, (m, name)) in [("pinv_error", "‖T⁺ReLU(Tx) − x‖ / ‖x‖"), ("pinv_shape_error", "after the best scale (shape)")].iter().enumerate() {
        let (line, band) = band_of(&xs, |i| s.values(&cells[i].0, m), k, name);
        err.series.push(line);
        err.bands.push(band);
    }
    err.write(&out.join("spiral_error"))?;
    let seed = spec.seeds[0];
    let mut grid = PanelGrid { title: format!("Fig. 1: spiral → T (n×2) → ReLU → T⁺ (seed {seed})"), panel_size: 220, ..Default::default() };
    let colour = |k: usize, len: usize| k as f64 / (len.max(2) - 1) as f64;
    if let Some((_, c)) = cells.first() {
        let input = spiral(c.points, c.turns);
        grid.panels.push(ScatterPanel { title: "input".into(), points: input.iter().enumerate().map(|(k, p)| (p[0], p[1], colour(k, input.len()))).collect() });
    }
    for (_, c) in &cells {
        let (_, pts) = spiral_run(c.n, seed, &spiral_settings(c, seed));
        grid.panels
            .push(ScatterPanel { title: format!("n = {}", c.n), points: pts.iter().enumerate().map(|(k, p)| (p[0], p[1], colour(k, pts.len()))).collect() });
    }
    grid.write(&out.join("spiral_panels"))?;
    Ok(vec![
        ("spiral_panels".into(), format!("The spiral projected back after the ReLU, coloured by position along it (seed {seed}; Fig. 1)")),
        ("spiral_rate".into(), "Fraction of points where Lemma 2 holds, and of points collapsed onto a distant part of the spiral, against Theorem 1".into()),
        ("spiral_error".into(), "Reconstruction error of the plain pseudo-inverse".into()),
    ])
}

pub(super) fn theory_figures(spec: &Spec, s: &Summary, out: &Path) -> Result<Vec<(String, String)>> {
    let cells: Vec<_> = spec.variants.iter().filter_map(|v| if let Setup::Theory(c) = &v.setup { Some((v.name.clone(), c.clone())) } else { None }).collect();
    let mut ns: Vec<usize> = cells.iter().map(|(_, c)| c.n).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut chart = LineChart::new(
        "Theorem 1: P(Binomial(m, ½) ≥ n) vs the Lemma-2 rate of random expansion layers",
        "expansion ratio t (m = round(t·n))",
        "non-collapsed fraction",
    );
    chart.y_range = Some((0.0, 1.05));
    for (k, n) in ns.iter().enumerate() {
        let sel: Vec<_> = cells.iter().filter(|(_, c)| c.n == *n).collect();
        let xs: Vec<f64> = sel.iter().map(|(_, c)| c.t).collect();
        chart.series.push(Series::line(
            format!("theory n={n}"),
            sel.iter().map(|(name, c)| (c.t, s.row(name, "theory").map_or(f64::NAN, |r| r.ci.mean))).collect(),
            k,
        ));
        let (line, band) = band_of(&xs, |i| s.values(&sel[i].0, "empirical"), k, &format!("empirical n={n}"));
        chart.series.push(line.dashed());
        chart.bands.push(band);
    }
    chart.write(&out.join("theory"))?;
    Ok(vec![("theory".into(), "Theorem 1 (lines) against the measured Lemma-2 rate (dashed: mean over seeds, band: 95% Student-t)".into())])
}

/// Table 3 as a chart (largest materialised tensor per network, layer by layer and fused) and the
/// measured peak heap of split execution (§5.1) per variant that has `splits`.
pub(super) fn memory_figures(spec: &Spec, s: &Summary, out: &Path) -> Result<Vec<(String, String)>> {
    let mut figs = Vec::new();
    let kb = |v: &str, m: &str| s.row(v, m).map_or(f64::NAN, |r| r.ci.mean / 1024.0);
    let split: Vec<_> = spec.variants.iter().filter(|v| matches!(&v.setup, Setup::Memory(m) if m.splits.is_some())).collect();
    let table: Vec<_> = spec.variants.iter().filter(|v| matches!(&v.setup, Setup::Memory(m) if m.splits.is_none())).collect();
    if !table.is_empty() {
        let mut c = LineChart::new(
            "Table 3: largest materialised tensor (KiB) per network",
            table.iter().enumerate().map(|(i, v)| format!("{}={}", i + 1, v.name)).collect::<Vec<_>>().join(", "),
            "KiB",
        );
        let xs = |i: usize| i as f64 + 1.0;
        c.series
            .push(Series::line("layer by layer", table.iter().enumerate().map(|(i, v)| (xs(i), kb(&v.name, "max_tensor_bytes"))).collect(), 0).with_markers());
        c.series.push(
            Series::line("fused blocks (§5.1)", table.iter().enumerate().map(|(i, v)| (xs(i), kb(&v.name, "fused_max_tensor_bytes"))).collect(), 1)
                .with_markers(),
        );
        c.write(&out.join("table3"))?;
        figs.push(("table3".into(), "Largest materialised tensor per network, layer by layer and with fused blocks (Table 3)".into()));
    }
    if !split.is_empty() {
        let mut c = LineChart::new(
            "§5.1: measured peak heap of one image's forward, by split",
            split.iter().enumerate().map(|(i, v)| format!("{}={}", i + 1, v.name)).collect::<Vec<_>>().join(", "),
            "MiB",
        );
        c.series.push(
            Series::line("peak live heap", split.iter().enumerate().map(|(i, v)| (i as f64 + 1.0, kb(&v.name, "peak_heap_bytes") / 1024.0)).collect(), 0)
                .with_markers(),
        );
        c.write(&out.join("split_memory"))?;
        figs.push(("split_memory".into(), "Peak live heap (f32, batch 1, one thread) of the plain and the split forward passes (§5.1)".into()));
    }
    Ok(figs)
}
