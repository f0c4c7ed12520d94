//! Throughput benchmarks behind `infoloss bench`: median over timed iterations after a warm-up.

use std::time::Instant;

use crate::error::Result;
use crate::model::hooked::Hooked;
use crate::model::{MobileNetV2, ModelConfig};

/// Result of timing one workload.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Timing {
    pub batch: usize,
    pub iters: usize,
    /// Median milliseconds per batch.
    pub ms_per_batch: f64,
    pub images_per_second: f64,
}

pub use crate::data::noise::random_batch;

/// Median milliseconds of `iters` (at least one) timed calls of `f`.
///
/// # Errors
/// The first error `f` returns.
pub fn median_ms<T>(iters: usize, mut f: impl FnMut() -> Result<T>) -> Result<f64> {
    let mut ms: Vec<f64> = (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            f().map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_>>()?;
    ms.sort_by(|a, b| a.total_cmp(b));
    Ok(ms[ms.len() / 2])
}

/// Most timed iterations a benchmark takes.
pub const MAX_ITERS: usize = 10_000;
/// Largest benchmark batch.
pub const MAX_BATCH: usize = 4096;

/// Checks a benchmark's batch and iteration count.
///
/// # Errors
/// A batch outside 1..=[`MAX_BATCH`] or iterations outside 1..=[`MAX_ITERS`].
pub fn check_bench_args(batch: usize, iters: usize) -> Result<()> {
    if !(1..=MAX_BATCH).contains(&batch) {
        return Err(crate::error::Error::config("--batch", batch, format!("use 1 to {MAX_BATCH} images per batch")));
    }
    if !(1..=MAX_ITERS).contains(&iters) {
        return Err(crate::error::Error::config("--iters", iters, format!("use 1 to {MAX_ITERS} timed iterations")));
    }
    Ok(())
}

/// Times `f` (one batch per call): one warm-up call, then `iters` timed calls; median.
///
/// # Errors
/// The first error `f` returns.
pub fn time_batches(batch: usize, iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    f()?;
    let med = median_ms(iters, &mut f)?;
    Ok(Timing { batch, iters: iters.max(1), ms_per_batch: med, images_per_second: batch as f64 * 1e3 / med })
}

/// Times the eval-mode forward pass of a seeded model on a random batch.
///
/// # Errors
/// An invalid config or batch size.
pub fn bench_forward(config: &ModelConfig, batch: usize, iters: usize) -> Result<Timing> {
    check_bench_args(batch, iters)?;
    let model = MobileNetV2::seeded(config, 0)?;
    let x = random_batch(batch, config.resolution, 1)?;
    time_batches(batch, iters, || model.forward(&x).map(|_| ()))
}

/// Forward throughput with and without active-channel counting at every `.post` site, same run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AnalyzeTiming {
    pub forward: Timing,
    pub analyze: Timing,
    /// `analyze time / forward time − 1`.
    pub overhead: f64,
}

/// Times the plain forward and the forward with a [`ChannelActivity`](crate::hooks::observers::ChannelActivity) observer on all `.post` sites,
/// interleaved so both see the same machine load.
///
/// # Errors
/// An invalid config or batch size.
pub fn bench_analyze(config: &ModelConfig, batch: usize, iters: usize) -> Result<AnalyzeTiming> {
    check_bench_args(batch, iters)?;
    use crate::hooks::{observers::ChannelActivity, HookSet, NameFilter};
    let model = MobileNetV2::seeded(config, 0)?;
    let x = random_batch(batch, config.resolution, 1)?;
    let cap = config.activation.activation().cap();
    let run_analyze = || -> Result<()> {
        let mut hooks = HookSet::new();
        hooks.observe(NameFilter::post_sites(), ChannelActivity::new(cap));
        model.run_with_hooks(&x, &mut hooks).map(|_| ())
    };
    run_analyze()?;
    model.forward(&x)?;
    let (mut f, mut a) = (Vec::new(), Vec::new());
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        model.forward(&x)?;
        f.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        run_analyze()?;
        a.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|p, q| p.total_cmp(q));
        v[v.len() / 2]
    };
    let (fm, am) = (med(&mut f), med(&mut a));
    let timing = |ms: f64| Timing { batch, iters: iters.max(1), ms_per_batch: ms, images_per_second: batch as f64 * 1e3 / ms };
    Ok(AnalyzeTiming { forward: timing(fm), analyze: timing(am), overhead: am / fm - 1.0 })
}

