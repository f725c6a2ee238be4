//! One optimisation step, and the optimizer it uses.

use burn::module::ParamGroup;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use super::clip;
use super::distill::{DistillTarget, kl_to_teacher, mixed_loss};
use crate::model::Transformer;
use crate::model::transformer::{ModelOutput, cross_entropy, mean_log_partition};
use crate::spec::TrainSpec;

/// The optimizer the spec asks for: AdamW, with weight decay on matrices only. Norm gains (the
/// only rank-1 parameters, all named `gamma`) go to a second group without decay.
pub fn optimizer(train: &TrainSpec) -> ModuleOptimizer {
    let adamw = |wd: f64| {
        AdamWConfig::new()
            .with_beta_1(train.beta1 as f32)
            .with_beta_2(train.beta2 as f32)
            .with_epsilon(train.eps as f32)
            .with_weight_decay(wd as f32)
    };
    adamw(train.weight_decay).init().with_group(
        ParamGroup::from_predicate("gamma"),
        adamw(0.0).build(),
        None,
    )
}

/// One step's data: token ids `[batch, seq]` and, for a distilled run, the teacher's logits.
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

impl Probes {
    /// The probe tensors of a forward, each `[1]`, in the order [`Probes::read`] reads them.
    fn tensors(out: &ModelOutput) -> Vec<Tensor<1>> {
        let mut t = out.attn_logit_max.clone();
        t.push(mean_log_partition(out.logits.clone()));
        t.extend(
            out.moe
                .iter()
                .flatten()
                .filter_map(|a| a.stats.logit_max.clone()),
        );
        t
    }

    /// Read back what [`Probes::tensors`] queued, from `values`.
    fn read(out: &ModelOutput, values: &[f32]) -> Probes {
        let layers = out.attn_logit_max.len();
        let mut router = values[layers + 1..].iter();
        Probes {
            attn_logit_max: values[..layers].iter().map(|v| *v as f64).collect(),
            output_log_z: values[layers] as f64,
            router_logit_max: out
                .moe
                .iter()
                .map(|a| {
                    let has = a.as_ref().is_some_and(|a| a.stats.logit_max.is_some());
                    has.then(|| *router.next().expect("one value per router") as f64)
                })
                .collect(),
        }
    }
}

/// The language-model loss, the KL to the teacher (distilled runs), and what the step
/// minimises besides the auxiliary losses: the LM loss, or `(1 − w)·CE + w·T²·KL`.
fn objective(
    out: &ModelOutput,
    targets: Tensor<2, Int>,
    distill: Option<&DistillTarget>,
) -> (Tensor<1>, Option<Tensor<1>>, Tensor<1>) {
    let lm = cross_entropy(out.logits.clone(), targets);
    match distill {
        Some(t) => {
            let kl = kl_to_teacher(out.logits.clone(), t);
            let mixed = mixed_loss(lm.clone(), kl.clone(), t);
            (lm, Some(kl), mixed)
        }
        None => (lm.clone(), None, lm),
    }
}

/// One step: forward, losses, backward, global-norm clipping, AdamW update, the routers'
/// after-step updates. The only host read-back is the four scalars returned (with any router
/// state), read once after the step's work is queued.
pub fn train_step(
    model: Transformer,
    optim: &mut ModuleOptimizer,
    batch: StepBatch,
    lr: f64,
    grad_clip: f64,
    device: &Device,
) -> StepOutput {
    let out = model.forward(batch.inputs);
    let (lm, kl, objective) = objective(&out, batch.targets, batch.distill.as_ref());
    let (balance, z) = out.aux_losses();
    let loss = objective + balance.clone() + z.clone();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let norm = clip::global_norm(&model, &grads, device);
    let state = model.router_state();
    let mut logged = vec![
        lm.detach(),
        balance.detach(),
        z.detach(),
        norm.clone().detach(),
    ];
    logged.extend(state.iter().map(|(_, _, t)| t.clone()));
    logged.extend(kl.iter().map(|k| k.clone().detach()));
    let probe_tensors = Probes::tensors(&out);
    let n_probes = probe_tensors.len();
    logged.extend(probe_tensors);
    let mut scalars: Vec<f32> = Tensor::cat(logged, 0)
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 scalars");
    let probes = Probes::read(&out, &scalars.split_off(scalars.len() - n_probes));
    let mut at = 4;
    let router_state = state
        .iter()
        .map(|(layer, name, t)| {
            let n = t.dims()[0];
            let values = scalars[at..at + n].iter().map(|v| *v as f64).collect();
            at += n;
            (*layer, *name, values)
        })
        .collect();
    let distill_kl = kl.map(|_| scalars[at] as f64);
    let [lm_loss, balance_loss, z_loss, grad_norm] = [0, 1, 2, 3].map(|i| scalars[i] as f64);
    let finite = (lm_loss + balance_loss + z_loss + distill_kl.unwrap_or(0.0)).is_finite()
        && grad_norm.is_finite();
    if !finite {
        return StepOutput {
            model,
            lm_loss,
            balance_loss,
            z_loss,
            distill_kl,
            grad_norm,
            applied: false,
            router_state,
            probes,
        };
    }
    let grads = if grad_clip > 0.0 {
        clip::clip_to(&model, grads, norm, grad_clip)
    } else {
        grads
    };
    let model = optim.step(lr, model, grads).after_step(&out.moe);
    StepOutput {
        model,
        lm_loss,
        balance_loss,
        z_loss,
        distill_kl,
        grad_norm,
        applied: true,
        router_state,
        probes,
    }
}
