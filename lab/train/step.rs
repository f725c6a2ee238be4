//! One optimisation step, and the optimizer it uses.

use burn::module::ParamGroup;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use super::distill::{DistillTarget, kl_to_teacher, mixed_loss};
use crate::kernels::adamw::FusedAdamW;
use crate::kernels::clip;
use crate::model::Transformer;
use crate::model::transformer::{ModelOutput, cross_entropy_and_log_partition};
use crate::spec::TrainSpec;

/// The optimizer the spec asks for: AdamW, with weight decay on matrices only. Norm gains (the
/// only rank-1 parameters, all named `gamma`) go to a second group without decay.
/// The update runs in one pass per parameter on flex ([`FusedAdamW`]; burn's AdamW elsewhere).
pub fn optimizer(train: &TrainSpec) -> ModuleOptimizer {
    let adamw = |wd: f64| {
        FusedAdamW::new(
            train.beta1 as f32,
            train.beta2 as f32,
            train.eps as f32,
            wd as f32,
        )
    };
    ModuleOptimizer::from(adamw(train.weight_decay)).with_group(
        ParamGroup::from_predicate("gamma"),
        adamw(0.0),
        None,
    )
}

/// One step's data: token ids `[B, T]` and, for a distilled run, the teacher's logits.
pub struct StepBatch {
    pub inputs: Tensor<2, Int>,
    pub targets: Tensor<2, Int>,
    pub distill: Option<DistillTarget>,
}

impl StepBatch {
    pub fn new(inputs: Tensor<2, Int>, targets: Tensor<2, Int>) -> Self {
        StepBatch {
            inputs,
            targets,
            distill: None,
        }
    }
}

/// What one optimisation step measured.
pub struct StepOutput {
    pub model: Transformer,
    pub lm_loss: f64,
    pub balance_loss: f64,
    pub z_loss: f64,
    /// `KL(teacher_T ‖ student_T)` of a distilled run (before its weight and T²).
    pub distill_kl: Option<f64>,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// False when the loss or gradient was non-finite: the update was skipped.
    pub applied: bool,
    /// Router state this step routed with (before its update), read in the same read-back
    /// as the scalars: (block, quantity, per-expert values). Empty for most routers.
    pub router_state: Vec<(usize, &'static str, Vec<f64>)>,
    pub probes: Probes,
}

/// The step's stability proxies (Wortsman et al. 2023), read in the same read-back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probes {
    /// Per block: the largest pre-softmax attention logit.
    pub attn_logit_max: Vec<f64>,
    /// Mean over positions of the output log-partition `log Σ exp(logits)`.
    pub output_log_z: f64,
    /// Per block: the largest router logit (`None`: dense block, or a router without logits).
    pub router_logit_max: Vec<Option<f64>>,
}

/// The step's one host read-back: everything it reports, queued as `[n]` tensors and read in
/// one transfer after the step's work is queued; each piece is read by the [`Slot`] that
/// queuing it returned, not by its position.
#[derive(Default)]
struct ReadBack {
    tensors: Vec<Tensor<1>>,
    len: usize,
}

/// Where one queued tensor's values sit in the read-back.
#[derive(Clone, Copy)]
struct Slot {
    at: usize,
    len: usize,
}

/// The values read back.
struct Values(Vec<f32>);

impl ReadBack {
    fn queue(&mut self, t: Tensor<1>) -> Slot {
        let slot = Slot {
            at: self.len,
            len: t.dims()[0],
        };
        self.len += slot.len;
        self.tensors.push(t);
        slot
    }

    fn read(self) -> Values {
        let values = Tensor::cat(self.tensors, 0)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 scalars");
        Values(values)
    }
}

impl Values {
    fn scalar(&self, s: Slot) -> f64 {
        self.0[s.at] as f64
    }
    fn vector(&self, s: Slot) -> Vec<f64> {
        self.0[s.at..s.at + s.len]
            .iter()
            .map(|v| *v as f64)
            .collect()
    }
}

/// Where a forward's probes sit in the read-back.
struct ProbeSlots {
    attn_logit_max: Vec<Slot>,
    output_log_z: Slot,
    router_logit_max: Vec<Option<Slot>>,
}

