//! Grouped matmul: rows sorted by expert, each contiguous group multiplied by its own expert's
//! weights read in place (MegaBlocks' "grouped GEMM"), as a custom operation of the flex and
//! cubecl (wgpu) backends with a hand-written backward.
//!
//! Why it exists: without it, a dropless MoE on fixed shapes must pad every expert's rows to
//! whole blocks (a static bound of ≈ 1.5 × the active rows) and copy one expert's weights per
//! block (`Experts::forward_blocks`); on flex those padded rows and weight copies made a dropless
//! MoE step 1.6–2× the dense step at matched FLOPs. Here each expert multiplies exactly its
//! rows: no padding, no weight copies. The group sizes are read where they live: on flex that
//! is host memory (flex *is* the host), on wgpu the kernel reads them from device memory, so
//! neither path reads anything back.
//!
//! `grouped_matmul(x [R, a], w [K, a, b], sizes [K]) -> [R, b]`: rows
//! `[o_e, o_e + sizes_e)` (o_e = sizes before e) are multiplied by `w[e]`; rows past
//! Σ sizes are zero. Backward: `dx = grouped_matmul(dy, w[e]ᵀ)` and
//! `dw[e] = x_eᵀ · dy_e` ([`GroupedMatmulOps::grouped_weight_grad`]).
//!
//! - `flex.rs`: the CPU implementation (flex's own matmul per group);
//! - `cube.rs`: the cubecl kernels (wgpu, with the `wgpu` feature; fusion sees them as opaque
//!   operations);
//! - here: the extension trait, the tensor-level function and the autodiff backward, written
//!   once for both backends.

#[cfg(feature = "wgpu")]
mod cube;
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
#[cfg(feature = "wgpu")]
use burn::tensor::Shape;

use crate::kernels::flop_meter;

/// The backend extension: flex and cubecl compute it (fusion wraps the cubecl kernels as
/// opaque operations), autodiff wraps either with the backward below.
#[backend_extension(Flex, Cube: cfg(feature = "wgpu"), Fusion: cfg(feature = "wgpu"), Autodiff)]
pub trait GroupedMatmulOps: Backend {
    /// `x: [R, a]`, `w: [K, a, b]`, `sizes: [K]` (row counts, as floats) → `[R, b]`.
    #[fusion(dtype = x, shape = product_shape(x, w))]
    fn grouped_matmul(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        sizes: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `x: [R, a]`, `dy: [R, b]`, `sizes: [K]` → `dw: [K, a, b]`, `dw[e] = x_eᵀ · dy_e` (zero
    /// for an expert without rows; rows past Σ sizes are not read).
    #[fusion(dtype = x, shape = weight_grad_shape(x, dy, sizes))]
    fn grouped_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        sizes: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// `[R, a] · [K, a, b]` → `[R, b]` (fusion's record of the output).
#[cfg(feature = "wgpu")]
fn product_shape(x: &Shape, w: &Shape) -> Shape {
    Shape::from(vec![x[0], w[2]])
}

/// `[R, a]`, `[R, b]`, `[K]` → `[K, a, b]`.
#[cfg(feature = "wgpu")]
fn weight_grad_shape(x: &Shape, dy: &Shape, sizes: &Shape) -> Shape {
    Shape::from(vec![sizes[0], x[1], dy[1]])
}

/// Whether `device` runs the grouped matmul: flex, or a cubecl device (wgpu), with or
/// without autodiff.
pub fn available(device: &Device) -> bool {
    #[cfg(feature = "wgpu")]
    if matches!(
        device.as_dispatch().clone().inner(),
        burn::backend::DispatchDevice::Cube(_)
    ) {
        return true;
    }
    crate::kernels::on_flex(device)
}

/// `x: [R, a]` rows grouped by expert, `w: [K, a, b]`, `sizes: [K]` rows per expert (summing
/// to at most R) → `[R, b]`. Counted by the FLOP meter as `2·R·a·b`: exact when the sizes sum
/// to R (dropless), an upper bound otherwise (rows past the groups are zero-filled, not
/// multiplied).
pub fn grouped_matmul(x: Tensor<2>, w: Tensor<3>, sizes: Tensor<1>) -> Tensor<2> {
    let [r, a] = x.dims();
    let [_, _, b] = w.dims();
    flop_meter::record(2.0 * (r * a * b) as f64);
    Tensor::from_dispatch(<Dispatch as GroupedMatmulOps>::grouped_matmul(
        x.into_dispatch(),
        w.into_dispatch(),
        sizes.into_dispatch(),
    ))
}

#[derive(Debug)]
struct GroupedBackward;

impl<B: GroupedMatmulOps> Backward<B, 2> for GroupedBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([x_id, w_id], dy, (x, w, sizes)) = take::<B, _, 2>(ops, grads);
        give::<B>(grads, w_id, || {
            B::grouped_weight_grad(x, dy.clone(), sizes.clone())
        });
        give::<B>(grads, x_id, || {
            B::grouped_matmul(dy, B::float_swap_dims(w, 1, 2), sizes)
        });
    }
}

impl<B: GroupedMatmulOps, C: CheckpointStrategy> GroupedMatmulOps for Autodiff<B, C> {
    fn grouped_matmul(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        sizes: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // The sizes come from routing decisions: integers, no gradient flows through them.
        let sizes = sizes.into_primitive();
        match GroupedBackward
            .prepare::<C>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, w) = (x.primitive().clone(), w.primitive().clone());
                let y = B::grouped_matmul(x.clone(), w.clone(), sizes.clone());
                prep.finish((x, w, sizes), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::grouped_matmul(
                x.into_primitive(),
                w.into_primitive(),
                sizes,
            )),
        }
    }

    /// Not differentiated itself (it is the backward's own operation): computed on the inner
    /// backend, the result a constant.
    fn grouped_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        sizes: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Autodiff::<B, C>::from_inner(B::grouped_weight_grad(
            x.into_primitive(),
            dy.into_primitive(),
            sizes.into_primitive(),
        ))
    }
}
