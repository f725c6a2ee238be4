//! `lab export`: a run's final model as a directory Hugging Face `transformers` loads with
//! `AutoModelForCausalLM.from_pretrained(DIR)` and `AutoTokenizer.from_pretrained(DIR)`.
//!
//! The parts: [`architecture`] (which HF class computes the same function, or why none does),
//! [`layout`] (the model under HF's names, as burn modules), [`hf_config`] (`config.json`,
//! both ways), [`tokenizer`] (the byte vocabulary as a fast tokenizer), [`reference`]
//! (validation windows with the lab's logits). Weights go through burn-store: a
//! `SafetensorsStore` with the PyTorch adapter (transposed `Linear`s, norms' `weight`).
//!
//! The directory is written under a temporary name, reloaded through burn-store and checked
//! against the reference logits, and only then renamed into place: a failed export leaves
//! nothing at `out`.

pub mod architecture;
pub mod hf_config;
pub mod layout;
pub mod reference;
pub mod tokenizer;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};

use crate::error::SpecError;
use crate::model::Transformer;
use crate::model::ffn::FfnSpec;
use crate::run::RunDir;
use crate::run::dir::CONFIG;
use architecture::Architecture;
use hf_config::{HfConfig, Provenance};
use layout::HfCausalLm;
use reference::Reference;

pub const WEIGHTS: &str = "model.safetensors";
pub const CONFIG_JSON: &str = "config.json";

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub dir: PathBuf,
    pub architecture: Architecture,
    /// Tensors in `model.safetensors`.
    pub tensors: usize,
    pub weight_bytes: u64,
    pub reference_windows: usize,
    /// Largest |logit difference| between the lab model and the reloaded export on the
    /// reference windows (0 when burn-store round-trips the weights bit for bit).
    pub reload_max_abs_diff: f32,
}