/// One row of `infoloss bench split`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SplitRow {
    pub splits: String,
    /// Peak live heap bytes during one image's split forward (above the baseline before it); `None`
    /// when the counting allocator is not installed in this binary.
    pub peak_bytes: Option<usize>,
    pub ms_per_image: f64,
    /// Largest |Δ logit| against the unsplit forward.
    pub max_abs_diff: f32,
}

/// Peak heap bytes and time of the split forward for each `splits`, and of the plain forward (label
/// `unsplit`) for reference; single-threaded, batch of one.
///
/// # Errors
/// An invalid config, a split count the model cannot run, a failed forward pass.
pub fn bench_split(config: &ModelConfig, splits: &[crate::model::split::Splits], iters: usize) -> Result<Vec<SplitRow>> {
    check_bench_args(1, iters)?;
    use crate::alloc_counter;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().map_err(|e| crate::Error::input("thread pool", e))?;
    pool.install(|| {
        let model = MobileNetV2::seeded(config, 0)?;
        let x = random_batch(1, config.resolution, 1)?;
        let image = &x.images()[0];
        let reference = model.forward(&x)?;
        let measure = |f: &dyn Fn() -> Result<Vec<f32>>| -> Result<(Option<usize>, f64, f32)> {
            let base = alloc_counter::reset_peak();
            let out = f()?;
            let peak = alloc_counter::installed().then(|| alloc_counter::peak().saturating_sub(base));
            let diff = out.iter().zip(reference.row(0).iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            Ok((peak, median_ms(iters, f)?, diff))
        };
        let mut rows = Vec::new();
        // The plain forward on a fresh model (empty workspace pool), so its buffers are counted.
        let fresh = model.clone();
        let (peak, ms, diff) = measure(&|| fresh.forward(&x).map(|l| l.row(0).iter().copied().collect()))?;
        rows.push(SplitRow { splits: "unsplit".into(), peak_bytes: peak, ms_per_image: ms, max_abs_diff: diff });
        for &s in splits {
            let (peak, ms, diff) = measure(&|| model.forward_split(image, s))?;
            rows.push(SplitRow { splits: s.label(), peak_bytes: peak, ms_per_image: ms, max_abs_diff: diff });
        }
        Ok(rows)
    })
}

/// Training throughput: RMSprop steps on random data (batch `batch`), the median of `iters` steps.
///
/// # Errors
/// An invalid config or batch size.
pub fn bench_train(config: &ModelConfig, batch: usize, iters: usize) -> Result<Timing> {
    check_bench_args(batch, iters)?;
    use crate::train::optim::{Optimizer, OptimizerConfig};
    use crate::train::trainer::{grad_slices, params_mut};
    use crate::train::{train_step_pooled, Act, ActPool, StepOptions};
    let mut model = MobileNetV2::seeded(config, 0)?;
    let x = Act::from_batch(&random_batch(batch, config.resolution, 1)?);
    let labels: Vec<usize> = (0..batch).map(|i| i % config.classes).collect();
    let sizes: Vec<usize> = params_mut(&mut model).0.iter().map(|p| p.len()).collect();
    let mut opt = Optimizer::new(OptimizerConfig::default(), &sizes);
    let threads = rayon::current_num_threads();
    let mut buffers = ActPool::default();
    let mut step = |seed: u64| -> Result<()> {
        let opts = StepOptions { label_smoothing: 0.0, dropout_seed: seed, threads };
        let r = crate::parallel::on_pool(|| train_step_pooled(&mut model, &x, &labels, opts, &mut buffers));
        let (params, decay) = params_mut(&mut model);
        opt.step(params, &grad_slices(&r.grads), &decay, 0.045);
        Ok(())
    };
    let mut k = 0;
    time_batches(batch, iters, || {
        k += 1;
        step(k)
    })
}
