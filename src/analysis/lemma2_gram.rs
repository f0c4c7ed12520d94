//! The Gram matrix `G = B_Sᵀ B_S` of an expansion layer, carried from one position to the next.
//!
//! Neighbouring positions share most of their active sets: in MobileNetV2 1.0 at random weights
//! and Gaussian inputs, the rows that change between horizontal neighbours are 36–64% of the
//! `min(|S|, m − |S|)` rows that a fresh Gram matrix needs (and fewer along the nearest-neighbour
//! path the observer takes through each chunk of positions). So [`GramTracker::move_to`] adds the
//! outer products of the rows that enter S and subtracts those of the rows that leave — one rank-d
//! update on the lower triangle — instead of forming G anew. It starts afresh whenever that is cheaper
//! (from S, or from `BᵀB` minus the complement of S) or when the accumulated rounding bound has grown
//! past [`MAX_TERMS_PER_ROW`] terms per layer row.
//!
//! [`GramTracker::error_bound`] bounds `‖Ĝ − G‖₂` for the stored Ĝ: every entry is a floating-point
//! sum of N products, so `|Ĝ − G| ≤ γ_N Σ_t |b_t||b_t|ᵀ` entrywise and
//! `‖Ĝ − G‖₂ ≤ γ_N Σ_t ‖b_t‖²` over every term t summed since the last fresh start (including the
//! terms of `BᵀB` and the rows that later left again).

use super::invertibility::Lemma2Layer;
use super::lemma2_kernels::{gamma, mirror_lower, pack_panels, rank_update_lower};

/// Fresh start once the terms summed since the last one exceed this multiple of m. The bound e
/// grows with the square of the terms; at 8 it stays below τ for MobileNetV2's layers (about a
/// quarter of it at m = 960), and the restarts cost 5% fewer terms than at 4.
pub const MAX_TERMS_PER_ROW: usize = 8;

/// G for the current active set, maintained by row updates.
#[derive(Clone, Debug, Default)]
pub struct GramTracker {
    n: usize,
    /// [`Lemma2Layer::id`] of the layer the matrix belongs to.
    layer: u64,
    /// Ĝ, n × n column-major: the lower triangle computed, the upper one mirrored.
    lower: Vec<f64>,
    /// Membership of each row of B in the current S, one bit per row.
    inside: Vec<u64>,
    /// The same for the set of the next move.
    want: Vec<u64>,
    size: usize,
    valid: bool,
    fresh: bool,
    /// Products summed into each entry since the last fresh start, and Σ‖b_t‖² over them.
    terms: usize,
    weight: f64,
    /// Rows of the next update, their ±1 signs, and their offsets in Bᵀ by sign.
    sign: Vec<f64>,
    plus: Vec<usize>,
    minus: Vec<usize>,
    /// The rows of one sign, packed for the register tiles.
    pack: Vec<f64>,
    changed: Vec<usize>,
}

impl GramTracker {
    /// Ĝ for the set of the last [`move_to`](Self::move_to), column-major n × n: the lower triangle
    /// as computed, mirrored onto the upper one.
    pub fn lower(&self) -> &[f64] {
        &self.lower
    }

    /// Upper bound on `‖Ĝ − G‖₂`, the rounding accumulated in the stored matrix.
    pub fn error_bound(&self) -> f64 {
        // (1 + 2u) covers the rounding of `weight` itself (a sum of positive terms, relative γ_N).
        gamma(self.terms) * self.weight * (1.0 + 2.0 * gamma(self.terms))
    }

    /// Number of products summed into each entry of Ĝ since the last fresh start.
    pub fn terms(&self) -> usize {
        self.terms
    }

