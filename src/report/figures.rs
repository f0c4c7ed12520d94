//! Files of the spiral (Fig. 1) and Theorem-1 experiments.

use std::path::{Path, PathBuf};

use super::plot::{Band, LineChart, PanelGrid, ScatterPanel, Series};
use crate::analysis::manifold::{spiral, spiral_summary, spiral_table, SpiralRow, SpiralSettings};
use crate::analysis::theory::{theory_table, TheoryRow};
use crate::error::Result;
use crate::io::meta::RunMeta;

/// `spiral.csv`, `spiral_summary.csv` and the Fig. 1 panels `spiral.{png,svg}`.
///
/// # Errors
/// A table or plot that cannot be written.
pub fn write_spiral(rows: &[SpiralRow], panels: &[(usize, Vec<[f64; 2]>)], s: &SpiralSettings, dir: &Path, meta: &RunMeta) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.join("spiral.csv"), dir.join("spiral_summary.csv")];
    spiral_table(rows).write_csv(&out[0], meta)?;
    spiral_summary(rows, &s.dims).write_csv(&out[1], meta)?;
    let colour = |k: usize, len: usize| k as f64 / (len.max(2) - 1) as f64;
    let input = spiral(s.points, s.turns);
    let mut grid = PanelGrid { title: "Fig. 1: spiral → T (n×2) → ReLU → T⁺, coloured by position".into(), panel_size: 240, ..Default::default() };
    grid.panels.push(ScatterPanel { title: "input".into(), points: input.iter().enumerate().map(|(k, p)| (p[0], p[1], colour(k, input.len()))).collect() });
    for (n, pts) in panels {
        grid.panels.push(ScatterPanel { title: format!("n = {n}"), points: pts.iter().enumerate().map(|(k, p)| (p[0], p[1], colour(k, pts.len()))).collect() });
    }
    out.extend(grid.write(&dir.join("spiral"))?);
    Ok(out)
}

/// `theory.csv` and `theory.{png,svg}` (theory lines, empirical points with Wilson bands, per n).
///
/// # Errors
/// A table or plot that cannot be written.
pub fn write_theory(rows: &[TheoryRow], dir: &Path, meta: &RunMeta) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.join("theory.csv")];
    theory_table(rows).write_csv(&out[0], meta)?;
    let mut chart = LineChart::new(
        "Theorem 1: P(Binomial(m, ½) ≥ n) vs Lemma-2 rate of random expansion layers",
        "expansion ratio t (m = round(t·n))",
        "non-collapsed fraction",
    );
    chart.y_range = Some((0.0, 1.05));
    let mut ns: Vec<usize> = rows.iter().map(|r| r.n).collect();
    ns.dedup();
    for (k, n) in ns.iter().enumerate() {
        let sel: Vec<&TheoryRow> = rows.iter().filter(|r| r.n == *n).collect();
        chart.series.push(Series::line(format!("theory n={n}"), sel.iter().map(|r| (r.t, r.theory)).collect(), k));
        chart.series.push(Series::line(format!("empirical n={n}"), sel.iter().map(|r| (r.t, r.empirical)).collect(), k).dashed().with_markers());
        chart.bands.push(Band {
            x: sel.iter().map(|r| r.t).collect(),
            lower: sel.iter().map(|r| r.wilson_lo).collect(),
            upper: sel.iter().map(|r| r.wilson_hi).collect(),
            color: k,
        });
    }
    out.extend(chart.write(&dir.join("theory"))?);
    Ok(out)
}
