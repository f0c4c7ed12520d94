//! Built-in observers for the analyses: active-channel counts per position ([`ChannelActivity`]),
//! activation-value histograms ([`ValueHistogram`]) and a site-order recorder ([`SiteRecorder`]).
//!
//! "Active" follows the paper's information argument: a channel is *positive* where its value is
//! above 0; for a capped activation (ReLU6) it is in the *linear region* where 0 < v < cap, and *saturated*
//! where v ≥ cap (a saturated channel carries no information about small changes of its input).

use std::collections::BTreeMap;

use serde::Serialize;

use super::hook_name::HookName;
use super::hook_set::Observer;
use crate::tensor::FeatureMap;

/// Counts of one site over all images seen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SiteActivity {
    pub channels: usize,
    /// Positions seen (images × H·W).
    pub positions: u64,
    /// `positive[k]`: positions where exactly k channels are > 0.
    pub positive: Vec<u64>,
    /// `linear[k]`: positions where exactly k channels are in (0, cap).
    pub linear: Vec<u64>,
    /// Sum over positions of the number of saturated channels (v ≥ cap).
    pub saturated_total: u64,
    /// Per channel: positions where it is > 0.
    pub channel_positive: Vec<u64>,
    /// Per channel: positions where it is saturated.
    pub channel_saturated: Vec<u64>,
}

/// Summary statistics of a per-position count, computed from its histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CountStats {
    pub min: usize,
    pub mean: f64,
    pub max: usize,
    pub std: f64,
    pub p1: usize,
    pub p5: usize,
    pub p50: usize,
    pub p95: usize,
}

impl CountStats {
    /// Statistics of the values `k` weighted by `hist[k]`. Percentile q is the smallest k whose
    /// cumulative count reaches q·total (the "lower" definition, exact on integers).
    pub fn from_histogram(hist: &[u64]) -> Self {
        let total: u64 = hist.iter().sum();
        if total == 0 {
            return CountStats::default();
        }
        let mean = hist.iter().enumerate().map(|(k, &c)| k as f64 * c as f64).sum::<f64>() / total as f64;
        let var = hist.iter().enumerate().map(|(k, &c)| (k as f64 - mean).powi(2) * c as f64).sum::<f64>() / total as f64;
        let min = hist.iter().position(|&c| c > 0).unwrap_or(0);
        let max = hist.iter().rposition(|&c| c > 0).unwrap_or(0);
        let pct = |q: f64| {
            let need = (q * total as f64).ceil().max(1.0) as u64;
            let mut acc = 0;
            for (k, &c) in hist.iter().enumerate() {
                acc += c;
                if acc >= need {
                    return k;
                }
            }
            max
        };
        CountStats { min, mean, max, std: var.sqrt(), p1: pct(0.01), p5: pct(0.05), p50: pct(0.50), p95: pct(0.95) }
    }
}

impl SiteActivity {
    fn new(channels: usize) -> Self {
        SiteActivity {
            channels,
            positions: 0,
            positive: vec![0; channels + 1],
            linear: vec![0; channels + 1],
            saturated_total: 0,
            channel_positive: vec![0; channels],
            channel_saturated: vec![0; channels],
        }
    }

    fn add(&mut self, o: &SiteActivity) {
        self.positions += o.positions;
        self.saturated_total += o.saturated_total;
        for (a, b) in [(&mut self.positive, &o.positive), (&mut self.linear, &o.linear)] {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        for (a, b) in [(&mut self.channel_positive, &o.channel_positive), (&mut self.channel_saturated, &o.channel_saturated)] {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
    }

    pub fn positive_stats(&self) -> CountStats {
        CountStats::from_histogram(&self.positive)
    }
    pub fn linear_stats(&self) -> CountStats {
        CountStats::from_histogram(&self.linear)
    }
    /// Mean number of saturated channels per position.
    pub fn mean_saturated(&self) -> f64 {
        if self.positions == 0 {
            0.0
        } else {
            self.saturated_total as f64 / self.positions as f64
        }
    }
    /// Fraction of positions with fewer than `n` positive channels.
    pub fn fraction_positive_below(&self, n: usize) -> f64 {
        fraction_below(&self.positive, n)
    }
    /// Fraction of positions with fewer than `n` channels in the linear region.
    pub fn fraction_linear_below(&self, n: usize) -> f64 {
        fraction_below(&self.linear, n)
    }
    /// Fraction of channels never positive at any position seen.
    pub fn dead_fraction(&self) -> f64 {
        self.channel_positive.iter().filter(|&&c| c == 0).count() as f64 / self.channels.max(1) as f64
    }
    /// Per channel, the fraction of positions where it is saturated.
    pub fn channel_saturated_fraction(&self) -> Vec<f64> {
        self.channel_saturated.iter().map(|&c| c as f64 / self.positions.max(1) as f64).collect()
    }
}

fn fraction_below(hist: &[u64], n: usize) -> f64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0.0;
    }
    hist.iter().take(n).sum::<u64>() as f64 / total as f64
}

