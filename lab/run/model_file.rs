//! `model/` in a run directory: the weights the run ended with, in burn's own record format,
//! beside the `config.toml` that says how to build the model they fill. Written when a run
//! completes (atomically: into `model.tmp/`, then renamed); read by `lab sample` and by
//! anything that uses a trained model (a teacher, an export).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;

use super::dir::{CONFIG, RunDir};
use crate::model::Transformer;
use crate::spec::{RunConfig, resolve};

pub const MODEL_DIR: &str = "model";
const WEIGHTS: &str = "model.bpk";
/// Checkpoint averaging's model, beside the last one.
const AVERAGED: &str = "averaged.bpk";

impl RunDir {
    /// Where the final weights are.
    pub fn model_file(&self) -> PathBuf {
        self.file(MODEL_DIR).join(WEIGHTS)
    }

    /// Save `model` as this run's final model.
    pub fn save_model(&self, model: &Transformer) -> Result<()> {
        let tmp = self.file("model.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        model
            .clone()
            .save_file(tmp.join(WEIGHTS))
            .map_err(|e| anyhow::anyhow!("saving the final model: {e:?}"))?;
        let dir = self.file(MODEL_DIR);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).context("moving the final model into place")
    }

    /// Save the checkpoint-averaged model beside the final one (after [`save_model`]).
    ///
    /// [`save_model`]: Self::save_model
    pub fn save_averaged_model(&self, model: &Transformer) -> Result<()> {
        let path = self.file(MODEL_DIR).join(AVERAGED);
        let tmp = self.file(MODEL_DIR).join("averaged.tmp.bpk");
        model
            .clone()
            .save_file(&tmp)
            .map_err(|e| anyhow::anyhow!("saving the averaged model: {e:?}"))?;
        std::fs::rename(&tmp, &path).context("moving the averaged model into place")
    }

    /// The run's config and its final model on `device`. Err: no final model (the run did
    /// not complete, or predates final models), or a config or weights that do not load.
    pub fn load_model(&self, device: &Device) -> Result<(RunConfig, Transformer)> {
        self.load_weights(&self.model_file(), device)
    }

    /// The run's config and its checkpoint-averaged model. Err: the run has none (it did not
    /// average, or has not completed).
    pub fn load_averaged_model(&self, device: &Device) -> Result<(RunConfig, Transformer)> {
        let path = self.file(MODEL_DIR).join(AVERAGED);
        anyhow::ensure!(
            path.exists(),
            "{}: no averaged model (the run did not set train.average_checkpoints, or has not \
             completed)",
            path.display()
        );
        self.load_weights(&path, device)
    }

    fn load_weights(&self, weights: &Path, device: &Device) -> Result<(RunConfig, Transformer)> {
        anyhow::ensure!(
            weights.exists(),
            "{}: no final model (the run has not completed, or was trained before runs kept \
             their final weights)",
            weights.display()
        );
        let config = resolve(&self.file(CONFIG))?;
        let model = config
            .init_model(device)
            .try_load_file(weights)
            .map_err(|e| anyhow::anyhow!("{}: {e:?}", weights.display()))?;
        // A run that ended in a long-context stage with its own RoPE base was trained on it.
        let theta = config.final_rope_theta();
        let model = match theta != config.spec.model.rope_theta {
            true => model.with_rope_theta(theta),
            false => model,
        };
        Ok((config, model))
    }
}
