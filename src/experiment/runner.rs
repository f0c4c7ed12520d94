//! Runs a spec: plans every (variant, seed) run, skips the finished ones (so an interrupted sweep
//! resumes), keeps a deterministic shard, executes the rest on `jobs` workers (each with its share of
//! the threads) and rebuilds the report from whatever runs are finished.
//!
//! Results do not depend on `jobs` or the thread count: every run is a pure function of its setup and
//! seed (training is bit-identical across thread counts), and the report reads runs in plan order.
//!
//! **Concurrency.** Several processes may share one output folder (e.g. a misconfigured job array).
//! Each run is claimed with an exclusive advisory lock on `runs/<key>/.lock` before it executes; a
//! process that finds a run claimed moves on and comes back to it at the end, waiting for the lock and
//! then taking the finished result (or executing the run if its holder died). Every run is therefore
//! computed once. Reports are written under an exclusive lock on `.report.lock` in the output folder,
//! reading the finished runs inside the lock, so a report written later never reflects fewer runs than
//! one written earlier. Advisory locks hold on local file systems; NFS and Lustre may not honour them —
//! there give each shard its own `--out` and combine them with `infoloss merge`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::run::{execute, finished, RunPlan, RunResult};
use super::spec::{Kind, Spec};
use super::summary::write_report;
use crate::error::{Error, Result};
use crate::io::atomic::{remove_stale_temps, write_atomic};

/// Lock file of a run (inside its folder) and of an experiment's reports (inside its output folder).
const RUN_LOCK: &str = ".lock";
const REPORT_LOCK: &str = ".report.lock";

/// Opens (creating) a lock file.
fn lock_file(path: &Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(|e| Error::io(path, e))
}

/// What claiming a run found.
enum Claim {
    /// The lock is ours (released when the file is dropped), or the file system has no locks
    /// (Lustre without `flock`, some NFS mounts): then the process goes on unlocked, as the module
    /// documentation says (one `--out` per shard is the safe way there).
    Mine(std::fs::File),
    /// Another process holds it.
    Busy,
}

