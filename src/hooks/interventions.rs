//! Built-in interventions: zero or keep channels, linearise an activation (replace `.post` by its
//! `.pre`), clamp, add seeded Gaussian noise, and freeze the activation pattern of one input and apply
//! it to another.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use super::filter::NameFilter;
use super::hook_name::HookName;
use super::hook_set::{Intervention, Observer};
use crate::tensor::FeatureMap;

/// Sets the listed channels to zero (channels beyond the site's width are ignored).
#[derive(Clone, Debug, PartialEq)]
pub struct ZeroChannels {
    pub channels: Vec<usize>,
}

impl Intervention for ZeroChannels {
    fn intervene(&mut self, _: &HookName, _: usize, fm: &mut FeatureMap) {
        for &c in &self.channels {
            if c < fm.channels() {
                fm.channel_mut(c).fill(0.0);
            }
        }
    }
    fn fork(&self) -> Box<dyn Intervention> {
        Box::new(self.clone())
    }
}

/// Keeps the listed channels and zeroes every other one.
#[derive(Clone, Debug, PartialEq)]
pub struct KeepChannels {
    pub channels: Vec<usize>,
}

impl Intervention for KeepChannels {
    fn intervene(&mut self, _: &HookName, _: usize, fm: &mut FeatureMap) {
        for c in 0..fm.channels() {
            if !self.channels.contains(&c) {
                fm.channel_mut(c).fill(0.0);
            }
        }
    }
    fn fork(&self) -> Box<dyn Intervention> {
        Box::new(self.clone())
    }
}

/// Clamps every value to `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clamp {
    pub lo: f32,
    pub hi: f32,
}

impl Intervention for Clamp {
    fn intervene(&mut self, _: &HookName, _: usize, fm: &mut FeatureMap) {
        // max then min: never panics, whatever the bounds (a NaN bound leaves that side open).
        fm.as_mut_slice().iter_mut().for_each(|v| *v = v.max(self.lo).min(self.hi));
    }
    fn fork(&self) -> Box<dyn Intervention> {
        Box::new(*self)
    }
}

/// Adds N(0, std²) noise, seeded per (seed, image, site): the same call gives the same noise whatever
/// the thread count or batch split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianNoise {
    pub std: f32,
    pub seed: u64,
}

impl Intervention for GaussianNoise {
    fn intervene(&mut self, site: &HookName, image: usize, fm: &mut FeatureMap) {
        let mut rng = StdRng::seed_from_u64(stream_seed(self.seed, image, site));
        let normal = Normal::new(0.0f32, self.std.max(0.0)).unwrap_or_else(|_| Normal::new(0.0, 0.0).expect("zero std"));
        fm.as_mut_slice().iter_mut().for_each(|v| *v += normal.sample(&mut rng));
    }
    fn fork(&self) -> Box<dyn Intervention> {
        Box::new(*self)
    }
}

/// A seed for one (seed, image, site) stream: FNV-1a over the three, stable across Rust versions.
pub fn stream_seed(seed: u64, image: usize, site: &HookName) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = seed.to_le_bytes().into_iter().chain((image as u64).to_le_bytes()).chain(site.to_string().into_bytes());
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Replaces each target (a `.post` site or `blocks.{i}.project`) by its pre-activation: the
/// activation at that point becomes the identity. Attach with [`HookSet::apply`](super::HookSet::apply):
/// it names its own sites (the targets and their `.pre` sites, [`Linearize::filter`]).
#[derive(Clone, Debug, Default)]
pub struct Linearize {
    pub targets: Vec<HookName>,
    stored: HashMap<HookName, FeatureMap>,
}

impl Linearize {
    /// Targets without a pre-activation site are ignored.
    pub fn new(targets: Vec<HookName>) -> Self {
        Linearize { targets: targets.into_iter().filter(|t| t.pre_of().is_some()).collect(), stored: HashMap::new() }
    }

    /// The sites this intervention must see: every target and its `.pre`.
    pub fn filter(&self) -> NameFilter {
        let mut names = self.targets.clone();
        names.extend(self.targets.iter().filter_map(HookName::pre_of));
        NameFilter::Any(names.into_iter().map(NameFilter::Exact).collect())
    }
}

impl Intervention for Linearize {
    fn intervene(&mut self, site: &HookName, _: usize, fm: &mut FeatureMap) {
        if let Some(target) = self.targets.iter().find(|t| t.pre_of().as_ref() == Some(site)) {
            self.stored.entry(*target).or_insert_with(|| FeatureMap::zeros(0, 0, 0)).copy_from(fm);
        } else if let Some(pre) = self.stored.get(site) {
            fm.copy_from(pre);
        }
    }
    fn fork(&self) -> Box<dyn Intervention> {
        Box::new(Linearize::new(self.targets.clone()))
    }
    fn sites(&self) -> Option<NameFilter> {
        Some(self.filter())
    }
}

