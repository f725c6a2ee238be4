//! The Mixture-of-Experts feed-forward: a [`Router`] picks k of K [`Experts`] per token; tokens
//! are dispatched to per-expert buffers, transformed, and combined with their gate weights.
//!
//! Dispatch stays on the device with fixed shapes (no host read-back, no sort):
//! 1. slots are the N·k (token, choice) pairs in choice-major order (every token's first
//!    choice before any second choice, as in GShard/Switch, so overflow drops second choices
//!    first);
//! 2. a slot's position among the slots of its expert is a prefix sum (cumsum) over a one-hot
//!    of the chosen experts;
//! 3. [`Dispatch::Buffered`] (capacity factor c, and the reference path): `[K, C, d]` buffers,
//!    C = ⌈c·k·N/K⌉; slots at positions ≥ C are dropped: they write into, and read back from, a
//!    spare zero row, so a dropped token's FFN output is zero and it keeps only its residual.
//!    Executed expert FLOPs ≈ c × what the k active experts need; dropless through this path
//!    needs C = N and so executes K/k × (4× for 8 experts, top-2);
//! 4. [`Dispatch::Packed`] (dropless): expert-contiguous rows, each expert's run padded to
//!    whole blocks, one batched matmul over blocks with gathered weights; a static bound of
//!    ≈ 1.5 × the active rows (see `packed`);
//! 5. outputs return to their slots by a gather, are scaled by the gate weight and summed
//!    over the k choices.
//!
//! Gathers and scatters use burn's `select`/`select_assign`, whose cubecl kernels are serial
//! along the indexed dimension; dedicated kernels are the next step for GPU speed.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

use super::{Experts, MoeAux, Router, RouterStats, Routing};
use crate::spec::{capacity_slots, packed_block_rows, packed_rows};

#[derive(Module, Debug)]
pub struct MoeLayer {
    pub router: Router,
    pub experts: Experts,
    top_k: usize,
    renormalize: bool,
    /// Capacity factor; `None` is dropless.
    capacity_factor: Option<f64>,
    balance_coef: f64,
    z_coef: f64,
}

/// Where each slot goes: its row in the flat `[K·C + 1, d]` buffer (the last row is the spare
/// row of dropped slots) and whether it was kept.
struct SlotPlan {
    rows: Tensor<1, Int>,
    kept: Tensor<2>,
    capacity: usize,
}

pub struct MoeConfig {
    pub d_model: usize,
    pub experts: usize,
    pub top_k: usize,
    pub d_expert: usize,
    pub renormalize: bool,
    pub capacity_factor: Option<f64>,
    pub balance_coef: f64,
    pub z_coef: f64,
    pub n_layers: usize,
}

impl MoeConfig {
    pub fn init(&self, device: &Device) -> MoeLayer {
        MoeLayer {
            router: Router::new(self.d_model, self.experts, device),
            experts: Experts::new(
                self.experts,
                self.d_model,
                self.d_expert,
                self.n_layers,
                device,
            ),
            top_k: self.top_k,
            renormalize: self.renormalize,
            capacity_factor: self.capacity_factor,
            balance_coef: self.balance_coef,
            z_coef: self.z_coef,
        }
    }
}

/// How token-slots reach the experts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// One buffer of C rows per expert: C from the capacity factor, or C = N when dropless
    /// (the reference path: simple, but dropless executes K/k × the active expert FLOPs).
    Buffered,
    /// Dropless: slots packed expert by expert, each expert's run padded to whole blocks of
    /// rows; all blocks go through one batched matmul with each block's expert weights
    /// gathered (MegaBlocks-style padding, with a static bound on the rows).
    Packed,
}