/// Whether a lock error means "this file system does not do locks" rather than a real failure.
fn locks_unsupported(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Unsupported || e.raw_os_error() == Some(libc::ENOLCK) || e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

/// Tries to take the run's lock without waiting (`wait = false`) or waits for it.
fn claim(plan: &RunPlan, dir: &Path, wait: bool) -> Result<Claim> {
    let path = plan.dir(dir).join(RUN_LOCK);
    let f = lock_file(&path)?;
    if wait {
        return match f.lock() {
            Ok(()) => Ok(Claim::Mine(f)),
            Err(e) if locks_unsupported(&e) => Ok(Claim::Mine(f)),
            Err(e) => Err(Error::io(&path, e)),
        };
    }
    match f.try_lock() {
        Ok(()) => Ok(Claim::Mine(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(Claim::Busy),
        Err(std::fs::TryLockError::Error(e)) if locks_unsupported(&e) => Ok(Claim::Mine(f)),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// Claims and executes one run: `Ok(None)` when another process holds it (and `wait` is false) or it
/// turned out to be finished once the lock was ours.
fn claim_and_execute(plan: &RunPlan, dir: &Path, wait: bool) -> Result<Option<RunResult>> {
    let Claim::Mine(lock) = claim(plan, dir, wait)? else { return Ok(None) };
    let r = if finished(plan, dir).is_some() {
        Ok(None)
    } else if let Some(adopted) = super::run::adopt_sibling(plan, dir)? {
        Ok(Some(adopted))
    } else {
        execute(plan, dir).map(Some)
    };
    drop(lock);
    r
}

/// Writes the report of `spec` under the output folder's report lock.
///
/// # Errors
/// The lock or the report cannot be written.
pub fn write_report_locked(spec: &Spec, out: &Path) -> Result<Vec<PathBuf>> {
    let path = out.join(REPORT_LOCK);
    let f = lock_file(&path)?;
    match f.lock() {
        Ok(()) => {}
        Err(e) if locks_unsupported(&e) => {}
        Err(e) => return Err(Error::io(&path, e)),
    }
    let r = write_report(spec, out);
    drop(f);
    r
}

/// How to run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOptions {
    /// The experiment's output folder (`notebooks-out/<name>` by default).
    pub out: PathBuf,
    /// `(k, n)`: run only the plan's runs with index ≡ k − 1 (mod n), k in 1..=n.
    pub shard: Option<(usize, usize)>,
    /// Runs executed at once.
    pub jobs: usize,
    /// Stop after starting this many runs (what an interruption leaves behind; for tests).
    pub max_runs: Option<usize>,
}

/// Progress over runs, for a progress bar.
#[derive(Clone, Debug)]
pub struct RunProgress {
    pub done: usize,
    pub total: usize,
    /// The run just finished (`part/variant seed k`).
    pub label: String,
}

/// What a call did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOutcome {
    /// Keys of the runs executed now, in plan order.
    pub executed: Vec<String>,
    /// Keys of the runs found finished and skipped.
    pub skipped: Vec<String>,
    /// Runs outside this shard.
    pub other_shards: usize,
    /// `(key, error)` of failed runs; the others' results are kept.
    pub failed: Vec<(String, String)>,
    /// Report files written.
    pub reports: Vec<PathBuf>,
}

/// Every run of a spec with the folder it belongs to (a suite's parts get sub-folders), seed by seed.
pub fn plan(spec: &Spec, out: &Path) -> Vec<(PathBuf, RunPlan)> {
    if spec.kind == Kind::Suite {
        return spec.parts.iter().flat_map(|p| plan(p, &out.join(&p.name))).collect();
    }
    // Seed-major: a sweep stopped early (or one shard) has every variant at its first seeds.
    spec.seeds.iter().flat_map(|&s| spec.variants.iter().map(move |v| (out.to_path_buf(), RunPlan::new(&v.name, s, &v.setup)))).collect()
}

/// What one worker's attempt at a run gave: its result, `None` when it was found finished, or the error.
type RunAttempt = std::result::Result<Option<RunResult>, String>;

/// Most shards a plan may be cut into.
pub const MAX_SHARDS: usize = 100_000;

/// Parses `K/N` (1 ≤ K ≤ N ≤ [`MAX_SHARDS`]).
///
/// # Errors
/// Not `K/N` with 1 ≤ K ≤ N ≤ [`MAX_SHARDS`].
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::config(
            "--shard",
            s,
            format!("write K/N with 1 ≤ K ≤ N ≤ {MAX_SHARDS}, e.g. --shard 2/8 (SLURM: $((SLURM_ARRAY_TASK_ID+1))/$SLURM_ARRAY_TASK_COUNT)"),
        )
    };
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n || n > MAX_SHARDS {
        return Err(bad());
    }
    Ok((k, n))
}

/// Writes the spec files of `spec` (and its parts) into `out`: `spec.toml` (effective, after
/// overrides) and `spec.resolved.json` (every variant's full config, seeds, overrides, provenance).
///
/// # Errors
/// A file that cannot be written.
pub fn write_spec_files(spec: &Spec, out: &Path) -> Result<()> {
    write_atomic(&out.join("spec.toml"), spec.source.as_bytes())?;
    let resolved = serde_json::json!({
        "spec": spec,
        "infoloss_version": crate::io::meta::VERSION,
        "git_commit": crate::io::meta::GIT_COMMIT,
    });
    write_atomic(
        &out.join("spec.resolved.json"),
        serde_json::to_string_pretty(&resolved).map_err(|e| Error::internal("serialising the resolved spec", e))?.as_bytes(),
    )?;
    for p in &spec.parts {
        write_spec_files(p, &out.join(&p.name))?;
    }
    Ok(())
}

/// Runs `spec` as `opts` says; `progress` is called after every run.
///
/// # Errors
/// An output folder of another experiment or shard, a report that cannot be written (failed runs are listed in the outcome, not returned, unless the report fails too).
pub fn run_spec(spec: &Spec, opts: &RunOptions, progress: &(dyn Fn(RunProgress) + Sync)) -> Result<RunOutcome> {
    if opts.jobs == 0 {
        return Err(Error::config("--jobs", 0, "run at least 1 job at a time"));
    }
    check_out(spec, &opts.out)?;
    check_shard_record(&opts.out, opts.shard)?;
    // Temp files of killed processes (a `kill -9` mid-write) go; those of live ones stay.
    remove_stale_temps(&opts.out, 4);
    write_spec_files(spec, &opts.out)?;
    if let Some(shard) = opts.shard {
        write_shard_record(&opts.out, shard)?;
    }
    let all = plan(spec, &opts.out);
    if let Some((_, n)) = opts.shard.filter(|&(_, n)| n > all.len()) {
        return Err(Error::config("--shard", format!("…/{n}"), format!("the experiment has {} runs; cut it into at most that many shards", all.len())));
    }
    let mut outcome = RunOutcome::default();
    let mut todo: Vec<(PathBuf, RunPlan)> = Vec::new();
    for (i, (dir, p)) in all.iter().enumerate() {
        if let Some((k, n)) = opts.shard {
            if i % n != k - 1 {
                outcome.other_shards += 1;
                continue;
            }
        }
        if finished(p, dir).is_some() {
            // A kill between a run's result and its clean-up leaves checkpoints behind: tidy them.
            super::run::tidy_finished(p, dir);
            outcome.skipped.push(p.key.clone());
        } else {
            todo.push((dir.clone(), p.clone()));
        }
    }
    if let Some(max) = opts.max_runs {
        todo.truncate(max);
    }
    let total = todo.len();
    let jobs = opts.jobs.min(total.max(1));
    let threads = (rayon::current_num_threads() / jobs).max(1);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    // Runs another process holds: come back to them once this process's own queue is empty.
    let deferred: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    let results: Mutex<Vec<(usize, RunAttempt)>> = Mutex::new(Vec::new());
    let worker = |wait: bool, queue: &[usize], next: &AtomicUsize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
        while let Some(&i) = queue.get(next.fetch_add(1, Ordering::SeqCst)) {
            let (dir, p) = &todo[i];
            let r = match &pool {
                Ok(pool) => pool.install(|| claim_and_execute(p, dir, wait)).map_err(|e| e.to_string()),
                Err(e) => Err(format!("thread pool: {e}")),
            };
            if !wait && matches!(r, Ok(None)) && finished(p, dir).is_none() {
                deferred.lock().unwrap_or_else(|e| e.into_inner()).push(i);
                continue;
            }
            results.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
            let label = format!("{} seed {}", p.variant, p.seed);
            progress(RunProgress { done: done.fetch_add(1, Ordering::SeqCst) + 1, total, label });
        }
    };
    let first: Vec<usize> = (0..total).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| worker(false, &first, &next));
        }
    });
    let mut later = std::mem::take(&mut *deferred.lock().unwrap_or_else(|e| e.into_inner()));
    later.sort_unstable();
    let next_later = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(later.len()) {
            scope.spawn(|| worker(true, &later, &next_later));
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|r| r.0);
    for (i, r) in results {
        match r {
            Ok(Some(_)) => outcome.executed.push(todo[i].1.key.clone()),
            Ok(None) => outcome.skipped.push(todo[i].1.key.clone()),
            Err(e) => outcome.failed.push((format!("{} ({} seed {})", todo[i].1.key, todo[i].1.variant, todo[i].1.seed), e)),
        }
    }
    match write_report_locked(spec, &opts.out) {
        Ok(files) => outcome.reports = files,
        Err(e) if outcome.failed.is_empty() => return Err(e),
        // Keep the runs' own errors: they are usually the cause (e.g. a full disk).
        Err(e) => {
            let runs: Vec<String> = outcome.failed.iter().map(|(k, err)| format!("run {k} failed: {err}")).collect();
            return Err(Error::input("experiment", format!("{}; the report could not be written either: {e}", runs.join("; "))));
        }
    }
    Ok(outcome)
}

