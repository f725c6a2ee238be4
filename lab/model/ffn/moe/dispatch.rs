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
//! 3. [`Dispatch::Buffered`] (capacity factor c without the grouped matmul, and the reference
//!    path): `[K, C, d]` buffers, C = ⌈c·k·N/K⌉; slots at positions ≥ C are dropped: they
//!    write into, and read back from, a spare zero row, so a dropped token's FFN output is zero
//!    and it keeps only its residual. Executed expert FLOPs ≈ c × what the k active experts
//!    need; dropless through this path needs C = N and so executes K/k × (4× for 8 experts,
//!    top-2);
//! 4. [`Dispatch::Packed`] (dropless, without the grouped matmul): expert-contiguous rows, each
//!    expert's run padded to whole blocks, one batched matmul over blocks with each block's
//!    expert weights picked (by a one-hot matmul, see `Experts::forward_blocks`); a static
//!    bound of ≈ 1.5 × the active rows (see [`packed_rows`]);
//! 5. [`Dispatch::Grouped`] (where the device has the grouped matmul, i.e. flex; dropless or
//!    with a capacity): expert-contiguous rows without padding, each expert's kept rows
//!    multiplied by its weights in place (see `grouped_matmul`), dropped slots after them
//!    left at zero: exactly the kept rows, no weight copies;
//! 6. outputs return to their slots by a gather, are scaled by the gate weight and summed
//!    over the k choices.
//!
//! Gathers and scatters use burn's `select`/`select_assign`, whose cubecl kernels are serial
//! along the indexed dimension; dedicated kernels are the next step for GPU speed.

// Tensor names carry their shape (x_ND: N tokens × D model width; load_K; x_KCD), as in
// torchtitan; hence the capitals.
#![allow(non_snake_case)]

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

use crate::model::ffn::grouped_matmul;

/// Token-slots per expert per batch for a capacity factor: ⌈c·k·N/K⌉ (Switch), at most the
/// N tokens of the batch (an expert never takes a token twice).
pub fn capacity_slots(factor: f64, top_k: usize, tokens: usize, experts: usize) -> usize {
    let slots = (factor * top_k as f64 * tokens as f64 / experts as f64).ceil() as usize;
    slots.min(tokens)
}

/// Rows per block of the packed dropless dispatch for `slots` token-slots over `experts`:
/// ⌈slots / 2K⌉, half an expert's balanced load, so padding adds at most ≈ 50% rows while the
/// weights picked per layer stay ≈ 3K expert copies. (Measured on flex with `lab bench`, block
/// weights picked by a one-hot matmul: ⌈S/4K⌉ gave 1.61× / 2.53× the dense step at d 256 /
/// 512, ⌈S/2K⌉ 1.56× / 2.09×, ⌈S/K⌉ 1.77× / 2.13×; docs/performance.md.)
pub fn packed_block_rows(slots: usize, experts: usize) -> usize {
    slots.div_ceil(2 * experts).max(1)
}

/// Rows the packed dropless dispatch executes: every expert's run padded to whole blocks,
/// bounded statically by ⌈(S + K·(block − 1)) / block⌉ blocks.
pub fn packed_rows(slots: usize, experts: usize) -> usize {
    let block = packed_block_rows(slots, experts);
    (slots + experts * (block - 1)).div_ceil(block) * block
}

/// How token-slots reach the experts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// One buffer of C rows per expert: C from the capacity factor, or C = N when dropless
    /// (the reference path: simple, but dropless executes K/k × the active expert FLOPs).
    Buffered,
    /// Dropless: slots packed expert by expert, each expert's run padded to whole blocks of
    /// rows; all blocks go through one batched matmul with each block's expert weights
    /// picked (MegaBlocks-style padding, with a static bound on the rows).
    Packed,
    /// Dropless or with a capacity: kept slots sorted by expert without padding (dropped ones
    /// after them), through the grouped matmul (each expert's rows times its weights in
    /// place). Only where [`grouped_matmul::available`].
    Grouped,
}

impl Dispatch {
    /// The dispatch a token-choice layer on `device` uses: grouped where the device has the
    /// grouped matmul (flex, dropless or not), else packed blocks when dropless and buffers
    /// under a capacity factor.
    pub fn for_layer(device: &Device, dropless: bool) -> Dispatch {
        if grouped_matmul::available(device) {
            Dispatch::Grouped
        } else if dropless {
            Dispatch::Packed
        } else {
            Dispatch::Buffered
        }
    }

    /// The strategy that actually runs: packed blocks only serve dropless layers.
    fn effective(self, capacity: Option<usize>) -> Dispatch {
        match (self, capacity) {
            (Dispatch::Packed, Some(_)) => Dispatch::Buffered,
            (d, _) => d,
        }
    }

