//! `infoloss spiral` (Fig. 1) and `infoloss theory` (Theorem 1).

use std::path::PathBuf;

use clap::Args;

use super::seeds::parse_seeds;
use infoloss::analysis::manifold::{spiral_experiment, SpiralSettings};
use infoloss::analysis::stats::mean_ci;
use infoloss::analysis::theory::{theory_sweep, TheorySettings};
use infoloss::analysis::RANK_EPS;
use infoloss::io::atomic::ensure_writable_dir;
use infoloss::report::figures::{write_spiral, write_theory};
use infoloss::report::RunMeta;

#[derive(Args, Debug)]
pub struct SpiralArgs {
    /// Embedding dimensions n
    #[arg(long, value_delimiter = ',', default_value = "2,3,5,15,30")]
    pub dims: Vec<usize>,
    /// Seeds: a range 0..20 or a list 1,2,5
    #[arg(long, default_value = "0..20", value_parser = parse_seeds)]
    pub seeds: std::vec::Vec<u64>,
    /// Points on the spiral
    #[arg(long, default_value_t = 600)]
    pub points: usize,
    #[arg(long, default_value = "notebooks-out/spiral")]
    pub out: PathBuf,
}

pub fn spiral(a: SpiralArgs) -> anyhow::Result<()> {
    let s = SpiralSettings { dims: a.dims.clone(), seeds: a.seeds.clone(), points: a.points, ..Default::default() };
    s.validate()?;
    ensure_writable_dir(&a.out)?;
    let (rows, panels) = spiral_experiment(&s);
    let meta = RunMeta::new("infoloss spiral", &s);
    let files = write_spiral(&rows, &panels, &s, &a.out, &meta)?;
    println!("{:>4} {:>10} {:>22} {:>10} {:>10} {:>12}", "n", "theory", "invertible (95% CI)", "collapsed", "T⁺ error", "shape error");
    for &n in &s.dims {
        let sel: Vec<_> = rows.iter().filter(|r| r.n == n).collect();
        let inv = mean_ci(&sel.iter().map(|r| r.invertible_fraction).collect::<Vec<_>>(), 0.95);
        let col = sel.iter().map(|r| r.collapsed_fraction).sum::<f64>() / sel.len() as f64;
        let err = sel.iter().map(|r| r.pinv_error).sum::<f64>() / sel.len() as f64;
        let shape = sel.iter().map(|r| r.pinv_shape_error).sum::<f64>() / sel.len() as f64;
        println!("{n:>4} {:>10.4} {:>8.4} [{:.4}, {:.4}] {col:>10.4} {err:>10.4} {shape:>12.4}", sel[0].theory_lemma2_invertible, inv.mean, inv.lo, inv.hi);
    }
    println!("wrote {} files to {}", files.len(), a.out.display());
    Ok(())
}

#[derive(Args, Debug)]
pub struct TheoryArgs {
    /// Input widths n
    #[arg(long, value_delimiter = ',', default_value = "8,16,24,32")]
    pub n: Vec<usize>,
    /// Expansion ratios t (fractional allowed; m = round(t·n))
    #[arg(long, value_delimiter = ',', default_value = "1,1.25,1.5,1.75,2,2.5,3,4,6")]
    pub t: Vec<f64>,
    /// Independent seeds; each draws --samples fresh (layer, input) pairs
    #[arg(long, default_value = "0..10", value_parser = parse_seeds)]
    pub seeds: std::vec::Vec<u64>,
    /// Random layers per seed (one Gaussian input each)
    #[arg(long, default_value_t = 400)]
    pub samples: usize,
    #[arg(long, default_value = "notebooks-out/theory")]
    pub out: PathBuf,
}

pub fn theory(a: TheoryArgs) -> anyhow::Result<()> {
    let s = TheorySettings { n: a.n, t: a.t, seeds: a.seeds, samples: a.samples, rank_eps: RANK_EPS, confidence: 0.95 };
    s.validate()?;
    ensure_writable_dir(&a.out)?;
    let rows = theory_sweep(&s);
    let meta = RunMeta::new("infoloss theory", &s);
    let files = write_theory(&rows, &a.out, &meta)?;
    println!("{:>4} {:>6} {:>5} {:>10} {:>10} {:>20}", "n", "t", "m", "theory", "empirical", "Wilson 95%");
    for r in &rows {
        println!("{:>4} {:>6} {:>5} {:>10.4} {:>10.4}   [{:.4}, {:.4}]", r.n, r.t, r.m, r.theory, r.empirical, r.wilson_lo, r.wilson_hi);
    }
    let inside = rows.iter().filter(|r| r.theory >= r.wilson_lo && r.theory <= r.wilson_hi).count();
    println!("theory inside the empirical 95% interval in {inside} of {} cells", rows.len());
    println!("wrote {} files to {}", files.len(), a.out.display());
    Ok(())
}
