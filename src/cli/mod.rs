//! Subcommands. Each is a small function from parsed flags to library calls and printed output.

mod analyze_cmd;
mod bench_cmd;
mod convert_cmd;
mod experiments_cmd;
mod forward_cmd;
mod hooks_cmd;
mod init_cmd;
mod jacobian_cmd;
mod memory_cmd;
mod model_cmd;
pub mod model_flags;
mod run_cmd;
mod seeds;
mod slurm_cmd;
mod train_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Information loss in ReLU networks: MobileNetV2 in nalgebra with instrumentation hooks.
#[derive(Parser, Debug)]
#[command(name = "infoloss", version, about)]
pub struct Cli {
    /// Worker threads (default: all cores); recorded in every output
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run an experiment spec (experiments/*.toml): variants × seeds, statistics, verdicts, report
    Run(run_cmd::RunArgs),
    /// Combine the output folders of shards of one experiment and rebuild its report
    Merge(run_cmd::MergeArgs),
    /// Submit an experiment to SLURM: a job array (one shard per task) and a merge job after it
    Slurm(slurm_cmd::SlurmArgs),
    /// Per-layer table of shapes, parameters and MACs, with totals
    Model(model_cmd::ModelArgs),
    /// Write a seeded initialisation (torchvision's scheme) as safetensors
    Init(init_cmd::InitArgs),
    /// Eval-mode forward pass of an NCHW f32 .npy batch; writes logits as .npy
    Forward(forward_cmd::ForwardArgs),
    /// Every hook site of a config: name, shape, channels, rank threshold n
    Hooks(hooks_cmd::HooksArgs),
    /// Activation patterns against the rank threshold (Fig. 7) and the Lemma-2 check over inputs
    Analyze(analyze_cmd::AnalyzeArgs),
    /// Paper Fig. 1: a spiral embedded by a random T, ReLU, projected back
    Spiral(experiments_cmd::SpiralArgs),
    /// Paper Theorem 1 against the Lemma-2 rate of random expansion layers
    Theory(experiments_cmd::TheoryArgs),
    /// Rank and singular values of block Jacobians (masks frozen), across variants with --compare
    Jacobian(jacobian_cmd::JacobianArgs),
    /// Table 3: largest materialised tensor and Eq. 2 peak, layer by layer or fused
    Memory(memory_cmd::MemoryArgs),
    /// Train a classifier (backpropagation, the paper's RMSprop) with checkpoints and exact resume
    Train(train_cmd::TrainArgs),
    /// Accuracy of weights on a data set's validation split
    Eval(train_cmd::EvalArgs),
    /// Convert foreign weights to torchvision names
    #[command(subcommand)]
    Convert(convert_cmd::ConvertCommand),
    /// Throughput benchmarks
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
}

/// Most worker threads `--threads` accepts (far above any core count this tool is run on).
pub const MAX_THREADS: usize = 1024;

/// Threads in use (after `--threads` has been applied).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(n) = cli.threads {
        if !(1..=MAX_THREADS).contains(&n) {
            anyhow::bail!("invalid --threads = {n}: use 1 to {MAX_THREADS} (default: all cores)");
        }
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global()?;
    }
    let ok = match cli.command {
        Command::Run(a) => return Ok(exit(run_cmd::run(a)?)),
        Command::Merge(a) => return Ok(exit(run_cmd::merge_cmd(a)?)),
        Command::Slurm(a) => slurm_cmd::run(a),
        Command::Model(a) => model_cmd::run(a),
        Command::Init(a) => init_cmd::run(a),
        Command::Forward(a) => forward_cmd::run(a),
        Command::Hooks(a) => hooks_cmd::run(a),
        Command::Analyze(a) => analyze_cmd::run(a),
        Command::Spiral(a) => experiments_cmd::spiral(a),
        Command::Theory(a) => experiments_cmd::theory(a),
        Command::Jacobian(a) => jacobian_cmd::run(a),
        Command::Convert(c) => convert_cmd::run(c),
        Command::Memory(a) => memory_cmd::memory(a),
        Command::Train(a) => train_cmd::run(a),
        Command::Eval(a) => train_cmd::eval(a),
        Command::Bench(b) => bench_cmd::run(b),
    };
    ok?;
    Ok(ExitCode::SUCCESS)
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
