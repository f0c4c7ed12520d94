//! `infoloss merge DIR… --out OUT`: combines the outputs of shards (or of interrupted attempts) of
//! one experiment. The folders must hold the same effective spec; every finished run found in any of
//! them is copied (result last, atomically) and the report is rebuilt from the union.
//!
//! Shard folders record their `K/N` (`shard.json`). Before anything is copied, a merge checks that every
//! shard 1..N is given and complete (all runs of its part of the plan finished) and refuses, naming
//! each missing or incomplete shard, unless told to accept partial results.

use std::path::{Path, PathBuf};

use super::run::finished;
use super::runner::{plan, read_shard_record, write_report_locked};
use super::spec::{Kind, Spec};
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;

/// What a merge did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MergeOutcome {
    /// Runs copied into `out`.
    pub copied: usize,
    /// Runs finished in the union.
    pub finished: usize,
    pub expected: usize,
    pub reports: Vec<PathBuf>,
}

/// The spec an output folder was written with (its `spec.toml`; a suite's parts from their folders).
///
/// # Errors
/// A folder without `spec.toml`, or a spec that no longer parses.
pub fn load_output_spec(dir: &Path) -> Result<Spec> {
    let path = dir.join("spec.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|_| Error::config("merge folder", dir.display(), "it has no spec.toml; give folders written by `infoloss run`"))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| Error::file("spec", &path, e))?;
    let resolved = dir.join("spec.resolved.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&resolved).map_err(|e| Error::io(&resolved, e))?).map_err(|e| Error::file("resolved spec", &resolved, e))?;
    if table.get("kind").and_then(|k| k.as_str()) != Some("suite") {
        // spec.toml already has the overrides applied; keep their record for the report.
        let mut spec = Spec::parse(&text, dir, &[])?;
        spec.overrides = json["spec"]["overrides"].as_array().into_iter().flatten().filter_map(|o| o.as_str().map(str::to_string)).collect();
        return Ok(spec);
    }
    let names: Vec<String> = json["spec"]["parts"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str().map(str::to_string)).collect();
    let parts = names.iter().map(|n| load_output_spec(&dir.join(n))).collect::<Result<Vec<_>>>()?;
    let get = |k: &str| table.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    Ok(Spec {
        name: get("name"),
        description: get("description"),
        kind: Kind::Suite,
        preliminary: table.get("preliminary").and_then(|v| v.as_bool()).unwrap_or(false),
        seeds: Vec::new(),
        alpha: super::spec::DEFAULT_ALPHA,
        variants: Vec::new(),
        claims: Vec::new(),
        parts,
        overrides: Vec::new(),
        source: text,
    })
}

fn same_spec(a: &Spec, b: &Spec) -> bool {
    a.source == b.source && a.parts.len() == b.parts.len() && a.parts.iter().zip(&b.parts).all(|(x, y)| same_spec(x, y))
}

/// Copies the spec files of `from` into `to` (recursively for suite parts).
fn copy_spec_files(spec: &Spec, from: &Path, to: &Path) -> Result<()> {
    for f in ["spec.toml", "spec.resolved.json"] {
        let src = from.join(f);
        let bytes = std::fs::read(&src).map_err(|e| Error::io(&src, e))?;
        write_atomic(&to.join(f), &bytes)?;
    }
    for p in &spec.parts {
        copy_spec_files(p, &from.join(&p.name), &to.join(&p.name))?;
    }
    Ok(())
}

/// Every problem with the shards among `dirs`: missing shard numbers, shards of another count,
/// shards with unfinished runs. Empty when there are no shard folders or all are complete.
///
/// # Errors
/// An unreadable shard record.
pub fn shard_problems(spec: &Spec, dirs: &[PathBuf]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut seen: Vec<(usize, usize, &PathBuf)> = Vec::new();
    for d in dirs {
        if let Some((k, n)) = read_shard_record(d)? {
            seen.push((k, n, d));
        }
    }
    let Some(&(_, n, _)) = seen.first() else { return Ok(problems) };
    for &(k, other, d) in &seen {
        if other != n {
            problems.push(format!("{} is shard {k}/{other}, the others are of {n}", d.display()));
        }
    }
    let missing: Vec<String> = (1..=n).filter(|k| !seen.iter().any(|s| s.0 == *k && s.1 == n)).map(|k| format!("{k}/{n}")).collect();
    if !missing.is_empty() {
        problems.push(format!("shard {} missing", missing.join(", ")));
    }
    for &(k, sn, d) in &seen {
        let mine: Vec<_> = plan(spec, d).into_iter().enumerate().filter(|(i, _)| i % sn == k - 1).map(|(_, r)| r).collect();
        let done = mine.iter().filter(|(dir, p)| finished(p, dir).is_some()).count();
        if done < mine.len() {
            problems.push(format!("shard {k}/{sn} ({}) is incomplete: {done} of {} runs finished", d.display(), mine.len()));
        }
    }
    Ok(problems)
}

/// Merges `dirs` into `out` (which may be one of them), refusing missing or incomplete shards.
///
/// # Errors
/// Folders of different experiments, missing or incomplete shards (see [`merge_with`]), I/O.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<MergeOutcome> {
    merge_with(dirs, out, false)
}

/// [`merge`]; with `partial`, missing or incomplete shards are accepted and the report shows how many
/// runs finished.
///
/// # Errors
/// As [`merge`].
pub fn merge_with(dirs: &[PathBuf], out: &Path, partial: bool) -> Result<MergeOutcome> {
    let first = dirs.first().ok_or_else(|| Error::config("merge", "no folders", "give the shard output folders to merge"))?;
    let spec = load_output_spec(first)?;
    for d in &dirs[1..] {
        if !same_spec(&spec, &load_output_spec(d)?) {
            return Err(Error::config(
                "merge folder",
                d.display(),
                format!("it was run with another spec (or other --set overrides) than {}; merge only shards of one experiment", first.display()),
            ));
        }
    }
    let problems = shard_problems(&spec, dirs)?;
    if !problems.is_empty() && !partial {
        return Err(Error::config(
            "merge",
            problems.join("; "),
            "rerun the missing or unfinished shards (finished runs are kept; a rerun resumes), or pass --partial to merge what is there",
        ));
    }
    if !out.join("spec.toml").exists() {
        copy_spec_files(&spec, first, out)?;
    } else if !same_spec(&spec, &load_output_spec(out)?) {
        return Err(Error::config("--out", out.display(), "it holds another experiment; choose an empty folder"));
    }
    let target = plan(&spec, out);
    let sources: Vec<_> = dirs.iter().map(|d| plan(&spec, d)).collect();
    let mut outcome = MergeOutcome { expected: target.len(), ..Default::default() };
    for (i, (dir, p)) in target.iter().enumerate() {
        if finished(p, dir).is_some() {
            outcome.finished += 1;
            continue;
        }
        let Some((src_dir, src)) = sources.iter().map(|s| &s[i]).find(|(d, sp)| finished(sp, d).is_some()) else { continue };
        copy_run(&src.dir(src_dir), &p.dir(dir))?;
        outcome.copied += 1;
        outcome.finished += 1;
    }
    outcome.reports = write_report_locked(&spec, out)?;
    Ok(outcome)
}

/// Copies a finished run's folder, `result.json` last.
fn copy_run(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    let entries = std::fs::read_dir(from).map_err(|e| Error::io(from, e))?;
    let mut names: Vec<_> = entries.filter_map(|e| e.ok()).filter(|e| e.path().is_file()).map(|e| e.file_name()).collect();
    names.sort();
    // Lock and temp files belong to the source folder's processes.
    names.retain(|n| n != "result.json" && !n.to_string_lossy().starts_with('.'));
    names.push("result.json".into());
    for n in names {
        let bytes = std::fs::read(from.join(&n)).map_err(|e| Error::io(from.join(&n), e))?;
        write_atomic(&to.join(&n), &bytes)?;
    }
    Ok(())
}
