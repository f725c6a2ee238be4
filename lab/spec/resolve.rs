//! Validation and resolution of a [`RunSpec`] into a [`RunConfig`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::types::*;
use crate::compute::{FlopCount, ModelShape, ParamCount};
use crate::error::SpecError;
use crate::model::ffn::moe::Dispatch;

/// Tolerance for matched arms: active FLOPs per token within 1%.
pub const MATCH_TOLERANCE: f64 = 0.01;

/// A spec with every default filled in and every derived number computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// The resolved spec: `d_ff` a number, `steps` set, paths absolute. Written as
    /// `config.toml`, it parses back as a spec that trains the same run.
    pub spec: RunSpec,
    pub steps: usize,
    pub tokens_per_step: usize,
    pub shape: ModelShape,
    pub params: ParamCount,
    pub flops: FlopCount,
}

impl RunConfig {
    pub fn train_flops_per_step(&self) -> f64 {
        self.flops.train_per_token * self.tokens_per_step as f64
    }
    pub fn total_tokens(&self) -> u64 {
        (self.steps * self.tokens_per_step) as u64
    }
    pub fn total_train_flops(&self) -> f64 {
        self.train_flops_per_step() * self.steps as f64
    }
    /// The step at which the data mix switches to the annealing weights, if it does: the
    /// start of the final `decay_fraction` of the steps.
    pub fn anneal_from(&self) -> Option<usize> {
        let d = &self.spec.data;
        (d.anneal && d.source == SourceKind::Generated).then(|| {
            let decay = (self.steps as f64 * self.spec.train.decay_fraction).round() as usize;
            self.steps.saturating_sub(decay.max(1))
        })
    }

    /// The same run with a different length (`lab train --steps`).
    pub fn with_steps(mut self, steps: usize) -> Self {
        let steps = steps.max(1);
        self.steps = steps;
        self.spec.train.steps = Some(steps);
        self
    }

    /// The spec as TOML (what `config.toml` holds).
    pub fn spec_toml(&self) -> String {
        toml::to_string_pretty(&self.spec).expect("a resolved spec serialises")
    }
}

/// Read, validate and resolve the spec at `path`.
pub fn resolve(path: &Path) -> Result<RunConfig, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecError::Io {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    resolve_str(&text, path, base)
}

/// Resolve spec text; `file` names it in errors and `base` anchors relative data paths.
pub fn resolve_str(text: &str, file: &Path, base: &Path) -> Result<RunConfig, SpecError> {
    let spec: RunSpec = toml::from_str(text).map_err(|e| SpecError::Parse {
        file: file.to_path_buf(),
        message: e.to_string(),
    })?;
    resolve_spec(spec, file, base)
}

