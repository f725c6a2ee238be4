//! The router's softmax over its K experts, and the log-partition its z-loss squares, each in
//! one pass over the `[N, K]` logits, with a backward of one more.
//!
//! Why: burn composes a softmax from max, subtract, `exp`, sum and divide, and the z-loss's
//! log-sum-exp from six more operations, each a pass, an allocation and an autodiff node over a
//! tensor of only K = 8 columns at the sweeps' shapes. Those small operations were most of
//! what an MoE step spent above the dense step at d 32 (docs/performance.md, "What the figures depend on"). Rows are short, so the flex kernels are compiled for the
//! row widths routers use (4 to 64 experts, a row one or a few vectors) and loop otherwise.
//!
//! A burn backend extension for flex (`flex.rs`), the autodiff backwards here. Other devices
//! and dtypes take the composed path in the same functions, which is also the reference the
//! tests hold the kernels to (`tests/it/fused.rs`).

mod flex;

use burn::backend::autodiff::{
    Autodiff,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::{AutodiffBackend, Backend, Dispatch, backend_extension, tensor::FloatTensor};
use burn::prelude::*;

use super::backward::{give, take};
use burn::tensor::DType;

/// The kernels: flex computes them, autodiff wraps them with the backwards below.
#[backend_extension(Flex, Autodiff)]
pub trait RouterSoftmaxOps: Backend {
    /// `logits: [N, K]` → each row's softmax.
    fn router_softmax(logits: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `y · (dy − Σ_j y_j·dy_j)` per row, from the softmax `y` and its gradient `dy`.
    fn router_softmax_backward(y: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `logits: [N, K]` → `[N]`: each row's `log Σ_j exp(logit_j)`, stabilised by its max.
    fn router_log_partition(logits: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `dlse_n · exp(logit_nj − lse_n)`: the log-partition's gradient (the row's softmax).
    fn router_log_partition_backward(
        logits: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        dlse: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// On flex, in f32 (the f64 gradient checks take the composed path).
fn fused(t: &Tensor<2>) -> bool {
    t.dtype() == DType::F32 && crate::kernels::on_flex(&t.device())
}

/// Softmax over the experts of `logits: [N, K]`.
pub fn softmax(logits: Tensor<2>) -> Tensor<2> {
    if !fused(&logits) {
        return softmax_composed(logits);
    }
    Tensor::from_dispatch(<Dispatch as RouterSoftmaxOps>::router_softmax(
        logits.into_dispatch(),
    ))
}

/// [`softmax`] from burn's own ops: what runs elsewhere, and the tests' reference.
pub fn softmax_composed(logits: Tensor<2>) -> Tensor<2> {
    burn::tensor::activation::softmax(logits, 1)
}

/// Each row's `log Σ_j exp(logit_j)` of `logits: [N, K]`, `[N]`, differentiable.
pub fn log_partition(logits: Tensor<2>) -> Tensor<1> {
    if !fused(&logits) {
        return log_partition_composed(logits);
    }
    Tensor::from_dispatch(<Dispatch as RouterSoftmaxOps>::router_log_partition(
        logits.into_dispatch(),
    ))
}

/// [`log_partition`] from burn's own ops (the cross-entropy's probe shares it): the tests'
/// reference.
pub use crate::kernels::fused::log_partition_composed;

#[derive(Debug)]
struct SoftmaxBackward;

impl<B: RouterSoftmaxOps> Backward<B, 1> for SoftmaxBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([x], dy, y) = take::<B, _, 1>(ops, grads);
        give::<B>(grads, x, || B::router_softmax_backward(y, dy));
    }
}

#[derive(Debug)]
struct LogPartitionBackward;

impl<B: RouterSoftmaxOps> Backward<B, 1> for LogPartitionBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([x], dlse, (logits, lse)) = take::<B, _, 1>(ops, grads);
        give::<B>(grads, x, || {
            B::router_log_partition_backward(logits, lse, dlse)
        });
    }
}

impl<B: RouterSoftmaxOps, C: CheckpointStrategy> RouterSoftmaxOps for Autodiff<B, C> {
    fn router_softmax(logits: FloatTensor<Self>) -> FloatTensor<Self> {
        match SoftmaxBackward
            .prepare::<C>([logits.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::router_softmax(logits.into_primitive());
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::router_softmax(logits.into_primitive())),
        }
    }

    fn router_log_partition(logits: FloatTensor<Self>) -> FloatTensor<Self> {
        match LogPartitionBackward
            .prepare::<C>([logits.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = logits.into_primitive();
                let lse = B::router_log_partition(x.clone());
                prep.finish((x, lse.clone()), lse)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::router_log_partition(logits.into_primitive()))
            }
        }
    }

    // The backwards are not differentiated themselves: computed on the inner backend, their
    // results constants.
    fn router_softmax_backward(y: FloatTensor<Self>, dy: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::router_softmax_backward(
            y.into_primitive(),
            dy.into_primitive(),
        ))
    }

    fn router_log_partition_backward(
        logits: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        dlse: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::router_log_partition_backward(
            logits.into_primitive(),
            lse.into_primitive(),
            dlse.into_primitive(),
        ))
    }
}