/// Per-site, per-position counts of positive, linear-region and saturated channels.
#[derive(Clone, Debug, Default)]
pub struct ChannelActivity {
    /// The activation cap (6 for ReLU6); `None` counts every positive channel as linear.
    pub cap: Option<f32>,
    pub sites: BTreeMap<HookName, SiteActivity>,
    pos: Vec<u16>,
    lin: Vec<u16>,
}

impl ChannelActivity {
    pub fn new(cap: Option<f32>) -> Self {
        ChannelActivity { cap, ..Default::default() }
    }
}

impl Observer for ChannelActivity {
    fn observe(&mut self, site: &HookName, _image: usize, fm: &FeatureMap) {
        let (c, n) = (fm.channels(), fm.positions());
        let s = self.sites.entry(*site).or_insert_with(|| SiteActivity::new(c));
        self.pos.clear();
        self.pos.resize(n, 0);
        self.lin.clear();
        self.lin.resize(n, 0);
        let cap = self.cap.unwrap_or(f32::INFINITY);
        for ch in 0..c {
            let (p, sat) = count_channel(fm.channel(ch), &mut self.pos, &mut self.lin, cap);
            s.channel_positive[ch] += p;
            s.channel_saturated[ch] += sat;
            s.saturated_total += sat;
        }
        for (&p, &l) in self.pos.iter().zip(&self.lin) {
            s.positive[p as usize] += 1;
            s.linear[l as usize] += 1;
        }
        s.positions += n as u64;
    }

    fn fork(&self) -> Box<dyn Observer> {
        Box::new(ChannelActivity::new(self.cap))
    }

    fn join(&mut self, other: Box<dyn Observer>) {
        let Ok(other) = other.into_any().downcast::<ChannelActivity>() else { return };
        for (name, s) in &other.sites {
            match self.sites.get_mut(name) {
                Some(mine) => mine.add(s),
                None => {
                    self.sites.insert(*name, s.clone());
                }
            }
        }
    }
}

/// Adds one channel's indicators to the per-position counters; returns (positive, saturated) counts.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx512bw", "x86_64+avx2+fma"))]
fn count_channel(plane: &[f32], pos: &mut [u16], lin: &mut [u16], cap: f32) -> (u64, u64) {
    let n = plane.len();
    let (pos, lin) = (&mut pos[..n], &mut lin[..n]);
    let (mut np, mut ns) = (0u32, 0u32);
    for i in 0..n {
        let v = plane[i];
        let p = (v > 0.0) as u16;
        let s = (v >= cap) as u16;
        pos[i] += p;
        lin[i] += p & !s & 1;
        np += p as u32;
        ns += s as u32;
    }
    (np as u64, ns as u64)
}

/// Most bins a [`ValueHistogram`] takes (its slots, with the four special ones, are 16-bit).
pub const MAX_HISTOGRAM_BINS: usize = u16::MAX as usize - 4;

/// Histogram of activation values per site over `[lo, hi)` in equal bins, with exact zeros,
/// underflow and overflow counted apart.
///
/// # Panics
/// [`Observer::observe`] panics when `bins` exceeds [`MAX_HISTOGRAM_BINS`] (the analysis checks its
/// settings first and returns an error instead).
#[derive(Clone, Debug, PartialEq)]
pub struct ValueHistogram {
    pub lo: f32,
    pub hi: f32,
    pub bins: usize,
    pub sites: BTreeMap<HookName, SiteHistogram>,
}

/// One site's value histogram.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SiteHistogram {
    pub counts: Vec<u64>,
    pub zeros: u64,
    pub below: u64,
    pub above: u64,
    pub nonfinite: u64,
}

impl ValueHistogram {
    pub fn new(lo: f32, hi: f32, bins: usize) -> Self {
        ValueHistogram { lo, hi, bins: bins.max(1), sites: BTreeMap::new() }
    }
    /// Lower edge of bin `k`.
    pub fn edge(&self, k: usize) -> f32 {
        self.lo + (self.hi - self.lo) * k as f32 / self.bins as f32
    }
}

