//! Throughput benchmarks behind `infoloss bench`: median over timed iterations after a warm-up.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;
use crate::model::{MobileNetV2, ModelConfig};
use crate::tensor::Batch;

/// Result of timing one workload.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Timing {
    pub batch: usize,
    pub iters: usize,
    /// Median milliseconds per batch.
    pub ms_per_batch: f64,
    pub images_per_second: f64,
}

/// A seeded N(0, 1) NCHW batch.
pub fn random_batch(n: usize, resolution: usize, seed: u64) -> Result<Batch> {
    let mut rng = StdRng::seed_from_u64(seed);
    let data: Vec<f32> = (0..n * 3 * resolution * resolution).map(|_| StandardNormal.sample(&mut rng)).collect();
    Batch::from_nchw([n, 3, resolution, resolution], &data)
}

/// Times `f` (one batch per call): one warm-up call, then `iters` timed calls; median.
pub fn time_batches(batch: usize, iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    f()?;
    let mut ms: Vec<f64> = (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            f().map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_>>()?;
    ms.sort_by(|a, b| a.total_cmp(b));
    let med = ms[ms.len() / 2];
    Ok(Timing { batch, iters: ms.len(), ms_per_batch: med, images_per_second: batch as f64 * 1e3 / med })
}

/// Times the eval-mode forward pass of a seeded model on a random batch.
pub fn bench_forward(config: &ModelConfig, batch: usize, iters: usize) -> Result<Timing> {
    let model = MobileNetV2::seeded(config, 0)?;
    let x = random_batch(batch, config.resolution, 1)?;
    time_batches(batch, iters, || model.forward(&x).map(|_| ()))
}
