//! The Mixture-of-Experts feed-forward: a [`Router`] (any registered variant) picks k of K
//! [`Experts`] per token, or each expert picks its tokens; tokens are dispatched to the experts,
//! transformed, and combined with their gate weights. Optional shared experts (DeepSeekMoE)
//! see every token outside the router.
//!
//! The parts: [`spec`] (what users write, its validation and accounting), [`dispatch`] (how
//! token-slots reach the experts and come back), [`experts`] (the stacked expert weights), and
//! the layer here, which routes, dispatches, runs the experts, combines, and computes the
//! auxiliary losses and routing statistics.
//!
//! Expert-choice routers hand over `[K, C]` token indices instead: the chosen rows are
//! gathered into `[K, C, d]`, transformed by one batched matmul, scaled by their gates and
//! scatter-added back to their tokens (a token chosen by no expert keeps only its residual).

pub mod dispatch;
pub mod experts;
pub mod spec;

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

pub use dispatch::{Dispatch, capacity_slots};
pub use experts::Experts;
pub use spec::{Capacity, MoeSpec};

use super::dense::SwiGlu;
use super::output::{MoeAux, RouterStats};
use super::router::{Assignment, Choice, Router, RouterInput, Routing};
use crate::kernels::router_softmax::log_partition;
use dispatch::{TokenDispatch, scatter_add_rows};

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

impl MoeLayer {
    /// `x: [N, d]`, `tokens: [N]` (the positions' input ids) → `([N, d], aux
    /// losses and stats)`. Through the grouped matmul where the device has it (flex, wgpu),
    /// else buffers (`Dispatch::for_layer`).
    pub fn forward(&self, x: Tensor<2>, tokens: Tensor<1, Int>) -> (Tensor<2>, MoeAux) {
        let dispatch = Dispatch::for_layer(&x.device());
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
            .map_or(0, |c| capacity_slots(c, self.top_k, n, experts));
        let routing = self.router.route(&RouterInput {
            x: x.clone(),
            tokens,
            experts,
            top_k: self.top_k,
            renormalize: self.renormalize,
            capacity,
        });
        let (y, load, dropped, slots, dropped_of) = match &routing.assignment {
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
        let mut aux = self.aux(&routing, load, dropped, slots);
        aux.stats.dropped_of = dropped_of;
        (y, aux)
    }

    /// Token choice: `chosen`, `gates` → (output `[N, d]`, load `[K]`, dropped slots
    /// `[1]`, slots S = N·k, dropped out of S).
    fn token_choice(
        &self,
        x: Tensor<2>,
        chosen: Tensor<2, Int>,
        gates: Tensor<2>,
        dispatch: Dispatch,
    ) -> (Tensor<2>, Tensor<1>, Tensor<1>, usize, usize) {
        let [n, k] = chosen.dims();
        let experts = self.experts.count();
        let capacity = self
            .capacity_factor
            .map(|c| capacity_slots(c, self.top_k, n, experts));
        let plan = TokenDispatch::new(dispatch, chosen, gates, experts, capacity);
        let load = plan.load.clone();
        let (batch, way_back) = plan.dispatch(x);
        let out = self.experts.forward_batch(batch);
        let dropped = way_back.dropped();
        (way_back.combine(out), load, dropped, n * k, n * k)
    }

    /// Expert choice: `tokens`, `gates: [K, C]` → (output `[N, d]`, load `[K]` (C each),
    /// dropped `[1]` = tokens no expert took, slots K·C, dropped out of the N tokens).
    fn expert_choice(
        &self,
        x: Tensor<2>,
        chosen: Tensor<2, Int>,
        gates: Tensor<2>,
    ) -> (Tensor<2>, Tensor<1>, Tensor<1>, usize, usize) {
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
        (y, load, dropped, experts * capacity, n)
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
            Some(logits) => log_partition(logits)
                .powi_scalar(2)
                .mean()
                .mul_scalar(self.z_coef),
            None => Tensor::<1>::zeros([1], &device),
        };
        MoeAux {
            balance_loss,
            z_loss,
            stats: RouterStats {
                load,
                dropped,
                probs: routing.probs.clone().detach(),
                slots,
                dropped_of: slots,
                logit_max: routing.logits.clone().map(|l| l.detach().max()),
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
