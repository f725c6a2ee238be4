//! Fused element-wise kernels for the two chains that dominate a small step's non-matmul time
//! on flex (docs/performance.md, "What the figures depend on"):
//!
//! - [`swiglu`]: `silu(gate) · up` in one pass, its backward in one more (burn composes it
//!   from sigmoid, two products and their backwards, with a scalar libm `exp` per element in
//!   the forward and again in the sigmoid's backward);
//! - [`causal_softmax`]: scale, causal mask and softmax in one pass per row, backward in one
//!   (burn composes a `[T, T]` mask built and expanded every step, `mask_fill`, max, subtract,
//!   `exp`, sum and divide, and autodiff's `exp` backward recomputes the `exp`);
//! - [`causal_logit_max`]: the largest scaled logit a query may attend to (the stability
//!   probe), without the masked copy of the scores it used to read;
//! - [`cross_entropy_rows`]: each position's cross-entropy in one pass over its logits (and
//!   the gradient in one more), with libm's scalar `expf` of burn's `log_softmax` replaced;
//! - [`rms_norm`]: RMSNorm in one pass, its backward (input and scale) in one more (burn's
//!   `RmsNorm` composes square, mean, add, sqrt, divide and multiply, each with a backward).
//!
//! A burn backend extension for flex (`flex.rs`: plain loops over slices with a polynomial
//! `exp`, compiled for AVX2/AVX-512 and chosen at run time) with the autodiff backward written
//! here. Other devices (wgpu, where burn's fusion already merges element-wise chains) take
//! the composed path in the same function, which is also the reference the tests hold the
//! kernels to.

mod flex;

use burn::backend::autodiff::{
    Autodiff,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::{
    AutodiffBackend, Backend, Dispatch, backend_extension,
    tensor::{FloatTensor, IntTensor},
};
use burn::nn::RmsNorm;
use burn::prelude::*;

use super::backward::{give, take};
use burn::tensor::DType;
use burn::tensor::activation::{log_softmax, silu, softmax};

/// The fused kernels: flex computes them, autodiff wraps them with the backwards below.
#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    /// `silu(gate) · up`, element-wise over equal shapes.
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `(d_gate, d_up)` for an output gradient `dy`.
    fn swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
    /// `scores: [.., T, T]` → softmax over the last axis of `scores · scale`, key j > query i
    /// masked (weight 0).
    fn causal_softmax(scores: FloatTensor<Self>, scale: f32) -> FloatTensor<Self>;
    /// `scale · y · (dy − Σ_j dy·y)` from the weights `y` and their gradient `dy`.
    fn causal_softmax_backward(
        y: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self>;
    /// `[1]`: the largest `scores · scale` over the unmasked entries (j ≤ i).
    fn causal_logit_max(scores: FloatTensor<Self>, scale: f32) -> FloatTensor<Self>;
    /// `logits: [N, V]`, `targets: [N]` class indices → `(loss, lse)`, both `[N]`: each row's
    /// cross-entropy `lse − logit[target]` and its log-partition `lse = log Σ_v exp(logit_v)`.
    fn cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
    /// `d logits = dy_n · (exp(logits_n − lse_n) − onehot(target_n))` for a loss gradient `dy`.
    fn cross_entropy_backward(
        logits: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        targets: IntTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// `x: [N, d]`, `gamma: [d]` → `(y, inv_rms)`: `y = x · r · gamma` per row with
    /// `r = 1 / √(mean(x²) + eps)`, and the rows' `r` `[N]`.
    fn rms_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        eps: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
    /// `(dx, dgamma)` for an output gradient `dy`, from the forward's `inv_rms`:
    /// `dx = r · (dy·gamma − x̂ · mean(dy·gamma·x̂))` with `x̂ = x · r`, `dgamma = Σ_rows dy · x̂`.
    fn rms_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        inv_rms: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// On a device with the kernels, in f32 (other dtypes, as the f64 gradient checks use, take
/// the composed path).
fn fusable<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32 && crate::kernels::on_flex(&t.device())
}

/// `silu(gate) · up`, the SwiGLU hidden activation, for tensors of one shape.
pub fn swiglu<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    if !fusable(&gate) {
        return swiglu_composed(gate, up);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::swiglu(
        gate.into_dispatch(),
        up.into_dispatch(),
    ))
}

/// [`swiglu`] from burn's own ops: what runs elsewhere, and the tests' reference.
pub fn swiglu_composed<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    silu(gate) * up
}

