//! What every router variant implements ([`RouterKind`] for its spec, [`RouterForward`] for
//! its module) and what routers and the MoE layer exchange ([`RouterInput`], [`Routing`]), with
//! the helpers the variants share (scores, top-k choice).

use std::fmt::Debug;

use burn::module::Param;
use burn::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::kernels::host_routing::HostRoutingOps;

use crate::kernels::flop_meter;
use crate::model::init;

/// What the MoE layer gives a router for one batch of N tokens.
pub struct RouterInput {
    /// Normalised hidden states `[N, d]`.
    pub x: Tensor<2>,
    /// The input token ids of the same N positions `[N]` (for routing by token).
    pub tokens: Tensor<1, Int>,
    /// Experts K (after fine-graining).
    pub experts: usize,
    /// Experts per token k for token-choice routers (after fine-graining and shared experts).
    pub top_k: usize,
    /// Renormalise the k gate weights to sum to 1.
    pub renormalize: bool,
    /// Tokens each expert takes, for expert-choice routers.
    pub capacity: usize,
}

/// A routing decision for N tokens.
pub struct Routing {
    /// Raw logits `[N, K]` for the z-loss; `None` for a router without learned scores.
    pub logits: Option<Tensor<2>>,
    /// Each token's distribution over experts `[N, K]` (rows sum to 1): `P_i` of the balance
    /// loss and the logged routing entropy.
    pub probs: Tensor<2>,
    pub assignment: Assignment,
}

/// Who picked whom.
pub enum Assignment {
    /// Each token chose k experts: `experts: [N, k]`, most preferred first; `gates: [N, k]`.
    TokenChoice {
        experts: Tensor<2, Int>,
        gates: Tensor<2>,
    },
    /// Each expert chose C tokens: `tokens: [K, C]`; `gates: [K, C]`.
    ExpertChoice {
        tokens: Tensor<2, Int>,
        gates: Tensor<2>,
    },
}

/// Who chooses, as the accounting and the dispatch need to know it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice {
    /// Tokens pick their top-k experts.
    Tokens,
    /// Experts pick their top-C tokens, C = ⌈capacity_factor · k · N / K⌉ (at factor 1 the
    /// same active FLOPs as top-k on average).
    Experts { capacity_factor: f64 },
}

/// Parameters of one router.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RouterParams {
    /// Trained by the optimizer.
    pub trainable: u64,
    /// Saved with the model but not trained (e.g. balancing biases).
    pub buffers: u64,
}

/// A field error inside `[ffn.router]` (the path relative to that table).
pub use crate::error::FieldError;

/// The spec side of a router variant.
pub trait RouterKind:
    Clone + Debug + PartialEq + Serialize + DeserializeOwned + Default + Send + Sync + 'static
{
    /// The module [`init`](Self::init) builds.
    type Module: RouterForward;
    fn init(&self, d_model: usize, experts: usize, device: &Device) -> Self::Module;
    /// Default: those of learned [`Scores`] (`d_model · K` trainable, no buffers).
    fn params(&self, d_model: usize, experts: usize) -> RouterParams {
        Scores::params(d_model, experts)
    }
    /// Forward FLOPs per token (matmuls only, as everywhere in `compute`). Default: those of
    /// learned [`Scores`] (`2 · d_model · K`).
    fn flops_per_token(&self, d_model: usize, experts: usize) -> f64 {
        Scores::flops_per_token(d_model, experts)
    }
    fn choice(&self) -> Choice {
        Choice::Tokens
    }
    /// Whether a token's routing depends only on itself and earlier tokens. A router that
    /// looks at other tokens of the batch leaks the future into a causal LM's loss.
    fn causal(&self) -> bool {
        true
    }
    fn validate(&self) -> Result<(), FieldError> {
        Ok(())
    }
    /// Printed when a run starts and kept in its summary.
    fn warning(&self) -> Option<String> {
        None
    }
    /// Whether the MoE's `renormalize` changes this router's gates (false for routers whose
    /// gates are not a distribution's top-k mass). Default: true.
    fn uses_renormalize(&self) -> bool {
        true
    }
    /// Specs the conformance suite tests.
    fn examples() -> Vec<Self> {
        vec![Self::default()]
    }
}

/// The module side of a router variant.
pub trait RouterForward: Sized {
    fn route(&self, input: &RouterInput) -> Routing;
    /// Called after each optimizer step with the token-slots each expert received in that
    /// step's forward (`[K]`, on the device). Default: nothing.
    fn after_step(self, _load: Tensor<1>) -> Self {
        self
    }
    /// Per-expert state to log (`router_state.csv`), each `[K]`. Default: none.
    fn state(&self) -> Vec<(&'static str, Tensor<1>)> {
        Vec::new()
    }
}

/// The learned scores most routers share: `Linear(d_model, K)` without bias, `x·W` → `[N, K]`
/// logits. Kept in f32 (Switch found bf16 routers diverge; the whole lab trains in f32).
#[derive(Module, Debug)]
pub struct Scores {
    /// `[d, K]`
    pub weight: Param<Tensor<2>>,
}

impl Scores {
    pub fn new(d_model: usize, experts: usize, device: &Device) -> Self {
        Scores {
            weight: init::normal([d_model, experts], init::INIT_STD, device),
        }
    }
    pub fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        flop_meter::matmul(x, self.weight.val())
    }
    /// `d_model · K` trainable parameters.
    pub fn params(d_model: usize, experts: usize) -> RouterParams {
        RouterParams {
            trainable: (d_model * experts) as u64,
            buffers: 0,
        }
    }
    /// `2 · d_model · K` forward FLOPs per token.
    pub fn flops_per_token(d_model: usize, experts: usize) -> f64 {
        2.0 * (d_model * experts) as f64
    }
}

/// Token choice shared by the top-k style routers: pick the k largest of `select_by`
/// (detached: selection is not differentiable), take the gates from `scores` at those experts
/// (differentiable, so gradients reach the router), renormalise them if asked.
pub fn top_k_choice(
    scores: Tensor<2>,
    select_by: Tensor<2>,
    top_k: usize,
    renormalize: bool,
) -> Assignment {
    let experts = top_k_indices(select_by.detach(), top_k);
    let mut gates = scores.gather(1, experts.clone());
    if renormalize {
        let total = gates.clone().sum_dim(1);
        gates = gates / total;
    }
    Assignment::TokenChoice { experts, gates }
}

/// `x: [N, K]` → `[N, k]`: each row's k largest entries' columns, largest first. On flex one
/// pass per row (`ffn::host_routing`; burn's top-k sorts every row and then selects),
/// elsewhere burn's `topk_with_indices`, which orders ties and NaN the same way.
pub fn top_k_indices(x: Tensor<2>, k: usize) -> Tensor<2, Int> {
    if x.dtype() != burn::tensor::DType::F32 || !crate::kernels::on_flex(&x.device()) {
        return x.topk_with_indices(k, 1).1;
    }
    let device = x.device();
    let indices = Tensor::from_dispatch(
        <burn::backend::Dispatch as HostRoutingOps>::top_k_indices(x.into_dispatch(), k),
    );
    crate::kernels::host_routing::in_device_ints(indices, &device)
}
