//! Per-thread buffers of one forward pass. Each image runs depth-first through all layers in the same
//! few buffers (ping-pong for the bottleneck, one wide buffer each for the expansion and the depthwise
//! output), so activations stay cache-warm and nothing is allocated once the buffers have grown.

use std::sync::Mutex;

use crate::tensor::FeatureMap;

/// Buffers of one image's forward pass.
#[derive(Debug, Default)]
pub struct Workspace {
    /// Copy of the input, made only when a hook listens at `input`.
    pub(crate) input: FeatureMap,
    /// The current bottleneck (block input, then output).
    pub(crate) cur: FeatureMap,
    /// The next bottleneck (projection output).
    pub(crate) next: FeatureMap,
    /// The expanded tensor (expansion output). After a block on the blocked path
    /// (`InvertedResidual::forward_blocked`) it holds the channel-blocked layout under a CHW shape;
    /// every step-path conv rewrites it before reading.
    pub(crate) wide: FeatureMap,
    /// The depthwise output (channel-blocked after a blocked block, as `wide`).
    pub(crate) dw: FeatureMap,
    /// The wide residual stream of the `expansion` shortcut placement.
    pub(crate) carry: FeatureMap,
    /// Kernel scratch (im2col columns, padded planes).
    pub(crate) scratch: Vec<f32>,
    pub(crate) pooled: FeatureMap,
}

impl Default for FeatureMap {
    fn default() -> Self {
        FeatureMap::zeros(0, 0, 0)
    }
}

/// Workspaces shared by the threads of a batch; each image takes one and puts it back.
#[derive(Debug, Default)]
pub struct WorkspacePool {
    free: Mutex<Vec<Workspace>>,
}

impl WorkspacePool {
    pub fn take(&self) -> Workspace {
        self.free.lock().map(|mut v| v.pop()).ok().flatten().unwrap_or_default()
    }
    pub fn give(&self, ws: Workspace) {
        if let Ok(mut v) = self.free.lock() {
            v.push(ws);
        }
    }
}

impl Clone for WorkspacePool {
    fn clone(&self) -> Self {
        WorkspacePool::default()
    }
}

impl PartialEq for WorkspacePool {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