/// Attention weights from raw scores `q·kᵀ` `[B, H, T, T]`: softmax over keys of
/// `scores · scale` with the future (key after query) masked.
pub fn causal_softmax(scores: Tensor<4>, scale: f32) -> Tensor<4> {
    if !fusable(&scores) {
        return causal_softmax_composed(scores, scale);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::causal_softmax(
        scores.into_dispatch(),
        scale,
    ))
}

/// [`causal_softmax`] from burn's own ops (the lab's attention before the fused kernel).
pub fn causal_softmax_composed(scores: Tensor<4>, scale: f32) -> Tensor<4> {
    softmax(masked(scores, scale), 3)
}

/// The largest scaled logit a query may attend to, `[1]`, outside the autodiff graph.
pub fn causal_logit_max(scores: Tensor<4>, scale: f32) -> Tensor<1> {
    let scores = scores.detach();
    if !fusable(&scores) {
        return masked(scores, scale).max();
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::causal_logit_max(
        scores.into_dispatch(),
        scale,
    ))
}

/// Cross-entropy (nats) of every row of `logits: [N, V]` against `targets: [N]`, `[N]`: on
/// flex one pass for the log-partition and one for the gradient (burn composes `log_softmax`
/// from max, subtract, `exp`, sum and `log`, a `gather` and their backwards).
pub fn cross_entropy_rows(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    if !fusable(&logits) {
        return cross_entropy_rows_composed(logits, targets);
    }
    cross_entropy_fused(logits, targets).0
}

/// [`cross_entropy_rows`] and each row's log-partition `log Σ_v exp(logit_v)` (detached, the
/// output-logit probe): on flex the kernel computes the second on its way to the first.
pub fn cross_entropy_and_log_partition_rows(
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
) -> (Tensor<1>, Tensor<1>) {
    if !fusable(&logits) {
        let lse = log_partition_composed(logits.clone().detach());
        return (cross_entropy_rows_composed(logits, targets), lse);
    }
    cross_entropy_fused(logits, targets)
}

fn cross_entropy_fused(logits: Tensor<2>, targets: Tensor<1, Int>) -> (Tensor<1>, Tensor<1>) {
    let (loss, lse) =
        <Dispatch as FusedOps>::cross_entropy(logits.into_dispatch(), targets.into_dispatch());
    (
        Tensor::from_dispatch(loss),
        Tensor::from_dispatch(lse).detach(),
    )
}

/// Each row's `log Σ_v exp(logit_v)` from burn's own ops, `[N]`, stabilised by the row's max
/// (detached: a constant shift changes neither the value nor the gradient). Differentiable;
/// the output-logit probe detaches its input, the router's z-loss does not.
pub fn log_partition_composed(logits: Tensor<2>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let max = logits.clone().detach().max_dim(1);
    ((logits - max.clone()).exp().sum_dim(1).log() + max).reshape([n])
}

/// [`cross_entropy_rows`] from burn's own ops: what runs elsewhere, and the tests' reference.
pub fn cross_entropy_rows_composed(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [n] = targets.dims();
    log_softmax(logits, 1)
        .gather(1, targets.reshape([n, 1]))
        .reshape([n])
        .neg()
}

/// `norm` applied to `x: [.., d]` (each row over its last axis), as burn's
/// [`RmsNorm::forward`] computes it: that is the path elsewhere, and the tests' reference.
pub fn rms_norm<const D: usize>(norm: &RmsNorm, x: Tensor<D>) -> Tensor<D> {
    if !fusable(&x) {
        return norm.forward(x);
    }
    let dims = x.dims();
    let d = dims[D - 1];
    let rows = dims.iter().product::<usize>() / d.max(1);
    let (y, _) = <Dispatch as FusedOps>::rms_norm(
        x.reshape([rows, d]).into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.epsilon as f32,
    );
    Tensor::<2>::from_dispatch(y).reshape(dims)
}

/// `scores · scale` with the future set to −∞.
fn masked(scores: Tensor<4>, scale: f32) -> Tensor<4> {
    let [b, h, t, _] = scores.dims();
    let future = Tensor::<2, Bool>::tril_mask([t, t], 0, &scores.device())
        .unsqueeze::<4>()
        .expand([b, h, t, t]);
    scores
        .mul_scalar(scale)
        .mask_fill(future, f32::NEG_INFINITY)
}

#[derive(Debug)]
struct SwigluBackward;

impl<B: FusedOps> Backward<B, 2> for SwigluBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([gate_id, up_id], dy, (gate, up)) = take::<B, _, 2>(ops, grads);
        let (d_gate, d_up) = B::swiglu_backward(gate, up, dy);
        give::<B>(grads, gate_id, || d_gate);
        give::<B>(grads, up_id, || d_up);
    }
}

