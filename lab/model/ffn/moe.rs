//! The Mixture-of-Experts feed-forward: a [`Router`] (any registered variant) picks k of K
//! [`Experts`] per token, or each expert picks its tokens; tokens are dispatched to the experts,
//! transformed, and combined with their gate weights. Optional shared experts (DeepSeekMoE)
//! see every token outside the router.
//!
//! Dispatch stays on the device with fixed shapes (no host read-back, no sort):
//! 1. slots are the N·k (token, choice) pairs in choice-major order (every token's first
//!    choice before any second choice, as in GShard/Switch, so overflow drops second choices
//!    first);
//! 2. a slot's position among the slots of its expert is a prefix sum (cumsum) over a one-hot
//!    of the chosen experts;
//! 3. [`Dispatch::Buffered`] (capacity factor c without the grouped matmul, and the reference
//!    path): `[K, C, d]` buffers, C = ⌈c·k·N/K⌉; slots at positions ≥ C are dropped: they
//!    write into, and read back from, a spare zero row, so a dropped token's FFN output is zero
//!    and it keeps only its residual.
//!    Executed expert FLOPs ≈ c × what the k active experts need; dropless through this path
//!    needs C = N and so executes K/k × (4× for 8 experts, top-2);
//! 4. [`Dispatch::Packed`] (dropless, without the grouped matmul): expert-contiguous rows, each
//!    expert's run padded to whole blocks, one batched matmul over blocks with each block's
//!    expert weights picked (by a one-hot matmul, see `Experts::forward_blocks`); a static
//!    bound of ≈ 1.5 × the active rows (see `packed`);
//! 5. [`Dispatch::Grouped`] (where the device has the grouped matmul, i.e. flex; dropless or
//!    with a capacity): expert-contiguous rows without padding, each expert's kept rows
//!    multiplied by its weights in place (see `grouped_matmul`), dropped slots after them
//!    left at zero: exactly the kept rows, no weight copies;
//! 6. outputs return to their slots by a gather, are scaled by the gate weight and summed
//!    over the k choices.
//!
//! Expert-choice routers hand over `[K, C]` token indices instead: the chosen rows are
//! gathered into `[K, C, d]`, transformed by one batched matmul, scaled by their gates and
//! scatter-added back to their tokens (a token chosen by no expert keeps only its residual).
//!
//! Gathers and scatters use burn's `select`/`select_assign`, whose cubecl kernels are serial
//! along the indexed dimension; dedicated kernels are the next step for GPU speed.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

use super::grouped_matmul;
use super::router::{Assignment, Choice, Router, RouterInput, Routing};
use super::{Experts, MoeAux, RouterStats, SwiGlu};
use crate::compute::FfnShape;
use crate::spec::{Capacity, MoeSpec, capacity_slots, packed_block_rows, packed_rows};

#[derive(Module, Debug)]
pub struct MoeLayer {
    pub router: Router,
    pub experts: Experts,
    /// The shared experts, fused into one SwiGLU every token passes through.
    pub shared: Option<SwiGlu>,
    top_k: usize,
    /// Expert-choice routers: capacity factor of the tokens each expert takes.
    expert_choice: Option<f64>,
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

/// Everything the layer needs besides the spec.
pub struct MoeConfig<'a> {
    pub spec: &'a MoeSpec,
    pub d_model: usize,
    pub n_layers: usize,
}

impl MoeConfig<'_> {
    pub fn init(&self, device: &Device) -> MoeLayer {
        let m = self.spec;
        let experts = m.routed_experts();
        MoeLayer {
            router: m.router.init(self.d_model, experts, device),
            experts: Experts::new(
                experts,
                self.d_model,
                m.expert_hidden(),
                self.n_layers,
                device,
            ),
            shared: (m.shared_experts > 0)
                .then(|| SwiGlu::new(self.d_model, m.shared_hidden(), self.n_layers, device)),
            top_k: m.routed_top_k(),
            expert_choice: match m.router.choice() {
                Choice::Tokens => None,
                Choice::Experts { capacity_factor } => Some(capacity_factor),
            },
            renormalize: m.renormalize,
            capacity_factor: match m.capacity {
                Capacity::Dropless => None,
                Capacity::Factor(c) => Some(c),
            },
            balance_coef: m.aux_loss_coef,
            z_coef: m.z_loss_coef,
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
        match (self, capacity) {
            (Dispatch::Grouped, _) => tokens * k,
            (Dispatch::Packed, None) => packed_rows(tokens * k, experts),
            (_, Some(c)) => experts * c,
            (Dispatch::Buffered, None) => experts * tokens,
        }
    }
}

