//! Seeded Gaussian inputs: the N(0, 1) images of `analyze --noise N` and of the benchmarks.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};
use crate::tensor::Batch;

/// A seeded N(0, 1) NCHW batch of `n` RGB images of `resolution`².
///
/// # Errors
/// A size whose element count overflows.
pub fn random_batch(n: usize, resolution: usize, seed: u64) -> Result<Batch> {
    let len = n.checked_mul(3).and_then(|v| v.checked_mul(resolution)).and_then(|v| v.checked_mul(resolution));
    let len = len.ok_or_else(|| Error::config("noise batch", format!("{n}×3×{resolution}×{resolution}"), "use fewer images or a smaller resolution"))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let data: Vec<f32> = (0..len).map(|_| StandardNormal.sample(&mut rng)).collect();
    Batch::from_nchw([n, 3, resolution, resolution], &data)
}
