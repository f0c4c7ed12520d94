//! Subcommands. Each is a small function from parsed flags to library calls and printed output.

mod bench_cmd;
mod forward_cmd;
mod hooks_cmd;
mod model_cmd;
pub mod model_flags;

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
    /// Per-layer table of shapes, parameters and MACs, with totals
    Model(model_cmd::ModelArgs),
    /// Eval-mode forward pass of an NCHW f32 .npy batch; writes logits as .npy
    Forward(forward_cmd::ForwardArgs),
    /// Every hook site of a config: name, shape, channels, rank threshold n
    Hooks(hooks_cmd::HooksArgs),
    /// Throughput benchmarks
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
}

/// Threads in use (after `--threads` has been applied).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(n) = cli.threads {
        if n == 0 {
            anyhow::bail!("invalid --threads = 0: use at least 1 (default: all cores)");
        }
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global()?;
    }
    match cli.command {
        Command::Model(a) => model_cmd::run(a),
        Command::Forward(a) => forward_cmd::run(a),
        Command::Hooks(a) => hooks_cmd::run(a),
        Command::Bench(b) => bench_cmd::run(b),
    }?;
    Ok(ExitCode::SUCCESS)
}
