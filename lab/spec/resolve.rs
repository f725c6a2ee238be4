//! Validation and resolution of a [`RunSpec`] into a [`RunConfig`].

use std::path::Path;

use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use super::stages::{Stages, StepShape};
use super::types::*;
use crate::compute::{FlopCount, ModelShape, ParamCount, TrainingMemory};
use crate::data::SourceKind;
use crate::error::{FieldError, SpecError, at_most, check, positive};
use crate::limits;
use crate::model::ffn::FfnSpec;
use crate::model::ffn::router::Choice;
use crate::model::{BYTE_VOCAB, ModelSpec, Transformer, model_shape};

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
    /// The estimated memory of a step of each shape the run trains at that the checks must
    /// size (`Stages::sized_shapes`: the base shape, and each of a long-context stage's):
    /// a longer stage's scores grow with its length, so the base shape alone can pass a
    /// check that the stage fails.
    pub fn step_memories(&self) -> Vec<(StepShape, TrainingMemory)> {
        self.stages()
            .sized_shapes()
            .into_iter()
            .map(|shape| {
                let model = ModelSpec {
                    seq_len: shape.seq_len,
                    ..self.spec.model.clone()
                };
                let at = model_shape(&model, &self.spec.ffn, shape.tokens());
                (shape, at.training_memory(shape.batch))
            })
            .collect()
    }

    /// The step at which the data mix switches to the annealing weights, if it does: the
    /// start of the final `decay_fraction` of the steps.
    pub fn anneal_from(&self) -> Option<usize> {
        let d = &self.spec.data;
        let mixes = matches!(d.source, SourceKind::Generated | SourceKind::Prepared);
        (d.anneal && mixes).then(|| self.spec.train.decay_start(self.steps))
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
    spec.model.vocab_size = resolve_vocab(&spec, file)?;
    if let Some(d) = spec.distill.take() {
        let vocab = spec.model.vocab_size();
        spec.distill = Some(
            d.resolve(base, vocab)
                .map_err(|e| in_file(e.under("distill")))?,
        );
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
    let steps =
        resolve_length(&spec, &flops, &flops_by_seq_len, tokens_per_step).map_err(in_file)?;
    let decay = steps - spec.train.decay_start(steps);
    let m = spec.train.average_checkpoints;
    check(m <= decay, "train.average_checkpoints", || {
        format!("{m} snapshots do not fit in the {decay} steps of the final decay")
    })
    .map_err(in_file)?;
    let most_tokens = stages_of(&spec, steps)
        .sized_shapes()
        .iter()
        .map(StepShape::tokens)
        .max()
        .unwrap_or(tokens_per_step);
    check_token_slots(&spec.ffn, most_tokens).map_err(in_file)?;
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

/// The model's vocabulary: the data's (256 bytes, or the tokenizer's), stated only when it is
/// not bytes. Err when `[model] vocab_size` says otherwise, or the data's files are bad.
fn resolve_vocab(spec: &RunSpec, file: &Path) -> Result<Option<usize>, SpecError> {
    let vocab = spec.data.vocab_size()?;
    let field = |m: String| FieldError::new("model.vocab_size", m).in_file(file);
    if let Some(v) = spec.model.vocab_size
        && v != vocab
    {
        return Err(field(format!(
            "{v}, but the data's vocabulary has {vocab} ids (leave it out: it follows [data])"
        )));
    }
    at_most("model.vocab_size", vocab, limits::VOCAB).map_err(|e| e.in_file(file))?;
    Ok((vocab != BYTE_VOCAB).then_some(vocab))
}

/// The run's length in steps (`steps`, or solved from `flop_budget`), each step's cost at
/// its shape: the student's training FLOPs per token at the step's length, plus the teacher's
/// forward when `[distill] charge_teacher` asks for it. Error paths from the spec's root.
fn resolve_length(
    spec: &RunSpec,
    flops: &FlopCount,
    flops_by_seq_len: &[(usize, f64)],
    tokens_per_step: usize,
) -> Result<usize, FieldError> {
    let teacher = charged_teacher(spec)?;
    let charged = |seq_len: usize| {
        teacher.as_ref().map_or(0.0, |t| {
            teacher_forward_per_token(t, seq_len, tokens_per_step)
        })
    };
    let staged = spec.train.batch_ramp.is_some() || spec.train.long_context.is_some();
    let steps = match staged {
        false => resolve_steps(
            &spec.train,
            flops.train_per_token + charged(spec.model.seq_len),
            tokens_per_step,
        ),
        true => {
            let rates: Vec<(usize, f64)> = std::iter::once(spec.model.seq_len)
                .chain(flops_by_seq_len.iter().map(|(t, _)| *t))
                .map(|t| {
                    let student = per_token_at(flops.train_per_token, flops_by_seq_len, t);
                    (t, student + charged(t))
                })
                .collect();
            resolve_staged_steps(spec, &rates)
        }
    };
    steps.map_err(|e| e.under("train"))
}

/// A token-choice MoE's dispatch counts in f32 ([`limits::MOE_TOKEN_SLOTS`]): the step with
/// the most tokens, times top_k, must stay within the range where f32 counts exactly.
fn check_token_slots(ffn: &FfnSpec, tokens: usize) -> Result<(), FieldError> {
    let FfnSpec::Moe(moe) = ffn else {
        return Ok(());
    };
    if !matches!(moe.router.choice(), Choice::Tokens) {
        return Ok(());
    }
    let slots = tokens * moe.routed_top_k();
    at_most("train.batch_size", slots, limits::MOE_TOKEN_SLOTS).map_err(|e| {
        let m = format!(
            "batch_size × seq_len × ffn.top_k (the largest step's token-slots) {}",
            e.message
        );
        FieldError::new(e.path, m)
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

/// A staged run's length: `steps`, or the number of steps whose summed budgeted FLOPs (each
/// step at its own shape, at `rates`: FLOPs per token by sequence length) come closest to
/// `flop_budget`.
fn resolve_staged_steps(spec: &RunSpec, rates: &[(usize, f64)]) -> Result<usize, FieldError> {
    let train = &spec.train;
    let total = |n: usize| -> f64 {
        let stages = stages_of(spec, n);
        (0..n)
            .map(|s| {
                let shape = stages.shape(s);
                per_token_at(rates[0].1, rates, shape.seq_len) * shape.tokens() as f64
            })
            .sum()
    };
    let steps = match (train.steps, train.flop_budget) {
        (Some(n), None) => n,
        (None, Some(b)) if b > 0.0 && b.is_finite() => closest_step_count(total, b)?,
        _ => {
            return resolve_steps(
                train,
                rates[0].1,
                spec.train.batch_size * spec.model.seq_len,
            );
        }
    };
    positive("steps", steps)?;
    at_most("steps", steps, limits::STAGED_STEPS)?;
    Ok(steps)
}

/// The step count whose summed FLOPs, `total(n)`, come closest to `budget`: the largest n
/// within it, or the next if that is closer. A step's shape depends on the run's length (the
/// stages are fractions of it), so no single step bounds the search: the upper end doubles
/// until it passes the budget (each probe one pass over its steps), then bisection.
fn closest_step_count(total: impl Fn(usize) -> f64, budget: f64) -> Result<usize, FieldError> {
    let (limit, why) = limits::STAGED_STEPS;
    let mut hi = 1usize;
    while total(hi) <= budget {
        if hi >= limit {
            let m = format!("needs more than {limit} steps with stages ({why})");
            return Err(FieldError::new("flop_budget", m));
        }
        hi = (2 * hi).min(limit);
    }
    // total(lo) ≤ budget < total(hi + 1) throughout (total(0) = 0).
    let (mut lo, mut hi) = (hi / 2, hi - 1);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if total(mid) <= budget {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    let closer_above = total(lo + 1) - budget < budget - total(lo);
    Ok(if closer_above { lo + 1 } else { lo })
}

/// The teacher whose forward FLOPs count against the student's budget, when `[distill]
/// charge_teacher` asks for it: from its run directory's `config.toml`.
fn charged_teacher(spec: &RunSpec) -> Result<Option<RunConfig>, FieldError> {
    let Some(d) = spec.distill.as_ref().filter(|d| d.charge_teacher) else {
        return Ok(None);
    };
    // A run directory's resolved spec (`run::dir::CONFIG`, a layer above this one).
    let path = d.teacher.join("config.toml");
    let teacher = resolve(&path).map_err(|e| {
        FieldError::new(
            "distill.charge_teacher",
            format!("counting the teacher's FLOPs needs its config.toml: {e}"),
        )
    })?;
    Ok(Some(teacher))
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
