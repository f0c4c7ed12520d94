//! The spiral experiment (paper Fig. 1): a 2-D spiral embedded by a random Gaussian `T` (n×2) into n
//! dimensions, passed through ReLU and projected back with the pseudo-inverse `T⁺`. For low n the
//! ReLU collapses parts of the manifold; for n ≥ 15 it is nearly preserved.
//!
//! Per (n, seed) we report the fraction of points where Lemma 2 holds (≥ 2 active rows of rank 2),
//! Theorem 1's expected fraction `P(Binomial(n, ½) ≥ 2) = 1 − (n+1)/2ⁿ`, the fraction of points
//! collapsed onto another part of the spiral, and the reconstruction errors of `T⁺ ReLU(T x)` and of
//! the Lemma-2 inverse `T_S⁺ y_S`.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use super::invertibility::{lemma2_verdict, Lemma2Layer, Lemma2Scratch};
use super::stats::mean_ci;
use super::theory::theorem1_noncollapsed;
use crate::io::table::Table;

/// Settings of the spiral experiment (recorded in outputs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpiralSettings {
    pub dims: Vec<usize>,
    pub seeds: Vec<u64>,
    pub points: usize,
    /// Turns of the spiral.
    pub turns: f64,
    /// Point i is collapsed when another point j, more than `neighbour_window` steps away along the
    /// spiral, lands within `collapse_ratio · ‖x_i − x_j‖` of it after the ReLU.
    pub collapse_ratio: f64,
    pub neighbour_window: usize,
    pub rank_eps: f64,
}

impl Default for SpiralSettings {
    fn default() -> Self {
        SpiralSettings {
            dims: vec![2, 3, 5, 15, 30],
            seeds: (0..20).collect(),
            points: 600,
            turns: 2.0,
            collapse_ratio: 0.05,
            neighbour_window: 5,
            rank_eps: super::invertibility::RANK_EPS,
        }
    }
}

/// Most points on the spiral: the collapse check compares every pair (20,000 points take seconds).
pub const MAX_SPIRAL_POINTS: usize = 20_000;

impl SpiralSettings {
    /// Checks every value against its documented range: dims 1..=4096, points 2..=[`MAX_SPIRAL_POINTS`], turns in
    /// (0, 100], collapse ratio in (0, 1], at least one seed, rank-eps as [`super::invertibility::check_rank_eps`].
    ///
    /// # Errors
    /// The first value out of range, named with the fix.
    pub fn validate(&self) -> crate::Result<()> {
        use crate::Error;
        if self.dims.is_empty() || self.dims.iter().any(|&n| !(1..=4096).contains(&n)) {
            return Err(Error::config("dims", format!("{:?}", self.dims), "give embedding dimensions n from 1 to 4096, e.g. 2,3,5,15,30"));
        }
        if !(2..=MAX_SPIRAL_POINTS).contains(&self.points) {
            return Err(Error::config(
                "points",
                self.points,
                format!("use 2 to {MAX_SPIRAL_POINTS} points on the spiral (the collapse check compares every pair)"),
            ));
        }
        if !(self.turns.is_finite() && self.turns > 0.0 && self.turns <= 100.0) {
            return Err(Error::config("turns", self.turns, "use a number of turns in (0, 100]"));
        }
        if !(self.collapse_ratio.is_finite() && self.collapse_ratio > 0.0 && self.collapse_ratio <= 1.0) {
            return Err(Error::config("collapse-ratio", self.collapse_ratio, "use a ratio in (0, 1], e.g. 0.05"));
        }
        if self.seeds.is_empty() {
            return Err(Error::config("seeds", "an empty list", "give at least one seed"));
        }
        super::invertibility::check_rank_eps(self.rank_eps)
    }
}

/// One (n, seed) run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpiralRow {
    pub n: usize,
    pub seed: u64,
    pub points: usize,
    pub invertible_fraction: f64,
    pub theory_lemma2_invertible: f64,
    pub collapsed_fraction: f64,
    pub pinv_error: f64,
    /// The same after the best global rescaling of the projected-back spiral (`T⁺ ReLU(T x) ≈ x/2`
    /// for large n, since ReLU(z) = (z + |z|)/2): how well the *shape* survives.
    pub pinv_shape_error: f64,
    pub lemma2_error: f64,
}