/// Validate and resolve an already parsed spec.
pub fn resolve_spec(mut spec: RunSpec, file: &Path, base: &Path) -> Result<RunConfig, SpecError> {
    let err = |field: &str, msg: String| SpecError::field(file, field, msg);
    let positive = |field: &str, v: usize| -> Result<(), SpecError> {
        if v == 0 {
            Err(err(field, "must be a positive integer, got 0".into()))
        } else {
            Ok(())
        }
    };

    if spec.name.is_empty() || spec.name.contains(['/', '\\']) || spec.name.starts_with('.') {
        return Err(err(
            "name",
            format!("must be a plain directory name, got {:?}", spec.name),
        ));
    }
    if spec.experiment.is_empty() || spec.experiment.contains(['/', '\\']) {
        return Err(err(
            "experiment",
            format!("must be a plain directory name, got {:?}", spec.experiment),
        ));
    }

    // Model.
    let m = &mut spec.model;
    positive("model.d_model", m.d_model)?;
    positive("model.n_layers", m.n_layers)?;
    positive("model.n_heads", m.n_heads)?;
    positive("model.seq_len", m.seq_len)?;
    let kv = m.kv_heads();
    positive("model.n_kv_heads", kv)?;
    if m.d_model % m.n_heads != 0 {
        return Err(err(
            "model.d_model",
            format!(
                "d_model ({}) must be divisible by n_heads ({})",
                m.d_model, m.n_heads
            ),
        ));
    }
    if m.n_heads % kv != 0 {
        return Err(err(
            "model.n_kv_heads",
            format!(
                "n_heads ({}) must be divisible by n_kv_heads ({kv})",
                m.n_heads
            ),
        ));
    }
    if m.head_dim() % 2 != 0 {
        return Err(err(
            "model.n_heads",
            format!(
                "head dimension d_model / n_heads = {} must be even for RoPE",
                m.head_dim()
            ),
        ));
    }
    if !(m.rope_theta > 0.0) {
        return Err(err(
            "model.rope_theta",
            format!("must be positive, got {}", m.rope_theta),
        ));
    }
    if !(m.norm_eps > 0.0) {
        return Err(err(
            "model.norm_eps",
            format!("must be positive, got {}", m.norm_eps),
        ));
    }
    m.n_kv_heads = Some(kv);

    // Training (before the FFN: capacity accounting needs the batch's token count).
    let t = &spec.train;
    positive("train.batch_size", t.batch_size)?;
    positive("train.eval_every", t.eval_every)?;
    positive("train.eval_batches", t.eval_batches)?;
    positive("train.log_every", t.log_every)?;
    let tokens_per_step = t.batch_size * spec.model.seq_len;
    if !(t.lr > 0.0) {
        return Err(err("train.lr", format!("must be positive, got {}", t.lr)));
    }
    if !(0.0..=1.0).contains(&t.min_lr_ratio) {
        return Err(err(
            "train.min_lr_ratio",
            format!("must be in [0, 1], got {}", t.min_lr_ratio),
        ));
    }
    if !(t.decay_fraction > 0.0 && t.decay_fraction <= 1.0) {
        return Err(err(
            "train.decay_fraction",
            format!("must be in (0, 1], got {}", t.decay_fraction),
        ));
    }
    for (field, b) in [("train.beta1", t.beta1), ("train.beta2", t.beta2)] {
        if !(0.0..1.0).contains(&b) {
            return Err(err(field, format!("must be in [0, 1), got {b}")));
        }
    }
    if !(t.eps > 0.0) {
        return Err(err("train.eps", format!("must be positive, got {}", t.eps)));
    }
    if !(t.weight_decay >= 0.0) || !(t.grad_clip >= 0.0) {
        return Err(err(
            "train.weight_decay / train.grad_clip",
            "must be ≥ 0 (0 disables)".to_string(),
        ));
    }

    // Feed-forward: each kind checks (and, for a derived size, resolves) itself.
    spec.ffn = spec
        .ffn
        .clone()
        .resolve(&spec, tokens_per_step)
        .map_err(|(field, message)| err(&field, message))?;

    // Stability.
    let s = &spec.stability;
    if s.window < 3 {
        return Err(err(
            "stability.window",
            format!("must be at least 3, got {}", s.window),
        ));
    }
    if !(s.z > 0.0) {
        return Err(err("stability.z", format!("must be positive, got {}", s.z)));
    }

    // Data.
    let d = &mut spec.data;
    if !(d.val_fraction > 0.0 && d.val_fraction <= 0.5) {
        return Err(err(
            "data.val_fraction",
            format!("must be in (0, 0.5], got {}", d.val_fraction),
        ));
    }
    match d.source {
        SourceKind::Text => {
            let Some(p) = &d.path else {
                return Err(err("data.path", "source = \"text\" needs a path".into()));
            };
            let full: PathBuf = if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            };
            if !full.exists() {
                return Err(err(
                    "data.path",
                    format!("{} does not exist", full.display()),
                ));
            }
            d.path = Some(full.canonicalize().unwrap_or(full));
        }
        SourceKind::Generated => {
            positive("data.corpus_bytes", d.corpus_bytes)?;
            positive("data.entities", d.entities)?;
            if !(0.0..1.0).contains(&d.heldout_facts) {
                return Err(err(
                    "data.heldout_facts",
                    format!("must be in [0, 1), got {}", d.heldout_facts),
                ));
            }
            if !d.weights.valid() {
                return Err(err(
                    "data.weights",
                    "weights must be ≥ 0 with a positive sum".into(),
                ));
            }
            if !d.anneal_weights.valid() {
                return Err(err(
                    "data.anneal_weights",
                    "weights must be ≥ 0 with a positive sum".into(),
                ));
            }
        }
    }

    // Length: steps, or a FLOP budget turned into whole steps.
    let shape = model_shape(&spec, tokens_per_step);
    let flops = shape.flops();
    let per_step = flops.train_per_token * tokens_per_step as f64;
    let steps = match (spec.train.steps, spec.train.flop_budget) {
        (Some(_), Some(_)) => {
            return Err(err(
                "train.steps",
                "give steps or flop_budget, not both".into(),
            ));
        }
        (None, None) => {
            return Err(err("train.steps", "give steps or flop_budget".into()));
        }
        (Some(n), None) => {
            positive("train.steps", n)?;
            n
        }
        (None, Some(budget)) => {
            if !(budget > 0.0) || !budget.is_finite() {
                return Err(err(
                    "train.flop_budget",
                    format!("must be positive, got {budget}"),
                ));
            }
            let steps = (budget / per_step).round() as usize;
            if steps == 0 {
                return Err(err(
                    "train.flop_budget",
                    format!(
                        "budget {budget:.3e} is smaller than one step ({per_step:.3e} training \
                         FLOPs = {:.0} FLOPs/token × {tokens_per_step} tokens)",
                        flops.train_per_token
                    ),
                ));
            }
            steps
        }
    };
    spec.train.steps = Some(steps);
    spec.train.flop_budget = None;

    Ok(RunConfig {
        params: shape.params(),
        flops,
        shape,
        steps,
        tokens_per_step,
        spec,
    })
}

