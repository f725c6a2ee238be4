//! The teacher of a `[distill]` run and the distillation term of the student's loss.
//!
//! The teacher is a completed run's final model, loaded on the plain (non-autodiff) device: its
//! logits enter the student's loss as constants, and its forward builds no graph.

use anyhow::Result;
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use burn::tensor::activation::log_softmax;

use crate::data::tokenizer::SubwordTokenizer;
use crate::error::SpecError;
use crate::model::Transformer;
use crate::run::RunDir;
use crate::spec::{DistillSpec, RunConfig};

pub struct Teacher {
    pub model: Transformer,
    pub spec: DistillSpec,
    /// The teacher's run, for its FLOPs.
    config: RunConfig,
    /// The student's base tokens per step (capacity accounting of an MoE teacher).
    student_tokens_per_step: usize,
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
        let (rows, vocab) = (
            model.embedding.weight.dims()[0],
            config.spec.model.vocab_size(),
        );
        if rows != vocab {
            let m = format!("the teacher has a vocabulary of {rows}, the student {vocab}");
            return Err(bad(m).into());
        }
        let (tt, st) = (&teacher.spec.data.tokenizer, &config.spec.data.tokenizer);
        if let (Some(tt), Some(st)) = (tt, st)
            && SubwordTokenizer::load(tt)?.hash != SubwordTokenizer::load(st)?.hash
        {
            let m = format!(
                "the teacher's tokenizer {} differs from the student's {}",
                tt.display(),
                st.display()
            );
            return Err(bad(m).into());
        }
        let (t_len, s_len) = (teacher.max_seq_len(), config.max_seq_len());
        if t_len < s_len {
            let m = format!("the teacher's seq_len {t_len} is shorter than the student's {s_len}");
            return Err(bad(m).into());
        }
        Ok(Some(Teacher {
            model,
            spec,
            config: teacher,
            student_tokens_per_step: config.tokens_per_step,
        }))
    }

    /// The teacher's forward FLOPs per student token on windows of `seq_len`.
    pub fn forward_flops_per_token(&self, seq_len: usize) -> f64 {
        let tokens = self.student_tokens_per_step;
        crate::spec::teacher_forward_per_token(&self.config, seq_len, tokens)
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

/// `KL(teacher_T ‖ student_T)`, mean over positions, `[1]`: both softmaxes at temperature T.
/// With `top_k`, the KL between the two distributions over k + 1 outcomes, the teacher's k
/// most probable bytes and "any other byte" (the tail): `Σ_top q (log q − log p) + (1 − Q)
/// log((1 − Q)/(1 − P))`, Q and P the teacher's and student's mass on the top k. Without the
/// tail bucket (the top k renormalised) the minimiser puts no mass outside the top k and
/// over-sharpens; with it the minimiser keeps the teacher's tail mass. `student: [B, T, V]`.
pub fn kl_to_teacher(student: Tensor<3>, target: &DistillTarget) -> Tensor<1> {
    let [b, t, v] = student.dims();
    let n = b * t;
    let temp = target.temperature;
    let log_p = log_softmax(student.reshape([n, v]).div_scalar(temp), 1);
    let log_q = log_softmax(target.logits.clone().reshape([n, v]).div_scalar(temp), 1);
    let k = target.top_k;
    if k == 0 || k >= v {
        let q = log_q.clone().exp();
        return (q * (log_q - log_p)).sum_dim(1).mean();
    }
    let device = log_q.device();
    let (log_q_top, idx) = log_q.clone().topk_with_indices(k, 1);
    let log_p_top = log_p.clone().gather(1, idx.clone());
    let q_top = log_q_top.clone().exp();
    let head = (q_top * (log_q_top - log_p_top)).sum_dim(1);
    // Tail masses summed over the tail itself (1 − Σ top would cancel to rounding noise).
    let top_mask = Tensor::<2>::zeros([n, v], &device).scatter(
        1,
        idx,
        Tensor::<2>::ones([n, k], &device),
        IndexingUpdateOp::Add,
    );
    let in_tail = top_mask.neg().add_scalar(1.0);
    let q_tail = (log_q.exp() * in_tail.clone()).sum_dim(1);
    let p_tail = (log_p.exp() * in_tail).sum_dim(1);
    // Clamped inside the logs only: a zero teacher tail contributes 0 · finite = 0.
    let tiny = 1e-30;
    let tail = q_tail.clone() * (q_tail.clamp_min(tiny).log() - p_tail.clamp_min(tiny).log());
    (head + tail).mean()
}

/// The loss the student minimises besides its auxiliary losses:
/// `(1 − w)·CE + w·T²·KL`.
pub fn mixed_loss(lm: Tensor<1>, kl: Tensor<1>, target: &DistillTarget) -> Tensor<1> {
    let (w, t) = (target.weight, target.temperature);
    lm.mul_scalar(1.0 - w) + kl.mul_scalar(w * t * t)
}
