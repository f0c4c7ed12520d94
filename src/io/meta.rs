//! Provenance of every output: a `.meta.json` sidecar next to each CSV with the settings that produced
//! it (tolerances, seeds, config), the thread count, crate version and git commit. The CSV itself stays
//! plain for pandas.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;

/// Crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git commit of the build (`-dirty` when the tree had uncommitted changes; `unknown` outside git).
pub const GIT_COMMIT: &str = env!("INFOLOSS_GIT_COMMIT");

/// Settings of one output, serialised into its sidecar.
#[derive(Clone, Debug)]
pub struct RunMeta {
    /// The command or analysis that wrote the file.
    pub producer: String,
    pub settings: Value,
}

impl RunMeta {
    pub fn new(producer: impl Into<String>, settings: impl Serialize) -> Self {
        RunMeta { producer: producer.into(), settings: serde_json::to_value(settings).unwrap_or(Value::Null) }
    }

    /// The sidecar JSON: settings plus threads, version and commit.
    pub fn to_json(&self) -> Value {
        json!({
            "producer": self.producer,
            "settings": self.settings,
            "threads": rayon::current_num_threads(),
            "infoloss_version": VERSION,
            "git_commit": GIT_COMMIT,
        })
    }

    /// Writes `<file>.meta.json` beside `file` (e.g. `summary.csv` → `summary.csv.meta.json`).
    ///
    /// # Errors
    /// The sidecar cannot be written.
    pub fn write_sidecar(&self, file: &Path) -> Result<PathBuf> {
        let path = sidecar_path(file);
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(|e| Error::internal("serialising metadata", e))?;
        write_atomic(&path, text.as_bytes())?;
        Ok(path)
    }
}

/// `summary.csv` → `summary.csv.meta.json`.
pub fn sidecar_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".meta.json");
    PathBuf::from(s)
}