/// Export `run_dir`'s final model (its checkpoint-averaged one with `averaged`) to `out`,
/// which must not exist yet. Errors that are the user's (no final model, a variant with no
/// HF counterpart, `out` taken) are [`SpecError`]s naming the file and field.
pub fn export(run_dir: &Path, out: &Path, averaged: bool, device: &Device) -> Result<Exported> {
    let run = RunDir::new(run_dir);
    let field = |field: &str, message: String| SpecError::Field {
        file: run_dir.to_path_buf(),
        field: field.into(),
        message,
    };
    if out.exists() {
        let taken = format!(
            "{} exists; remove it or choose another --out",
            out.display()
        );
        return Err(field("--out", taken).into());
    }
    let (config, model) = if averaged {
        run.load_averaged_model(device)
    } else {
        run.load_model(device)
    }
    .map_err(|e| field("model", format!("{e:#}")))?;
    let arch = Architecture::of(&config.spec.ffn).map_err(|e| e.in_file(&run.file(CONFIG)))?;
    let hidden = match &config.spec.ffn {
        FfnSpec::Dense(dense) => dense.hidden(),
        FfnSpec::Moe(moe) => moe.expert_hidden(),
    };
    let provenance = Provenance {
        run_dir: run_dir.display().to_string(),
        weights: if averaged { "averaged" } else { "final" }.into(),
    };
    // After a long-context stage: its length and RoPE base are the model's.
    let model_spec = crate::model::ModelSpec {
        seq_len: config.max_seq_len(),
        rope_theta: config.final_rope_theta(),
        ..config.spec.model.clone()
    };
    let hf = HfConfig::new(arch, &model_spec, &config.spec.ffn, hidden, provenance);
    let tmp = out.with_file_name(format!(
        ".{}.partial",
        out.file_name()
            .map_or("export".into(), |n| n.to_string_lossy())
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let written = write_dir(&tmp, arch, &hf, &model, &config, device).and_then(|mut e| {
        std::fs::rename(&tmp, out)
            .with_context(|| format!("moving {} to {}", tmp.display(), out.display()))?;
        e.dir = out.to_path_buf();
        Ok(e)
    });
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written
}

/// Every file of the export into `dir`, then the round-trip check.
fn write_dir(
    dir: &Path,
    architecture: Architecture,
    hf: &HfConfig,
    model: &Transformer,
    config: &crate::spec::RunConfig,
    device: &Device,
) -> Result<Exported> {
    // The model's context, after any long-context stage: what config.json says too.
    let context = config.max_seq_len();
    let json = |name: &str, value: &serde_json::Value| -> Result<()> {
        std::fs::write(dir.join(name), serde_json::to_string_pretty(value)? + "\n")
            .with_context(|| format!("writing {name}"))
    };
    json(CONFIG_JSON, &serde_json::to_value(hf)?)?;
    let vocab = crate::data::tokenizer::Vocabulary::of(config.spec.data.tokenizer.as_deref())?;
    let eos = vocab.eos();
    json("tokenizer.json", &tokenizer::vocabulary_json(&vocab)?)?;
    json(
        "tokenizer_reference.json",
        &tokenizer::reference_json(&vocab)?,
    )?;
    json(
        "tokenizer_config.json",
        &tokenizer::tokenizer_config_json(context, eos.as_ref()),
    )?;
    json(
        "generation_config.json",
        &tokenizer::generation_config_json(context, eos.as_ref()),
    )?;
    let tensors = save_weights(dir, model)?;
    let reference = Reference::compute(model, reference::windows(config, device)?);
    reference.save(dir)?;
    let reloaded = reload(dir, device)?;
    // The reference windows are the base length's (`reference::windows`).
    let windows = config.spec.model.seq_len;
    let diff = reference_diff(
        &reloaded,
        &Reference::load(dir, windows, config.spec.model.vocab_size(), device)?,
    );
    anyhow::ensure!(
        diff <= 1e-5,
        "the reloaded export's logits differ from the lab model's by {diff} (max abs)"
    );
    Ok(Exported {
        dir: dir.to_path_buf(),
        architecture,
        tensors,
        weight_bytes: std::fs::metadata(dir.join(WEIGHTS))?.len(),
        reference_windows: reference.tokens.dims()[0],
        reload_max_abs_diff: diff,
    })
}

/// `model.safetensors` under HF's names and layout; returns the tensor count.
fn save_weights(dir: &Path, model: &Transformer) -> Result<usize> {
    let hf = HfCausalLm::from_model(model)?;
    // transformers refuses safetensors files whose `format` is not a framework it knows.
    let mut store = SafetensorsStore::from_file(dir.join(WEIGHTS))
        .with_to_adapter(BurnToPyTorchAdapter)
        .metadata("format", "pt");
    hf.save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("writing {WEIGHTS}: {e}"))?;
    Ok(hf.collect(None, None, false).len())
}

/// The model an export directory holds, read back through burn-store from its
/// `config.json` and `model.safetensors` alone: every tensor must be present, of the right
/// shape, and used.
pub fn reload(dir: &Path, device: &Device) -> Result<Transformer> {
    let hf = HfConfig::read(&dir.join(CONFIG_JSON))?;
    let (model_spec, ffn_spec) = hf.specs()?;
    let template = Transformer::new(&model_spec, &ffn_spec, 0, device);
    let mut layout = HfCausalLm::from_model(&template)?;
    let mut store = SafetensorsStore::from_file(dir.join(WEIGHTS))
        .with_from_adapter(PyTorchToBurnAdapter)
        .validate(true);
    let result = layout
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("reading {WEIGHTS}: {e}"))?;
    anyhow::ensure!(
        result.is_success() && result.missing.is_empty() && result.unused.is_empty(),
        "{WEIGHTS} does not match config.json:\n{result}"
    );
    layout.into_model(template)
}

/// Largest |logit difference| of `model` against `reference` over its windows.
pub fn reference_diff(model: &Transformer, reference: &Reference) -> f32 {
    let logits = model.forward(reference.tokens.val()).logits;
    let [w, t, v] = logits.dims();
    (logits - reference.logits.val())
        .abs()
        .reshape([w * t * v])
        .max()
        .into_scalar::<f32>()
}