impl MoeLayer {
    /// `x: [N, d_model]`, `tokens: [N]` (the positions' input ids) → `([N, d_model], aux
    /// losses and stats)`. Dropless layers use the packed dispatch, capacity-limited ones the
    /// buffered one.
    pub fn forward(&self, x: Tensor<2>, tokens: Tensor<1, Int>) -> (Tensor<2>, MoeAux) {
        let dispatch = Dispatch::for_layer(&x.device(), self.capacity_factor.is_none());
        self.forward_with(x, tokens, dispatch)
    }

    /// [`forward`](Self::forward) with an explicit dispatch (tests compare the two).
    pub fn forward_with(
        &self,
        x: Tensor<2>,
        tokens: Tensor<1, Int>,
        dispatch: Dispatch,
    ) -> (Tensor<2>, MoeAux) {
        let n = x.dims()[0];
        let experts = self.experts.count();
        let capacity = self
            .expert_choice
            .map_or(0, |c| capacity_slots(c, self.top_k, n, experts).min(n));
        let routing = self.router.route(&RouterInput {
            x: x.clone(),
            tokens,
            experts,
            top_k: self.top_k,
            renormalize: self.renormalize,
            capacity,
        });
        let (y, load, dropped, slots) = match &routing.assignment {
            Assignment::TokenChoice { experts, gates } => {
                self.token_choice(x.clone(), experts.clone(), gates.clone(), dispatch)
            }
            Assignment::ExpertChoice { tokens, gates } => {
                self.expert_choice(x.clone(), tokens.clone(), gates.clone())
            }
        };
        let y = match &self.shared {
            Some(shared) => y + shared.forward(x),
            None => y,
        };
        let aux = self.aux(&routing, load, dropped, slots);
        (y, aux)
    }

