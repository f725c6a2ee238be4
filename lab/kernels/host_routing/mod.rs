//! Routing bookkeeping on flex, done by a loop over the routing decisions where they live: in
//! host memory, read inside the backend operation (as the grouped matmul reads its row counts),
//! so nothing is copied back or synchronised. Each replaces a chain of small tensor operations:
//!
//! - [`HostRoutingOps::top_k_indices`]: each row's k largest scores (burn sorts every row,
//!   then selects);
//! - [`HostRoutingOps::grouped_plan`]: the grouped dispatch's layout (`moe::plan`: a
//!   one-hot, prefix sums and a dozen operations per layer as tensors).
//!
//! Integers only: no gradient flows through either. Other devices keep the tensor
//! formulations, which the tests hold these equal to (`tests/it/routing.rs`,
//! `tests/it/dispatch.rs`).

mod flex;

use burn::backend::autodiff::{Autodiff, checkpoint::strategy::CheckpointStrategy};
use burn::backend::{
    AutodiffBackend, Backend, backend_extension,
    tensor::{FloatTensor, IntTensor},
};
use burn::prelude::*;

/// The loops: flex runs them; under autodiff they run on the inner tensors (no gradient).
#[backend_extension(Flex, Autodiff)]
pub trait HostRoutingOps: Backend {
    /// `x: [N, K]` → `[N, k]`: each row's k largest entries' columns, largest first, ties to
    /// the lower column, NaN above everything (`f32::total_cmp`), as burn's top-k orders them.
    fn top_k_indices(x: FloatTensor<Self>, k: usize) -> IntTensor<Self>;
    /// `slot_expert: [S]` over `experts`, each taking at most `capacity` slots (`usize::MAX`:
    /// dropless) → `(load [K], slot_row [S], sizes [K], kept [S, 1])`, as `moe::plan`
    /// defines them; `slot_row` in `slot_expert`'s integer type.
    fn grouped_plan(
        slot_expert: IntTensor<Self>,
        experts: usize,
        capacity: usize,
    ) -> (
        FloatTensor<Self>,
        IntTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );
}

impl<B: HostRoutingOps, C: CheckpointStrategy> HostRoutingOps for Autodiff<B, C> {
    fn top_k_indices(x: FloatTensor<Self>, k: usize) -> IntTensor<Self> {
        B::top_k_indices(x.into_primitive(), k)
    }

    fn grouped_plan(
        slot_expert: IntTensor<Self>,
        experts: usize,
        capacity: usize,
    ) -> (
        FloatTensor<Self>,
        IntTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        let (load, slot_row, sizes, kept) = B::grouped_plan(slot_expert, experts, capacity);
        (
            Self::from_inner(load),
            slot_row,
            Self::from_inner(sizes),
            Self::from_inner(kept),
        )
    }
}

/// `t` in the integer type `device` gives new integer tensors (what burn's own top-k returns),
/// so it mixes with them; the top-k loop writes i64, having no integer input to follow.
pub fn in_device_ints<const D: usize>(t: Tensor<D, Int>, device: &Device) -> Tensor<D, Int> {
    let dtype = Tensor::<1, Int>::empty([0], device).dtype();
    match t.dtype() == dtype {
        true => t,
        false => t.cast(burn::tensor::IntDType::from(dtype)),
    }
}
