//! Pre-training stages (LLaMA-3 §3.4): a batch-size ramp at the start, a long-context stage at
//! the end. Each step's shape (sequences, sequence length, RoPE base) is a pure function of the
//! step, the spec and the run's length, so resuming inside any stage continues exactly.
//!
//! - `[train] batch_ramp = { start = 4, fraction = 0.1 }`: the batch grows linearly from
//!   `start` sequences to `batch_size` over the first `fraction` of the steps.
//! - `[train.long_context] seq_len = 256, fraction = 0.2, stages = 2, rope_theta = 5e5`: over the
//!   final `fraction` of the steps the sequence length rises to `seq_len` in `stages` equal
//!   steps (each a multiple m of the model's `seq_len`), with fewer, longer sequences: the batch
//!   divided by m and rounded to the nearest whole sequence (at least one), so the tokens per
//!   step are kept exactly when m divides the batch and to within half a sequence otherwise
//!   (8 × 16 becomes 3 × 48 = 144 tokens, not 128). Every step's tokens and FLOPs are counted
//!   as they run. `rope_theta`, if given, replaces the RoPE base from the start of the stage.

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, check};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BatchRamp {
    /// Sequences per step at step 0.
    pub start: usize,
    /// Share of the steps over which the batch grows to `batch_size`.
    pub fraction: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LongContext {
    /// The final sequence length: a multiple of `model.seq_len`.
    pub seq_len: usize,
    /// Final share of the steps trained at longer lengths.
    pub fraction: f64,
    /// Equal increments from `model.seq_len` to `seq_len` (1: straight to it).
    #[serde(default = "one")]
    pub stages: usize,
    /// A new RoPE base for the stage (LLaMA-3 raises it to 500 000); `None`: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
}

fn one() -> usize {
    1
}

/// What one step trains on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepShape {
    pub batch: usize,
    pub seq_len: usize,
    pub rope_theta: f64,
}

impl StepShape {
    pub fn tokens(&self) -> usize {
        self.batch * self.seq_len
    }
}

/// The stages of a run, with the model's base length and the run's steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Stages<'a> {
    pub batch_size: usize,
    pub seq_len: usize,
    pub rope_theta: f64,
    pub ramp: Option<&'a BatchRamp>,
    pub long: Option<&'a LongContext>,
    pub steps: usize,
}

impl Stages<'_> {
    fn ramp_steps(&self) -> usize {
        self.ramp
            .map_or(0, |r| (self.steps as f64 * r.fraction).round() as usize)
    }

    /// The first step of the long-context stage (`steps` without one).
    pub fn long_start(&self) -> usize {
        self.long.map_or(self.steps, |l| {
            let n = (self.steps as f64 * l.fraction).round() as usize;
            self.steps - n.min(self.steps)
        })
    }

    pub fn shape(&self, step: usize) -> StepShape {
        let mut batch = self.batch_size;
        let ramp = self.ramp_steps();
        if let (Some(r), true) = (self.ramp, step < ramp) {
            batch = r.start + (self.batch_size - r.start) * step / ramp;
        }
        let (mut seq_len, mut rope_theta) = (self.seq_len, self.rope_theta);
        let start = self.long_start();
        if let (Some(l), true) = (self.long, step >= start) {
            let span = (self.steps - start).max(1);
            let stage = ((step - start) * l.stages / span).min(l.stages - 1) + 1;
            let multiple = l.seq_len / self.seq_len;
            // Equal increments in whole multiples of the base length, the last at `seq_len`.
            let m = 1 + ((multiple - 1) * stage).div_ceil(l.stages);
            seq_len = self.seq_len * m;
            // Fewer, longer sequences: batch / m rounded to the nearest whole sequence (half
            // up), so the tokens per step stay within half a sequence of the stage before's.
            batch = ((2 * batch + m) / (2 * m)).max(1);
            rope_theta = l.rope_theta.unwrap_or(rope_theta);
        }
        StepShape {
            batch,
            seq_len,
            rope_theta,
        }
    }

    /// The shapes a step may take that the memory and buffer checks must size: the base one
    /// (every batch of the ramp is at most it) and each distinct shape of the long-context
    /// stage, in step order.
    pub fn sized_shapes(&self) -> Vec<StepShape> {
        let base = StepShape {
            batch: self.batch_size,
            seq_len: self.seq_len,
            rope_theta: self.rope_theta,
        };
        let mut shapes = vec![base];
        for step in self.long_start()..self.steps {
            let s = self.shape(step);
            if shapes.last() != Some(&s) {
                shapes.push(s);
            }
        }
        shapes
    }

    /// The longest sequence any step trains on.
    pub fn max_seq_len(&self) -> usize {
        self.long.map_or(self.seq_len, |l| l.seq_len)
    }
}

/// Check the stage fields (paths from the run spec's root) against the model's `seq_len` and
/// the `batch_size`.
pub fn validate(
    ramp: Option<&BatchRamp>,
    long: Option<&LongContext>,
    batch_size: usize,
    seq_len: usize,
) -> Result<(), FieldError> {
    let fraction_ok = |f: f64| f > 0.0 && f <= 1.0;
    if let Some(r) = ramp {
        check(
            r.start >= 1 && r.start <= batch_size,
            "train.batch_ramp.start",
            || {
                format!(
                    "must be between 1 and batch_size ({batch_size}), got {}",
                    r.start
                )
            },
        )?;
        check(fraction_ok(r.fraction), "train.batch_ramp.fraction", || {
            format!("must be in (0, 1], got {}", r.fraction)
        })?;
    }
    let Some(l) = long else {
        return Ok(());
    };
    check(
        fraction_ok(l.fraction),
        "train.long_context.fraction",
        || format!("must be in (0, 1], got {}", l.fraction),
    )?;
    if let Some(r) = ramp {
        check(
            r.fraction + l.fraction <= 1.0,
            "train.long_context.fraction",
            || {
                format!(
                    "the batch ramp ({}) and the long-context stage ({}) overlap: their fractions \
                 must sum to at most 1",
                    r.fraction, l.fraction
                )
            },
        )?;
    }
    check(
        l.seq_len > seq_len && l.seq_len.is_multiple_of(seq_len),
        "train.long_context.seq_len",
        || {
            format!(
                "must be a multiple of model.seq_len ({seq_len}) larger than it (the data is cut \
                 into windows of whole base lengths), got {}",
                l.seq_len
            )
        },
    )?;
    let multiple = l.seq_len / seq_len;
    check(
        l.stages >= 1 && l.stages < multiple,
        "train.long_context.stages",
        || {
            format!(
                "must be between 1 and {} (one per increase of model.seq_len up to seq_len), got {}",
                multiple - 1,
                l.stages
            )
        },
    )?;
    if let Some(t) = l.rope_theta {
        check(
            t > 0.0 && t.is_finite(),
            "train.long_context.rope_theta",
            || format!("must be positive, got {t}"),
        )?;
    }
    Ok(())
}
