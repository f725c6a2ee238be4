//! Validation and resolution of a [`RunSpec`] into a [`RunConfig`].

use std::path::Path;

use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use super::types::*;
use crate::compute::{FlopCount, ModelShape, ParamCount};
use crate::data::SourceKind;
use crate::error::{FieldError, SpecError, at_most, check, positive};
use crate::limits;
use crate::model::{ModelSpec, Transformer, model_shape};

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
        (d.anneal && d.source == SourceKind::Generated)
            .then(|| self.spec.train.decay_start(self.steps))
    }

    /// The same run with a different length (`lab train --steps`).
    pub fn with_steps(mut self, steps: usize) -> Self {
        let steps = steps.max(1);
        self.steps = steps;
        self.spec.train.steps = Some(steps);
        self
    }

    /// A freshly initialised model of this run (weights from the run's seed).
    pub fn init_model(&self, device: &Device) -> Transformer {
        Transformer::new(&self.spec.model, &self.spec.ffn, self.spec.seed, device)
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

/// Validate and resolve an already parsed spec: each section checks itself, in order (the
/// feed-forward after `[train]`, since capacity accounting needs the batch's token count),
/// then the length is fixed.
pub fn resolve_spec(mut spec: RunSpec, file: &Path, base: &Path) -> Result<RunConfig, SpecError> {
    let in_file = |e: FieldError| e.in_file(file);
    spec.validate_names().map_err(in_file)?;
    spec.model = spec
        .model
        .resolve()
        .map_err(|e| in_file(e.under("model")))?;
    spec.train
        .validate()
        .map_err(|e| in_file(e.under("train")))?;
    // Both factors are bounded by now, so the product cannot overflow.
    let tokens_per_step = spec.train.batch_size * spec.model.seq_len;
    at_most("train.batch_size", tokens_per_step, limits::TOKENS_PER_STEP).map_err(|e| {
        in_file(FieldError::new(
            e.path,
            format!("batch_size × seq_len {}", e.message),
        ))
    })?;
    let ffn = spec.ffn.clone();
    spec.ffn = ffn
        .resolve(&spec.model, tokens_per_step)
        .map_err(|e| in_file(e.under("ffn")))?;
    spec.stability
        .validate()
        .map_err(|e| in_file(e.under("stability")))?;
    let data = spec.data.clone();
    spec.data = data.resolve(base).map_err(|e| in_file(e.under("data")))?;
    if let Some(d) = spec.distill.take() {
        spec.distill = Some(d.resolve(base).map_err(|e| in_file(e.under("distill")))?);
    }

    let shape = model_shape(&spec.model, &spec.ffn, tokens_per_step);
    let flops = shape.flops();
    let charged = teacher_charge(&spec, tokens_per_step).map_err(in_file)?;
    let steps = resolve_steps(
        &spec.train,
        flops.train_per_token + charged,
        tokens_per_step,
    )
    .map_err(|e| in_file(e.under("train")))?;
    let decay = steps - spec.train.decay_start(steps);
    let m = spec.train.average_checkpoints;
    check(m <= decay, "train.average_checkpoints", || {
        format!("{m} snapshots do not fit in the {decay} steps of the final decay")
    })
    .map_err(in_file)?;
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

/// The teacher's forward FLOPs per student token, when `[distill] charge_teacher` asks for
/// them to count against the budget (else 0): from the teacher's `config.toml`, at the
/// student's sequence length (attention grows with it).
fn teacher_charge(spec: &RunSpec, tokens_per_step: usize) -> Result<f64, FieldError> {
    let Some(d) = spec.distill.as_ref().filter(|d| d.charge_teacher) else {
        return Ok(0.0);
    };
    // A run directory's resolved spec (`run::dir::CONFIG`, a layer above this one).
    let path = d.teacher.join("config.toml");
    let teacher = resolve(&path).map_err(|e| {
        FieldError::new(
            "distill.charge_teacher",
            format!("counting the teacher's FLOPs needs its config.toml: {e}"),
        )
    })?;
    Ok(teacher_forward_per_token(
        &teacher,
        spec.model.seq_len,
        tokens_per_step,
    ))
}

/// Forward FLOPs per token of `teacher` run on windows of `seq_len` (the student's).
pub fn teacher_forward_per_token(
    teacher: &RunConfig,
    seq_len: usize,
    tokens_per_step: usize,
) -> f64 {
    let model = ModelSpec {
        seq_len,
        ..teacher.spec.model.clone()
    };
    model_shape(&model, &teacher.spec.ffn, tokens_per_step)
        .flops()
        .forward_per_token
}

/// The run's length in steps: `steps`, or a FLOP budget turned into whole steps.
fn resolve_steps(
    train: &TrainSpec,
    train_flops_per_token: f64,
    tokens_per_step: usize,
) -> Result<usize, FieldError> {
    let per_step = train_flops_per_token * tokens_per_step as f64;
    match (train.steps, train.flop_budget) {
        (Some(_), Some(_)) => Err(FieldError::new(
            "steps",
            "give steps or flop_budget, not both",
        )),
        (None, None) => Err(FieldError::new("steps", "give steps or flop_budget")),
        (Some(n), None) => positive("steps", n).map(|()| n),
        (None, Some(budget)) => {
            check(budget > 0.0 && budget.is_finite(), "flop_budget", || {
                format!("must be positive, got {budget}")
            })?;
            // `as` saturates: an absurd budget becomes usize::MAX steps, refused below.
            let steps = (budget / per_step).round() as usize;
            at_most("flop_budget", steps, limits::STEPS).map_err(|e| {
                FieldError::new(e.path, format!("gives {steps} steps; steps {}", e.message))
            })?;
            check(steps > 0, "flop_budget", || {
                format!(
                    "budget {budget:.3e} is smaller than one step ({per_step:.3e} training \
                     FLOPs = {train_flops_per_token:.0} FLOPs/token × {tokens_per_step} tokens)"
                )
            })?;
            Ok(steps)
        }
    }
}