    /// Expert rows a token-choice layer executes per step through this dispatch, for `tokens`
    /// tokens, `k` choices each, over `experts` experts with `capacity` (`None`: dropless)
    /// slots per expert. Grouped: the S = N·k slots (exactly when dropless, a bound when some
    /// are dropped); packed: the static block bound (a layer with a capacity runs buffered);
    /// buffered: K·C, C = N when dropless.
    pub fn expert_rows(
        self,
        tokens: usize,
        k: usize,
        experts: usize,
        capacity: Option<usize>,
    ) -> usize {
        match (self.effective(capacity), capacity) {
            (Dispatch::Grouped, _) => tokens * k,
            (Dispatch::Packed, _) => packed_rows(tokens * k, experts),
            (Dispatch::Buffered, Some(c)) => experts * c,
            (Dispatch::Buffered, None) => experts * tokens,
        }
    }
}

/// Rows laid out for the experts, in the form each dispatch hands them over.
pub enum ExpertBatch {
    /// `x_KCD`: expert e's rows in buffer e.
    Buffers(Tensor<3>),
    /// `x_BRD`: blocks of rows, block b going to expert `expert_B[b]`.
    Blocks {
        x_BRD: Tensor<3>,
        expert_B: Tensor<1, Int>,
    },
    /// `x_SD` rows sorted by expert, `sizes_K` rows of each (dropped rows after them all).
    Grouped { x_SD: Tensor<2>, sizes_K: Tensor<1> },
}

/// One batch of token-choice routing: N tokens, each sent to k of K experts.
pub struct TokenDispatch {
    strategy: Dispatch,
    /// The expert of each slot, slot s = choice·N + token.
    expert_S: Tensor<1, Int>,
    gate_S1: Tensor<2>,
    /// A slot's position among the slots of its expert (0-based).
    position_S1: Tensor<2>,
    /// Token-slots routed to each expert, before any is dropped.
    pub load_K: Tensor<1>,
    tokens: usize,
    top_k: usize,
    experts: usize,
    /// Slots per expert, `None` when dropless.
    capacity: Option<usize>,
}

/// What [`TokenDispatch::dispatch`] leaves for the way back.
pub struct Combine {
    /// Each slot's row in the experts' output (the spare zero row past them for a slot the
    /// buffered dispatch dropped).
    row_S: Tensor<1, Int>,
    /// Append a zero row to the experts' output before gathering (buffered dispatch).
    spare_row: bool,
    gate_S1: Tensor<2>,
    /// 1 for a slot an expert processed, 0 for a dropped one.
    pub kept_S1: Tensor<2>,
    tokens: usize,
    top_k: usize,
}

impl TokenDispatch {
    /// `expert_NK`, `gate_NK`: each token's k experts and gate weights.
    pub fn new(
        strategy: Dispatch,
        expert_NK: Tensor<2, Int>,
        gate_NK: Tensor<2>,
        experts: usize,
        capacity: Option<usize>,
    ) -> Self {
        let [n, k] = expert_NK.dims();
        let expert_S = expert_NK.swap_dims(0, 1).reshape([n * k]);
        let gate_S1 = gate_NK.swap_dims(0, 1).reshape([n * k, 1]);
        let one_hot_SK = expert_mask(expert_S.clone(), experts);
        let load_K = one_hot_SK.clone().sum_dim(0).reshape([experts]);
        let position_S1 = (one_hot_SK.clone().cumsum(0) * one_hot_SK)
            .sum_dim(1)
            .sub_scalar(1.0);
        TokenDispatch {
            strategy: strategy.effective(capacity),
            expert_S,
            gate_S1,
            position_S1,
            load_K,
            tokens: n,
            top_k: k,
            experts,
            capacity,
        }
    }

    /// `x_ND` → the rows the experts take, and what the way back needs.
    pub fn dispatch(self, x_ND: Tensor<2>) -> (ExpertBatch, Combine) {
        let slot_x_SD = x_ND.repeat_dim(0, self.top_k);
        match self.strategy {
            Dispatch::Buffered => self.buffered(slot_x_SD),
            Dispatch::Packed => self.packed(slot_x_SD),
            Dispatch::Grouped => self.grouped(slot_x_SD),
        }
    }

    fn combine(&self, row_S: Tensor<1, Int>, spare_row: bool, kept_S1: Tensor<2>) -> Combine {
        Combine {
            row_S,
            spare_row,
            gate_S1: self.gate_S1.clone(),
            kept_S1,
            tokens: self.tokens,
            top_k: self.top_k,
        }
    }

    /// `[K, C, d]` buffers, overflow to a spare zero row.
    fn buffered(self, slot_x_SD: Tensor<2>) -> (ExpertBatch, Combine) {
        let [slots, d] = slot_x_SD.dims();
        let (experts, c) = (self.experts, self.capacity.unwrap_or(self.tokens));
        let kept = self.position_S1.clone().lower_elem(c as f32);
        let row = self.expert_S.clone().float().reshape([slots, 1]) * (c as f32)
            + self.position_S1.clone();
        let spare = Tensor::<2>::full([slots, 1], (experts * c) as f32, &row.device());
        let row_S = spare.mask_where(kept.clone(), row).reshape([slots]).int();
        let buffer = scatter_add_rows(slot_x_SD, row_S.clone(), experts * c + 1);
        let x_KCD = buffer
            .slice([0..experts * c, 0..d])
            .reshape([experts, c, d]);
        let combine = self.combine(row_S, true, kept.float());
        (ExpertBatch::Buffers(x_KCD), combine)
    }

