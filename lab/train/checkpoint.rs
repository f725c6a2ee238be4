//! Checkpoints: model, optimizer and loop state, written into `checkpoint.tmp/` and renamed
//! into place, so a kill at any moment leaves either the previous checkpoint or the new one.
//! The data position needs no saving: the batch of step s is a function of (seed, s).
//!
//! Each checkpoint carries the length and FNV-1a hash of its files (`checksums.json`), and the
//! one before it is kept as `checkpoint.prev/`: a checkpoint cut short or overwritten with
//! garbage is detected before anything is loaded from it, and the run falls back to the
//! previous one, or restarts ([`candidates`]; the trainer decides).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;

use super::loop_state::LoopState;
use crate::model::Transformer;
use crate::run::write_atomic;

const MODEL: &str = "model.bpk";
const OPTIMIZER: &str = "optimizer.bpk";
/// Named apart from the state file of earlier versions (whose layout differs), so an old
/// checkpoint is not found and its run restarts rather than failing to resume.
const STATE: &str = "loop_state.json";
const CHECKSUMS: &str = "checksums.json";
/// The running sum of checkpoint averaging's snapshots, when averaging has begun.
const AVERAGE: &str = "average.bpk";
/// What each checkpoint file must be: (name, length in bytes, FNV-1a 64 of its bytes).
type Checksums = Vec<(String, u64, u64)>;

/// FNV-1a, 64 bit: detects truncation and overwritten bytes (not an adversary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn checksums(dir: &Path) -> Result<Checksums> {
    [MODEL, OPTIMIZER, STATE, AVERAGE]
        .iter()
        .filter(|name| **name != AVERAGE || dir.join(name).exists())
        .map(|name| {
            let bytes = std::fs::read(dir.join(name))?;
            Ok((name.to_string(), bytes.len() as u64, fnv1a(&bytes)))
        })
        .collect()
}

/// `Err` naming the first file of `dir` whose length or hash differs from what was saved.
fn verify(dir: &Path) -> Result<()> {
    let path = dir.join(CHECKSUMS);
    let saved: Checksums = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("{} does not parse", path.display()))?;
    let got = checksums(dir)?;
    anyhow::ensure!(
        got.len() == saved.len(),
        "{}: {} files, saved with {}",
        dir.display(),
        got.len(),
        saved.len()
    );
    for ((name, len, hash), (_, got_len, got_hash)) in saved.iter().zip(got) {
        anyhow::ensure!(
            (*len, *hash) == (got_len, got_hash),
            "{} is corrupt: {got_len} bytes (hash {got_hash:016x}), saved as {len} bytes \
             (hash {hash:016x})",
            dir.join(name).display()
        );
    }
    Ok(())
}

pub fn save(
    dir: &Path,
    model: &Transformer,
    optim: &ModuleOptimizer,
    state: &LoopState,
    average: Option<&Transformer>,
) -> Result<()> {
    let tmp = dir.with_extension("tmp");
    let old = previous(dir);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    model
        .clone()
        .save_file(tmp.join(MODEL))
        .map_err(|e| anyhow::anyhow!("saving model checkpoint: {e:?}"))?;
    optim
        .save(tmp.join(OPTIMIZER))
        .map_err(|e| anyhow::anyhow!("saving optimizer checkpoint: {e:?}"))?;
    write_atomic(&tmp.join(STATE), serde_json::to_string(state)?.as_bytes())?;
    if let Some(sum) = average {
        sum.clone()
            .save_file(tmp.join(AVERAGE))
            .map_err(|e| anyhow::anyhow!("saving the averaging sum: {e:?}"))?;
    }
    let sums = serde_json::to_string(&checksums(&tmp)?)?;
    write_atomic(&tmp.join(CHECKSUMS), sums.as_bytes())?;
    // The current checkpoint becomes the previous one; the one before that goes.
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(dir, &old)?;
    }
    std::fs::rename(&tmp, dir).context("moving checkpoint into place")?;
    Ok(())
}

/// The checkpoints under `dir` to try, newest first: `dir` itself, then the previous one
/// (`dir.prev`). Whether one is intact is checked by [`load`].
pub fn candidates(dir: &Path) -> Vec<PathBuf> {
    [dir.to_path_buf(), previous(dir)]
        .into_iter()
        .filter(|d| d.join(STATE).exists())
        .collect()
}

/// Where the previous checkpoint of `dir` is kept.
pub fn previous(dir: &Path) -> PathBuf {
    dir.with_extension("prev")
}

/// Remove every checkpoint under `dir` (a finished run needs none).
pub fn remove_all(dir: &Path) {
    for d in [dir.to_path_buf(), previous(dir), dir.with_extension("tmp")] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// What a checkpoint restores: model, optimizer, loop state, and the averaging sum if any.
pub type Restored = (Transformer, ModuleOptimizer, LoopState, Option<Transformer>);

/// Load the checkpoint in `dir` into `model` and `optim` (and the averaging sum, if one was
/// saved, into `template`), after checking its files against their saved checksums.
pub fn load(
    dir: &Path,
    model: Transformer,
    optim: ModuleOptimizer,
    template: Transformer,
) -> Result<Restored> {
    verify(dir)?;
    let state: LoopState = serde_json::from_str(&std::fs::read_to_string(dir.join(STATE))?)?;
    let model = model
        .try_load_file(dir.join(MODEL))
        .map_err(|e| anyhow::anyhow!("loading model checkpoint: {e:?}"))?;
    let optim = optim
        .load(dir.join(OPTIMIZER))
        .map_err(|e| anyhow::anyhow!("loading optimizer checkpoint: {e:?}"))?;
    let average = match dir.join(AVERAGE).exists() {
        true => Some(
            template
                .try_load_file(dir.join(AVERAGE))
                .map_err(|e| anyhow::anyhow!("loading the averaging sum: {e:?}"))?,
        ),
        false => None,
    };
    Ok((model, optim, state, average))
}