impl ProbeSlots {
    /// Queue the probe tensors of a forward, each `[1]`.
    fn queue(out: &ModelOutput, output_log_z: Tensor<1>, rb: &mut ReadBack) -> ProbeSlots {
        ProbeSlots {
            attn_logit_max: (out.attn_logit_max.iter())
                .map(|t| rb.queue(t.clone()))
                .collect(),
            output_log_z: rb.queue(output_log_z),
            router_logit_max: (out.moe.iter())
                .map(|a| {
                    let logit_max = a.as_ref().and_then(|a| a.stats.logit_max.clone());
                    logit_max.map(|t| rb.queue(t))
                })
                .collect(),
        }
    }

    fn read(&self, v: &Values) -> Probes {
        Probes {
            attn_logit_max: self.attn_logit_max.iter().map(|s| v.scalar(*s)).collect(),
            output_log_z: v.scalar(self.output_log_z),
            router_logit_max: (self.router_logit_max.iter())
                .map(|s| s.map(|s| v.scalar(s)))
                .collect(),
        }
    }
}

/// The language-model loss, the KL to the teacher (distilled runs), what the step minimises
/// besides the auxiliary losses (the LM loss, or `(1 − w)·CE + w·T²·KL`), and the output
/// log-partition probe (from the same pass over the logits as the LM loss).
fn objective(
    out: &ModelOutput,
    targets: Tensor<2, Int>,
    distill: Option<&DistillTarget>,
) -> (Tensor<1>, Option<Tensor<1>>, Tensor<1>, Tensor<1>) {
    let (lm, log_z) = cross_entropy_and_log_partition(out.logits.clone(), targets);
    match distill {
        Some(t) => {
            let kl = kl_to_teacher(out.logits.clone(), t);
            let mixed = mixed_loss(lm.clone(), kl.clone(), t);
            (lm, Some(kl), mixed, log_z)
        }
        None => (lm.clone(), None, lm, log_z),
    }
}

/// One step: forward, losses, backward, global-norm clipping, AdamW update, the routers'
/// after-step updates. The only host read-back is what it reports ([`ReadBack`]: the losses,
/// the gradient norm, any router state and the probes), read once after the step's work is
/// queued.
pub fn train_step(
    model: Transformer,
    optim: &mut ModuleOptimizer,
    batch: StepBatch,
    lr: f64,
    grad_clip: f64,
    device: &Device,
) -> StepOutput {
    let out = model.forward(batch.inputs);
    let (lm, kl, objective, log_z) = objective(&out, batch.targets, batch.distill.as_ref());
    let (balance, z) = out.aux_losses();
    let loss = objective + balance.clone() + z.clone();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let norm = clip::global_norm(&model, &grads, device);
    let mut rb = ReadBack::default();
    let [lm_slot, balance_slot, z_slot, norm_slot] =
        [lm, balance, z, norm.clone()].map(|t| rb.queue(t.detach()));
    let state: Vec<_> = (model.router_state().into_iter())
        .map(|(layer, name, t)| (layer, name, rb.queue(t)))
        .collect();
    let kl_slot = kl.map(|k| rb.queue(k.detach()));
    let probe_slots = ProbeSlots::queue(&out, log_z, &mut rb);
    let values = rb.read();

    let [lm_loss, balance_loss, z_loss, grad_norm] =
        [lm_slot, balance_slot, z_slot, norm_slot].map(|s| values.scalar(s));
    let distill_kl = kl_slot.map(|s| values.scalar(s));
    let applied = (lm_loss + balance_loss + z_loss + distill_kl.unwrap_or(0.0)).is_finite()
        && grad_norm.is_finite();
    // A non-finite loss or gradient skips the update: the model comes back as it was.
    let model = match applied {
        false => model,
        true => {
            let grads = match grad_clip > 0.0 && clip::scales(grad_norm, grad_clip) {
                true => clip::clip_to(&model, grads, norm, grad_clip),
                false => grads,
            };
            optim.step(lr, model, grads).after_step(&out.moe)
        }
    };
    StepOutput {
        model,
        lm_loss,
        balance_loss,
        z_loss,
        distill_kl,
        grad_norm,
        applied,
        router_state: (state.into_iter())
            .map(|(layer, name, s)| (layer, name, values.vector(s)))
            .collect(),
        probes: probe_slots.read(&values),
    }
}
