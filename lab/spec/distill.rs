//! `[distill]`: learn from a teacher's next-token distribution (Hinton et al. 2015; LLaMA-3's
//! small models). The student's loss is `(1 − w)·CE + w·T²·KL(teacher_T ‖ student_T)`, both
//! distributions at temperature T, optionally over the teacher's top-k bytes and its tail
//! mass as one outcome.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, check};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DistillSpec {
    /// A completed run's directory (its final model and `config.toml`), relative to the spec.
    pub teacher: PathBuf,
    /// w: the distillation term's weight, in [0, 1].
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// T: both distributions are softened by it; the KL is scaled by T² so its gradients keep
    /// their size as T changes.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Keep only the teacher's k most probable bytes, and the rest as one outcome (its tail
    /// mass), as systems that store teacher outputs do; 0: all 256.
    #[serde(default)]
    pub top_k: usize,
    /// Count the teacher's forward FLOPs against the student's FLOP budget (fewer student
    /// steps). Default: not charged; the summary reports them either way.
    #[serde(default)]
    pub charge_teacher: bool,
}

fn default_weight() -> f64 {
    0.5
}
fn default_temperature() -> f64 {
    1.0
}

impl DistillSpec {
    /// Check the fields (paths relative to `[distill]`) and make `teacher` absolute against
    /// `base`. Whether the teacher exists is checked when the run starts
    /// (`train::distill::Teacher::load`): in a sweep it is trained first.
    /// `vocab_size`: the student's vocabulary.
    pub fn resolve(mut self, base: &Path, vocab_size: usize) -> Result<DistillSpec, FieldError> {
        check((0.0..=1.0).contains(&self.weight), "weight", || {
            format!("must be in [0, 1], got {}", self.weight)
        })?;
        check(
            self.temperature.is_finite() && self.temperature > 0.0,
            "temperature",
            || format!("must be positive, got {}", self.temperature),
        )?;
        check(self.top_k <= vocab_size, "top_k", || {
            format!(
                "must be at most the vocabulary ({vocab_size}), got {}",
                self.top_k
            )
        })?;
        check(!self.teacher.as_os_str().is_empty(), "teacher", || {
            "must name a completed run's directory".into()
        })?;
        if self.teacher.is_relative() {
            self.teacher = base.join(&self.teacher);
        }
        Ok(self)
    }
}
