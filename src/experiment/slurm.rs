//! SLURM job arrays for sweeps: the two job scripts of `deploy/slurm/` (an array with one shard per
//! task, a merge job after it) rendered for one experiment, and the `sbatch` command lines that
//! submit them. Running `sbatch` is the CLI's part (`infoloss slurm`); this module only builds text.
//!
//! Layout under the experiment's output folder `OUT`: `OUT/shards/shard-K` (one folder per task,
//! recording K/N), `OUT/slurm/{array,merge}.sbatch` (the rendered scripts, kept as a record),
//! `OUT/slurm/logs/` (each task's and the merge's output); the merged runs and report go into `OUT`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The array job's template (`deploy/slurm/array.sbatch`).
pub const ARRAY_TEMPLATE: &str = include_str!("../../deploy/slurm/array.sbatch");
/// The merge job's template (`deploy/slurm/merge.sbatch`).
pub const MERGE_TEMPLATE: &str = include_str!("../../deploy/slurm/merge.sbatch");

/// Most array tasks one submission may ask for (SLURM's default MaxArraySize is 1001).
pub const MAX_TASKS: usize = 1000;

/// What to submit.
#[derive(Clone, Debug, PartialEq)]
pub struct SlurmPlan {
    /// The `infoloss` binary the jobs run (absolute).
    pub bin: PathBuf,
    /// The spec file (absolute) and its `--set` overrides.
    pub spec: PathBuf,
    pub sets: Vec<String>,
    /// Experiment name (job names) and final output folder (absolute).
    pub name: String,
    pub out: PathBuf,
    /// Array tasks (= shards).
    pub tasks: usize,
    pub cpus_per_task: usize,
    pub partition: Option<String>,
    /// Further `sbatch` options, passed to both submissions.
    pub sbatch_args: Vec<String>,
}

/// Quotes a string for a POSIX shell (single quotes; a quote inside becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A path for sbatch's `--output`, where `%` starts a pattern (`%a` the array index): doubled.
fn sbatch_path(p: &Path) -> String {
    p.to_string_lossy().replace('%', "%%")
}

fn path_text(p: &Path) -> String {
    shell_quote(&p.to_string_lossy())
}

impl SlurmPlan {
    /// Checks the task count and CPU count.
    ///
    /// # Errors
    /// Tasks outside 1..=[`MAX_TASKS`], CPUs per task outside 1..=1024.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_TASKS).contains(&self.tasks) {
            return Err(Error::config("--tasks", self.tasks, format!("use 1 to {MAX_TASKS} array tasks (each runs one shard)")));
        }
        if !(1..=1024).contains(&self.cpus_per_task) {
            return Err(Error::config("--cpus-per-task", self.cpus_per_task, "use 1 to 1024 CPUs per task"));
        }
        // Options the wrapper sets itself: given again after `--`, sbatch would take the later one.
        // Long options may be abbreviated (`--arr=`, `--depend=`) and short ones attached (`-a0-3`).
        const OWN: [&str; 4] = ["--array", "--dependency", "--output", "--parsable"];
        let own = |a: &str| {
            let long = a.starts_with("--") && a.len() > 4 && OWN.iter().any(|o| o.starts_with(a.split('=').next().unwrap_or(a)));
            let short = !a.starts_with("--") && (a.starts_with("-a") || a.starts_with("-d") || a.starts_with("-o"));
            long || short
        };
        if let Some(a) = self.sbatch_args.iter().find(|a| own(a)) {
            return Err(Error::config(
                "sbatch option",
                a,
                "infoloss slurm sets --array, --dependency, --output and --parsable itself; use --tasks for the array size",
            ));
        }
        if !self.bin.is_file() {
            return Err(Error::config("--bin", self.bin.display(), "no such file; give the path of the infoloss binary the jobs should run"));
        }
        Ok(())
    }

    /// The folder holding the shards' folders.
    pub fn shards_dir(&self) -> PathBuf {
        self.out.join("shards")
    }

    /// Folder of the rendered scripts and of the logs.
    pub fn slurm_dir(&self) -> PathBuf {
        self.out.join("slurm")
    }

    /// The value of one `@FIELD@` of the templates.
    fn field(&self, name: &str) -> Option<String> {
        Some(match name {
            "NAME" => format!("infoloss-{}", self.name),
            "BIN" => path_text(&self.bin),
            "SPEC" => path_text(&self.spec),
            "SETS" => self.sets.iter().map(|s| format!("--set {}", shell_quote(s))).collect::<Vec<_>>().join(" "),
            "SHARDS" => path_text(&self.shards_dir()),
            "SHARD_DIRS" => (1..=self.tasks).map(|k| path_text(&self.shards_dir().join(format!("shard-{k}")))).collect::<Vec<_>>().join(" "),
            "OUT" => path_text(&self.out),
            "TASKS" => self.tasks.to_string(),
            _ => return None,
        })
    }

    /// Fills every `@FIELD@` of a template in one pass (a value that happens to contain `@OUT@` is
    /// not filled again); comment lines are kept as they are.
    fn fill(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 256);
        for line in template.split_inclusive('\n') {
            if line.starts_with("# ") {
                out.push_str(line);
                continue;
            }
            let mut rest = line;
            while let Some(start) = rest.find('@') {
                let after = &rest[start + 1..];
                match after.find('@').map(|end| (end, &after[..end])) {
                    Some((end, name)) if self.field(name).is_some() => {
                        out.push_str(&rest[..start]);
                        out.push_str(&self.field(name).unwrap_or_default());
                        rest = &after[end + 1..];
                    }
                    _ => {
                        out.push_str(&rest[..=start]);
                        rest = after;
                    }
                }
            }
            out.push_str(rest);
        }
        out
    }

    /// The array job's script.
    pub fn array_script(&self) -> String {
        self.fill(ARRAY_TEMPLATE)
    }

    /// The merge job's script.
    pub fn merge_script(&self) -> String {
        self.fill(MERGE_TEMPLATE)
    }

    fn common_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(p) = &self.partition {
            v.push(format!("--partition={p}"));
        }
        v.extend(self.sbatch_args.iter().cloned());
        v
    }

    /// `sbatch` arguments of the array submission (the script path last).
    pub fn array_args(&self, script: &Path) -> Vec<String> {
        let mut v = vec![
            "--parsable".to_string(),
            format!("--array=0-{}", self.tasks - 1),
            format!("--cpus-per-task={}", self.cpus_per_task),
            format!("--output={}", sbatch_path(&self.slurm_dir().join("logs")) + "/shard-%a.out"),
        ];
        v.extend(self.common_args());
        v.push(script.display().to_string());
        v
    }

    /// `sbatch` arguments of the merge submission, after array job `array_id`.
    pub fn merge_args(&self, array_id: &str, script: &Path) -> Vec<String> {
        let mut v = vec![
            "--parsable".to_string(),
            format!("--dependency=afterok:{array_id}"),
            "--kill-on-invalid-dep=yes".to_string(),
            "--cpus-per-task=1".to_string(),
            format!("--output={}", sbatch_path(&self.slurm_dir().join("logs")) + "/merge.out"),
        ];
        v.extend(self.common_args());
        v.push(script.display().to_string());
        v
    }
}

/// The job id in `sbatch --parsable` output (`ID` or `ID;CLUSTER`).
///
/// # Errors
/// Output without a numeric id.
pub fn parse_job_id(stdout: &str) -> Result<String> {
    let id = stdout.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::input("sbatch", format!("printed {:?}, not a job id", stdout.trim())));
    }
    Ok(id)
}