/// The spiral: radius grows linearly with the angle, centred on the origin.
pub fn spiral(points: usize, turns: f64) -> Vec<[f64; 2]> {
    (0..points)
        .map(|i| {
            let s = (i as f64 + 0.5) / points as f64;
            let a = 2.0 * std::f64::consts::PI * turns * s;
            let r = 0.15 + s;
            [r * a.cos(), r * a.sin()]
        })
        .collect()
}

/// `T` (n×2), seeded per (seed, n).
pub fn embedding(n: usize, seed: u64) -> nalgebra::DMatrix<f64> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n as u64);
    nalgebra::DMatrix::from_fn(n, 2, |_, _| StandardNormal.sample(&mut rng))
}

/// `T⁺ ReLU(T x)` for every point, and the row of statistics.
///
/// # Panics
/// Only on settings that `spiral` and the experiment setup already refuse (n = 0, fewer than two points).
pub fn spiral_run(n: usize, seed: u64, s: &SpiralSettings) -> (SpiralRow, Vec<[f64; 2]>) {
    let xs = spiral(s.points, s.turns);
    let t = embedding(n, seed);
    let pinv = t.clone().pseudo_inverse(1e-12).expect("SVD of a Gaussian n×2 matrix");
    let layer = Lemma2Layer::new(t.transpose(), vec![0.0; n], None);
    let mut outputs = Vec::with_capacity(xs.len());
    let mut ys = Vec::with_capacity(xs.len());
    let (mut invertible, mut pinv_err, mut l2_err) = (0usize, 0.0, 0.0);
    for x in &xs {
        let xv = nalgebra::DVector::from_column_slice(x);
        let z = &t * &xv;
        let y = z.map(|v| v.max(0.0));
        let back = &pinv * &y;
        let norm = xv.norm();
        pinv_err += (&back - &xv).norm() / norm;
        let xf = [x[0] as f32, x[1] as f32];
        let zf: Vec<f32> = z.iter().map(|&v| v as f32).collect();
        let v = lemma2_verdict(&layer, &layer.active_set(&zf), &xf, &zf, s.rank_eps, &mut Lemma2Scratch::default());
        if v.invertible() {
            invertible += 1;
            l2_err += v.reconstruction_error;
        } else {
            // Not invertible: the best the Lemma-2 inverse can do is the min-norm solution on the
            // active rows; with no active row nothing is recovered (error 1).
            l2_err += if v.reconstruction_error.is_finite() { v.reconstruction_error } else { min_norm_error(&t, &z, &xv) };
        }
        outputs.push([back[0], back[1]]);
        ys.push(y);
    }
    let p = xs.len() as f64;
    let (xy, yy, xx) = xs
        .iter()
        .zip(&outputs)
        .fold((0.0, 0.0, 0.0), |(a, b, c), (x, o)| (a + x[0] * o[0] + x[1] * o[1], b + o[0] * o[0] + o[1] * o[1], c + x[0] * x[0] + x[1] * x[1]));
    let scale = if yy > 0.0 { xy / yy } else { 0.0 };
    let shape_err = xs.iter().zip(&outputs).map(|(x, o)| (x[0] - scale * o[0]).powi(2) + (x[1] - scale * o[1]).powi(2)).sum::<f64>();
    let pinv_shape_error = (shape_err / xx).sqrt();
    let collapsed = (0..xs.len())
        .filter(|&i| {
            (0..xs.len()).any(|j| {
                i.abs_diff(j) > s.neighbour_window && {
                    let dx = ((xs[i][0] - xs[j][0]).powi(2) + (xs[i][1] - xs[j][1]).powi(2)).sqrt();
                    (&ys[i] - &ys[j]).norm() <= s.collapse_ratio * dx
                }
            })
        })
        .count();
    let row = SpiralRow {
        n,
        seed,
        points: xs.len(),
        invertible_fraction: invertible as f64 / p,
        theory_lemma2_invertible: theorem1_noncollapsed(n as u64, 2),
        collapsed_fraction: collapsed as f64 / p,
        pinv_error: pinv_err / p,
        pinv_shape_error,
        lemma2_error: l2_err / p,
    };
    (row, outputs)
}

/// Min-norm least squares on the active rows, relative error (1 when no row is active).
fn min_norm_error(t: &nalgebra::DMatrix<f64>, z: &nalgebra::DVector<f64>, x: &nalgebra::DVector<f64>) -> f64 {
    let rows: Vec<usize> = (0..z.len()).filter(|&i| z[i] > 0.0).collect();
    if rows.is_empty() {
        return 1.0;
    }
    let ts = nalgebra::DMatrix::from_fn(rows.len(), 2, |r, c| t[(rows[r], c)]);
    let zs = nalgebra::DVector::from_iterator(rows.len(), rows.iter().map(|&i| z[i]));
    match ts.pseudo_inverse(1e-12) {
        Ok(p) => (&p * zs - x).norm() / x.norm(),
        Err(_) => 1.0,
    }
}