impl Observer for ValueHistogram {
    fn observe(&mut self, site: &HookName, _image: usize, fm: &FeatureMap) {
        let bins = self.bins;
        assert!((1..=MAX_HISTOGRAM_BINS).contains(&bins), "ValueHistogram: {bins} bins (1 to {MAX_HISTOGRAM_BINS})");
        let h = self.sites.entry(*site).or_insert_with(|| SiteHistogram { counts: vec![0; bins], ..Default::default() });
        // Branch-free binning into 4 interleaved count arrays (fewer store dependencies):
        // slot 0 below, 1..=bins the bins, bins+1 above, bins+2 exact zero, bins+3 non-finite.
        let width = bins + 4;
        let mut local = vec![0u64; 4 * width];
        bin_values(fm.as_slice(), self.lo, self.hi, bins, &mut local);
        for lane in local.chunks_exact(width) {
            h.below += lane[0];
            for (c, v) in h.counts.iter_mut().zip(&lane[1..=bins]) {
                *c += v;
            }
            h.above += lane[bins + 1];
            h.zeros += lane[bins + 2];
            h.nonfinite += lane[bins + 3];
        }
    }

    fn fork(&self) -> Box<dyn Observer> {
        Box::new(ValueHistogram::new(self.lo, self.hi, self.bins))
    }

    fn join(&mut self, other: Box<dyn Observer>) {
        let Ok(other) = other.into_any().downcast::<ValueHistogram>() else { return };
        for (name, o) in other.sites {
            match self.sites.get_mut(&name) {
                None => {
                    self.sites.insert(name, o);
                }
                Some(h) => {
                    h.counts.iter_mut().zip(&o.counts).for_each(|(a, b)| *a += b);
                    h.zeros += o.zeros;
                    h.below += o.below;
                    h.above += o.above;
                    h.nonfinite += o.nonfinite;
                }
            }
        }
    }
}

/// Records `(image, site)` in firing order — for checking the documented order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SiteRecorder {
    pub fired: Vec<(usize, HookName)>,
}

impl Observer for SiteRecorder {
    fn observe(&mut self, site: &HookName, image: usize, _fm: &FeatureMap) {
        self.fired.push((image, *site));
    }
    fn fork(&self) -> Box<dyn Observer> {
        Box::new(SiteRecorder::default())
    }
    fn join(&mut self, other: Box<dyn Observer>) {
        if let Ok(o) = other.into_any().downcast::<SiteRecorder>() {
            self.fired.extend(o.fired);
        }
    }
}

/// Interleaved count tables of [`bin_values`]: consecutive values go to different tables, so a run
/// of values in one slot (exact zeros: about half of a ReLU's outputs) does not chain every
/// increment on the one before.
const HIST_LANES: usize = 8;

/// See [`ValueHistogram`]: counts `values` into `lanes` (4 interleaved lanes of `bins + 4` slots).
/// Slots are computed for a block of values at a time (vectorised, branch-free), then counted in
/// [`HIST_LANES`] 32-bit tables per block.
fn bin_values(values: &[f32], lo: f32, hi: f32, bins: usize, lanes: &mut [u64]) {
    const BLOCK: usize = 1024;
    let width = bins + 4;
    let mut slots = [0u16; BLOCK];
    let mut tables = vec![0u32; HIST_LANES * width];
    let mut since_flush = 0usize;
    for chunk in values.chunks(BLOCK) {
        slot_block(chunk, lo, hi, bins, &mut slots[..chunk.len()]);
        let mut groups = slots[..chunk.len()].chunks_exact(HIST_LANES);
        for group in &mut groups {
            for (k, &s) in group.iter().enumerate() {
                tables[k * width + s as usize] += 1;
            }
        }
        for (k, &s) in groups.remainder().iter().enumerate() {
            tables[k * width + s as usize] += 1;
        }
        // Flush before any 32-bit count could overflow.
        since_flush += chunk.len();
        if since_flush > u32::MAX as usize - BLOCK {
            flush(&mut tables, lanes, width);
            since_flush = 0;
        }
    }
    flush(&mut tables, lanes, width);
}

