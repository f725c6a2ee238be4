//! Validation and resolution of a [`RunSpec`] into a [`RunConfig`].

use std::path::Path;

use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use super::stages::{Stages, StepShape};
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
    /// Training FLOPs per token at each longer sequence length of a long-context stage
    /// (attention grows with the length); empty without one.
    #[serde(default)]
    pub flops_by_seq_len: Vec<(usize, f64)>,
}

impl RunConfig {
    /// Training FLOPs of a step of the base shape (`batch_size × seq_len` tokens).
    pub fn train_flops_per_step(&self) -> f64 {
        self.flops.train_per_token * self.tokens_per_step as f64
    }
    /// The run's stages (`spec::stages`), at its length.
    pub fn stages(&self) -> Stages<'_> {
        stages_of(&self.spec, self.steps)
    }
    /// Whether any step's shape differs from the base one.
    pub fn staged(&self) -> bool {
        let t = &self.spec.train;
        t.batch_ramp.is_some() || t.long_context.is_some()
    }
    pub fn step_shape(&self, step: usize) -> StepShape {
        self.stages().shape(step)
    }
    /// Training FLOPs per token on sequences of `seq_len`.
    pub fn train_flops_per_token_at(&self, seq_len: usize) -> f64 {
        per_token_at(self.flops.train_per_token, &self.flops_by_seq_len, seq_len)
    }
    /// Tokens and training FLOPs of step `step`.
    pub fn step_cost(&self, step: usize) -> (usize, f64) {
        let shape = self.step_shape(step);
        let per_token = self.train_flops_per_token_at(shape.seq_len);
        (shape.tokens(), per_token * shape.tokens() as f64)
    }
    pub fn total_tokens(&self) -> u64 {
        match self.staged() {
            false => (self.steps * self.tokens_per_step) as u64,
            true => (0..self.steps).map(|s| self.step_cost(s).0 as u64).sum(),
        }
    }
    pub fn total_train_flops(&self) -> f64 {
        match self.staged() {
            false => self.train_flops_per_step() * self.steps as f64,
            true => (0..self.steps).map(|s| self.step_cost(s).1).sum(),
        }
    }
    /// The RoPE base of the last step: the trained model's (a long-context stage may set one).
    pub fn final_rope_theta(&self) -> f64 {
        self.step_shape(self.steps.saturating_sub(1)).rope_theta
    }

    /// The longest sequence any step trains on (the RoPE table's length).
    pub fn max_seq_len(&self) -> usize {
        self.stages().max_seq_len()
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
        // The RoPE table covers the longest stage; nothing else depends on the length.
        let model = ModelSpec {
            seq_len: self.max_seq_len(),
            ..self.spec.model.clone()
        };
        Transformer::new(&model, &self.spec.ffn, self.spec.seed, device)
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

    let t = &spec.train;
    let ramp = t.batch_ramp.as_ref();
    super::stages::validate(
        ramp,
        t.long_context.as_ref(),
        t.batch_size,
        spec.model.seq_len,
    )
    .map_err(in_file)?;

    let shape = model_shape(&spec.model, &spec.ffn, tokens_per_step);
    let flops = shape.flops();
    let flops_by_seq_len = long_context_flops(&spec, tokens_per_step);
    let charged = teacher_charge(&spec, tokens_per_step).map_err(in_file)?;
    let staged = spec.train.batch_ramp.is_some() || spec.train.long_context.is_some();
    let steps = match staged {
        false => resolve_steps(
            &spec.train,
            flops.train_per_token + charged,
            tokens_per_step,
        ),
        true => resolve_staged_steps(&spec, flops.train_per_token, &flops_by_seq_len),
    }
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
        flops_by_seq_len,
    })
}

fn stages_of(spec: &RunSpec, steps: usize) -> Stages<'_> {
    Stages {
        batch_size: spec.train.batch_size,
        seq_len: spec.model.seq_len,
        rope_theta: spec.model.rope_theta,
        ramp: spec.train.batch_ramp.as_ref(),
        long: spec.train.long_context.as_ref(),
        steps,
    }
}

fn per_token_at(base: f64, by_len: &[(usize, f64)], seq_len: usize) -> f64 {
    by_len
        .iter()
        .find(|(t, _)| *t == seq_len)
        .map_or(base, |(_, f)| *f)
}

/// Training FLOPs per token at each length a long-context stage trains at (every multiple of
/// the base length up to its `seq_len`).
fn long_context_flops(spec: &RunSpec, tokens_per_step: usize) -> Vec<(usize, f64)> {
    let Some(l) = &spec.train.long_context else {
        return Vec::new();
    };
    let base = spec.model.seq_len;
    (2..=l.seq_len / base)
        .map(|m| {
            let model = ModelSpec {
                seq_len: m * base,
                ..spec.model.clone()
            };
            let shape = model_shape(&model, &spec.ffn, tokens_per_step);
            (m * base, shape.flops().train_per_token)
        })
        .collect()
}

/// A staged run's length: `steps`, or the number of steps whose summed training FLOPs (each
/// step at its own shape) come closest to `flop_budget`.
fn resolve_staged_steps(
    spec: &RunSpec,
    base_per_token: f64,
    by_len: &[(usize, f64)],
) -> Result<usize, FieldError> {
    let train = &spec.train;
    let total = |n: usize| -> f64 {
        let stages = stages_of(spec, n);
        (0..n)
            .map(|s| {
                let shape = stages.shape(s);
                per_token_at(base_per_token, by_len, shape.seq_len) * shape.tokens() as f64
            })
            .sum()
    };
    let steps = match (train.steps, train.flop_budget) {
        (Some(n), None) => n,
        (None, Some(b)) if b > 0.0 && b.is_finite() => {
            // Summing a staged run costs a pass over its steps: bound them first (the
            // smallest step is the ramp's first, at the base length).
            let first = stages_of(spec, 1).shape(0).tokens() as f64 * base_per_token;
            let most = (b / first).ceil();
            if most > limits::STAGED_STEPS.0 as f64 {
                let (n, why) = limits::STAGED_STEPS;
                let m = format!("gives up to {most:.3e} steps with stages; at most {n} ({why})");
                return Err(FieldError::new("flop_budget", m));
            }
            // Monotone in n: the largest n within the budget, or the next if it is closer.
            let (mut lo, mut hi) = (0usize, most as usize);
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if total(mid) <= b {
                    lo = mid
                } else {
                    hi = mid - 1
                }
            }
            if (total(lo + 1) - b).abs() < (b - total(lo)).abs() {
                lo + 1
            } else {
                lo
            }
        }
        _ => {
            return resolve_steps(
                train,
                base_per_token,
                spec.train.batch_size * spec.model.seq_len,
            );
        }
    };
    positive("steps", steps)?;
    at_most("steps", steps, limits::STAGED_STEPS)?;
    Ok(steps)
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