/// File recording which shard of the plan a folder holds (`{"k": K, "n": N}`), so `merge` can tell a
/// missing or incomplete shard.
pub const SHARD_RECORD: &str = "shard.json";

/// The shard `(k, n)` an output folder was run as, if any.
///
/// # Errors
/// A shard record that cannot be read or parsed.
pub fn read_shard_record(out: &Path) -> Result<Option<(usize, usize)>> {
    let path = out.join(SHARD_RECORD);
    if !path.exists() {
        return Ok(None);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).map_err(|e| Error::io(&path, e))?).map_err(|e| Error::file("shard record", &path, e))?;
    match (v["k"].as_u64(), v["n"].as_u64()) {
        (Some(k), Some(n)) if k >= 1 && k <= n && n <= MAX_SHARDS as u64 => Ok(Some((k as usize, n as usize))),
        _ => Err(Error::file("shard record", &path, "is not {\"k\": K, \"n\": N} with 1 ≤ K ≤ N")),
    }
}

fn write_shard_record(out: &Path, (k, n): (usize, usize)) -> Result<()> {
    write_atomic(&out.join(SHARD_RECORD), serde_json::json!({ "k": k, "n": n }).to_string().as_bytes())
}

/// A folder keeps the shard it was first run as: another `--shard` (or none) there is a mistake.
fn check_shard_record(out: &Path, shard: Option<(usize, usize)>) -> Result<()> {
    match (read_shard_record(out)?, shard) {
        (Some(old), Some(new)) if old != new => Err(Error::config(
            "--shard",
            format!("{}/{}", new.0, new.1),
            format!("{} holds shard {}/{}; give each shard its own --out", out.display(), old.0, old.1),
        )),
        (Some(old), None) => Err(Error::config(
            "--out",
            out.display(),
            format!("it holds shard {}/{} of a sharded run; run it with --shard {}/{} or combine the shards with `infoloss merge`", old.0, old.1, old.0, old.1),
        )),
        _ => Ok(()),
    }
}

/// Refuses an output folder that holds another experiment's spec (different name or kind).
fn check_out(spec: &Spec, out: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(out.join("spec.toml")) else { return Ok(()) };
    let old: toml::Table = toml::from_str(&text).map_err(|e| Error::file("spec", out.join("spec.toml"), e))?;
    let name = old.get("name").and_then(|v| v.as_str()).unwrap_or_default();
    if name != spec.name {
        return Err(Error::config("--out", out.display(), format!("it holds experiment '{name}', not '{}'; choose another folder", spec.name)));
    }
    Ok(())
}