/// The projected-back spiral of one n (its points in the plane), for the figure's panels.
pub type SpiralPanel = (usize, Vec<[f64; 2]>);

/// All (n, seed) rows, and for the first seed the projected-back spiral of every n.
pub fn spiral_experiment(s: &SpiralSettings) -> (Vec<SpiralRow>, Vec<SpiralPanel>) {
    let mut rows = Vec::new();
    let mut panels = Vec::new();
    for &n in &s.dims {
        for (k, &seed) in s.seeds.iter().enumerate() {
            let (row, out) = spiral_run(n, seed, s);
            if k == 0 {
                panels.push((n, out));
            }
            rows.push(row);
        }
    }
    (rows, panels)
}

/// `spiral.csv`: one row per (n, seed).
pub fn spiral_table(rows: &[SpiralRow]) -> Table {
    Table::new()
        .u64("n", rows.iter().map(|r| r.n as u64).collect())
        .u64("seed", rows.iter().map(|r| r.seed).collect())
        .u64("points", rows.iter().map(|r| r.points as u64).collect())
        .f64("invertible_fraction", rows.iter().map(|r| r.invertible_fraction).collect())
        .f64("theory_lemma2_invertible", rows.iter().map(|r| r.theory_lemma2_invertible).collect())
        .f64("collapsed_fraction", rows.iter().map(|r| r.collapsed_fraction).collect())
        .f64("pinv_reconstruction_error", rows.iter().map(|r| r.pinv_error).collect())
        .f64("pinv_shape_error", rows.iter().map(|r| r.pinv_shape_error).collect())
        .f64("lemma2_reconstruction_error", rows.iter().map(|r| r.lemma2_error).collect())
}

/// `spiral_summary.csv`: per n, mean and 95% t-interval over seeds.
pub fn spiral_summary(rows: &[SpiralRow], dims: &[usize]) -> Table {
    let mut t = SummaryColumns::default();
    for &n in dims {
        let sel: Vec<&SpiralRow> = rows.iter().filter(|r| r.n == n).collect();
        let inv = mean_ci(&sel.iter().map(|r| r.invertible_fraction).collect::<Vec<_>>(), 0.95);
        let col = mean_ci(&sel.iter().map(|r| r.collapsed_fraction).collect::<Vec<_>>(), 0.95);
        let pe = mean_ci(&sel.iter().map(|r| r.pinv_error).collect::<Vec<_>>(), 0.95);
        let se = mean_ci(&sel.iter().map(|r| r.pinv_shape_error).collect::<Vec<_>>(), 0.95);
        t.n.push(n as u64);
        t.seeds.push(sel.len() as u64);
        t.theory.push(theorem1_noncollapsed(n as u64, 2));
        t.inv.push(inv.mean);
        t.inv_lo.push(inv.lo);
        t.inv_hi.push(inv.hi);
        t.col.push(col.mean);
        t.col_lo.push(col.lo);
        t.col_hi.push(col.hi);
        t.pinv.push(pe.mean);
        t.shape.push(se.mean);
    }
    Table::new()
        .u64("n", t.n)
        .u64("seeds", t.seeds)
        .f64("theory_lemma2_invertible", t.theory)
        .f64("invertible_fraction_mean", t.inv)
        .f64("invertible_fraction_ci_lo", t.inv_lo)
        .f64("invertible_fraction_ci_hi", t.inv_hi)
        .f64("collapsed_fraction_mean", t.col)
        .f64("collapsed_fraction_ci_lo", t.col_lo)
        .f64("collapsed_fraction_ci_hi", t.col_hi)
        .f64("pinv_reconstruction_error_mean", t.pinv)
        .f64("pinv_shape_error_mean", t.shape)
}

#[derive(Default)]
struct SummaryColumns {
    n: Vec<u64>,
    seeds: Vec<u64>,
    theory: Vec<f64>,
    inv: Vec<f64>,
    inv_lo: Vec<f64>,
    inv_hi: Vec<f64>,
    col: Vec<f64>,
    col_lo: Vec<f64>,
    col_hi: Vec<f64>,
    pinv: Vec<f64>,
    shape: Vec<f64>,
}
