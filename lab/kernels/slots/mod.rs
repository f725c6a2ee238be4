//! Token-slots to expert rows and back, each in one pass on flex: the grouped dispatch's data
//! movement (`super::dispatch`) as two operations with their own backward.
//!
//! - [`to_rows`]: `rows[slot_row[s]] = x[s mod N]` for the S = k·N slots (slot s = choice·N +
//!   token), `slot_row` a permutation of `0..S`. Composed, that is a `repeat_dim` of `x`, a
//!   zeroed `[S, d]` buffer and a `select_assign`; its backward a `select` and a sum over the k
//!   copies.
//! - [`combine`]: `y[t] = Σ_j gate[j·N + t] · rows[slot_row[j·N + t]]`. Composed, a `select`, a
//!   product with the gates and a sum over k; its backward five more passes and a zeroed
//!   scatter.
//!
//! Composed, they are a large part of the MoE step's extra time over the dense step at the
//! sweeps' shapes (docs/performance.md, "What the figures depend on"). Other devices take the composed
//! path in the same function, which is also the tests' reference (`tests/it/dispatch.rs`).

mod flex;

use burn::backend::autodiff::{
    Autodiff,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::{
    AutodiffBackend, Backend, Dispatch, TensorMetadata, backend_extension,
    tensor::{FloatTensor, IntTensor},
};
use burn::prelude::*;

use super::backward::{give, take};
use burn::tensor::{DType, IndexingUpdateOp};

/// The slot movements: flex computes them, autodiff wraps them with the backwards below.
#[backend_extension(Flex, Autodiff)]
pub trait SlotOps: Backend {
    /// `x: [N, d]`, `slot_row: [k·N]` a permutation → `rows: [k·N, d]`,
    /// `rows[slot_row[s]] = x[s mod N]`.
    fn slots_to_rows(x: FloatTensor<Self>, slot_row: IntTensor<Self>) -> FloatTensor<Self>;
    /// `rows: [S, d]`, `slot_row: [S]` → `[N, d]` with N = S / k: `Σ_j rows[slot_row[j·N + t]]`
    /// (the backward of [`slots_to_rows`](SlotOps::slots_to_rows)).
    fn rows_to_tokens(
        rows: FloatTensor<Self>,
        slot_row: IntTensor<Self>,
        top_k: usize,
    ) -> FloatTensor<Self>;
    /// `rows: [S, d]`, `slot_row: [S]`, `gate: [S, 1]` → `y: [N, d]` with N = S / k,
    /// `y[t] = Σ_j gate[j·N + t] · rows[slot_row[j·N + t]]`.
    fn combine_rows(
        rows: FloatTensor<Self>,
        slot_row: IntTensor<Self>,
        gate: FloatTensor<Self>,
        top_k: usize,
    ) -> FloatTensor<Self>;
    /// The backward of [`combine_rows`](SlotOps::combine_rows) for an output gradient
    /// `dy: [N, d]` → `(d_rows [S, d], d_gate [S, 1])`:
    /// `d_rows[slot_row[s]] = gate[s] · dy[s mod N]`, `d_gate[s] = rows[slot_row[s]] · dy[s mod N]`.
    fn combine_rows_backward(
        rows: FloatTensor<Self>,
        slot_row: IntTensor<Self>,
        gate: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

fn fusable(t: &Tensor<2>) -> bool {
    t.dtype() == DType::F32 && crate::kernels::on_flex(&t.device())
}

/// `x: [N, d]` → `[k·N, d]`: slot s = j·N + t (token t's j-th choice) at row `slot_row[s]`.
/// `slot_row` must be a permutation of `0..k·N` (every row written once).
pub fn to_rows(x: Tensor<2>, slot_row: Tensor<1, Int>) -> Tensor<2> {
    if !fusable(&x) {
        return to_rows_composed(x, slot_row);
    }
    Tensor::from_dispatch(<Dispatch as SlotOps>::slots_to_rows(
        x.into_dispatch(),
        slot_row.into_dispatch(),
    ))
}

/// [`to_rows`] from burn's own ops: what runs elsewhere, and the tests' reference.
pub fn to_rows_composed(x: Tensor<2>, slot_row: Tensor<1, Int>) -> Tensor<2> {
    let [n, d] = x.dims();
    let slots = slot_row.dims()[0];
    let slot_x = x.repeat_dim(0, slots / n.max(1));
    Tensor::<2>::zeros([slots, d], &slot_x.device()).select_assign(
        0,
        slot_row,
        slot_x,
        IndexingUpdateOp::Add,
    )
}

/// `rows: [S, d]` → `[S / k, d]`: each token's k slots' rows (`slot_row`), times their gates
/// `[S, 1]`, summed in choice order.
pub fn combine(
    rows: Tensor<2>,
    slot_row: Tensor<1, Int>,
    gate: Tensor<2>,
    top_k: usize,
) -> Tensor<2> {
    if !fusable(&rows) {
        return combine_composed(rows, slot_row, gate, top_k);
    }
    Tensor::from_dispatch(<Dispatch as SlotOps>::combine_rows(
        rows.into_dispatch(),
        slot_row.into_dispatch(),
        gate.into_dispatch(),
        top_k,
    ))
}

/// [`combine`] from burn's own ops: what runs elsewhere, and the tests' reference.
pub fn combine_composed(
    rows: Tensor<2>,
    slot_row: Tensor<1, Int>,
    gate: Tensor<2>,
    top_k: usize,
) -> Tensor<2> {
    let d = rows.dims()[1];
    let tokens = slot_row.dims()[0] / top_k;
    (rows.select(0, slot_row) * gate)
        .reshape([top_k, tokens, d])
        .sum_dim(0)
        .reshape([tokens, d])
}

#[derive(Debug)]
struct ToRowsBackward;

impl<B: SlotOps> Backward<B, 1> for ToRowsBackward {
    type State = (IntTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([x], d_rows, (slot_row, top_k)) = take::<B, _, 1>(ops, grads);
        give::<B>(grads, x, || B::rows_to_tokens(d_rows, slot_row, top_k));
    }
}

#[derive(Debug)]
struct CombineBackward;

impl<B: SlotOps> Backward<B, 2> for CombineBackward {
    type State = (FloatTensor<B>, IntTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([rows_id, gate_id], dy, (rows, slot_row, gate)) = take::<B, _, 2>(ops, grads);
        let (d_rows, d_gate) = B::combine_rows_backward(rows, slot_row, gate, dy);
        give::<B>(grads, rows_id, || d_rows);
        give::<B>(grads, gate_id, || d_gate);
    }
}

impl<B: SlotOps, C: CheckpointStrategy> SlotOps for Autodiff<B, C> {
    fn slots_to_rows(x: FloatTensor<Self>, slot_row: IntTensor<Self>) -> FloatTensor<Self> {
        let top_k = slot_row.shape()[0] / x.shape()[0].max(1);
        match ToRowsBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let rows = B::slots_to_rows(x.into_primitive(), slot_row.clone());
                prep.finish((slot_row, top_k), rows)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::slots_to_rows(x.into_primitive(), slot_row)),
        }
    }

    // The backward's own operation, not differentiated: on the inner tensors.
    fn rows_to_tokens(
        rows: FloatTensor<Self>,
        slot_row: IntTensor<Self>,
        top_k: usize,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::rows_to_tokens(rows.into_primitive(), slot_row, top_k))
    }

    fn combine_rows(
        rows: FloatTensor<Self>,
        slot_row: IntTensor<Self>,
        gate: FloatTensor<Self>,
        top_k: usize,
    ) -> FloatTensor<Self> {
        match CombineBackward
            .prepare::<C>([rows.node(), gate.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (r, g) = (rows.primitive().clone(), gate.primitive().clone());
                let y = B::combine_rows(r.clone(), slot_row.clone(), g.clone(), top_k);
                prep.finish((r, slot_row, g), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::combine_rows(
                rows.into_primitive(),
                slot_row,
                gate.into_primitive(),
                top_k,
            )),
        }
    }

    // The backward's own operation, not differentiated: on the inner tensors.
    fn combine_rows_backward(
        rows: FloatTensor<Self>,
        slot_row: IntTensor<Self>,
        gate: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (d_rows, d_gate) = B::combine_rows_backward(
            rows.into_primitive(),
            slot_row,
            gate.into_primitive(),
            dy.into_primitive(),
        );
        (Self::from_inner(d_rows), Self::from_inner(d_gate))
    }
}