/// Token-slots per expert per batch for a capacity factor: ⌈c·k·N/K⌉ (Switch).
pub fn capacity_slots(factor: f64, top_k: usize, tokens: usize, experts: usize) -> usize {
    (factor * top_k as f64 * tokens as f64 / experts as f64).ceil() as usize
}

/// Rows per block of the packed dropless dispatch for `slots` token-slots over `experts`:
/// ⌈slots / 2K⌉, half an expert's balanced load, so padding adds at most ≈ 50% rows while the
/// weights picked per layer stay ≈ 3K expert copies. (Measured on flex with `lab bench`, block
/// weights picked by a one-hot matmul: ⌈S/4K⌉ gave 1.61× / 2.53× the dense step at d 256 /
/// 512, ⌈S/2K⌉ 1.56× / 2.09×, ⌈S/K⌉ 1.77× / 2.13×; docs/performance.md.)
pub fn packed_block_rows(slots: usize, experts: usize) -> usize {
    slots.div_ceil(2 * experts).max(1)
}

/// Rows the packed dropless dispatch executes: every expert's run padded to whole blocks,
/// bounded statically by ⌈(S + K·(block − 1)) / block⌉ blocks.
pub fn packed_rows(slots: usize, experts: usize) -> usize {
    let block = packed_block_rows(slots, experts);
    (slots + experts * (block - 1)).div_ceil(block) * block
}

/// The accounting view of a (validated) spec, MoE layers counted as the portable dispatches
/// (packed blocks when dropless, buffers under a capacity factor) execute them: an upper
/// bound, since flex's grouped matmul executes only the routed rows (see [`model_shape_with`]).
pub fn model_shape(spec: &RunSpec, tokens_per_step: usize) -> ModelShape {
    model_shape_with(spec, tokens_per_step, Dispatch::Packed)
}

/// [`model_shape`] with token-choice MoE layers dispatched by `dispatch`.
pub fn model_shape_with(spec: &RunSpec, tokens_per_step: usize, dispatch: Dispatch) -> ModelShape {
    let m = &spec.model;
    let layers = (0..m.n_layers)
        .map(|layer| {
            spec.ffn
                .layer_shape(layer, m.d_model, tokens_per_step, dispatch)
        })
        .collect();
    ModelShape {
        d_model: m.d_model,
        n_heads: m.n_heads,
        n_kv_heads: m.kv_heads(),
        head_dim: m.head_dim(),
        seq_len: m.seq_len,
        vocab_size: VOCAB_SIZE,
        tie_embeddings: m.tie_embeddings,
        layers,
    }
}
