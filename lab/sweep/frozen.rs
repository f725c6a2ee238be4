//! A decision a sweep takes between its phases (the optimum mixture to check at a larger size,
//! the forecast to score against held-out cells), frozen in a file of the results directory:
//! written once, after the first phase's cells and before any second-phase cell starts, with
//! the commit, the time and the cells it was made from; never rewritten. A rerun reads it back,
//! so the second phase tests the decision as it was first taken, whatever its own results.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::SpecError;
use crate::run::write_atomic;

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Frozen<T> {
    /// Seconds since the Unix epoch when the file was written.
    pub written_unix_s: f64,
    pub commit: String,
    /// The cells whose results the decision was made from.
    pub inputs: Vec<String>,
    pub body: T,
}

/// The decision in `path`, or, when there is none, `make()`'s, written there first. A file
/// made from other cells than `inputs` (the experiment changed since) is refused: exit 2,
/// naming the file, since a silent remake would let the second phase's results choose it.
pub fn read_or_make<T: Serialize + DeserializeOwned>(
    path: &Path,
    inputs: &[String],
    make: impl FnOnce() -> Result<T>,
) -> Result<Frozen<T>> {
    if path.exists() {
        return read(path, inputs);
    }
    let frozen = Frozen {
        written_unix_s: crate::run::summary::now_unix_s(),
        commit: crate::run::summary::git_commit(),
        inputs: inputs.to_vec(),
        body: make()?,
    };
    write_atomic(path, serde_json::to_string_pretty(&frozen)?.as_bytes())?;
    Ok(frozen)
}

/// Refuse (exit 2) a decision in `path` made from other cells than `inputs`, before a sweep
/// trains anything; no file is fine.
pub fn check_inputs(path: &Path, inputs: &[String]) -> Result<()> {
    match path.exists() {
        true => read::<serde_json::Value>(path, inputs).map(|_| ()),
        false => Ok(()),
    }
}

fn read<T: DeserializeOwned>(path: &Path, inputs: &[String]) -> Result<Frozen<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecError::Io {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let frozen: Frozen<T> = serde_json::from_str(&text).map_err(|e| SpecError::Parse {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if frozen.inputs != inputs {
        let message = format!(
            "made from {} cells, not the {} the experiment now plans before it; it is never \
             rewritten, so move it away (with the cells it was checked on) to decide again",
            frozen.inputs.len(),
            inputs.len()
        );
        return Err(SpecError::field(path, "inputs", message).into());
    }
    Ok(frozen)
}
