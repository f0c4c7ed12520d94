//! Files written by `infoloss analyze`: CSV tables with sidecars and Fig. 7-style plots.

use std::path::{Path, PathBuf};

use super::plot::{LineChart, Series};
use crate::analysis::AnalyzeResult;
use crate::error::Result;
use crate::io::meta::RunMeta;
use crate::io::table::ColumnData;

/// Writes `activation_patterns.csv`, `channels.csv`, `histograms.csv`, (`lemma2.csv`) and the plots
/// `activation_patterns_abs`, `activation_patterns_rel` (and `lemma2`) as PNG + SVG into `dir`.
///
/// # Errors
/// A table or plot that cannot be written.
pub fn write_analyze_outputs(result: &AnalyzeResult, dir: &Path, meta: &RunMeta) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let patterns = result.patterns_table();
    let mut csv = |name: &str, t: &super::Table| -> Result<()> {
        let p = dir.join(name);
        t.write_csv(&p, meta)?;
        written.push(p);
        Ok(())
    };
    csv("activation_patterns.csv", &patterns)?;
    csv("channels.csv", &result.channels_table())?;
    csv("histograms.csv", &result.histogram_table())?;
    let lemma2 = result.lemma2_table();
    if lemma2.rows() > 0 {
        csv("lemma2.csv", &lemma2)?;
    }
    let mut charts = Vec::new();
    for relative in [false, true] {
        let chart = pattern_chart(&patterns, relative, &meta.producer);
        charts.push((chart, dir.join(if relative { "activation_patterns_rel" } else { "activation_patterns_abs" })));
    }
    if lemma2.rows() > 0 {
        let x = f64s(lemma2.column("block"));
        let pts = |c: &str| x.iter().copied().zip(f64s(lemma2.column(c))).collect::<Vec<_>>();
        let mut chart = LineChart::new("Lemma 2 at every position of each expansion layer", "block (features.i)", "fraction of positions");
        chart.y_range = Some((0.0, 1.05));
        chart.series.push(Series::line("invertible", pts("frac_invertible"), 0).with_markers());
        chart.series.push(Series::line("fails: |S| < n", pts("frac_fail_count"), 3).with_markers());
        chart.series.push(Series::line("fails: rank(B_S) < n", pts("frac_fail_rank"), 1).with_markers());
        charts.push((chart, dir.join("lemma2")));
    }
    // Each chart's PNG is deflated at the best level, the slowest part of this function: in parallel.
    use rayon::prelude::*;
    let files: Vec<[PathBuf; 2]> = charts.par_iter().map(|(chart, stem)| chart.write(stem)).collect::<Result<_>>()?;
    written.extend(files.into_iter().flatten());
    Ok(written)
}

/// Fig. 7 style: min / mean / max positive channels per position at each `.post` site, the mean
/// linear-region count, and the threshold n; `relative` divides by the site's channel count.
pub fn pattern_chart(patterns: &super::Table, relative: bool, title: &str) -> LineChart {
    let x = f64s(patterns.column("layer"));
    let ch = f64s(patterns.column("channels"));
    let scale = |v: Vec<f64>| -> Vec<(f64, f64)> { x.iter().zip(v).zip(&ch).map(|((x, y), c)| (*x, if relative { y / c } else { y })).collect() };
    let (what, y) = if relative { ("fraction of channels", "active / channels") } else { ("number of channels", "active channels per position") };
    let mut chart = LineChart::new(format!("{title}: active channels per position ({what})"), "layer (post-activation site, in order)", y);
    chart.series.push(Series::line("positive: min", scale(f64s(patterns.column("positive_min"))), 0));
    chart.series.push(Series::line("positive: mean", scale(f64s(patterns.column("positive_mean"))), 1));
    chart.series.push(Series::line("positive: max", scale(f64s(patterns.column("positive_max"))), 2));
    chart.series.push(Series::line("linear region: mean", scale(f64s(patterns.column("linear_mean"))), 4).dashed());
    chart.series.push(Series::line("threshold n", scale(f64s(patterns.column("threshold"))), 3).dashed());
    if relative {
        chart.y_range = Some((0.0, 1.05));
    }
    chart
}

/// A numeric column as f64 (empty when absent).
pub fn f64s(c: Option<&ColumnData>) -> Vec<f64> {
    match c {
        Some(ColumnData::F64(v)) => v.clone(),
        Some(ColumnData::U64(v)) => v.iter().map(|&x| x as f64).collect(),
        Some(ColumnData::I64(v)) => v.iter().map(|&x| x as f64).collect(),
        _ => Vec::new(),
    }
}
