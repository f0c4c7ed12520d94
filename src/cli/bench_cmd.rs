//! `infoloss bench …`: throughput, last line machine-readable.

use clap::{Args, Subcommand};

use super::model_flags::ModelFlags;
use infoloss::bench;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Eval-mode forward throughput
    Forward(BenchArgs),
    /// Forward plus active-channel counting at every .post site, against the plain forward
    Analyze(BenchArgs),
    /// Training throughput (RMSprop steps, default width 0.5, 32×32, 10 classes, batch 96)
    Train(TrainBenchArgs),
    /// Split block execution: peak heap bytes and time per number of splits (batch 1, 1 thread)
    Split(super::memory_cmd::SplitArgs),
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Images per batch
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Timed iterations (median reported)
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    #[command(flatten)]
    pub model: ModelFlags,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Forward(a) => {
            let config = a.model.config()?;
            let t = bench::bench_forward(&config, a.batch, a.iters)?;
            println!("# {} batch={} iters={} threads={}", config.label(), a.batch, t.iters, super::threads());
            println!("forward: {:.1} img/s ({:.1} ms/batch)", t.images_per_second, t.ms_per_batch);
        }
        BenchCommand::Split(a) => super::memory_cmd::split(a)?,
        BenchCommand::Train(a) => {
            let base = infoloss::ModelConfig { width: 0.5, resolution: 32, classes: 10, ..Default::default() };
            let config = a.model.apply(&base)?;
            let t = bench::bench_train(&config, a.batch, a.iters)?;
            println!("# {} batch={} iters={} threads={}", config.label(), a.batch, t.iters, super::threads());
            println!("train: {:.1} img/s ({:.0} ms/step)", t.images_per_second, t.ms_per_batch);
        }
        BenchCommand::Analyze(a) => {
            let config = a.model.config()?;
            let t = bench::bench_analyze(&config, a.batch, a.iters)?;
            println!("# {} batch={} iters={} threads={}", config.label(), a.batch, a.iters, super::threads());
            println!("forward: {:.1} img/s ({:.1} ms/batch)", t.forward.images_per_second, t.forward.ms_per_batch);
            println!("analyze: {:.1} img/s (overhead {:+.0}% vs forward)", t.analyze.images_per_second, t.overhead * 100.0);
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct TrainBenchArgs {
    #[arg(long, default_value_t = 96)]
    pub batch: usize,
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    #[command(flatten)]
    pub model: ModelFlags,
}
