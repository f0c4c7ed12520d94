//! `infoloss slurm SPEC --tasks N`: submits an experiment as a SLURM job array (one shard per task)
//! plus a merge job that runs after it, and prints both job ids.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;

use infoloss::experiment::slurm::{parse_job_id, shell_quote, SlurmPlan};
use infoloss::experiment::Spec;
use infoloss::io::atomic::write_atomic;

#[derive(Args, Debug)]
pub struct SlurmArgs {
    /// Experiment spec (experiments/*.toml)
    pub spec: PathBuf,
    /// Array tasks, one shard of the plan each
    #[arg(long)]
    pub tasks: usize,
    /// Final output folder (default: notebooks-out/<spec name>); shards go to OUT/shards/shard-K
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a spec key (repeatable), as for `infoloss run`
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// SLURM partition (default: the cluster's default)
    #[arg(long)]
    pub partition: Option<String>,
    /// CPUs per array task (the task's --threads)
    #[arg(long, default_value_t = 1)]
    pub cpus_per_task: usize,
    /// The infoloss binary the jobs run (default: this one)
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Write the job scripts and print the sbatch commands without submitting
    #[arg(long)]
    pub dry_run: bool,
    /// Further sbatch options for both jobs, after `--` (e.g. -- --time=02:00:00 --mem=4G)
    #[arg(last = true)]
    pub sbatch: Vec<String>,
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) })
}

/// A command line a user can paste into a shell.
fn quoted(args: &[String]) -> String {
    args.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
}

fn sbatch(args: &[String]) -> anyhow::Result<String> {
    let out = Command::new("sbatch").args(args).output().map_err(|e| {
        anyhow::anyhow!(
            "cannot run sbatch ({e}); run this on a SLURM login node, or submit deploy/slurm/*.sbatch by hand (see the README's \"Running on a cluster\")"
        )
    })?;
    if !out.status.success() {
        let why: Vec<String> = String::from_utf8_lossy(&out.stderr).lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
        anyhow::bail!("sbatch failed ({}); check the partition and sbatch options (submitted: sbatch {})", why.join("; "), quoted(args));
    }
    Ok(parse_job_id(&String::from_utf8_lossy(&out.stdout))?)
}

pub fn run(a: SlurmArgs) -> anyhow::Result<()> {
    let spec = Spec::load(&a.spec, &a.set)?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("notebooks-out").join(&spec.name));
    let bin = match &a.bin {
        Some(b) => absolute(b)?,
        None => std::env::current_exe()?,
    };
    let plan = SlurmPlan {
        bin,
        spec: absolute(&a.spec)?,
        sets: a.set.clone(),
        name: spec.name.clone(),
        out: absolute(&out)?,
        tasks: a.tasks,
        cpus_per_task: a.cpus_per_task,
        partition: a.partition.clone(),
        sbatch_args: a.sbatch.clone(),
    };
    plan.validate()?;
    if a.tasks > spec.run_count() {
        anyhow::bail!("invalid --tasks = {}: the experiment has {} runs; use at most that many tasks", a.tasks, spec.run_count());
    }
    let dir = plan.slurm_dir();
    std::fs::create_dir_all(dir.join("logs"))?;
    let (array, merge) = (dir.join("array.sbatch"), dir.join("merge.sbatch"));
    write_atomic(&array, plan.array_script().as_bytes())?;
    write_atomic(&merge, plan.merge_script().as_bytes())?;
    let array_args = plan.array_args(&array);
    if a.dry_run {
        println!("sbatch {}", quoted(&array_args));
        println!("sbatch {}", quoted(&plan.merge_args("<array job id>", &merge)));
        println!("scripts in {}", dir.display());
        return Ok(());
    }
    let array_id = sbatch(&array_args)?;
    let merge_id = sbatch(&plan.merge_args(&array_id, &merge))?;
    println!("submitted array job {array_id} ({} tasks, {} runs) and merge job {merge_id} (after {array_id} succeeds)", a.tasks, spec.run_count());
    println!("shards: {}/shard-1…{}; logs: {}; results: {}", plan.shards_dir().display(), a.tasks, dir.join("logs").display(), plan.out.display());
    println!("array_job_id={array_id} merge_job_id={merge_id}");
    Ok(())
}
