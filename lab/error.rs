//! Errors the lab reports to its user, each with the exit code the CLI returns for it.

use std::path::PathBuf;

/// Exit code for bad input: a spec, a flag or a data path the lab refuses. Nothing is written.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code for a run that diverged (non-finite loss or gradient). Its files are complete.
pub const EXIT_DIVERGED: i32 = 3;
/// Exit code for a sweep that could not take the experiment's lock.
pub const EXIT_LOCKED: i32 = 4;

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