    /// Makes Ĝ the Gram matrix of the strictly increasing row set `s` of `layer`.
    pub fn move_to(&mut self, layer: &Lemma2Layer, s: &[usize]) {
        let (n, m) = (layer.n(), layer.m());
        let words = m.div_ceil(64);
        if self.layer != layer.id() || self.n != n || self.inside.len() != words {
            *self = GramTracker { n, layer: layer.id(), lower: vec![0.0; n * n], inside: vec![0; words], want: vec![0; words], ..Default::default() };
        }
        // Rows that enter or leave: the bits where the two sets differ.
        self.want.iter_mut().for_each(|w| *w = 0);
        s.iter().for_each(|&i| self.want[i / 64] |= 1 << (i % 64));
        self.changed.clear();
        for (w, (&now, &next)) in self.inside.iter().zip(&self.want).enumerate() {
            let mut diff = now ^ next;
            while diff != 0 {
                self.changed.push(w * 64 + diff.trailing_zeros() as usize);
                diff &= diff - 1;
            }
        }
        let fresh_cost = s.len().min(m - s.len());
        let d = self.changed.len();
        if self.valid && d <= fresh_cost && self.terms + d <= MAX_TERMS_PER_ROW * m {
            self.sign.clear();
            for &i in &self.changed {
                self.sign.push(if self.inside[i / 64] >> (i % 64) & 1 == 1 { -1.0 } else { 1.0 });
            }
            self.inside.copy_from_slice(&self.want);
            let changed = std::mem::take(&mut self.changed);
            self.add_rows(layer, &changed);
            self.changed = changed;
            self.fresh = false;
        } else {
            self.start_fresh(layer, s);
            self.fresh = true;
        }
        mirror_lower(n, &mut self.lower);
        self.size = s.len();
        self.valid = true;
    }

    /// Forms Ĝ from S, or from `BᵀB` minus the rows outside S, whichever sums fewer rows.
    fn start_fresh(&mut self, layer: &Lemma2Layer, s: &[usize]) {
        let m = layer.m();
        self.inside.iter_mut().for_each(|v| *v = 0);
        s.iter().for_each(|&i| self.inside[i / 64] |= 1 << (i % 64));
        let mut rows = std::mem::take(&mut self.changed);
        rows.clear();
        if 2 * s.len() <= m {
            self.lower.iter_mut().for_each(|v| *v = 0.0);
            self.terms = 0;
            self.weight = 0.0;
            rows.extend_from_slice(s);
            self.sign.clear();
            self.sign.resize(rows.len(), 1.0);
        } else {
            self.lower.copy_from_slice(layer.full_gram().as_slice());
            self.terms = m;
            self.weight = layer.row_norms_sq().iter().sum();
            rows.extend((0..m).filter(|&i| self.inside[i / 64] >> (i % 64) & 1 == 0));
            self.sign.clear();
            self.sign.resize(rows.len(), -1.0);
        }
        self.add_rows(layer, &rows);
        self.changed = rows;
    }

    /// Adds `sign_t · b_t b_tᵀ` for the rows `rows` (signs ±1 in `self.sign`), the rows of each sign
    /// packed for the register tiles.
    fn add_rows(&mut self, layer: &Lemma2Layer, rows: &[usize]) {
        let n = layer.n();
        self.plus.clear();
        self.minus.clear();
        for (&i, &sign) in rows.iter().zip(&self.sign) {
            if sign > 0.0 { &mut self.plus } else { &mut self.minus }.push(i * n);
            self.weight += layer.row_norms_sq()[i];
        }
        self.terms += rows.len();
        let bt = layer.bt.as_slice();
        pack_panels(n, bt, &self.plus, &mut self.pack);
        rank_update_lower(n, &mut self.lower, &self.pack, 1.0);
        pack_panels(n, bt, &self.minus, &mut self.pack);
        rank_update_lower(n, &mut self.lower, &self.pack, -1.0);
    }

    /// Forms Ĝ for `s` afresh (smallest rounding bound).
    pub fn restart(&mut self, layer: &Lemma2Layer, s: &[usize]) {
        self.valid = false;
        self.move_to(layer, s);
    }