/// Region of a (capped) ReLU for one value: 0 inactive (≤ 0), 1 linear, 2 saturated (≥ cap).
pub type Region = u8;

/// Records the activation pattern at `.pre` sites: per image and site, each value's region.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActivationPattern {
    pub cap: Option<f32>,
    /// `(image, .pre site)` → regions in CHW order.
    pub patterns: BTreeMap<(usize, HookName), Vec<Region>>,
}

impl ActivationPattern {
    pub fn new(cap: Option<f32>) -> Self {
        ActivationPattern { cap, patterns: BTreeMap::new() }
    }
}

impl Observer for ActivationPattern {
    fn observe(&mut self, site: &HookName, image: usize, fm: &FeatureMap) {
        let cap = self.cap.unwrap_or(f32::INFINITY);
        let r = fm
            .as_slice()
            .iter()
            .map(|&v| {
                if v <= 0.0 {
                    0
                } else if v >= cap {
                    2
                } else {
                    1
                }
            })
            .collect();
        self.patterns.insert((image, *site), r);
    }
    fn fork(&self) -> Box<dyn Observer> {
        Box::new(ActivationPattern::new(self.cap))
    }
    fn join(&mut self, other: Box<dyn Observer>) {
        if let Ok(o) = other.into_any().downcast::<ActivationPattern>() {
            self.patterns.extend(o.patterns);
        }
    }
}

/// Applies a recorded pattern to another input: at each target `.post` site the output becomes
/// `pre` where the recorded region is linear, 0 where inactive and `cap` where saturated — the network
/// restricted to the linear piece the recorded input lies on. Attach with [`FreezePattern::filter`].
#[derive(Clone, Debug)]
pub struct FreezePattern {
    pattern: std::sync::Arc<ActivationPattern>,
    /// Use this recorded image's pattern for every image; `None`: image i uses recorded image i.
    pub source_image: Option<usize>,
    stored: HashMap<HookName, FeatureMap>,
}

impl FreezePattern {
    pub fn new(pattern: ActivationPattern, source_image: Option<usize>) -> Self {
        FreezePattern { pattern: std::sync::Arc::new(pattern), source_image, stored: HashMap::new() }
    }

    /// The recorded `.pre` sites and their `.post` sites.
    pub fn filter(&self) -> NameFilter {
        let pres: std::collections::BTreeSet<HookName> = self.pattern.patterns.keys().map(|(_, s)| *s).collect();
        let mut names: Vec<NameFilter> = Vec::new();
        for p in pres {
            names.push(NameFilter::Exact(p));
            if let Some(post) = post_of(&p) {
                names.push(NameFilter::Exact(post));
            }
        }
        NameFilter::Any(names)
    }
}

/// The site whose pre-activation is `pre` (inverse of [`HookName::pre_of`]).
pub fn post_of(pre: &HookName) -> Option<HookName> {
    use super::hook_name::BlockPoint as P;
    match *pre {
        HookName::StemPre => Some(HookName::StemPost),
        HookName::HeadPre => Some(HookName::HeadPost),
        HookName::Block { index, point: P::ExpandPre } => Some(HookName::block(index, P::ExpandPost)),
        HookName::Block { index, point: P::DepthwisePre } => Some(HookName::block(index, P::DepthwisePost)),
        HookName::Block { index, point: P::ProjectPre } => Some(HookName::block(index, P::Project)),
        HookName::Ssd { part, index, point } => {
            use super::hook_name::SsdPoint as S;
            let post = match point {
                S::ReducePre => S::ReducePost,
                S::SpatialPre => S::SpatialPost,
                S::ExpandPre => S::ExpandPost,
                _ => return None,
            };
            Some(HookName::Ssd { part, index, point: post })
        }
        _ => None,
    }
}

impl Intervention for FreezePattern {
    fn intervene(&mut self, site: &HookName, image: usize, fm: &mut FeatureMap) {
        if post_of(site).is_some() {
            self.stored.entry(*site).or_insert_with(|| FeatureMap::zeros(0, 0, 0)).copy_from(fm);
            return;
        }
        let Some(pre_site) = site.pre_of() else { return };
        let src = self.source_image.unwrap_or(image);
        let (Some(pattern), Some(pre)) = (self.pattern.patterns.get(&(src, pre_site)), self.stored.get(&pre_site)) else { return };
        if pattern.len() != pre.len() {
            return;
        }
        let cap = self.pattern.cap.unwrap_or(f32::INFINITY);
        for ((o, &p), &r) in fm.as_mut_slice().iter_mut().zip(pre.as_slice()).zip(pattern) {
            *o = match r {
                0 => 0.0,
                1 => p,
                _ => cap,
            };
        }
    }
    fn fork(&self) -> Box<dyn Intervention> {
        Box::new(FreezePattern { pattern: self.pattern.clone(), source_image: self.source_image, stored: HashMap::new() })
    }
    fn sites(&self) -> Option<NameFilter> {
        Some(self.filter())
    }
}