/// Adds the 32-bit tables into the 4 lanes of `lanes` and clears them.
fn flush(tables: &mut [u32], lanes: &mut [u64], width: usize) {
    for (k, table) in tables.chunks_exact_mut(width).enumerate() {
        let lane = &mut lanes[(k % 4) * width..(k % 4 + 1) * width];
        for (l, t) in lane.iter_mut().zip(table.iter_mut()) {
            *l += *t as u64;
            *t = 0;
        }
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn slot_block(values: &[f32], lo: f32, hi: f32, bins: usize, out: &mut [u16]) {
    let scale = bins as f32 / (hi - lo);
    let (zero, nonfinite) = ((bins + 2) as i32, (bins + 3) as i32);
    for (o, &v) in out.iter_mut().zip(values) {
        // `max` returns -1 for NaN, so t is finite and in [-1, bins] whatever v is.
        let t = ((v - lo) * scale).max(-1.0).min(bins as f32);
        // SAFETY: t.floor() is finite and in [-1, bins], bins ≤ MAX_HISTOGRAM_BINS (asserted by the
        // caller), so it fits i32; the checked `as` cast kept this loop from vectorising.
        let inside = unsafe { t.floor().to_int_unchecked::<i32>() } + 1;
        let s = if v == 0.0 { zero } else { inside };
        let s = if v.abs() < f32::INFINITY || v == 0.0 { s } else { nonfinite };
        *o = s as u16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value classified on its own, by the histogram's stated rules.
    fn naive(values: &[f32], lo: f32, hi: f32, bins: usize) -> SiteHistogram {
        let mut h = SiteHistogram { counts: vec![0; bins], ..Default::default() };
        for &v in values {
            if v == 0.0 {
                h.zeros += 1;
            } else if !v.is_finite() {
                h.nonfinite += 1;
            } else if v < lo {
                h.below += 1;
            } else {
                let k = ((v - lo) * (bins as f32 / (hi - lo))).floor();
                if k >= bins as f32 {
                    h.above += 1;
                } else {
                    h.counts[k as usize] += 1;
                }
            }
        }
        h
    }

    /// Per-position and per-channel counts against a value-by-value loop, on channel counts that
    /// are and are not multiples of four; values at the cap, zeros and NaN.
    #[test]
    fn channel_activity_matches_a_value_by_value_count() {
        let specials = [0.0, -0.0, f32::NAN, 6.0, 5.999_999, 1e30, -3.0, 0.5];
        for c in [1, 3, 4, 7, 9] {
            let n = 37;
            let values: Vec<f32> =
                (0..c * n).map(|i| if i % 5 == 0 { specials[(i / 5) % specials.len()] } else { ((i * 7919) % 1000) as f32 / 100.0 - 3.0 }).collect();
            let fm = FeatureMap::from_chw(c, 1, n, values.clone()).unwrap();
            let site: HookName = "stem.post".parse().unwrap();
            let mut act = ChannelActivity::new(Some(6.0));
            act.observe(&site, 0, &fm);
            act.observe(&site, 1, &fm);
            let got = &act.sites[&site];
            let (mut positive, mut linear) = (vec![0u64; c + 1], vec![0u64; c + 1]);
            let (mut ch_pos, mut ch_sat) = (vec![0u64; c], vec![0u64; c]);
            for q in 0..n {
                let (mut kp, mut kl) = (0, 0);
                for ch in 0..c {
                    let v = values[ch * n + q];
                    kp += usize::from(v > 0.0);
                    kl += usize::from(v > 0.0 && v < 6.0);
                    ch_pos[ch] += 2 * u64::from(v > 0.0);
                    ch_sat[ch] += 2 * u64::from(v >= 6.0);
                }
                positive[kp] += 2;
                linear[kl] += 2;
            }
            assert_eq!((&got.positive, &got.linear), (&positive, &linear), "{c} channels: per-position counts");
            assert_eq!((&got.channel_positive, &got.channel_saturated), (&ch_pos, &ch_sat), "{c} channels: per-channel counts");
            assert_eq!(got.saturated_total, ch_sat.iter().sum::<u64>());
            assert_eq!(got.positions, 2 * n as u64);
        }
    }

    #[test]
    fn histogram_matches_a_value_by_value_classification() {
        // Long enough for several blocks and a remainder of the interleaved tables; every kind of
        // value, runs of exact zeros included.
        let specials = [0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1e-30, 6.0, 5.999_999, 1e30, -3.0, 0.5, 3.0];
        let mut values: Vec<f32> = (0..5003u32).map(|i| ((i.wrapping_mul(2_654_435_761) >> 8) as f32 / (1 << 24) as f32) * 8.0 - 1.0).collect();
        for (i, v) in values.iter_mut().enumerate() {
            if i % 7 == 0 {
                *v = specials[(i / 7) % specials.len()];
            } else if (1000..1400).contains(&i) {
                *v = 0.0;
            }
        }
        for (lo, hi, bins) in [(0.0, 6.0, 60), (0.0, 6.0, 12), (-1.0, 2.0, 7), (0.0, 6.0, 1)] {
            let mut hist = ValueHistogram::new(lo, hi, bins);
            let site: HookName = "stem.post".parse().unwrap();
            hist.observe(&site, 0, &FeatureMap::from_chw(1, 1, values.len(), values.clone()).unwrap());
            assert_eq!(hist.sites[&site], naive(&values, lo, hi, bins), "range [{lo}, {hi}), {bins} bins");
        }
    }
}