impl MoeLayer {
    /// `x: [N, d_model]` → `([N, d_model], aux losses and stats)`. Dropless layers use the
    /// packed dispatch, capacity-limited ones the buffered one.
    pub fn forward(&self, x: Tensor<2>) -> (Tensor<2>, MoeAux) {
        let dispatch = match self.capacity_factor {
            None => Dispatch::Packed,
            Some(_) => Dispatch::Buffered,
        };
        self.forward_with(x, dispatch)
    }

    /// [`forward`](Self::forward) with an explicit dispatch (tests compare the two).
    pub fn forward_with(&self, x: Tensor<2>, dispatch: Dispatch) -> (Tensor<2>, MoeAux) {
        let [n, d] = x.dims();
        let experts = self.experts.count();
        let k = self.top_k;
        let routing = self.router.route(x.clone(), k, self.renormalize);

        // Slot s = choice·N + token.
        let slot_expert = routing.experts.clone().swap_dims(0, 1).reshape([n * k]);
        let slot_gate = routing.gates.clone().swap_dims(0, 1).reshape([n * k, 1]);
        let one_hot = self.expert_mask(slot_expert.clone(), experts);
        let load = one_hot.clone().sum_dim(0).reshape([experts]);
        // Position of each slot among the slots routed to the same expert (0-based).
        let position = (one_hot.clone().cumsum(0) * one_hot)
            .sum_dim(1)
            .sub_scalar(1.0);
        let slot_x = x.repeat_dim(0, k);

        let (slot_y, kept) = match dispatch {
            Dispatch::Packed if self.capacity_factor.is_none() => {
                self.packed(slot_x, slot_expert, load.clone(), position)
            }
            _ => self.buffered(slot_x, slot_expert, position, n),
        };
        let y = (slot_y * slot_gate)
            .reshape([k, n, d])
            .sum_dim(0)
            .reshape([n, d]);
        let aux = self.aux(&routing, load, kept, n);
        (y, aux)
    }

    /// The buffered dispatch: `[K, C, d]` buffers, overflow to a spare zero row.
    fn buffered(
        &self,
        slot_x: Tensor<2>,
        slot_expert: Tensor<1, Int>,
        position: Tensor<2>,
        n: usize,
    ) -> (Tensor<2>, Tensor<2>) {
        let [_, d] = slot_x.dims();
        let experts = self.experts.count();
        let plan = self.plan(slot_expert, position, n);
        let buffer = Tensor::<2>::zeros([experts * plan.capacity + 1, d], &slot_x.device())
            .select_assign(0, plan.rows.clone(), slot_x, IndexingUpdateOp::Add);
        let expert_in =
            buffer
                .slice([0..experts * plan.capacity, 0..d])
                .reshape([experts, plan.capacity, d]);
        let expert_out = self
            .experts
            .forward(expert_in)
            .reshape([experts * plan.capacity, d]);
        let spare = Tensor::<2>::zeros([1, d], &expert_out.device());
        let slot_y = Tensor::cat(vec![expert_out, spare], 0).select(0, plan.rows);
        (slot_y, plan.kept)
    }

