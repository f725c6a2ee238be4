//! `reference.safetensors` of an export: a few validation windows of the run's own data and
//! the lab's logits on them, so any reader of the export (`scripts/hf-check.py`, the Rust
//! round trip) can tell whether it computes the same function.
//!
//! Two tensors, written and read by burn-store: `tokens` `[W, T]` (integers, the byte ids)
//! and `logits` `[W, T, 256]` (f32), one window of `seq_len` positions per validation stream
//! (up to [`WINDOWS`]).

use std::path::Path;

use anyhow::{Context, Result};
use burn::module::{Param, ParamId};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, ModuleStore, SafetensorsStore};

use crate::data::{Batches, source_for};
use crate::model::Transformer;
use crate::spec::RunConfig;

/// At most this many windows (one per stream, in stream order).
pub const WINDOWS: usize = 4;
pub const FILE: &str = "reference.safetensors";

#[derive(Module, Debug)]
pub struct Reference {
    /// `[W, T]`
    pub tokens: Param<Tensor<2, Int>>,
    /// `[W, T, vocab]`
    pub logits: Param<Tensor<3>>,
}

/// The first validation window of each of the run's first [`WINDOWS`] streams, `[W, T]`.
pub fn windows(config: &RunConfig, device: &Device) -> Result<Tensor<2, Int>> {
    let spec = &config.spec;
    let t = spec.model.seq_len;
    let corpus = source_for(&spec.data, 4 * (t + 1), spec.model.vocab_size())
        .load()
        .context("loading the run's data for the reference windows")?;
    let batches = Batches::new(corpus, t, 1, spec.seed, None)?;
    let rows: Vec<i64> = batches
        .validation(1)
        .into_iter()
        .take(WINDOWS)
        .flat_map(|vb| vb.batch.inputs)
        .collect();
    let w = rows.len() / t;
    Ok(Tensor::from_data(TensorData::new(rows, [w, t]), device))
}

impl Reference {
    /// `model`'s logits on `tokens: [W, T]`.
    pub fn compute(model: &Transformer, tokens: Tensor<2, Int>) -> Reference {
        let logits = model.forward(tokens.clone()).logits;
        Reference {
            tokens: Param::initialized(ParamId::new(), tokens),
            logits: Param::from_tensor(logits),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut store = SafetensorsStore::from_file(dir.join(FILE)).metadata("format", "pt");
        self.save_into(&mut store)
            .map_err(|e| anyhow::anyhow!("writing {FILE}: {e}"))
    }

    /// Read an export's reference; `seq_len` is the model's (each window's length), `vocab`
    /// its vocabulary's size.
    pub fn load(dir: &Path, seq_len: usize, vocab: usize, device: &Device) -> Result<Reference> {
        let path = dir.join(FILE);
        let mut store = SafetensorsStore::from_file(&path);
        let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", path.display());
        let w = match store.get_tensor("tokens").map_err(|e| bad(&e))? {
            Some(t) if t.shape.len() == 2 && t.shape[1] == seq_len => t.shape[0],
            _ => anyhow::bail!("{}: no `tokens` of shape [W, {seq_len}]", path.display()),
        };
        let mut reference = Reference {
            tokens: Param::initialized(ParamId::new(), Tensor::zeros([w, seq_len], device)),
            logits: Param::from_tensor(Tensor::zeros([w, seq_len, vocab], device)),
        };
        let result = reference.load_from(&mut store).map_err(|e| bad(&e))?;
        anyhow::ensure!(
            result.is_success() && result.missing.is_empty(),
            "{}: {result}",
            path.display()
        );
        Ok(reference)
    }
}
