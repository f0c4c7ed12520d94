//! Batch normalisation, inference form: `y = γ · (x − μ) / √(σ² + ε) + β` per channel.
//!
//! The unfolded parameters are kept (weights I/O, later training); for speed the forward pass uses the
//! per-channel `scale = γ / √(σ² + ε)` and `shift = β − μ · scale` folded into the preceding conv.

/// BatchNorm parameters of one layer (PyTorch names: weight=γ, bias=β, running_mean, running_var).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub running_mean: Vec<f32>,
    pub running_var: Vec<f32>,
    pub eps: f32,
}

impl BatchNorm {
    /// The initial state (γ = 1, β = 0, μ = 0, σ² = 1), as PyTorch initialises it.
    pub fn identity(channels: usize, eps: f32) -> Self {
        BatchNorm { gamma: vec![1.0; channels], beta: vec![0.0; channels], running_mean: vec![0.0; channels], running_var: vec![1.0; channels], eps }
    }

    pub fn channels(&self) -> usize {
        self.gamma.len()
    }

    /// Per-channel `(scale, shift)` of the folded affine map, computed in f64.
    pub fn scale_shift(&self) -> (Vec<f32>, Vec<f32>) {
        (0..self.channels())
            .map(|c| {
                let scale = self.gamma[c] as f64 / (self.running_var[c] as f64 + self.eps as f64).sqrt();
                let shift = self.beta[c] as f64 - self.running_mean[c] as f64 * scale;
                (scale as f32, shift as f32)
            })
            .unzip()
    }

    /// Applies the inference-mode normalisation to channel `c`'s values (reference path, unfused).
    pub fn apply_channel(&self, c: usize, xs: &mut [f32]) {
        let (scale, shift) = {
            let s = self.gamma[c] as f64 / (self.running_var[c] as f64 + self.eps as f64).sqrt();
            (s, self.beta[c] as f64 - self.running_mean[c] as f64 * s)
        };
        xs.iter_mut().for_each(|v| *v = (*v as f64 * scale + shift) as f32);
    }
}
