//! SLURM job arrays end to end, on a real one-node cluster (slurmctld + slurmd on localhost, started by
//! `deploy/slurm/local-cluster.sh`, which `.ci/run` calls). Through the same command a user runs —
//! `infoloss slurm SPEC --tasks 3` — a small suite (spiral + theory + tiny training) runs as a 3-task
//! array plus a merge job; the merged `summary.csv`, `claims.csv` and `runs.csv` of every part must
//! equal those of an unsharded `infoloss run` byte for byte, also when one task is pre-empted
//! (`scontrol requeue`) in the middle of a training run and resumes.
//!
//! Without a cluster these tests are skipped, except under CI (`CI=true`), where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cluster has 2 CPUs: one test at a time.
static CLUSTER: Mutex<()> = Mutex::new(());

const PARTS: [&str; 3] = ["spiral", "theory", "train"];
const FILES: [&str; 3] = ["summary.csv", "claims.csv", "runs.csv"];
const TIMEOUT: Duration = Duration::from_secs(300);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_infoloss")
}

fn spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slurm/suite.toml")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("infoloss-slurm-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Whether a cluster answers; under CI its absence is a failure.
fn cluster_up() -> bool {
    let up = Command::new("sinfo").args(["-h", "-o", "%T"]).output().is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "no SLURM cluster: .ci/run starts one with deploy/slurm/local-cluster.sh");
        eprintln!("skipped: no SLURM cluster (start one with deploy/slurm/local-cluster.sh start)");
    }
    up
}

fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The unsharded reference run (computed once per test process).
fn reference() -> PathBuf {
    static REF: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    REF.get_or_init(|| {
        let out = tmp("reference");
        sh(bin(), &["--threads", "1", "run", spec().to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
        out
    })
    .clone()
}

/// Submits through `infoloss slurm`; returns (array job id, merge job id).
fn submit(out: &Path) -> (String, String) {
    let text = sh(bin(), &["slurm", spec().to_str().unwrap(), "--tasks", "3", "--out", out.to_str().unwrap()]);
    let ids = text.lines().find(|l| l.starts_with("array_job_id=")).unwrap_or_else(|| panic!("no job ids in {text}"));
    let mut it = ids.split_whitespace().map(|kv| kv.split_once('=').unwrap().1.to_string());
    (it.next().unwrap(), it.next().unwrap())
}

/// `scontrol show job ID` fields of every record (an array job has one per task).
fn job_states(id: &str) -> Vec<String> {
    let out = Command::new("scontrol").args(["show", "job", id]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|f| f.strip_prefix("JobState=").map(str::to_string)).collect()
}

/// Waits until job `id` has ended; panics on a timeout or if it did not complete.
fn wait_done(id: &str, logs: &Path) {
    let start = Instant::now();
    loop {
        let states = job_states(id);
        if !states.is_empty() && states.iter().all(|s| s == "COMPLETED") {
            return;
        }
        let ended_badly = states.iter().any(|s| ["FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"].contains(&s.as_str()));
        if ended_badly || start.elapsed() > TIMEOUT {
            let logs: Vec<String> = std::fs::read_dir(logs)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| format!("{}:\n{}", e.path().display(), std::fs::read_to_string(e.path()).unwrap_or_default()))
                .collect();
            let _ = Command::new("scancel").arg(id).status();
            panic!("job {id} ended as {states:?} after {:?}\n{}", start.elapsed(), logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_same_as_reference(out: &Path) {
    let r = reference();
    for part in PARTS {
        for f in FILES {
            let (a, b) = (r.join(part).join(f), out.join(part).join(f));
            let (x, y) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap_or_else(|e| panic!("{}: {e}", b.display())));
            assert!(x == y, "{} differs from the unsharded run:\n{}\nvs\n{}", b.display(), String::from_utf8_lossy(&y), String::from_utf8_lossy(&x));
        }
    }
}

#[test]
fn a_job_array_and_its_merge_equal_the_unsharded_run() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_up() {
        return;
    }
    reference();
    // A folder name with a space and a quote: the rendered scripts must quote it.
    let out = tmp("array o'ut");
    let (array, merge) = submit(&out);
    wait_done(&array, &out.join("slurm/logs"));
    wait_done(&merge, &out.join("slurm/logs"));
    assert_same_as_reference(&out);
    for k in 1..=3 {
        let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(format!("shards/shard-{k}/shard.json"))).unwrap()).unwrap();
        assert_eq!((rec["k"].as_u64(), rec["n"].as_u64()), (Some(k), Some(3)));
    }
}

#[test]
fn a_preempted_task_resumes_and_the_merge_still_equals_the_unsharded_run() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if !cluster_up() {
        return;
    }
    reference();
    let out = tmp("requeue");
    let (array, merge) = submit(&out);
    // Pre-empt task 1 (shard 2) while it trains: as soon as one of its training runs has a checkpoint.
    let task = format!("{array}_1");
    let train_runs = out.join("shards/shard-2/train/runs");
    let start = Instant::now();
    let mid_training = loop {
        let in_progress = std::fs::read_dir(&train_runs)
            .into_iter()
            .flatten()
            .flatten()
            .any(|r| r.path().join("checkpoint.json").exists() && !r.path().join("result.json").exists());
        if in_progress {
            break true;
        }
        if job_states(&task).iter().any(|s| s == "COMPLETED") || start.elapsed() > TIMEOUT {
            break false;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    assert!(mid_training, "task {task} finished before it could be pre-empted mid-training");
    sh("scontrol", &["requeue", &task]);
    // SLURM holds a requeued job back (eligible about two minutes later); let it start when it can.
    let start = Instant::now();
    while !job_states(&task).iter().any(|s| s == "PENDING") && start.elapsed() < TIMEOUT {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("scontrol").args(["update", &format!("JobId={task}"), "StartTime=now"]).status();
    wait_done(&array, &out.join("slurm/logs"));
    wait_done(&merge, &out.join("slurm/logs"));
    let info = sh("scontrol", &["show", "job", &task]);
    assert!(info.contains("Restarts=1"), "task was not restarted:\n{info}");
    let log = std::fs::read_to_string(out.join("slurm/logs/shard-1.out")).unwrap();
    let rerun = log.split("restart 1").nth(1).unwrap_or_else(|| panic!("the requeued task did not run again:\n{log}"));
    // The second attempt resumed: it reused the runs the first had finished (the training run it
    // was in continued from its checkpoint; `runs.csv` equality below shows the result is the same).
    let reused = rerun.lines().find_map(|l| l.split(" run(s) executed, ").nth(1)).and_then(|r| r.split(' ').next()).and_then(|n| n.parse::<usize>().ok());
    assert!(reused.is_some_and(|n| n > 0), "the rerun reused no finished run:\n{log}");
    assert_same_as_reference(&out);
}

// ---- without a cluster: shard records, merge checks, the rendered scripts ------------------------

#[test]
fn merge_refuses_missing_and_incomplete_shards_unless_partial() {
    use infoloss::experiment::merge::merge_with;
    use infoloss::experiment::{run_spec, RunOptions, Spec};
    let text = "name = \"m\"\nkind = \"spiral\"\nseeds = \"0..3\"\n[spiral]\npoints = 60\n[grid]\n\"spiral.n\" = [2, 15]\n";
    let spec = Spec::parse(text, Path::new("."), &[]).unwrap();
    let base = tmp("merge-check");
    let shard = |k: usize, max: Option<usize>| {
        let out = base.join(format!("s{k}"));
        run_spec(&spec, &RunOptions { out: out.clone(), shard: Some((k, 3)), jobs: 1, max_runs: max }, &|_| {}).unwrap();
        out
    };
    let (s1, s2, s3) = (shard(1, None), shard(2, None), shard(3, Some(1)));
    // Shard 2 of 3 missing.
    let e = merge_with(&[s1.clone(), s3.clone()], &base.join("all"), false).unwrap_err().to_string();
    assert!(e.contains("shard 2/3 missing"), "{e}");
    // Shard 3 incomplete (1 of its 2 runs).
    let e = merge_with(&[s1.clone(), s2.clone(), s3.clone()], &base.join("all"), false).unwrap_err().to_string();
    assert!(e.contains("shard 3/3") && e.contains("incomplete: 1 of 2"), "{e}");
    assert!(!base.join("all").exists(), "a refused merge wrote its output");
    // --partial merges what is there.
    let o = merge_with(&[s1.clone(), s2.clone(), s3.clone()], &base.join("all"), true).unwrap();
    assert_eq!((o.finished, o.expected), (5, 6));
    // Completing shard 3 makes the merge whole.
    run_spec(&spec, &RunOptions { out: s3.clone(), shard: Some((3, 3)), jobs: 1, max_runs: None }, &|_| {}).unwrap();
    let o = merge_with(&[s1, s2, s3.clone()], &base.join("all"), false).unwrap();
    assert_eq!((o.finished, o.expected), (6, 6));
    // A shard folder keeps its K/N.
    let e = run_spec(&spec, &RunOptions { out: s3, shard: Some((2, 3)), jobs: 1, max_runs: None }, &|_| {}).unwrap_err().to_string();
    assert!(e.contains("holds shard 3/3"), "{e}");
}

#[test]
fn the_wrapper_renders_quoted_scripts_and_sbatch_lines() {
    let out = tmp("dry run's out");
    let text = sh(
        bin(),
        &[
            "slurm",
            spec().to_str().unwrap(),
            "--tasks",
            "3",
            "--out",
            out.to_str().unwrap(),
            "--partition",
            "gpu",
            "--cpus-per-task",
            "2",
            "--set",
            "train.epochs=1",
            "--dry-run",
            "--",
            "--time=00:10:00",
        ],
    );
    assert!(
        text.contains("--array=0-2") && text.contains("--cpus-per-task=2") && text.contains("--partition=gpu") && text.contains("--time=00:10:00"),
        "{text}"
    );
    assert!(text.contains("--dependency=afterok:<array job id>") && text.contains("--kill-on-invalid-dep=yes"), "{text}");
    let array = std::fs::read_to_string(out.join("slurm/array.sbatch")).unwrap();
    assert!(!array.lines().filter(|l| !l.starts_with("# ")).any(|l| l.contains("@")), "unfilled field:\n{array}");
    assert!(array.contains("--set train.epochs=1") && array.contains("--shard \"$K/$N\"") && array.contains("#SBATCH --requeue"), "{array}");
    // The folder name has a quote and a space: quoted for the shell.
    assert!(array.contains("'\\''s out"), "{array}");
    let merge = std::fs::read_to_string(out.join("slurm/merge.sbatch")).unwrap();
    assert!(merge.contains("shard-1") && merge.contains("shard-3") && merge.contains(" merge "), "{merge}");
    // Both scripts are valid shell.
    for f in ["array.sbatch", "merge.sbatch"] {
        let st = Command::new("bash").arg("-n").arg(out.join("slurm").join(f)).status().unwrap();
        assert!(st.success(), "{f} is not valid bash");
    }
    let e = Command::new(bin()).args(["slurm", spec().to_str().unwrap(), "--tasks", "0", "--dry-run"]).output().unwrap();
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("--tasks"));
}
