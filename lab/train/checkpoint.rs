//! Checkpoints: model, optimizer and loop state, written into `checkpoint.tmp/` and renamed
//! into place, so a kill at any moment leaves either the previous checkpoint or the new one.
//! The data position needs no saving: the batch of step s is a function of (seed, s).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::spikes::SpikeDetector;
use crate::model::Transformer;
use crate::run::{Summary, write_atomic};

/// The training loop's state besides weights and optimizer moments: the run's summary so far
/// (steps done, wall time, losses, spikes, memory peaks: the loop keeps its state there, not
/// in a copy) and the spike detectors' windows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopState {
    pub summary: Summary,
    pub loss_detector: SpikeDetector,
    pub grad_detector: SpikeDetector,
}

const MODEL: &str = "model.bpk";
const OPTIMIZER: &str = "optimizer.bpk";
/// Named apart from the state file of earlier versions (whose layout differs), so an old
/// checkpoint is not found and its run restarts rather than failing to resume.
const STATE: &str = "loop_state.json";

pub fn save(
    dir: &Path,
    model: &Transformer,
    optim: &ModuleOptimizer,
    state: &LoopState,
) -> Result<()> {
    let tmp = dir.with_extension("tmp");
    let old = dir.with_extension("old");
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
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(dir, &old)?;
    }
    std::fs::rename(&tmp, dir).context("moving checkpoint into place")?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// The newest complete checkpoint under `dir` (or its `.old` twin left by a kill mid-swap).
pub fn find(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.with_extension("old")]
        .into_iter()
        .find(|d| d.join(STATE).exists() && d.join(MODEL).exists() && d.join(OPTIMIZER).exists())
}

pub fn load(
    dir: &Path,
    model: Transformer,
    optim: ModuleOptimizer,
) -> Result<(Transformer, ModuleOptimizer, LoopState)> {
    let state: LoopState = serde_json::from_str(&std::fs::read_to_string(dir.join(STATE))?)?;
    let model = model
        .try_load_file(dir.join(MODEL))
        .map_err(|e| anyhow::anyhow!("loading model checkpoint: {e:?}"))?;
    let optim = optim
        .load(dir.join(OPTIMIZER))
        .map_err(|e| anyhow::anyhow!("loading optimizer checkpoint: {e:?}"))?;
    Ok((model, optim, state))
}
