//! Atomic file writes: write a sibling temp file, then rename over the target, so a reader never sees
//! a partial file and an interrupted run never leaves one that looks finished. A failed write removes
//! its temp file; [`remove_stale_temps`] clears the temp files of processes that were killed. Temp
//! names carry the host and the process (`.NAME.HOST.PID.N.tmp`), so on a shared disk a process only
//! ever judges — and removes — the temp files of dead processes of its own host.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

static TEMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes `bytes` to `path` atomically, creating parent folders.
///
/// # Errors
/// The folder cannot be created, or the temp file cannot be written or renamed (it is removed then).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Unique per process (pid) and per write in it (counter), so concurrent writers never share one.
    let n = TEMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.{}.{}.{n}.tmp", host_token(), std::process::id()));
    let written = (|| {
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| Error::io(path, e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Flushes a folder's entries (renames into it) to disk.
///
/// # Errors
/// The folder cannot be opened.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let f = fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    // Some file systems refuse fsync on a folder; the rename is still atomic there.
    let _ = f.sync_all();
    Ok(())
}

/// Creates `dir` if needed and proves it writable by writing and removing a probe file, so a command
/// fails before its compute rather than after it.
///
/// # Errors
/// The folder cannot be created or written; the message names it.
pub fn ensure_writable_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let n = TEMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = dir.join(format!(".write-probe.{}.{}.{n}.tmp", host_token(), std::process::id()));
    let r = fs::File::create(&probe).and_then(|mut f| f.write_all(b"probe"));
    let _ = fs::remove_file(&probe);
    r.map_err(|e| Error::io(dir, e))
}

/// Checks that the folder an output file goes into exists and is writable; unlike an output folder,
/// a missing parent of an output *file* is not created (a typo would otherwise create folders anywhere).
///
/// # Errors
/// The parent folder is missing or not writable.
pub fn ensure_writable_parent(file: &Path) -> Result<()> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Error::config("output path", file.display(), format!("its folder {} does not exist; create it first", dir.display())));
    }
    ensure_writable_dir(dir)
}

/// This host's name as one token of a file name (letters, digits and `-`).
pub fn host_token() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
        let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let name: String = if ok { String::from_utf8_lossy(&buf[..end]).into_owned() } else { String::new() };
        // At most 32 characters, so a temp name stays far below the 255-byte limit of a file name.
        let token: String = name.chars().take(32).map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
        if token.is_empty() {
            "host".into()
        } else {
            token
        }
    })
}

/// Whether a process with this id is alive (Linux: `/proc/<pid>` exists).
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes the temp files (`.NAME.HOST.PID.N.tmp`) that killed processes of this host left in `dir`
/// and its sub-folders (to `depth` levels). Temp files of live processes, and of other hosts (whose
/// processes cannot be seen from here), are kept. Returns how many were removed.
pub fn remove_stale_temps(dir: &Path, depth: usize) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if depth > 0 {
                removed += remove_stale_temps(&path, depth - 1);
            }
            continue;
        }
        let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else { continue };
        let parts: Vec<&str> = stem.rsplitn(4, '.').collect();
        let pid: Option<u32> = match parts.as_slice() {
            [counter, pid, host, ..] if *host == host_token() && counter.parse::<u64>().is_ok() => pid.parse().ok(),
            // The older `.NAME.PID.tmp` (no host, no counter), written before temp names carried them.
            [pid, before, ..] if before.parse::<u64>().is_err() => pid.parse().ok(),
            _ => None,
        };
        let Some(pid) = pid else { continue };
        if pid != std::process::id() && !process_alive(pid) && fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}
