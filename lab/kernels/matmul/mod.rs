//! The model's matmuls (linear layers, attention, the feed-forwards, the LM head): on flex a
//! backend extension whose product gemm writes straight into an output the lab allocates
//! (`kernels::gemm`), forward and backward; elsewhere burn's own matmul.
//!
//! `matmul(a [.., m, k], b [.., k, n]) -> [.., m, n]`, where b's leading (batch) dimensions
//! equal a's or are all 1 (one matrix for every batch: a layer's weights). Backward:
//! `da = dc · bᵀ`, `db = aᵀ · dc`, summed over the batch when b was shared. Other broadcasts
//! take burn's matmul.
//!
//! - `flex.rs`: the product on flex;
//! - here: the extension trait, the tensor-level functions and the autodiff backward.

mod flex;

use burn::backend::autodiff::{
    Autodiff,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension, tensor::FloatTensor};
use burn::nn::Linear;
use burn::prelude::*;

use super::backward::{give, take};
use burn::tensor::{DType, Shape};

/// The extension: flex computes it, autodiff wraps it with the backward below.
#[backend_extension(Flex, Autodiff)]
pub trait MatmulOps: Backend {
    /// `a: [.., m, k]`, `b: [.., k, n]` (batch dimensions equal to a's, or all 1) →
    /// `[.., m, n]`.
    fn shared_matmul(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `a.matmul(b)` for `a: [.., m, k]`, `b: [.., k, n]`: through the extension on flex (f32 or
/// f64) when b's batch dimensions equal a's or are all 1, else burn's matmul.
pub fn matmul<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    if !extends(&a, &b) {
        return a.matmul(b);
    }
    Tensor::from_dispatch(<Dispatch as MatmulOps>::shared_matmul(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

/// `layer` applied to `x: [.., d_in]`, as burn's [`Linear::forward`] computes it (that is the
/// path elsewhere, and the tests' reference): the rows of x times the weight `[d_in, d_out]`,
/// plus the bias.
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let weight = layer.weight.val();
    if !on_flex_real(&x) || x.dtype() != weight.dtype() {
        return layer.forward(x);
    }
    let mut dims = x.dims();
    let [d_in, d_out] = weight.dims();
    let rows = dims.iter().product::<usize>() / d_in.max(1);
    let y = matmul(x.reshape([rows, d_in]), weight);
    let y = match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze(),
        None => y,
    };
    dims[D - 1] = d_out;
    y.reshape(dims)
}

/// On flex, in f32 or f64, with b's batch dimensions a's or all 1.
fn extends<const D: usize>(a: &Tensor<D>, b: &Tensor<D>) -> bool {
    let (da, db) = (a.dims(), b.dims());
    let batch = &db[..D - 2];
    on_flex_real(a)
        && a.dtype() == b.dtype()
        && (batch == &da[..D - 2] || batch.iter().all(|&d| d == 1))
}

/// On flex, in f32 or f64: where the extension runs.
fn on_flex_real<const D: usize>(t: &Tensor<D>) -> bool {
    crate::kernels::on_flex(&t.device()) && matches!(t.dtype(), DType::F32 | DType::F64)
}

#[derive(Debug)]
struct MatmulBackward;

impl<B: MatmulOps> Backward<B, 2> for MatmulBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([a_id, b_id], dc, (a, b)) = take::<B, _, 2>(ops, grads);
        let rank = a.shape().num_dims();
        let b_shape = b.shape();
        give::<B>(grads, b_id, || weight_grad::<B>(a, dc.clone(), b_shape));
        let b_t = || B::float_swap_dims(b, rank - 2, rank - 1);
        give::<B>(grads, a_id, || B::shared_matmul(dc, b_t()));
    }
}

/// `db = aᵀ · dc` in b's shape: batch by batch, or summed over the batch when b was one
/// matrix for all of it (then as one product of the stacked rows, `[Σ m, k]ᵀ · [Σ m, n]`).
fn weight_grad<B: MatmulOps>(a: FloatTensor<B>, dc: FloatTensor<B>, b: Shape) -> FloatTensor<B> {
    let rank = b.num_dims();
    let (sa, sc) = (a.shape(), dc.shape());
    let shared = sa[..rank - 2] != b[..rank - 2];
    if !shared {
        return B::shared_matmul(B::float_swap_dims(a, rank - 2, rank - 1), dc);
    }
    let rows = sa.num_elements() / sa[rank - 1].max(1);
    let a = B::float_reshape(a, Shape::from(vec![rows, sa[rank - 1]]));
    let dc = B::float_reshape(dc, Shape::from(vec![rows, sc[rank - 1]]));
    B::float_reshape(B::shared_matmul(B::float_swap_dims(a, 0, 1), dc), b)
}

impl<B: MatmulOps, C: CheckpointStrategy> MatmulOps for Autodiff<B, C> {
    fn shared_matmul(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        match MatmulBackward
            .prepare::<C>([a.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (a, b) = (a.into_primitive(), b.into_primitive());
                let c = B::shared_matmul(a.clone(), b.clone());
                prep.finish((a, b), c)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::shared_matmul(a.into_primitive(), b.into_primitive()))
            }
        }
    }
}
