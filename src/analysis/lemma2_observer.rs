//! An observer that runs [`lemma2_check`](super::invertibility::lemma2_check) at every position of every expansion layer during a
//! forward pass: it keeps the block input (`blocks.{i}.in`) and checks each position when the
//! expansion's pre-activation (`blocks.{i}.expand.pre`) fires.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::invertibility::{lemma2_verdict, Lemma2Layer, Lemma2Scratch};
use crate::hooks::{BlockPoint, HookName, NameFilter, Observer};
use crate::model::MobileNetV2;
use crate::tensor::FeatureMap;

/// Invertible positions must reconstruct within `RECON_BOUND_FACTOR · cond(B_S) · ε_f32`.
pub const RECON_BOUND_FACTOR: f64 = 100.0;
/// A non-invertible position "fails to reconstruct" when its relative error exceeds this.
pub const RECON_FAIL_THRESHOLD: f64 = 1e-3;

/// Per expansion layer totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lemma2Stats {
    pub n: usize,
    pub m: usize,
    pub positions: u64,
    pub invertible: u64,
    /// |S| < n.
    pub fail_count: u64,
    /// |S| ≥ n but rank(B_S) < n.
    pub fail_rank: u64,
    /// Positions decided by the exact SVD.
    pub exact_svd: u64,
    /// log10 cond(B_S) of every position with |S| ≥ n.
    pub log10_cond: Vec<f32>,
    /// Sum of |S| over positions.
    pub active_total: u64,
    /// Largest relative reconstruction error over invertible positions.
    pub max_error_invertible: f64,
    /// Largest `error / (cond · ε_f32)` over invertible positions.
    pub max_error_ratio: f64,
    /// Rank-failing positions whose reconstruction error exceeds [`RECON_FAIL_THRESHOLD`].
    pub rank_fail_unrecoverable: u64,
}

impl Lemma2Stats {
    fn add(&mut self, o: &Lemma2Stats) {
        self.n = o.n;
        self.m = o.m;
        self.positions += o.positions;
        self.invertible += o.invertible;
        self.fail_count += o.fail_count;
        self.fail_rank += o.fail_rank;
        self.exact_svd += o.exact_svd;
        self.log10_cond.extend_from_slice(&o.log10_cond);
        self.active_total += o.active_total;
        self.max_error_invertible = self.max_error_invertible.max(o.max_error_invertible);
        self.max_error_ratio = self.max_error_ratio.max(o.max_error_ratio);
        self.rank_fail_unrecoverable += o.rank_fail_unrecoverable;
    }

    fn frac(&self, k: u64) -> f64 {
        if self.positions == 0 {
            f64::NAN
        } else {
            k as f64 / self.positions as f64
        }
    }
    pub fn fraction_invertible(&self) -> f64 {
        self.frac(self.invertible)
    }
    pub fn fraction_fail_count(&self) -> f64 {
        self.frac(self.fail_count)
    }
    pub fn fraction_fail_rank(&self) -> f64 {
        self.frac(self.fail_rank)
    }
    pub fn mean_active(&self) -> f64 {
        self.frac(self.active_total)
    }
    /// Median condition number over positions with |S| ≥ n (∞ entries included).
    pub fn median_condition(&self) -> f64 {
        if self.log10_cond.is_empty() {
            return f64::NAN;
        }
        let mut v = self.log10_cond.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        10f64.powf(v[v.len() / 2] as f64)
    }
}

/// Positions one parallel task checks (fixed, so that results do not depend on the thread count).
const POSITIONS_PER_TASK: usize = 128;

/// The positions of a range of a `width`-wide map row by row, every other row (odd rows) right to
/// left: consecutive positions are then neighbours also where a row ends, so the Gram matrix carried
/// between them changes by few rows (the totals do not depend on the order).
fn serpentine(positions: std::ops::Range<usize>, width: usize) -> impl Iterator<Item = usize> {
    let width = width.max(1);
    let (first, last) = (positions.start / width, positions.end.div_ceil(width));
    (first..last).flat_map(move |row| {
        let (a, b) = ((row * width).max(positions.start), ((row + 1) * width).min(positions.end));
        let reverse = row % 2 == 1;
        (a..b).map(move |i| if reverse { a + b - 1 - i } else { i })
    })
}

