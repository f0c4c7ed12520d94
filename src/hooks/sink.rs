//! What the forward pass talks to at each hook site. The plain forward uses [`NoHooks`], whose
//! `wants` is a constant `false`: after inlining, an unhooked pass contains no hook code at all.

use super::hook_name::HookName;
use crate::tensor::FeatureMap;

/// Receiver of hook-site events for one image.
pub trait HookSink {
    /// Whether anything listens at `name` (lets the forward pass skip work, e.g. un-fusing `.pre`).
    fn wants(&self, name: &HookName) -> bool;
    /// Called at `name` with the activation, which an intervention may modify in place.
    fn fire(&mut self, name: &HookName, image: usize, fm: &mut FeatureMap);
}

/// No hooks: the plain forward pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHooks;

impl HookSink for NoHooks {
    #[inline(always)]
    fn wants(&self, _: &HookName) -> bool {
        false
    }
    #[inline(always)]
    fn fire(&mut self, _: &HookName, _: usize, _: &mut FeatureMap) {}
}