    /// Token choice: `experts`, `gates: [N, k]` → (output `[N, d]`, load `[K]`, dropped slots
    /// `[S, 1]`, slots S = N·k).
    fn token_choice(
        &self,
        x: Tensor<2>,
        chosen: Tensor<2, Int>,
        gates: Tensor<2>,
        dispatch: Dispatch,
    ) -> (Tensor<2>, Tensor<1>, Tensor<1>, usize) {
        let [n, d] = x.dims();
        let experts = self.experts.count();
        let k = self.top_k;
        // Slot s = choice·N + token.
        let slot_expert = chosen.swap_dims(0, 1).reshape([n * k]);
        let slot_gate = gates.swap_dims(0, 1).reshape([n * k, 1]);
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
            Dispatch::Grouped => self.grouped(slot_x, slot_expert, load.clone(), position, n),
            _ => self.buffered(slot_x, slot_expert, position, n),
        };
        let y = (slot_y * slot_gate)
            .reshape([k, n, d])
            .sum_dim(0)
            .reshape([n, d]);
        let dropped = kept.sum().neg().add_scalar((n * k) as f32);
        (y, load, dropped, n * k)
    }

    /// Expert choice: `tokens`, `gates: [K, C]` → (output `[N, d]`, load `[K]` (C each),
    /// dropped `[1]` = tokens no expert took, slots K·C).
    fn expert_choice(
        &self,
        x: Tensor<2>,
        chosen: Tensor<2, Int>,
        gates: Tensor<2>,
    ) -> (Tensor<2>, Tensor<1>, Tensor<1>, usize) {
        let [n, d] = x.dims();
        let [experts, capacity] = chosen.dims();
        let device = x.device();
        let rows = chosen.reshape([experts * capacity]);
        let expert_in = x.select(0, rows.clone()).reshape([experts, capacity, d]);
        let out = self
            .experts
            .forward(expert_in)
            .reshape([experts * capacity, d])
            * gates.reshape([experts * capacity, 1]);
        let y = scatter_add_rows(out, rows.clone(), n);
        let load = Tensor::<1>::full([experts], capacity as f32, &device);
        // "Dropped" for expert choice: tokens no expert took.
        let taken = Tensor::<1>::zeros([n], &device).select_assign(
            0,
            rows,
            Tensor::<1>::ones([experts * capacity], &device),
            IndexingUpdateOp::Add,
        );
        let dropped = taken.equal_elem(0.0).float().sum();
        (y, load, dropped, experts * capacity)
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
        let buffer = scatter_add_rows(slot_x, plan.rows.clone(), experts * plan.capacity + 1);
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
    /// picked for it. The buffer has a static size, ⌈(S + K·(block − 1)) / block⌉ blocks, so
    /// no count is read back; with block = ⌈S / 2K⌉ the experts execute at most ≈ 1.5 × the
    /// active expert FLOPs (vs K/k × for the buffered dropless path), at the price of
    /// picking ≈ 3K expert weight copies per layer.
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
        let rows = slot_rows(offsets, slot_expert, position).int();
        let buffer = scatter_add_rows(slot_x, rows.clone(), blocks * block);
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

    /// The grouped dispatch: expert e's kept slots occupy rows `[o_e, o_e + kept_e)` of an
    /// `[S, d]` buffer (kept_e = min(load_e, C), o_e = the kept counts before e), dropped slots
    /// the rows after Σ kept_e, which the grouped matmul leaves at zero. Exactly the kept rows
    /// are multiplied, each run by its expert's weights in place: nothing padded or copied.
    fn grouped(
        &self,
        slot_x: Tensor<2>,
        slot_expert: Tensor<1, Int>,
        load: Tensor<1>,
        position: Tensor<2>,
        n: usize,
    ) -> (Tensor<2>, Tensor<2>) {
        let slots = slot_x.dims()[0];
        let device = slot_x.device();
        let (sizes, kept) = match self.capacity_factor {
            None => (load, Tensor::<2>::ones([slots, 1], &device)),
            Some(c) => {
                let capacity = capacity_slots(c, self.top_k, n, self.experts.count()).min(n);
                (
                    load.clamp_max(capacity as f32),
                    position.clone().lower_elem(capacity as f32).float(),
                )
            }
        };
        let offsets = sizes.clone().cumsum(0) - sizes.clone();
        let kept_row = slot_rows(offsets, slot_expert, position).reshape([slots, 1]);
        // Dropped slots, in slot order, fill the rows after the kept ones.
        let dropped = kept.clone().neg().add_scalar(1.0);
        let dropped_row =
            (dropped.clone().cumsum(0) - dropped.clone()).add(sizes.clone().sum().reshape([1, 1]));
        let rows = (kept_row * kept.clone() + dropped_row * dropped)
            .reshape([slots])
            .int();
        let sorted = scatter_add_rows(slot_x, rows.clone(), slots);
        let out = self.experts.forward_grouped(sorted, sizes);
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

    fn aux(&self, routing: &Routing, load: Tensor<1>, dropped: Tensor<1>, slots: usize) -> MoeAux {
        let experts = self.experts.count();
        let device = load.device();
        // Switch balance loss: f_i = share of slots routed to i, P_i = mean probability of i.
        let f = load.clone().div_scalar(slots as f32);
        let p = routing.probs.clone().mean_dim(0).reshape([experts]);
        let balance_loss = (f * p).sum().mul_scalar(self.balance_coef * experts as f64);
        // Router z-loss on the logits' log-sum-exp (stabilised by the row max).
        let z_loss = match routing.logits.clone() {
            Some(logits) => {
                let max = logits.clone().detach().max_dim(1);
                let lse = (logits - max.clone()).exp().sum_dim(1).log() + max;
                lse.powi_scalar(2).mean().mul_scalar(self.z_coef)
            }
            None => Tensor::<1>::zeros([1], &device),
        };
        let probs = routing.probs.clone().detach();
        let entropy = (probs.clone() * probs.clamp_min(1e-12).log())
            .sum_dim(1)
            .mean()
            .neg();
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

impl MoeLayer {
    /// After an optimizer step: the router's update (e.g. loss-free balancing's bias) from the
    /// load of that step's forward.
    pub fn after_step(mut self, load: Tensor<1>) -> Self {
        self.router = self.router.after_step(load);
        self
    }
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
fn scatter_add_rows(values: Tensor<2>, rows: Tensor<1, Int>, total: usize) -> Tensor<2> {
    let d = values.dims()[1];
    Tensor::<2>::zeros([total, d], &values.device()).select_assign(
        0,
        rows,
        values,
        IndexingUpdateOp::Add,
    )
}

/// A field error: (field under the MoE table, message).
type FieldError = (String, String);

impl MoeSpec {
    /// Check the fields; errors name the field relative to the MoE table (`top_k`,
    /// `router.capacity_factor`, ...).
    pub fn validate(&self, n_layers: usize, tokens_per_step: usize) -> Result<(), FieldError> {
        let bad = |f: &str, m: String| Err((f.to_string(), m));
        for (name, v) in [
            ("experts", self.experts),
            ("top_k", self.top_k),
            ("d_expert", self.d_expert),
            ("granularity", self.granularity),
        ] {
            if v == 0 {
                return bad(name, "must be a positive integer, got 0".into());
            }
        }
        if self.top_k > self.experts {
            return bad(
                "top_k",
                format!(
                    "top_k ({}) must not exceed experts ({})",
                    self.top_k, self.experts
                ),
            );
        }
        if self.d_expert % self.granularity != 0 {
            return bad(
                "granularity",
                format!(
                    "must divide d_expert ({}) to split each expert evenly, got {}",
                    self.d_expert, self.granularity
                ),
            );
        }
        if self.shared_experts >= self.top_k * self.granularity {
            return bad(
                "shared_experts",
                format!(
                    "must be below top_k · granularity ({}) so at least one expert is routed, \
                     got {}",
                    self.top_k * self.granularity,
                    self.shared_experts
                ),
            );
        }
        if self.moe_every == 0 || self.moe_every > n_layers {
            return bad(
                "moe_every",
                format!(
                    "must be in 1..={n_layers} (n_layers), got {}",
                    self.moe_every
                ),
            );
        }
        if self.moe_every > 1 && self.d_ff.is_none_or(|d| d == 0) {
            return bad(
                "d_ff",
                "moe_every > 1 needs d_ff, the hidden size of the dense blocks".into(),
            );
        }
        if let Capacity::Factor(c) = self.capacity {
            if !(c > 0.0) || !c.is_finite() {
                return bad("capacity", format!("must be \"dropless\" or > 0, got {c}"));
            }
            if capacity_slots(
                c,
                self.routed_top_k(),
                tokens_per_step,
                self.routed_experts(),
            ) == 0
            {
                return bad("capacity", format!("factor {c} leaves no slot per expert"));
            }
            if self.router.choice() != Choice::Tokens {
                return bad(
                    "capacity",
                    format!(
                        "router {:?} sets its own capacity (under [ffn.router]); leave capacity \
                         at \"dropless\"",
                        self.router.name()
                    ),
                );
            }
        }
        if !(self.aux_loss_coef >= 0.0) || !(self.z_loss_coef >= 0.0) {
            return bad("aux_loss_coef", "loss coefficients must be ≥ 0".into());
        }
        self.router
            .validate()
            .map_err(|(f, m)| (format!("router.{f}"), m))
    }

    /// Accounting of block `layer` for a step of `tokens` tokens (the executed expert rows
    /// depend on it), token-choice layers dispatched by `dispatch` (see
    /// [`Dispatch::for_layer`], [`Dispatch::expert_rows`]).
    pub fn layer_shape(
        &self,
        layer: usize,
        d_model: usize,
        tokens: usize,
        dispatch: Dispatch,
    ) -> FfnShape {
        if !self.is_moe_layer(layer) {
            return FfnShape::swiglu(d_model, self.d_ff.unwrap_or(0));
        }
        let experts = self.routed_experts();
        let k = self.routed_top_k();
        let one_expert = FfnShape::swiglu(d_model, self.expert_hidden());
        let shared = FfnShape::swiglu(d_model, self.shared_hidden());
        let router = self.router.params(d_model, experts);
        let rows_per_token = match (self.router.choice(), self.capacity) {
            (Choice::Experts { capacity_factor }, _) => {
                let c = capacity_slots(capacity_factor, k, tokens, experts).min(tokens);
                (experts * c) as f64 / tokens as f64
            }
            (Choice::Tokens, capacity) => {
                let capacity = match capacity {
                    Capacity::Dropless => None,
                    Capacity::Factor(c) => Some(capacity_slots(c, k, tokens, experts).min(tokens)),
                };
                dispatch.expert_rows(tokens, k, experts, capacity) as f64 / tokens as f64
            }
        };
        FfnShape {
            params_total: router.trainable
                + experts as u64 * one_expert.params_total
                + shared.params_total,
            params_active: router.trainable
                + k as u64 * one_expert.params_total
                + shared.params_total,
            buffers: router.buffers,
            dense_flops: 0.0,
            router_flops: self.router.flops_per_token(d_model, experts),
            expert_flops_active: k as f64 * one_expert.dense_flops + shared.dense_flops,
            expert_flops_executed: rows_per_token * one_expert.dense_flops + shared.dense_flops,
        }
    }
}