    /// Expert e's slots occupy rows `[offset_e, offset_e + count_e)` of a buffer whose
    /// per-expert runs are padded to multiples of `block` rows; block j then belongs to one
    /// expert, whose weights are picked for it. The buffer has a static size,
    /// ⌈(S + K·(block − 1)) / block⌉ blocks, so no count is read back; with block = ⌈S / 2K⌉
    /// the experts execute at most ≈ 1.5 × the active expert FLOPs (vs K/k × for the buffered
    /// dropless path), at the price of picking ≈ 3K expert weight copies per layer.
    fn packed(self, slot_x_SD: Tensor<2>) -> (ExpertBatch, Combine) {
        let [slots, d] = slot_x_SD.dims();
        let experts = self.experts;
        let device = slot_x_SD.device();
        let block = packed_block_rows(slots, experts);
        let blocks = packed_rows(slots, experts) / block;
        let padded_K = self
            .load_K
            .clone()
            .div_scalar(block as f32)
            .ceil()
            .mul_scalar(block as f32);
        let ends_K = padded_K.clone().cumsum(0);
        let offsets_K = ends_K.clone() - padded_K;
        let row_S = slot_rows(offsets_K, self.expert_S.clone(), self.position_S1.clone()).int();
        let buffer = scatter_add_rows(slot_x_SD, row_S.clone(), blocks * block);
        // Block j starts at row j·block and belongs to the number of experts whose padded
        // run ends at or before that row (blocks past the last run hold only zeros).
        let starts = Tensor::<1, Int>::arange(0..blocks as i64, &device)
            .float()
            .mul_scalar(block as f32)
            .reshape([blocks, 1])
            .expand([blocks, experts]);
        let expert_B = ends_K
            .reshape([1, experts])
            .expand([blocks, experts])
            .lower_equal(starts)
            .float()
            .sum_dim(1)
            .clamp_max((experts - 1) as f32)
            .reshape([blocks])
            .int();
        let x_BRD = buffer.reshape([blocks, block, d]);
        let combine = self.combine(row_S, false, Tensor::<2>::ones([slots, 1], &device));
        (ExpertBatch::Blocks { x_BRD, expert_B }, combine)
    }

    /// Expert e's kept slots occupy rows `[o_e, o_e + kept_e)` of an `[S, d]` buffer
    /// (kept_e = min(load_e, C), o_e = the kept counts before e), dropped slots the rows after
    /// Σ kept_e, which the grouped matmul leaves at zero. Exactly the kept rows are
    /// multiplied, each run by its expert's weights in place: nothing padded or copied.
    fn grouped(self, slot_x_SD: Tensor<2>) -> (ExpertBatch, Combine) {
        let slots = slot_x_SD.dims()[0];
        let device = slot_x_SD.device();
        let (sizes_K, kept_S1) = match self.capacity {
            None => (self.load_K.clone(), Tensor::<2>::ones([slots, 1], &device)),
            Some(c) => (
                self.load_K.clone().clamp_max(c as f32),
                self.position_S1.clone().lower_elem(c as f32).float(),
            ),
        };
        let offsets_K = sizes_K.clone().cumsum(0) - sizes_K.clone();
        let kept_row = slot_rows(offsets_K, self.expert_S.clone(), self.position_S1.clone())
            .reshape([slots, 1]);
        // Dropped slots, in slot order, fill the rows after the kept ones.
        let dropped = kept_S1.clone().neg().add_scalar(1.0);
        let dropped_row = (dropped.clone().cumsum(0) - dropped.clone())
            .add(sizes_K.clone().sum().reshape([1, 1]));
        let row_S = (kept_row * kept_S1.clone() + dropped_row * dropped)
            .reshape([slots])
            .int();
        let x_SD = scatter_add_rows(slot_x_SD, row_S.clone(), slots);
        let combine = self.combine(row_S, false, kept_S1);
        (ExpertBatch::Grouped { x_SD, sizes_K }, combine)
    }
}

impl Combine {
    /// The experts' output rows `[rows, d]` → `y_ND`: each slot's row, times its gate, summed
    /// over a token's k choices (a dropped slot contributes zero).
    pub fn combine(self, out_RD: Tensor<2>) -> Tensor<2> {
        let d = out_RD.dims()[1];
        let out_RD = if self.spare_row {
            let spare = Tensor::<2>::zeros([1, d], &out_RD.device());
            Tensor::cat(vec![out_RD, spare], 0)
        } else {
            out_RD
        };
        let slot_y_SD = out_RD.select(0, self.row_S);
        (slot_y_SD * self.gate_S1)
            .reshape([self.top_k, self.tokens, d])
            .sum_dim(0)
            .reshape([self.tokens, d])
    }

    /// Slots no expert processed, `[1]`.
    pub fn dropped(&self) -> Tensor<1> {
        let slots = self.tokens * self.top_k;
        self.kept_S1.clone().sum().neg().add_scalar(slots as f32)
    }
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
