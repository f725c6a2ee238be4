//! The run spec's TOML schema: the whole run, composed of the model's, the feed-forward's and
//! the data's own spec types (each beside the code it configures) and the training and
//! stability sections, which belong to the run. Field names are the names users write;
//! defaults are documented in docs/manual.md ("Run specs") and must stay in step with the
//! `default_*` functions.

use serde::{Deserialize, Serialize};

use crate::data::{DataSpec, SourceKind};
use crate::error::{FieldError, at_most, check, positive};
use crate::limits;
use crate::model::ModelSpec;
use crate::model::ffn::FfnSpec;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Run name: the run directory is `results/<experiment>/<name>/`.
    pub name: String,
    #[serde(default = "default_experiment")]
    pub experiment: String,
    #[serde(default)]
    pub seed: u64,
    pub model: ModelSpec,
    pub ffn: FfnSpec,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(default)]
    pub stability: StabilitySpec,
    #[serde(default)]
    pub data: DataSpec,
    /// Learn from a teacher model's distribution (`[distill]`); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<super::distill::DistillSpec>,
}

fn default_experiment() -> String {
    "default".into()
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Linear warmup, then cosine decay to `min_lr_ratio · lr`.
    #[default]
    Cosine,
    /// Warmup, stable at `lr`, then linear decay to 0 over the final `decay_fraction` of steps.
    Wsd,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSpec {
    pub batch_size: usize,
    /// Training steps; give this or `flop_budget`, not both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Training FLOPs; steps = budget / (training FLOPs per token · tokens per step), rounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flop_budget: Option<f64>,
    pub lr: f64,
    pub min_lr_ratio: f64,
    pub warmup_steps: usize,
    pub schedule: Schedule,
    pub decay_fraction: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Clip the global gradient norm (over all parameters) to this; 0 disables clipping.
    pub grad_clip: f64,
    pub eval_every: usize,
    pub eval_batches: usize,
    /// Tokens per validation stream in the final evaluation, which gives the final losses
    /// (rounded up to whole batches; 0: `eval_batches`, as the periodic ones).
    pub final_eval_tokens: usize,
    pub log_every: usize,
    /// Save model, optimizer and position every N steps (0: only at the end of a sweep cell).
    pub checkpoint_every: usize,
    /// Checkpoint averaging (LLaMA-3's anneal): average the weights of this many snapshots
    /// taken evenly over the final `decay_fraction` of training, the last at the final step;
    /// the averaged model is evaluated and kept beside the last one. 0: off.
    #[serde(skip_serializing_if = "is_zero")]
    pub average_checkpoints: usize,
    /// Start with a smaller batch and grow it (`spec::stages`); off when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_ramp: Option<super::stages::BatchRamp>,
    /// End with longer sequences (`spec::stages`); off when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub long_context: Option<super::stages::LongContext>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            batch_size: 16,
            steps: None,
            flop_budget: None,
            lr: 3e-3,
            min_lr_ratio: 0.1,
            warmup_steps: 20,
            schedule: Schedule::Cosine,
            decay_fraction: 0.2,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            eval_every: 50,
            eval_batches: 4,
            final_eval_tokens: 65_536,
            log_every: 1,
            checkpoint_every: 0,
            average_checkpoints: 0,
            batch_ramp: None,
            long_context: None,
        }
    }
}

/// Spike detection: a value is a spike when it exceeds the rolling median of the previous
/// `window` steps by more than `z` robust standard deviations (σ̂ = 1.4826 · MAD).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StabilitySpec {
    pub window: usize,
    pub z: f64,
    /// Steps of history needed before any spike is flagged.
    pub min_history: usize,
}

impl Default for StabilitySpec {
    fn default() -> Self {
        StabilitySpec {
            window: 50,
            z: 6.0,
            min_history: 20,
        }
    }
}