    /// The packed dropless dispatch. Expert e's slots occupy rows
    /// `[offset_e, offset_e + count_e)` of a buffer whose per-expert runs are padded to
    /// multiples of `block` rows; block j then belongs to one expert, whose weights are
    /// gathered for it. The buffer has a static size, ⌈(S + K·(block − 1)) / block⌉ blocks, so
    /// no count is read back; with block = ⌈S / 2K⌉ the experts execute at most ≈ 1.5 × the
    /// active expert FLOPs (vs K/k × for the buffered dropless path), at the price of
    /// gathering ≈ 3K expert weight copies per layer.
    fn packed(
        &self,
        slot_x: Tensor<2>,
        slot_expert: Tensor<1, Int>,
        load: Tensor<1>,
        position: Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        let [slots, d] = slot_x.dims();
        let experts = self.experts.count();
        let device = slot_x.device();
        let block = packed_block_rows(slots, experts);
        let blocks = packed_rows(slots, experts) / block;
        let padded = load
            .div_scalar(block as f32)
            .ceil()
            .mul_scalar(block as f32);
        let ends = padded.clone().cumsum(0);
        let offsets = ends.clone() - padded;
        let rows = (offsets.select(0, slot_expert).reshape([slots, 1]) + position)
            .reshape([slots])
            .int();
        let buffer = Tensor::<2>::zeros([blocks * block, d], &device).select_assign(
            0,
            rows.clone(),
            slot_x,
            IndexingUpdateOp::Add,
        );
        // Block j starts at row j·block and belongs to the number of experts whose padded
        // run ends at or before that row (blocks past the last run hold only zeros).
        let starts = Tensor::<1, Int>::arange(0..blocks as i64, &device)
            .float()
            .mul_scalar(block as f32)
            .reshape([blocks, 1])
            .expand([blocks, experts]);
        let block_expert = ends
            .reshape([1, experts])
            .expand([blocks, experts])
            .lower_equal(starts)
            .float()
            .sum_dim(1)
            .clamp_max((experts - 1) as f32)
            .reshape([blocks])
            .int();
        let out = self
            .experts
            .forward_blocks(buffer.reshape([blocks, block, d]), block_expert)
            .reshape([blocks * block, d]);
        let kept = Tensor::<2>::ones([slots, 1], &device);
        (out.select(0, rows), kept)
    }

    /// `[S]` expert ids → `[S, K]` one-hot floats, built by comparison (burn's `one_hot`
    /// validates its input on the host).
    fn expert_mask(&self, ids: Tensor<1, Int>, experts: usize) -> Tensor<2> {
        let s = ids.dims()[0];
        let all = Tensor::<1, Int>::arange(0..experts as i64, &ids.device())
            .reshape([1, experts])
            .expand([s, experts]);
        ids.reshape([s, 1]).expand([s, experts]).equal(all).float()
    }

    fn plan(&self, slot_expert: Tensor<1, Int>, position: Tensor<2>, n: usize) -> SlotPlan {
        let experts = self.experts.count();
        let slots = slot_expert.dims()[0];
        let capacity = match self.capacity_factor {
            None => n,
            Some(c) => capacity_slots(c, self.top_k, n, experts).min(n),
        };
        let kept = position.clone().lower_elem(capacity as f32);
        let row = slot_expert.float().reshape([slots, 1]) * (capacity as f32) + position;
        let spare = Tensor::<2>::full([slots, 1], (experts * capacity) as f32, &row.device());
        let rows = spare.mask_where(kept.clone(), row).reshape([slots]).int();
        SlotPlan {
            rows,
            kept: kept.float(),
            capacity,
        }
    }

    fn aux(&self, routing: &Routing, load: Tensor<1>, kept: Tensor<2>, n: usize) -> MoeAux {
        let experts = self.experts.count();
        let slots = n * self.top_k;
        // Switch balance loss: f_i = share of slots routed to i, P_i = mean probability of i.
        let f = load.clone().div_scalar(slots as f32);
        let p = routing.probs.clone().mean_dim(0).reshape([experts]);
        let balance_loss = (f * p).sum().mul_scalar(self.balance_coef * experts as f64);
        // Router z-loss on the logits' log-sum-exp (stabilised by the row max).
        let logits = routing.logits.clone();
        let max = logits.clone().detach().max_dim(1);
        let lse = (logits - max.clone()).exp().sum_dim(1).log() + max;
        let z_loss = lse.powi_scalar(2).mean().mul_scalar(self.z_coef);
        let probs = routing.probs.clone().detach();
        let entropy = (probs.clone() * probs.clamp_min(1e-12).log())
            .sum_dim(1)
            .mean()
            .neg();
        let dropped = kept.sum().neg().add_scalar(slots as f32);
        MoeAux {
            balance_loss,
            z_loss,
            stats: RouterStats {
                load,
                dropped,
                entropy,
                slots,
            },
        }
    }
}
