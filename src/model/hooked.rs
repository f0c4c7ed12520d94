//! One trait for running any network with hooks: [`Hooked`], implemented by [`MobileNetV2`] (every
//! classifier architecture), [`Detector`] and [`Network`]. The hook set is forked per image (images
//! run in parallel), fired at every site in catalogue order and joined back in image order.

use std::sync::Arc;

use nalgebra::DMatrix;

use super::mobilenet_v2::MobileNetV2;
use super::network::Network;
use super::ssd::{Detections, Detector};
use crate::error::Result;
use crate::hooks::activation_cache::ActivationCache;
use crate::hooks::catalogue::{catalogue, HookSite};
use crate::hooks::hook_set::{HookSet, ImageHooks};
use crate::hooks::NameFilter;
use crate::tensor::Batch;

/// A network that runs with hooks attached for one call.
///
/// ```no_run
/// use infoloss::hooks::{HookSet, NameFilter};
/// use infoloss::{Hooked, MobileNetV2, ModelConfig};
/// let model = MobileNetV2::seeded(&ModelConfig::default(), 0)?;
/// let x = infoloss::bench::random_batch(2, 224, 0)?;
/// let (logits, cache) = model.run_with_cache(&x, NameFilter::parse("blocks.*.expand.post", &model.hook_sites())?)?;
/// let first = &cache["blocks.2.expand.post"][0]; // image 0's activation, C×H×W
/// # Ok::<(), infoloss::Error>(())
/// ```
pub trait Hooked {
    /// What a forward pass returns: logits (N × classes) for a classifier, detections for a detector.
    type Output;

    /// Every hook site of the network at its configured resolution, in firing order.
    fn hook_sites(&self) -> Vec<HookSite>;

    /// Forward pass with `hooks` attached for this call only, numbering images from `first_image`
    /// (for streaming over batches).
    ///
    /// # Errors
    /// A batch the network cannot run (shape, non-finite values).
    fn run_with_hooks_at(&self, batch: &Batch, first_image: usize, hooks: &mut HookSet) -> Result<Self::Output>;

    /// Forward pass with `hooks` attached for this call only; images are numbered from 0.
    ///
    /// # Errors
    /// As [`Hooked::run_with_hooks_at`].
    fn run_with_hooks(&self, batch: &Batch, hooks: &mut HookSet) -> Result<Self::Output> {
        self.run_with_hooks_at(batch, 0, hooks)
    }

    /// Forward pass that also returns owned copies of the activations at the sites `filter` selects,
    /// indexable by site name (`cache["blocks.3.expand.post"]`).
    ///
    /// # Errors
    /// As [`Hooked::run_with_hooks_at`].
    fn run_with_cache(&self, batch: &Batch, filter: NameFilter) -> Result<(Self::Output, ActivationCache)> {
        let mut hooks = HookSet::new();
        let id = hooks.observe(filter, ActivationCache::default());
        let out = self.run_with_hooks(batch, &mut hooks)?;
        Ok((out, hooks.take(id)?))
    }
}

impl Hooked for MobileNetV2 {
    type Output = DMatrix<f32>;

    fn hook_sites(&self) -> Vec<HookSite> {
        catalogue(self, self.config().resolution)
    }

    fn run_with_hooks_at(&self, batch: &Batch, first_image: usize, hooks: &mut HookSet) -> Result<DMatrix<f32>> {
        let routes = Arc::new(hooks.routes(&self.hook_sites()));
        let sinks: Vec<ImageHooks> = (0..batch.len()).map(|_| hooks.fork(&routes)).collect();
        let (logits, sinks) = self.forward_sinks(batch, first_image, sinks)?;
        hooks.join(sinks);
        Ok(logits)
    }
}

impl Hooked for Detector {
    type Output = Detections;

    fn hook_sites(&self) -> Vec<HookSite> {
        self.sites(self.config().resolution)
    }

    fn run_with_hooks_at(&self, batch: &Batch, first_image: usize, hooks: &mut HookSet) -> Result<Detections> {
        self.detect_with_hooks(batch, first_image, hooks)
    }
}

/// What [`Network`] returns from a forward pass.
#[derive(Clone, Debug, PartialEq)]
pub enum NetworkOutput {
    Logits(DMatrix<f32>),
    Detections(Detections),
}

impl Hooked for Network {
    type Output = NetworkOutput;

    fn hook_sites(&self) -> Vec<HookSite> {
        match self {
            Network::Classifier(m) => m.hook_sites(),
            Network::Detector(d) => d.hook_sites(),
        }
    }

    fn run_with_hooks_at(&self, batch: &Batch, first_image: usize, hooks: &mut HookSet) -> Result<NetworkOutput> {
        Ok(match self {
            Network::Classifier(m) => NetworkOutput::Logits(m.run_with_hooks_at(batch, first_image, hooks)?),
            Network::Detector(d) => NetworkOutput::Detections(d.run_with_hooks_at(batch, first_image, hooks)?),
        })
    }
}