impl RunSpec {
    /// Check the run's name and experiment: each becomes a directory name.
    pub fn validate_names(&self) -> Result<(), FieldError> {
        let name = &self.name;
        check(
            !(name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.')),
            "name",
            || format!("must be a plain directory name, got {name:?}"),
        )?;
        let exp = &self.experiment;
        check(
            !(exp.is_empty() || exp.contains(['/', '\\'])),
            "experiment",
            || format!("must be a plain directory name, got {exp:?}"),
        )
    }
}

impl RunSpec {
    /// Fields set to something other than their default that have no effect in this run
    /// (printed when it starts and kept in its summary), and the feed-forward's warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.ffn.warnings();
        let (d, default) = (&self.data, DataSpec::default());
        if d.source == SourceKind::Text {
            let ignored = [
                ("corpus_bytes", d.corpus_bytes != default.corpus_bytes),
                ("corpus_seed", d.corpus_seed != default.corpus_seed),
                ("entities", d.entities != default.entities),
                ("heldout_facts", d.heldout_facts != default.heldout_facts),
                ("weights", d.weights != default.weights),
                ("anneal", d.anneal != default.anneal),
                ("anneal_weights", d.anneal_weights != default.anneal_weights),
            ];
            for (field, set) in ignored {
                if set {
                    w.push(format!("data.{field} has no effect with source = \"text\""));
                }
            }
        }
        let t = &self.train;
        if t.schedule == Schedule::Wsd && t.min_lr_ratio != TrainSpec::default().min_lr_ratio {
            w.push(
                "train.min_lr_ratio has no effect with schedule = \"wsd\" (it decays to 0)".into(),
            );
        }
        w
    }
}

impl TrainSpec {
    /// Steps of the final decay phase of a `total`-step run: its last `decay_fraction`,
    /// at least one.
    pub fn decay_steps(&self, total: usize) -> usize {
        ((total as f64 * self.decay_fraction).round() as usize).max(1)
    }

    /// Validation batches per stream in the final evaluation of batches of `tokens_per_batch`.
    pub fn final_eval_batches(&self, tokens_per_batch: usize) -> usize {
        self.final_eval_tokens
            .div_ceil(tokens_per_batch)
            .max(self.eval_batches)
    }

    /// Warmup steps of a `total`-step run (at most `total − 1`).
    pub fn warmup(&self, total: usize) -> usize {
        self.warmup_steps.min(total.saturating_sub(1))
    }

    /// The first step of the final decay phase: where WSD's decay starts, and where the
    /// annealing data mix switches in (never inside the warmup).
    pub fn decay_start(&self, total: usize) -> usize {
        total
            .saturating_sub(self.decay_steps(total))
            .max(self.warmup(total))
    }

    /// Check the fields (paths relative to `[train]`); the length (`steps` or `flop_budget`)
    /// is checked where it is resolved, since a budget needs the model's FLOPs.
    pub fn validate(&self) -> Result<(), FieldError> {
        at_most("batch_size", self.batch_size, limits::BATCH_SIZE)?;
        at_most("eval_batches", self.eval_batches, limits::EVAL_BATCHES)?;
        at_most(
            "final_eval_tokens",
            self.final_eval_tokens,
            limits::EVAL_TOKENS,
        )?;
        at_most(
            "average_checkpoints",
            self.average_checkpoints,
            limits::SNAPSHOTS,
        )?;
        if let Some(steps) = self.steps {
            at_most("steps", steps, limits::STEPS)?;
        }
        positive("batch_size", self.batch_size)?;
        positive("eval_every", self.eval_every)?;
        positive("eval_batches", self.eval_batches)?;
        positive("log_every", self.log_every)?;
        check(self.lr > 0.0, "lr", || {
            format!("must be positive, got {}", self.lr)
        })?;
        check(
            (0.0..=1.0).contains(&self.min_lr_ratio),
            "min_lr_ratio",
            || format!("must be in [0, 1], got {}", self.min_lr_ratio),
        )?;
        check(
            self.decay_fraction > 0.0 && self.decay_fraction <= 1.0,
            "decay_fraction",
            || format!("must be in (0, 1], got {}", self.decay_fraction),
        )?;
        for (field, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            check((0.0..1.0).contains(&b), field, || {
                format!("must be in [0, 1), got {b}")
            })?;
        }
        check(self.eps > 0.0, "eps", || {
            format!("must be positive, got {}", self.eps)
        })?;
        check(self.weight_decay >= 0.0, "weight_decay", || {
            format!("must be ≥ 0 (0 disables), got {}", self.weight_decay)
        })?;
        check(self.grad_clip >= 0.0, "grad_clip", || {
            format!("must be ≥ 0 (0 disables), got {}", self.grad_clip)
        })
    }
}

impl StabilitySpec {
    /// Check the fields (paths relative to `[stability]`).
    pub fn validate(&self) -> Result<(), FieldError> {
        at_most("window", self.window, limits::SPIKE_WINDOW)?;
        check(self.window >= 3, "window", || {
            format!("must be at least 3, got {}", self.window)
        })?;
        check(self.z > 0.0, "z", || {
            format!("must be positive, got {}", self.z)
        })?;
        // The detector keeps `window` values: a larger history requirement is never met.
        check(self.min_history <= self.window, "min_history", || {
            format!(
                "must not exceed window ({}), or no spike is ever flagged; got {}",
                self.window, self.min_history
            )
        })
    }
}
