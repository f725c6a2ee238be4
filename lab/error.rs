//! Errors the lab reports to its user, each with the exit code the CLI returns for it.

use std::path::{Path, PathBuf};

/// Exit code for bad input: a spec, a flag or a data path the lab refuses. Nothing is written.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code for a run that diverged (non-finite loss or gradient). Its files are complete.
pub const EXIT_DIVERGED: i32 = 3;
/// Exit code for a sweep that could not take the experiment's lock.
pub const EXIT_LOCKED: i32 = 4;
/// Exit code for a run stopped by SIGTERM or SIGUSR1 (a cluster's preemption or time-limit
/// warning) after writing a checkpoint: `--resume` continues it to the same losses.
pub const EXIT_INTERRUPTED: i32 = 5;

/// Bad input, always naming the file and, where there is one, the field.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("{file}: field `{field}`: {message}")]
    Field {
        file: PathBuf,
        field: String,
        message: String,
    },
    #[error("{file}: cannot read: {message}")]
    Io { file: PathBuf, message: String },
}

impl SpecError {
    pub fn field(file: &std::path::Path, field: &str, message: impl Into<String>) -> Self {
        SpecError::Field {
            file: file.to_path_buf(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// A bad value at a path inside a spec (`model.d_model`, `ffn.router.capacity_factor`), before
/// it is tied to a file. Each spec section validates itself and names fields relative to its
/// own table; the caller nests the path with [`under`](Self::under).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{path}`: {message}")]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error seen from one table further out: `top_k` under `ffn` is `ffn.top_k`.
    pub fn under(self, table: &str) -> Self {
        FieldError {
            path: format!("{table}.{}", self.path),
            message: self.message,
        }
    }

    /// The error as the user sees it, naming the file.
    pub fn in_file(self, file: &Path) -> SpecError {
        SpecError::Field {
            file: file.to_path_buf(),
            field: self.path,
            message: self.message,
        }
    }
}

/// `Ok` when `value` is positive, else an error naming `path`.
pub fn positive(path: &str, value: usize) -> Result<(), FieldError> {
    if value == 0 {
        Err(FieldError::new(path, "must be a positive integer, got 0"))
    } else {
        Ok(())
    }
}

/// `Ok` when `value` is at most `max` (an entry of the `limits` module), else an error naming `path`,
/// the range and its reason.
pub fn at_most(path: &str, value: usize, (max, why): (usize, &str)) -> Result<(), FieldError> {
    check(value <= max, path, || {
        format!("must be at most {max} ({why}), got {value}")
    })
}

/// `Err(FieldError)` unless `ok`; the message is built only on failure.
pub fn check(ok: bool, path: &str, message: impl FnOnce() -> String) -> Result<(), FieldError> {
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(path, message()))
    }
}
