//! One error type for the library. Every variant names the thing, the value and, where there is one,
//! the fix, so the CLI can print a single line (`{:#}`) and exit non-zero.
//!
//! Three kinds ([`Error::kind`]): **user** errors (bad input: a key, a value, a file's contents —
//! with the fix), **I/O** failures (a path the system refused), and **internal** failures (what
//! should not happen on any input: the underlying error is kept as the `#[source]`, not
//! stringified). The Python front maps them to `ValueError`, `OSError` and `RuntimeError`.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong on user input. The library never panics on user input.
/// New kinds may be added: match with a `_` arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid {key} = {value}: {fix}")]
    Config { key: String, value: String, fix: String },

    #[error("shape mismatch for {key}: expected {expected:?}, found {found:?}")]
    ShapeMismatch { key: String, expected: Vec<usize>, found: Vec<usize> },

    #[error("missing tensor {key} in {path} (expected shape {expected:?}); {hint}")]
    MissingKey { key: String, path: String, expected: Vec<usize>, hint: String },

    #[error("unexpected tensor {key} in {path}: the config has no such parameter (check --width/--expansion/--shortcut or the architecture)")]
    UnexpectedKey { key: String, path: String },

    #[error("tensor {key} has dtype {found}; expected a float dtype (F32, F64, F16 or BF16)")]
    Dtype { key: String, found: String },

    #[error("config mismatch for {key}: the weights file stores {stored}, the flags say {given}; drop the flag or use matching weights")]
    ConfigMismatch { key: String, stored: String, given: String },

    #[error("{what} {path}: {reason}")]
    File { what: String, path: PathBuf, reason: String },

    #[error("input {what}: {reason}")]
    Input { what: String, reason: String },

    #[error("unknown hook '{name}'{suggestion}; see `infoloss hooks`")]
    UnknownHook { name: String, suggestion: String },

    /// The cause is part of the message (not a `source`), so an error chain prints it once.
    #[error("I/O error on {path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },

    /// A failure no input should cause (serialising infoloss's own data, a broken invariant).
    #[error("internal error while {what} (please report it)")]
    Internal {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Which side an [`Error`] is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: fix the key, the value or the file.
    User,
    /// The operating system refused a path.
    Io,
    /// A bug: no input should cause it.
    Internal,
}

impl Error {
    /// Shorthand for a configuration error naming the key, the bad value and the fix.
    pub fn config(key: impl Into<String>, value: impl ToString, fix: impl Into<String>) -> Self {
        Error::Config { key: key.into(), value: value.to_string(), fix: fix.into() }
    }

    /// Shorthand for a corrupt or unreadable file.
    pub fn file(what: impl Into<String>, path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Error::File { what: what.into(), path: path.into(), reason: reason.to_string() }
    }

    /// Shorthand for a bad in-memory input (shapes of a batch, a cache lookup, …).
    pub fn input(what: impl Into<String>, reason: impl ToString) -> Self {
        Error::Input { what: what.into(), reason: reason.to_string() }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), cause: source }
    }

    /// An internal failure while doing `what`, keeping `source`.
    pub fn internal(what: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Internal { what: what.into(), source: Box::new(source) }
    }

    /// User error, I/O failure or internal failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Io,
            Error::Internal { .. } => ErrorKind::Internal,
            _ => ErrorKind::User,
        }
    }
}
