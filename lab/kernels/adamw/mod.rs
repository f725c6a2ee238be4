//! AdamW with each parameter's update in one pass on flex.
//!
//! burn's `AdamW` composes the update from a dozen tensor operations per parameter (two for
//! each moment, the bias corrections, the square root, the division, the decay and the step),
//! each a pass over the parameter that allocates its output. An MoE arm has several times the
//! dense arm's parameters at the same active FLOPs, so that walk weighs on the MoE step
//! (docs/performance.md, "What the figures depend on"). [`FusedAdamW`] does the same arithmetic,
//! operation for operation in f32, in one loop that updates the parameter and both moments in
//! place where it holds them alone. Its results are bit-identical to burn's (tested in
//! `tests/it/adamw.rs`), and its state is burn's `AdamWState`, so checkpoints keep their format.
//!
//! Other devices and dtypes take burn's `AdamW` itself.

mod flex;

use burn::backend::autodiff::{Autodiff, checkpoint::strategy::CheckpointStrategy};
use burn::backend::{AutodiffBackend, Backend, Dispatch, backend_extension, tensor::FloatTensor};
use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::prelude::*;
use burn::tensor::DType;

/// The update as a backend operation: flex computes it; under autodiff (the optimizer's
/// tensors can still be autodiff tensors, untracked) it runs on the inner flex tensors.
#[backend_extension(Flex, Autodiff)]
pub trait AdamWOps: Backend {
    /// `(param, moment_1, moment_2)` after one AdamW step with gradient `grad`, as burn's
    /// `AdamW` computes it. `first`: no moments yet (`moment_1` and `moment_2` are ignored).
    /// `coefs`: `[β₁, β₂, ε, 1 − β₁ᵗ, 1 − β₂ᵗ, 1 − lr · weight_decay, lr]` at the step's time t.
    fn adamw_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        first: bool,
        coefs: [f32; 7],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// AdamW as the lab configures it, updated in one pass per parameter on flex.
#[derive(Clone)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    /// burn's AdamW of the same configuration: what runs where the fused update does not.
    composed: AdamW,
}

impl FusedAdamW {
    /// burn's `AdamWConfig` defaults otherwise (no AMSGrad, no cautious decay, no clipping).
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        let composed = AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay)
            .build();
        FusedAdamW {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            composed,
        }
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let fusable = tensor.dtype() == DType::F32
            && grad.dtype() == DType::F32
            && crate::kernels::on_flex(&tensor.device());
        if !fusable {
            return self.composed.step(lr, tensor, grad, state);
        }
        // As burn's AdamW: time counts from 1; a missing state is the first step.
        let (time, first, moment_1, moment_2) = match state {
            Some(s) => (
                s.momentum.time + 1,
                false,
                s.momentum.moment_1,
                s.momentum.moment_2,
            ),
            None => (1, true, grad.clone(), grad.clone()),
        };
        let t = time as i32;
        // The same f32 and f64 expressions burn's AdamW evaluates, so the result is the same.
        let bias = [1f32 - self.beta_1.powi(t), 1f32 - self.beta_2.powi(t)];
        let decay_rate = lr * self.weight_decay as f64;
        let keep = if decay_rate == 0.0 {
            1.0
        } else {
            (1.0 - decay_rate) as f32
        };
        let coefs = [
            self.beta_1,
            self.beta_2,
            self.epsilon,
            bias[0],
            bias[1],
            keep,
            lr as f32,
        ];
        let (param, moment_1, moment_2) = <Dispatch as AdamWOps>::adamw_update(
            tensor.into_dispatch(),
            grad.into_dispatch(),
            moment_1.into_dispatch(),
            moment_2.into_dispatch(),
            first,
            coefs,
        );
        let momentum = AdaptiveMomentumState::new(
            time,
            Tensor::from_dispatch(moment_1),
            Tensor::from_dispatch(moment_2),
        );
        (
            Tensor::from_dispatch(param),
            Some(AdamWState::new(momentum)),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <AdamW as Optimizer>::to_device(state, device)
    }
}

/// Not differentiated: the update of untracked tensors, on their inner tensors.
impl<B: AdamWOps, C: CheckpointStrategy> AdamWOps for Autodiff<B, C> {
    fn adamw_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        first: bool,
        coefs: [f32; 7],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (p, m, v) = B::adamw_update(
            Self::inner(param),
            Self::inner(grad),
            Self::inner(moment_1),
            Self::inner(moment_2),
            first,
            coefs,
        );
        (
            Self::from_inner(p),
            Self::from_inner(m),
            Self::from_inner(v),
        )
    }
}
