//! How token-slots reach the experts and come back: one [`TokenDispatch`] per batch, with
//! [`dispatch`](TokenDispatch::dispatch) (rows laid out for the experts, an [`ExpertBatch`])
//! and [`combine`](Combine::combine) (expert outputs back to their tokens, gate-weighted), as
//! torchtitan's routed experts are; and the sizing the accounting shares with it.
//!
//! Everything stays on the device with fixed shapes (no host read-back, no sort):
//! 1. slots are the N·k (token, choice) pairs in choice-major order (every token's first
//!    choice before any second choice, as in GShard/Switch, so overflow drops second choices
//!    first);
//! 2. a slot's position among the slots of its expert is a prefix sum (cumsum) over a one-hot
//!    of the chosen experts;
//! 3. [`Dispatch::Grouped`] (every device the lab opens: flex and cubecl/wgpu, see
//!    `grouped_matmul::available`; dropless or with a capacity): expert-contiguous rows without
//!    padding, each expert's kept rows multiplied by its weights in place (see
//!    `grouped_matmul`), dropped slots after them left at zero: exactly the kept rows, no
//!    weight copies;
//! 4. [`Dispatch::Buffered`] (the tests' reference, and the fallback for a backend without the
//!    grouped matmul): `[K, C, d]` buffers, C = ⌈c·k·N/K⌉; slots at positions ≥ C are
//!    dropped: they write into, and read back from, a spare zero row, so a dropped token's FFN
//!    output is zero and it keeps only its residual. Executed expert FLOPs ≈ c × what the k
//!    active experts need; dropless needs C = N and so executes K/k × (4× for 8 experts,
//!    top-2);
//! 5. outputs return to their slots by a gather, are scaled by the gate weight and summed
//!    over the k choices.
//!
//! Gathers and scatters use burn's `select`/`select_assign`, whose cubecl kernels are serial
//! along the indexed dimension; dedicated kernels are the next step for GPU speed.

use burn::prelude::*;
use burn::tensor::{DType, IndexingUpdateOp};

use crate::kernels::grouped_matmul;
use crate::kernels::on_flex;
use crate::kernels::plan::{self, GroupedLayout};
use crate::kernels::slots;

/// Token-slots per expert per batch for a capacity factor: ⌈c·k·N/K⌉ (Switch), at most the
/// N tokens of the batch (an expert never takes a token twice).
pub fn capacity_slots(factor: f64, top_k: usize, tokens: usize, experts: usize) -> usize {
    let slots = (factor * top_k as f64 * tokens as f64 / experts as f64).ceil() as usize;
    slots.min(tokens)
}

/// How token-slots reach the experts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// One buffer of C rows per expert: C from the capacity factor, or C = N when dropless
    /// (the reference path: simple, but dropless executes K/k × the active expert FLOPs).
    Buffered,
    /// Dropless or with a capacity: kept slots sorted by expert without padding (dropped ones
    /// after them), through the grouped matmul (each expert's rows times its weights in
    /// place). Only where [`grouped_matmul::available`].
    Grouped,
}

impl Dispatch {
    /// The dispatch a token-choice layer on `device` uses: grouped where the device has the
    /// grouped matmul (every device the lab opens), else buffers.
    pub fn for_layer(device: &Device) -> Dispatch {
        match grouped_matmul::available(device) {
            true => Dispatch::Grouped,
            false => Dispatch::Buffered,
        }
    }

    /// Expert rows a token-choice layer executes per step through this dispatch, for `tokens`
    /// tokens, `k` choices each, over `experts` experts with `capacity` (`None`: dropless)
    /// slots per expert. Grouped: the S = N·k slots (exactly when dropless, a bound when some
    /// are dropped); buffered: K·C, C = N when dropless.
    pub fn expert_rows(
        self,
        tokens: usize,
        k: usize,
        experts: usize,
        capacity: Option<usize>,
    ) -> usize {
        match (self, capacity) {
            (Dispatch::Grouped, _) => tokens * k,
            (Dispatch::Buffered, Some(c)) => experts * c,
            (Dispatch::Buffered, None) => experts * tokens,
        }
    }
}

/// Rows laid out for the experts, in the form each dispatch hands them over.
// One per layer per step, moved once: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum ExpertBatch {
    /// `[K, C, d]`: expert e's rows in buffer e.
    Buffers(Tensor<3>),
    /// `rows: [S, d]` sorted by expert, `sizes: [K]` rows of each (dropped rows after them all).
    Grouped { rows: Tensor<2>, sizes: Tensor<1> },
}

/// One batch of token-choice routing: N tokens, each sent to k of K experts.
pub struct TokenDispatch {
    strategy: Dispatch,
    /// The expert of each slot, slot s = choice·N + token.
    slot_expert: Tensor<1, Int>,
    slot_gate: Tensor<2>,
    plan: Plan,
    /// Token-slots routed to each expert, before any is dropped.
    pub load: Tensor<1>,
    tokens: usize,
    top_k: usize,
    experts: usize,
    /// Slots per expert, `None` when dropless.
    capacity: Option<usize>,
}

/// Where the slots go: positions as tensors (any device; what the buffered dispatch needs),
/// or the grouped layout computed on the host, where flex keeps the routing (`plan.rs`).
// One per layer per step, moved once: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Plan {
    /// A slot's position among the slots of its expert (0-based), `[S, 1]`.
    Positions(Tensor<2>),
    Host(GroupedLayout),
}

/// What [`TokenDispatch::dispatch`] leaves for the way back.
pub struct Combine {
    /// Each slot's row in the experts' output (the spare zero row past them for a slot the
    /// buffered dispatch dropped).
    slot_row: Tensor<1, Int>,
    /// Append a zero row to the experts' output before gathering (buffered dispatch).
    spare_row: bool,
    slot_gate: Tensor<2>,
    /// 1 for a slot an expert processed, 0 for a dropped one.
    pub kept: Tensor<2>,
    tokens: usize,
    top_k: usize,
}