    /// Whether Ĝ was formed afresh for the current set (no updates since).
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// |S| of the current set.
    pub fn size(&self) -> usize {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    fn layer(n: usize, m: usize, seed: u64) -> Lemma2Layer {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let bt = DMatrix::from_fn(n, m, |_, _| next());
        Lemma2Layer::new(bt, vec![0.0; m], Some(6.0))
    }

    /// The naive Gram matrix of the rows in `s`, entry by entry.
    fn naive(layer: &Lemma2Layer, s: &[usize]) -> DMatrix<f64> {
        let n = layer.n();
        DMatrix::from_fn(n, n, |i, j| s.iter().map(|&r| layer.bt[(i, r)] * layer.bt[(j, r)]).sum())
    }

    #[test]
    fn tracked_gram_matches_naive_sums_within_its_bound() {
        let l = layer(12, 72, 3);
        let mut t = GramTracker::default();
        let mut seed = 11u64;
        let mut s: Vec<usize> = (0..72).filter(|i| i % 2 == 0).collect();
        let (mut fresh_starts, mut updates) = (0, 0);
        for step in 0..300 {
            // Flip a few rows (neighbouring positions), and now and then jump far (a new image row).
            let flips = if step % 50 == 49 { 40 } else { 5 };
            let mut inside = [false; 72];
            s.iter().for_each(|&i| inside[i] = true);
            for _ in 0..flips {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let i = (seed >> 33) as usize % 72;
                inside[i] = !inside[i];
            }
            s = (0..72).filter(|&i| inside[i]).collect();
            let before = t.terms();
            t.move_to(&l, &s);
            if t.terms() < before {
                fresh_starts += 1;
            }
            updates += !t.is_fresh() as usize;
            let want = naive(&l, &s);
            let bound = t.error_bound();
            // The matrix is whole: its upper triangle mirrors the lower one.
            for j in 0..12 {
                for i in j + 1..12 {
                    assert_eq!(t.lower()[i * 12 + j], t.lower()[j * 12 + i], "step {step}: not mirrored at ({i},{j})");
                }
            }
            // At most (cap + 1)·m terms (the cap, plus one move past it), each ‖b_t‖² ≤ 12 (entries in [−1, 1]).
            let most = (MAX_TERMS_PER_ROW + 1) * 72;
            assert!(bound > 0.0 && bound <= gamma(most) * most as f64 * 12.0 * (1.0 + 2.0 * gamma(most)), "bound {bound}");
            let mut worst = 0.0f64;
            for j in 0..12 {
                for i in j..12 {
                    worst = worst.max((t.lower()[j * 12 + i] - want[(i, j)]).abs());
                }
            }
            assert!(worst <= bound, "step {step}: error {worst} above the bound {bound}");
            assert_eq!(t.size(), s.len());
        }
        // Most moves were updates, and the term cap forced fresh starts along the way.
        assert!(updates > 200, "updates {updates}");
        assert!(fresh_starts >= 2, "fresh starts {fresh_starts}");
    }

    #[test]
    fn a_large_set_starts_from_the_complement() {
        let l = layer(8, 48, 5);
        let mut t = GramTracker::default();
        let s: Vec<usize> = (0..48).filter(|i| i % 7 != 0).collect();
        t.move_to(&l, &s);
        // BᵀB (48 terms) minus the 7 rows outside S; BᵀB's own rounding is in the bound.
        assert_eq!(t.terms(), 48 + 7);
        let all: f64 = l.row_norms_sq().iter().sum();
        assert!(t.error_bound() >= gamma(55) * all, "bound {} leaves out BᵀB", t.error_bound());
        let want = naive(&l, &s);
        for j in 0..8 {
            for i in j..8 {
                assert!((t.lower()[j * 8 + i] - want[(i, j)]).abs() <= t.error_bound());
            }
        }
    }

    #[test]
    fn a_tracker_moved_to_another_layer_of_the_same_shape_starts_afresh() {
        let (a, b) = (layer(8, 48, 5), layer(8, 48, 6));
        let mut t = GramTracker::default();
        let s: Vec<usize> = (0..48).filter(|i| i % 3 != 0).collect();
        t.move_to(&a, &s);
        t.move_to(&b, &s);
        let want = naive(&b, &s);
        for j in 0..8 {
            for i in j..8 {
                assert!((t.lower()[j * 8 + i] - want[(i, j)]).abs() <= t.error_bound());
            }
        }
    }
}
