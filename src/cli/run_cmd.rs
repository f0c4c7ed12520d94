//! `infoloss run SPEC.toml` and `infoloss merge DIR…`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use infoloss::experiment::merge::merge_with;
use infoloss::experiment::summary::summarize;
use infoloss::experiment::{parse_shard, run_spec, Kind, RunOptions, RunProgress, Spec};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Experiment spec (experiments/*.toml)
    pub spec: PathBuf,
    /// Output folder (default: notebooks-out/<spec name>)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a spec key, e.g. --set train.epochs=3 --set data=cifar:DIR --set seeds=0..10 (repeatable; recorded)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Run only shard K of N (deterministic; e.g. one SLURM array task each), then `infoloss merge`
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Runs executed at once (each gets its share of the threads; results do not change)
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Print the plan (variants, seeds, runs, what is finished) and stop
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub quiet: bool,
}

fn bar(total: usize, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template("runs {bar:30} {pos}/{len} {msg} ETA {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

pub fn run(a: RunArgs) -> anyhow::Result<bool> {
    let spec = Spec::load(&a.spec, &a.set)?;
    let shard = a.shard.as_deref().map(parse_shard).transpose()?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("notebooks-out").join(&spec.name));
    let parts: Vec<&Spec> = if spec.kind == Kind::Suite { spec.parts.iter().collect() } else { vec![&spec] };
    for p in &parts {
        println!("{} ({}): {} variant(s) × {} seed(s), {} claim(s)", p.name, p.kind.as_str(), p.variants.len(), p.seeds.len(), p.claims.len());
    }
    if a.dry_run {
        for (dir, p) in infoloss::experiment::runner::plan(&spec, &out) {
            let state = if infoloss::experiment::run::finished(&p, &dir).is_some() { "finished" } else { "to run" };
            println!("  {} {:<28} seed {:<4} {state}", p.key, p.variant, p.seed);
        }
        return Ok(true);
    }
    let pb = bar(0, a.quiet);
    let opts = RunOptions { out: out.clone(), shard, jobs: a.jobs, max_runs: None };
    let outcome = run_spec(&spec, &opts, &|p: RunProgress| {
        pb.set_length(p.total as u64);
        pb.set_position(p.done as u64);
        pb.set_message(p.label);
    })?;
    pb.finish_and_clear();
    println!(
        "{} run(s) executed, {} already finished{}{}",
        outcome.executed.len(),
        outcome.skipped.len(),
        if outcome.other_shards > 0 { format!(", {} in other shards", outcome.other_shards) } else { String::new() },
        if outcome.failed.is_empty() { String::new() } else { format!(", {} FAILED", outcome.failed.len()) }
    );
    if !outcome.skipped.is_empty() {
        println!("(finished runs in {} are reused, not recomputed; give another --out to run them afresh)", out.display());
    }
    for p in &parts {
        let dir = if spec.kind == Kind::Suite { out.join(&p.name) } else { out.clone() };
        print_claims(p, &dir);
    }
    println!("report: {}", out.join("report.md").display());
    for (run, err) in &outcome.failed {
        eprintln!("run {run} failed: {err}");
    }
    Ok(outcome.failed.is_empty())
}

fn print_claims(spec: &Spec, dir: &std::path::Path) {
    let s = summarize(spec, dir);
    println!("{}: {}/{} runs finished", spec.name, s.results.len(), s.expected);
    let pre = if spec.preliminary { " (preliminary)" } else { "" };
    for c in &s.claims {
        if c.claim.kind == infoloss::experiment::spec::ClaimKind::Exact {
            // No interval or p-value: a bound checked seed by seed.
            println!("  {:<34} {:<11} {:>10.4} vs {:<10.4} {}{pre}", c.claim.id, "exact", c.test.mean_a, c.test.mean_b, c.verdict_text());
            continue;
        }
        println!(
            "  {:<34} {:<11} {:>10.4} vs {:<10.4} diff {:+.4} [{:+.4}, {:+.4}]  p_holm {:.3e}  {}{}",
            c.claim.id,
            c.claim.kind.as_str(),
            c.test.mean_a,
            c.test.mean_b,
            c.test.diff,
            c.test.diff_lo,
            c.test.diff_hi,
            c.p_holm,
            c.verdict_text(),
            pre
        );
    }
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Output folders of shards (or attempts) of one experiment
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged runs and report go (may be one of the inputs)
    #[arg(long)]
    pub out: PathBuf,
    /// Merge even when shards are missing or unfinished (the report says how many runs finished)
    #[arg(long)]
    pub partial: bool,
}

pub fn merge_cmd(a: MergeArgs) -> anyhow::Result<bool> {
    let o = merge_with(&a.dirs, &a.out, a.partial)?;
    println!("copied {} run(s); {} of {} runs finished; report: {}", o.copied, o.finished, o.expected, a.out.join("report.md").display());
    Ok(true)
}
