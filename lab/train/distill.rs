//! The teacher of a `[distill]` run and the distillation term of the student's loss.
//!
//! The teacher is a completed run's final model, loaded on the plain (non-autodiff) device: its
//! logits enter the student's loss as constants, and its forward builds no graph.

use anyhow::Result;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::error::SpecError;
use crate::model::{Transformer, VOCAB_SIZE};
use crate::run::RunDir;
use crate::spec::{DistillSpec, RunConfig};

pub struct Teacher {
    pub model: Transformer,
    pub spec: DistillSpec,
    /// The teacher's forward FLOPs per student token (at the student's `seq_len`).
    pub forward_flops_per_token: f64,
}

/// What the student's step needs from the teacher for one batch.
pub struct DistillTarget {
    /// `[B, T, V]`, on the plain device.
    pub logits: Tensor<3>,
    pub weight: f64,
    pub temperature: f64,
    pub top_k: usize,
}

impl Teacher {
    /// The teacher `config`'s `[distill]` names, checked: a completed run with a final model,
    /// a byte vocabulary, and a context at least the student's. Err: a [`SpecError`] naming
    /// `distill.teacher` in the student's spec `file`.
    pub fn load(
        config: &RunConfig,
        file: &std::path::Path,
        device: &Device,
    ) -> Result<Option<Teacher>> {
        let Some(spec) = config.spec.distill.clone() else {
            return Ok(None);
        };
        let bad = |message: String| SpecError::Field {
            file: file.to_path_buf(),
            field: "distill.teacher".into(),
            message,
        };
        let run = RunDir::new(&spec.teacher);
        let (teacher, model) = run.load_model(device).map_err(|e| bad(format!("{e:#}")))?;
        let rows = model.embedding.weight.dims()[0];
        if rows != VOCAB_SIZE {
            let m = format!("the teacher has a vocabulary of {rows}, the student {VOCAB_SIZE}");
            return Err(bad(m).into());
        }
        let (t_len, s_len) = (teacher.max_seq_len(), config.max_seq_len());
        if t_len < s_len {
            let m = format!("the teacher's seq_len {t_len} is shorter than the student's {s_len}");
            return Err(bad(m).into());
        }
        let per_token =
            crate::spec::teacher_forward_per_token(&teacher, s_len, config.tokens_per_step);
        Ok(Some(Teacher {
            model,
            spec,
            forward_flops_per_token: per_token,
        }))
    }

    /// The teacher's logits on `inputs: [B, T]` (plain device).
    pub fn target(&self, inputs: Tensor<2, Int>) -> DistillTarget {
        DistillTarget {
            logits: self.model.forward(inputs).logits,
            weight: self.spec.weight,
            temperature: self.spec.temperature,
            top_k: self.spec.top_k,
        }
    }
}

/// `KL(teacher_T ‖ student_T)`, mean over positions, `[1]`: both softmaxes at temperature T;
/// with `top_k`, over the teacher's k most probable bytes renormalised (`Σ q̃ (log q̃ − log p)`,
/// the student's log-probabilities from its full softmax). `student: [B, T, V]`.
pub fn kl_to_teacher(student: Tensor<3>, target: &DistillTarget) -> Tensor<1> {
    let [b, t, v] = student.dims();
    let n = b * t;
    let temp = target.temperature;
    let log_p = log_softmax(student.reshape([n, v]).div_scalar(temp), 1);
    let teacher = target.logits.clone().reshape([n, v]).div_scalar(temp);
    let (log_q, log_p) = if target.top_k == 0 || target.top_k >= v {
        (log_softmax(teacher, 1), log_p)
    } else {
        let (top, idx) = teacher.topk_with_indices(target.top_k, 1);
        (log_softmax(top, 1), log_p.gather(1, idx))
    };
    let q = log_q.clone().exp();
    (q * (log_q - log_p)).sum_dim(1).mean()
}

/// The loss the student minimises besides its auxiliary losses:
/// `(1 − w)·CE + w·T²·KL`.
pub fn mixed_loss(lm: Tensor<1>, kl: Tensor<1>, target: &DistillTarget) -> Tensor<1> {
    let (w, t) = (target.weight, target.temperature);
    lm.mul_scalar(1.0 - w) + kl.mul_scalar(w * t * t)
}