/// Lemma 2 at `positions` of one expansion layer, given its input `x` and pre-activation `y` maps.
fn check_positions(layer: &Lemma2Layer, x: &FeatureMap, y: &FeatureMap, positions: std::ops::Range<usize>, eps: f64) -> Lemma2Stats {
    let (n, m, p) = (x.channels(), y.channels(), y.positions());
    let mut stats = Lemma2Stats { n, m, ..Default::default() };
    let (mut xv, mut yv) = (vec![0.0f32; n], vec![0.0f32; m]);
    // One scratch per chunk: the Gram matrix is carried from each position to the next.
    let mut scratch = Lemma2Scratch::default();
    let mut active = Vec::with_capacity(m);
    let cap = layer.cap.unwrap_or(f32::INFINITY);
    // The chunk's pre-activations position by position (one contiguous read per channel).
    let (q0, len) = (positions.start, positions.len());
    let mut ys = vec![0.0f32; len * m];
    for c in 0..m {
        for (k, &v) in y.as_slice()[c * p + q0..c * p + q0 + len].iter().enumerate() {
            ys[k * m + c] = v;
        }
    }
    for q in serpentine(positions, y.width()) {
        yv.copy_from_slice(&ys[(q - q0) * m..(q - q0 + 1) * m]);
        // S without data-dependent branches (about half the channels are active).
        active.clear();
        active.resize(m, 0);
        let mut k = 0;
        for (i, &v) in yv.iter().enumerate() {
            active[k] = i;
            k += (v > 0.0 && v < cap) as usize;
        }
        active.truncate(k);
        stats.positions += 1;
        stats.active_total += active.len() as u64;
        // |S| < n fails by count alone: no Gram matrix needed (the verdict's σ_max is not reported).
        if active.len() < n {
            stats.fail_count += 1;
            continue;
        }
        for (c, v) in xv.iter_mut().enumerate() {
            *v = x.as_slice()[c * p + q];
        }
        let v = lemma2_verdict(layer, &active, &xv, &yv, eps, &mut scratch);
        stats.exact_svd += v.exact_svd as u64;
        stats.log10_cond.push(v.condition().log10() as f32);
        if v.full_rank {
            stats.invertible += 1;
            if v.reconstruction_error.is_finite() {
                stats.max_error_invertible = stats.max_error_invertible.max(v.reconstruction_error);
                let bound = v.condition() * f32::EPSILON as f64;
                stats.max_error_ratio = stats.max_error_ratio.max(v.reconstruction_error / bound);
            }
        } else {
            stats.fail_rank += 1;
            if !(v.reconstruction_error <= RECON_FAIL_THRESHOLD) {
                stats.rank_fail_unrecoverable += 1;
            }
        }
    }
    stats
}

/// Lemma 2 at every position of every expansion layer.
#[derive(Clone, Debug)]
pub struct Lemma2Observer {
    layers: Arc<BTreeMap<usize, Lemma2Layer>>,
    pub eps: f64,
    inputs: BTreeMap<usize, FeatureMap>,
    /// Block index → totals.
    pub sites: BTreeMap<usize, Lemma2Stats>,
}

impl Lemma2Observer {
    /// For every block of `model` that has an expansion layer.
    pub fn for_model(model: &MobileNetV2, eps: f64) -> Self {
        let layers = model.blocks.iter().filter_map(|b| b.expand.as_ref().map(|e| (b.plan.index, Lemma2Layer::from_conv(e)))).collect();
        Lemma2Observer { layers: Arc::new(layers), eps, inputs: BTreeMap::new(), sites: BTreeMap::new() }
    }

    /// The sites it must see: `blocks.*.in` and `blocks.*.expand.pre`.
    pub fn filter() -> NameFilter {
        NameFilter::predicate(|n| matches!(n, HookName::Block { point: BlockPoint::In | BlockPoint::ExpandPre, .. }))
    }

    /// Block indices checked.
    pub fn blocks(&self) -> Vec<usize> {
        self.layers.keys().copied().collect()
    }
}

impl Observer for Lemma2Observer {
    fn observe(&mut self, site: &HookName, _image: usize, fm: &FeatureMap) {
        let HookName::Block { index, point } = *site else { return };
        let Some(layer) = self.layers.get(&index) else { return };
        match point {
            BlockPoint::In => {
                self.inputs.entry(index).or_insert_with(|| FeatureMap::zeros(0, 0, 0)).copy_from(fm);
            }
            BlockPoint::ExpandPre => {
                let Some(x) = self.inputs.get(&index) else { return };
                let (n, m, p, eps) = (x.channels(), fm.channels(), fm.positions(), self.eps);
                let stats = self.sites.entry(index).or_insert_with(|| Lemma2Stats { n, m, ..Default::default() });
                // Positions in fixed chunks, in parallel: each chunk starts its warm starts afresh, so
                // the totals do not depend on the thread count (the verdicts never depend on them).
                let chunks: Vec<Lemma2Stats> = (0..p.div_ceil(POSITIONS_PER_TASK))
                    .into_par_iter()
                    .map(|t| check_positions(layer, x, fm, t * POSITIONS_PER_TASK..p.min((t + 1) * POSITIONS_PER_TASK), eps))
                    .collect();
                chunks.iter().for_each(|c| stats.add(c));
            }
            _ => {}
        }
    }

    fn fork(&self) -> Box<dyn Observer> {
        Box::new(Lemma2Observer { layers: Arc::clone(&self.layers), eps: self.eps, inputs: BTreeMap::new(), sites: BTreeMap::new() })
    }

    fn join(&mut self, other: Box<dyn Observer>) {
        if let Ok(o) = other.into_any().downcast::<Lemma2Observer>() {
            for (k, s) in &o.sites {
                self.sites.entry(*k).or_default().add(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::serpentine;

    #[test]
    fn serpentine_visits_every_position_once_with_neighbours_at_row_ends() {
        let order: Vec<usize> = serpentine(0..9, 3).collect();
        assert_eq!(order, vec![0, 1, 2, 5, 4, 3, 6, 7, 8]);
        // A chunk that starts and ends inside rows.
        let order: Vec<usize> = serpentine(4..11, 4).collect();
        assert_eq!(order, vec![7, 6, 5, 4, 8, 9, 10]);
        let mut sorted: Vec<usize> = serpentine(5..130, 7).collect();
        sorted.sort_unstable();
        assert_eq!(sorted, (5..130).collect::<Vec<_>>());
    }
}
