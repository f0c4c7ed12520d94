//! Training checkpoints as one atomic unit.
//!
//! A checkpoint is a folder `ckpt-<epoch>/` holding every file needed to resume (weights, optimizer
//! state, the trainer's state). It is written completely — each file fsynced — and only then does the
//! small pointer file [`POINTER`] move to name it, by one atomic rename. The pointer records the SHA-256
//! of every file it names; [`load`] reads only what the pointer names and verifies the hashes, so a kill
//! at any moment leaves either the old checkpoint or the new one, never a mix of the two. Folders of
//! older checkpoints are removed after the pointer has moved.
//!
//! (Renaming a folder over an existing one is not atomic on POSIX — it fails when the target is not
//! empty — which is why the unit of atomicity is the pointer file, not the folder.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::io::atomic::{sync_dir, write_atomic};

/// The pointer file naming the current checkpoint, in the training output folder.
pub const POINTER: &str = "checkpoint.json";

/// Prefix of checkpoint folders (`ckpt-0003` holds the state after epoch 3).
const DIR_PREFIX: &str = "ckpt-";

/// What the pointer file says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointer {
    /// Epochs completed when the checkpoint was written.
    pub epoch: usize,
    /// The checkpoint's folder, relative to the output folder.
    pub dir: String,
    /// SHA-256 (hex) of each file of the checkpoint, by file name.
    pub files: BTreeMap<String, String>,
}

/// A verified checkpoint: its pointer and the bytes of each file.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub pointer: Pointer,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Checkpoint {
    /// The bytes of one file of the checkpoint.
    ///
    /// # Errors
    /// A file the pointer does not name.
    pub fn file(&self, name: &str) -> Result<&[u8]> {
        self.files.get(name).map(Vec::as_slice).ok_or_else(|| {
            Error::file("checkpoint", &self.pointer.dir, format!("has no file {name}; it was written by another version — start over with another --out"))
        })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn dir_name(epoch: usize) -> String {
    format!("{DIR_PREFIX}{epoch:04}")
}

/// Whether `out` holds a checkpoint pointer (a resumable run).
pub fn exists(out: &Path) -> bool {
    out.join(POINTER).is_file()
}

/// Writes the checkpoint of `epoch` with `files` into `out`, moves the pointer to it and removes the
/// older checkpoint folders.
///
/// # Errors
/// Any I/O failure; the previous checkpoint then stays the current one.
pub fn save(out: &Path, epoch: usize, files: &[(&str, &[u8])]) -> Result<()> {
    let name = dir_name(epoch);
    let dir = out.join(&name);
    // Leftovers of a killed attempt at this same epoch are not named by the pointer: start clean.
    // (The folder the pointer names is never touched: a save never repeats the current epoch.)
    if std::fs::read(out.join(POINTER)).ok().and_then(|b| serde_json::from_slice::<Pointer>(&b).ok()).is_some_and(|p| p.dir == name) {
        return Err(Error::file("checkpoint", &dir, "is the current checkpoint; a new save must not replace it — train with --resume or into an empty folder"));
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut hashes = BTreeMap::new();
    for (file, bytes) in files {
        write_atomic(&dir.join(file), bytes)?;
        hashes.insert(file.to_string(), sha256_hex(bytes));
        crate::failpoint!("checkpoint-between-files");
    }
    sync_dir(&dir)?;
    crate::failpoint!("checkpoint-before-pointer");
    let pointer = Pointer { epoch, dir: name.clone(), files: hashes };
    let text = serde_json::to_string_pretty(&pointer).map_err(|e| Error::internal("serialising the checkpoint pointer", e))?;
    write_atomic(&out.join(POINTER), text.as_bytes())?;
    sync_dir(out)?;
    crate::failpoint!("checkpoint-before-cleanup");
    for old in checkpoint_dirs(out)? {
        if old.file_name().is_some_and(|n| n != name.as_str()) {
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
    }
    Ok(())
}

/// Every `ckpt-*` folder in `out`.
fn checkpoint_dirs(out: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for entry in std::fs::read_dir(out).map_err(|e| Error::io(out, e))? {
        let entry = entry.map_err(|e| Error::io(out, e))?;
        if entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) && entry.path().is_dir() {
            v.push(entry.path());
        }
    }
    v.sort();
    Ok(v)
}

/// Reads the checkpoint the pointer in `out` names and verifies every file's hash.
///
/// # Errors
/// No pointer, a corrupt pointer, a missing file or a hash mismatch — each names the file.
pub fn load(out: &Path) -> Result<Checkpoint> {
    let ppath = out.join(POINTER);
    let bytes = std::fs::read(&ppath).map_err(|e| Error::io(&ppath, e))?;
    let pointer: Pointer = serde_json::from_slice(&bytes)
        .map_err(|e| Error::file("checkpoint pointer", &ppath, format!("is corrupt ({e}); delete {} and train again", out.display())))?;
    if pointer.dir != dir_name(pointer.epoch) {
        return Err(Error::file(
            "checkpoint pointer",
            &ppath,
            format!("names folder '{}' for epoch {}; expected '{}'", pointer.dir, pointer.epoch, dir_name(pointer.epoch)),
        ));
    }
    let dir = out.join(&pointer.dir);
    let mut files = BTreeMap::new();
    for (name, hash) in &pointer.files {
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(Error::file("checkpoint pointer", &ppath, format!("names file '{name}' outside its folder")));
        }
        let path = dir.join(name);
        let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if &sha256_hex(&data) != hash {
            return Err(Error::file(
                "checkpoint file",
                &path,
                "does not match the hash its pointer records (modified or corrupt); delete the output folder and train again",
            ));
        }
        files.insert(name.clone(), data);
    }
    Ok(Checkpoint { pointer, files })
}

/// Removes the pointer and every checkpoint folder (once a run is finished and its result written).
///
/// # Errors
/// A folder or file that cannot be removed.
pub fn remove(out: &Path) -> Result<()> {
    let p = out.join(POINTER);
    if p.exists() {
        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
    }
    for d in checkpoint_dirs(out)? {
        std::fs::remove_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    Ok(())
}