#[derive(Debug)]
struct CausalSoftmaxBackward;

impl<B: FusedOps> Backward<B, 1> for CausalSoftmaxBackward {
    type State = (FloatTensor<B>, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([x], dy, (y, scale)) = take::<B, _, 1>(ops, grads);
        give::<B>(grads, x, || B::causal_softmax_backward(y, dy, scale));
    }
}

#[derive(Debug)]
struct CrossEntropyBackward;

impl<B: FusedOps> Backward<B, 1> for CrossEntropyBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, IntTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([x], dy, (logits, lse, targets)) = take::<B, _, 1>(ops, grads);
        give::<B>(grads, x, || {
            B::cross_entropy_backward(logits, lse, targets, dy)
        });
    }
}

#[derive(Debug)]
struct RmsNormBackward;

impl<B: FusedOps> Backward<B, 2> for RmsNormBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([x_id, gamma_id], dy, (x, gamma, inv_rms)) = take::<B, _, 2>(ops, grads);
        let (dx, d_gamma) = B::rms_norm_backward(x, gamma, inv_rms, dy);
        give::<B>(grads, x_id, || dx);
        give::<B>(grads, gamma_id, || d_gamma);
    }
}

impl<B: FusedOps, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        match SwigluBackward
            .prepare::<C>([gate.node(), up.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (g, u) = (gate.primitive().clone(), up.primitive().clone());
                let y = B::swiglu(g.clone(), u.clone());
                prep.finish((g, u), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::swiglu(gate.into_primitive(), up.into_primitive()))
            }
        }
    }

    fn causal_softmax(scores: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        match CausalSoftmaxBackward
            .prepare::<C>([scores.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::causal_softmax(scores.into_primitive(), scale);
                prep.finish((y.clone(), scale), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::causal_softmax(scores.into_primitive(), scale))
            }
        }
    }

    // The log-partition comes back as a constant (the loss carries the gradient).
    fn cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        match CrossEntropyBackward
            .prepare::<C>([logits.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = logits.into_primitive();
                let (loss, lse) = B::cross_entropy(x.clone(), targets.clone());
                let loss = prep.finish((x, lse.clone(), targets), loss);
                (loss, Self::from_inner(lse))
            }
            OpsKind::UnTracked(prep) => {
                let (loss, lse) = B::cross_entropy(logits.into_primitive(), targets);
                (prep.finish(loss), Self::from_inner(lse))
            }
        }
    }

    // The rows' inverse RMS comes back as a constant (the output carries the gradient).
    fn rms_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        eps: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        match RmsNormBackward
            .prepare::<C>([x.node(), gamma.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, gamma) = (x.into_primitive(), gamma.into_primitive());
                let (y, inv_rms) = B::rms_norm(x.clone(), gamma.clone(), eps);
                let y = prep.finish((x, gamma, inv_rms.clone()), y);
                (y, Self::from_inner(inv_rms))
            }
            OpsKind::UnTracked(prep) => {
                let (y, inv_rms) = B::rms_norm(x.into_primitive(), gamma.into_primitive(), eps);
                (prep.finish(y), Self::from_inner(inv_rms))
            }
        }
    }

    // The backwards and the probe are not differentiated themselves: computed on the inner
    // backend, their results constants.
    fn swiglu_backward(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (d_gate, d_up) = B::swiglu_backward(
            gate.into_primitive(),
            up.into_primitive(),
            dy.into_primitive(),
        );
        (Self::from_inner(d_gate), Self::from_inner(d_up))
    }

    fn causal_softmax_backward(
        y: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self> {
        let d = B::causal_softmax_backward(y.into_primitive(), dy.into_primitive(), scale);
        Self::from_inner(d)
    }

    fn causal_logit_max(scores: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        Self::from_inner(B::causal_logit_max(scores.into_primitive(), scale))
    }

    fn cross_entropy_backward(
        logits: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        targets: IntTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let d = B::cross_entropy_backward(
            logits.into_primitive(),
            lse.into_primitive(),
            targets,
            dy.into_primitive(),
        );
        Self::from_inner(d)
    }

    fn rms_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        inv_rms: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, d_gamma) = B::rms_norm_backward(
            x.into_primitive(),
            gamma.into_primitive(),
            inv_rms.into_primitive(),
            dy.into_primitive(),
        );
        (Self::from_inner(dx), Self::from_inner(d_gamma))
    }
}
