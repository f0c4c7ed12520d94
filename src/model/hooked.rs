//! Running a classifier with hooks attached for one call: the hook set is forked per image (images
//! run in parallel), fired at every site in catalogue order and joined back in image order.

use std::sync::Arc;

use nalgebra::DMatrix;

use super::mobilenet_v2::MobileNetV2;
use crate::error::Result;
use crate::hooks::activation_cache::ActivationCache;
use crate::hooks::catalogue::catalogue;
use crate::hooks::hook_set::{HookSet, ImageHooks};
use crate::hooks::NameFilter;
use crate::tensor::Batch;

impl MobileNetV2 {
    /// Forward pass with `hooks` attached for this call only; returns the logits. Image indices seen
    /// by hooks start at 0.
    ///
    /// # Errors
    /// A batch the network cannot run (shape, non-finite values).
    pub fn run_with_hooks(&self, batch: &Batch, hooks: &mut HookSet) -> Result<DMatrix<f32>> {
        self.run_with_hooks_at(batch, 0, hooks)
    }

    /// As [`Self::run_with_hooks`], numbering images from `first_image` (for streaming over batches).
    ///
    /// # Errors
    /// As [`Self::run_with_hooks`].
    pub fn run_with_hooks_at(&self, batch: &Batch, first_image: usize, hooks: &mut HookSet) -> Result<DMatrix<f32>> {
        let routes = Arc::new(hooks.routes(&catalogue(self, self.config().resolution)));
        let sinks: Vec<ImageHooks> = (0..batch.len()).map(|_| hooks.fork(&routes)).collect();
        let (logits, sinks) = self.forward_sinks(batch, first_image, sinks)?;
        hooks.join(sinks);
        Ok(logits)
    }

    /// Forward pass that also returns owned copies of the activations at the sites `filter` selects.
    ///
    /// # Errors
    /// As [`Self::run_with_hooks`].
    pub fn run_with_cache(&self, batch: &Batch, filter: NameFilter) -> Result<(DMatrix<f32>, ActivationCache)> {
        let mut hooks = HookSet::new();
        let id = hooks.observe(filter, ActivationCache::default());
        let logits = self.run_with_hooks(batch, &mut hooks)?;
        let cache = hooks.observer::<ActivationCache>(id).cloned().unwrap_or_default();
        Ok((logits, cache))
    }
}
