//! Where a batch's token-slots go: each slot's position among its expert's slots, the load,
//! and the grouped dispatch's layout (each slot's row, each expert's row count, which slots are
//! kept). Two formulations of the same integers:
//! - [`positions`] and [`grouped_layout`]: tensors on the device (a one-hot, prefix sums and
//!   a dozen small tensor operations per layer, with no host read-back): wgpu, and the
//!   buffered dispatch everywhere;
//! - [`on_host`]: one loop over the slots where the routing already lives in host memory
//!   (flex, `ffn::host_routing`), the grouped dispatch's plan there.
//!
//! `tests/it/dispatch.rs` holds them equal. No gradient flows through any of it.

use burn::backend::Dispatch;
use burn::prelude::*;

use crate::kernels::host_routing::HostRoutingOps;

/// The grouped layout of one batch's S slots over K experts.
#[derive(Clone)]
pub struct GroupedLayout {
    /// Each slot's row: expert e's kept slots at rows `[o_e, o_e + sizes_e)` in slot order,
    /// dropped slots after all kept rows in slot order, `[S]` (a permutation of `0..S`).
    pub slot_row: Tensor<1, Int>,
    /// Rows of each expert, `min(load_e, C)`, `[K]`.
    pub sizes: Tensor<1>,
    /// 1 for a kept slot, 0 for a dropped one, `[S, 1]`.
    pub kept: Tensor<2>,
}

/// `slot_expert: [S]` (slot s = choice·N + token) over `experts` → `(load [K], position
/// [S, 1])`: slots routed to each expert, and each slot's position among its expert's slots
/// in slot order (0-based, as floats).
pub fn positions(slot_expert: Tensor<1, Int>, experts: usize) -> (Tensor<1>, Tensor<2>) {
    let one_hot = expert_mask(slot_expert, experts);
    let load = one_hot.clone().sum_dim(0).reshape([experts]);
    let position = (one_hot.clone().cumsum(0) * one_hot)
        .sum_dim(1)
        .sub_scalar(1.0);
    (load, position)
}

/// The grouped layout from [`positions`], as tensors, each expert taking at most `capacity`
/// slots (`None`: dropless).
pub fn grouped_layout(
    slot_expert: &Tensor<1, Int>,
    position: Tensor<2>,
    load: Tensor<1>,
    capacity: Option<usize>,
) -> GroupedLayout {
    let slots = slot_expert.dims()[0];
    let device = position.device();
    let (sizes, kept) = match capacity {
        None => (load, Tensor::<2>::ones([slots, 1], &device)),
        Some(c) => (
            load.clamp_max(c as f32),
            position.clone().lower_elem(c as f32).float(),
        ),
    };
    let offsets = sizes.clone().cumsum(0) - sizes.clone();
    let kept_row = slot_rows(offsets, slot_expert.clone(), position).reshape([slots, 1]);
    // Dropped slots, in slot order, fill the rows after the kept ones.
    let dropped = kept.clone().neg().add_scalar(1.0);
    let dropped_row =
        (dropped.clone().cumsum(0) - dropped.clone()).add(sizes.clone().sum().reshape([1, 1]));
    let slot_row = (kept_row * kept.clone() + dropped_row * dropped)
        .reshape([slots])
        .int();
    GroupedLayout {
        slot_row,
        sizes,
        kept,
    }
}

/// [`positions`]' load and [`grouped_layout`] in one loop where the routing lives in host
/// memory (flex: `ffn::host_routing`). Slots beyond an expert's capacity, in slot order, are
/// dropped (second choices after first ones).
pub fn on_host(
    slot_expert: &Tensor<1, Int>,
    experts: usize,
    capacity: Option<usize>,
) -> (Tensor<1>, GroupedLayout) {
    let (load, slot_row, sizes, kept) = <Dispatch as HostRoutingOps>::grouped_plan(
        slot_expert.clone().into_dispatch(),
        experts,
        capacity.unwrap_or(usize::MAX),
    );
    let layout = GroupedLayout {
        slot_row: Tensor::from_dispatch(slot_row),
        sizes: Tensor::from_dispatch(sizes),
        kept: Tensor::from_dispatch(kept),
    };
    (Tensor::from_dispatch(load), layout)
}

/// `[S]` expert ids → `[S, K]` one-hot floats, built by comparison (burn's `one_hot`
/// validates its input on the host).
fn expert_mask(ids: Tensor<1, Int>, experts: usize) -> Tensor<2> {
    let s = ids.dims()[0];
    let all = Tensor::<1, Int>::arange(0..experts as i64, &ids.device())
        .reshape([1, experts])
        .expand([s, experts]);
    ids.reshape([s, 1]).expand([s, experts]).equal(all).float()
}

/// Each slot's row in an expert-contiguous buffer: its expert's first row (`offsets: [K]`)
/// plus its position among that expert's slots (`position: [S, 1]`) → `[S]` (as floats).
fn slot_rows(offsets: Tensor<1>, slot_expert: Tensor<1, Int>, position: Tensor<2>) -> Tensor<1> {
    let slots = slot_expert.dims()[0];
    (offsets.select(0, slot_expert).reshape([slots, 1]) + position).reshape([slots])
}