impl TokenDispatch {
    /// `chosen`, `gates`: each token's k experts and gate weights.
    pub fn new(
        strategy: Dispatch,
        chosen: Tensor<2, Int>,
        gates: Tensor<2>,
        experts: usize,
        capacity: Option<usize>,
    ) -> Self {
        let [n, k] = chosen.dims();
        let slot_expert = chosen.swap_dims(0, 1).reshape([n * k]);
        // The host plan makes f32 counts: flex in f32, as the lab trains (the f64 gradient
        // checks take the tensor formulation).
        let host = strategy == Dispatch::Grouped
            && gates.dtype() == DType::F32
            && on_flex(&slot_expert.device());
        let (plan, load) = if host {
            let (load, layout) = plan::on_host(&slot_expert, experts, capacity);
            (Plan::Host(layout), load)
        } else {
            let (load, position) = plan::positions(slot_expert.clone(), experts);
            (Plan::Positions(position), load)
        };
        let slot_gate = gates.swap_dims(0, 1).reshape([n * k, 1]);
        TokenDispatch {
            strategy,
            slot_expert,
            slot_gate,
            plan,
            load,
            tokens: n,
            top_k: k,
            experts,
            capacity,
        }
    }

    /// `x` → the rows the experts take, and what the way back needs.
    pub fn dispatch(self, x: Tensor<2>) -> (ExpertBatch, Combine) {
        match self.strategy {
            Dispatch::Buffered => {
                let slot_x = x.repeat_dim(0, self.top_k);
                self.buffered(slot_x)
            }
            Dispatch::Grouped => self.grouped(x),
        }
    }

    fn combine(&self, slot_row: Tensor<1, Int>, spare_row: bool, kept: Tensor<2>) -> Combine {
        Combine {
            slot_row,
            spare_row,
            slot_gate: self.slot_gate.clone(),
            kept,
            tokens: self.tokens,
            top_k: self.top_k,
        }
    }

    /// `[K, C, d]` buffers, overflow to a spare zero row.
    fn buffered(self, slot_x: Tensor<2>) -> (ExpertBatch, Combine) {
        let [slots, d] = slot_x.dims();
        let (experts, c) = (self.experts, self.capacity.unwrap_or(self.tokens));
        let Plan::Positions(position) = &self.plan else {
            unreachable!("the buffered dispatch plans with positions")
        };
        let kept = position.clone().lower_elem(c as f32);
        let row =
            self.slot_expert.clone().float().reshape([slots, 1]) * (c as f32) + position.clone();
        let spare = Tensor::<2>::full([slots, 1], (experts * c) as f32, &row.device());
        let slot_row = spare.mask_where(kept.clone(), row).reshape([slots]).int();
        let buffer = scatter_add_rows(slot_x, slot_row.clone(), experts * c + 1);
        let buffers = buffer
            .slice([0..experts * c, 0..d])
            .reshape([experts, c, d]);
        let combine = self.combine(slot_row, true, kept.float());
        (ExpertBatch::Buffers(buffers), combine)
    }

    /// Expert e's kept slots occupy rows `[o_e, o_e + kept_e)` of an `[S, d]` buffer
    /// (kept_e = min(load_e, C), o_e = the kept counts before e), dropped slots the rows after
    /// Σ kept_e, which the grouped matmul leaves at zero. Exactly the kept rows are
    /// multiplied, each run by its expert's weights in place: nothing padded or copied.
    fn grouped(self, x: Tensor<2>) -> (ExpertBatch, Combine) {
        let GroupedLayout {
            slot_row,
            sizes,
            kept,
        } = match &self.plan {
            Plan::Host(layout) => layout.clone(),
            Plan::Positions(position) => plan::grouped_layout(
                &self.slot_expert,
                position.clone(),
                self.load.clone(),
                self.capacity,
            ),
        };
        // slot_row is a permutation of the S rows: kept rows, then dropped ones.
        let rows = slots::to_rows(x, slot_row.clone());
        let combine = self.combine(slot_row, false, kept);
        (ExpertBatch::Grouped { rows, sizes }, combine)
    }
}

impl Combine {
    /// The experts' output rows `[rows, d]` → `y`: each slot's row, times its gate, summed
    /// over a token's k choices (a dropped slot contributes zero).
    pub fn combine(self, out: Tensor<2>) -> Tensor<2> {
        match self.spare_row {
            // Buffered: dropped slots share the spare row, so slots and rows are not one to
            // one; burn's ops.
            true => {
                let spare = Tensor::<2>::zeros([1, out.dims()[1]], &out.device());
                let out = Tensor::cat(vec![out, spare], 0);
                slots::combine_composed(out, self.slot_row, self.slot_gate, self.top_k)
            }
            false => slots::combine(out, self.slot_row, self.slot_gate, self.top_k),
        }
    }

    /// Slots no expert processed, `[1]`.
    pub fn dropped(&self) -> Tensor<1> {
        let slots = self.tokens * self.top_k;
        self.kept.clone().sum().neg().add_scalar(slots as f32)
    }
}

/// `values: [S, d]` added into a zeroed `[total, d]` buffer at `rows`; values sent to the same
/// row add up (a token several experts chose; the spare row dropped slots share, which nobody
/// reads).
pub fn scatter_add_rows(values: Tensor<2>, rows: Tensor<1, Int>, total: usize) -> Tensor<2> {
    let d = values.dims()[1];
    Tensor::<2>::zeros([total, d], &values.device()).select_assign(
        0,
        rows,
        values,
        IndexingUpdateOp::Add,
    )
}
