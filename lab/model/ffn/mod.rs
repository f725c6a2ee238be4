//! Swappable feed-forwards, and the registry the rest of the lab goes through.
//!
//! Two feed-forward kinds (`[ffn] kind = ...`): `dense` (one SwiGLU, [`dense`]) and `moe`
//! (experts behind a router, [`moe`]); an MoE's router is itself a registered variant
//! ([`router`]: top-k, sigmoid, loss-free, expert-choice, ...), and its experts may be
//! fine-grained and shared. The block, the FLOP and parameter counts, logging and sweeps use
//! the methods below and never match on a kind themselves; each kind's own logic lives in its
//! file.

pub mod dense;
mod matching;
pub mod moe;
pub mod router;
pub mod spec;

use burn::prelude::*;

pub use dense::SwiGlu;
pub use dense::spec::{DenseSpec, DffSpec, MATCH_TOLERANCE, MatchRule};
pub use moe::{Capacity, Experts, MoeConfig, MoeLayer, MoeSpec};
pub use router::{Router, RouterSpec, Routing};
pub use spec::FfnSpec;

// One per block, built once: the size gap between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum FeedForward {
    Dense(SwiGlu),
    Moe(MoeLayer),
}

/// What a feed-forward sees: normalised hidden states `[B, T, d]` and the input token ids
/// `[B, T]` of the same positions (for routers that route by token).
pub struct FfnInput {
    pub x: Tensor<3>,
    pub tokens: Tensor<2, Int>,
}

/// What a feed-forward returns: its output, and for an MoE its auxiliary losses and routing
/// statistics (all still on the device; nothing is read back here).
pub struct FfnOutput {
    pub y: Tensor<3>,
    pub moe: Option<MoeAux>,
}

/// Auxiliary losses (already scaled by their coefficients) and routing statistics of one MoE
/// layer for one batch.
#[derive(Clone, Debug)]
pub struct MoeAux {
    /// Switch load-balancing loss `α·K·Σ f_i·P_i`, shape `[1]`.
    pub balance_loss: Tensor<1>,
    /// Router z-loss `β·mean(logsumexp(logits)²)`, shape `[1]`.
    pub z_loss: Tensor<1>,
    pub stats: RouterStats,
}

/// Routing statistics of one MoE layer for one batch, on the device.
#[derive(Clone, Debug)]
pub struct RouterStats {
    /// Token-slots routed to each expert before capacity dropping, `[K]`.
    pub load: Tensor<1>,
    /// Slots dropped for lack of capacity (expert choice: tokens no expert took), `[1]`.
    pub dropped: Tensor<1>,
    /// What `dropped` counts out of: the token-slots N·k (token choice) or the tokens N
    /// (expert choice), so the dropped fraction is a share of like units.
    pub dropped_of: usize,
    /// The router's distribution over experts `[N, K]`, detached: what [`Self::entropy`]
    /// reads, kept rather than reduced in every training step, which never logs it.
    pub probs: Tensor<2>,
    /// Slots in the batch: tokens × top_k (expert choice: K × C).
    pub slots: usize,
    /// The largest router logit, `[1]`, detached (a stability proxy: router logits that grow
    /// without bound are what the ST-MoE z-loss restrains); `None` for routers without logits.
    pub logit_max: Option<Tensor<1>>,
}

impl RouterStats {
    /// Mean entropy (nats) of the router's distribution, `[1]`.
    pub fn entropy(&self) -> Tensor<1> {
        let p = self.probs.clone();
        (p.clone() * p.clamp_min(1e-12).log())
            .sum_dim(1)
            .mean()
            .neg()
    }
}

impl FeedForward {
    pub fn forward(&self, input: FfnInput) -> FfnOutput {
        match self {
            // Tokens as rows of one matrix: a `[B, T, d]` batched matmul against broadcast
            // weights computes the weight gradient per sequence and then sums them, which
            // cost the dense arm 9% (d 256) and 19% (d 512) of its step on flex (`lab bench`).
            FeedForward::Dense(ffn) => {
                let [b, t, d] = input.x.dims();
                FfnOutput {
                    y: ffn.forward(input.x.reshape([b * t, d])).reshape([b, t, d]),
                    moe: None,
                }
            }
            FeedForward::Moe(moe) => {
                let [b, t, d] = input.x.dims();
                let (y, aux) =
                    moe.forward(input.x.reshape([b * t, d]), input.tokens.reshape([b * t]));
                FfnOutput {
                    y: y.reshape([b, t, d]),
                    moe: Some(aux),
                }
            }
        }
    }

    /// After an optimizer step, with the load this layer's router saw in that step.
    pub fn after_step(self, load: Option<Tensor<1>>) -> Self {
        match (self, load) {
            (FeedForward::Moe(moe), Some(load)) => FeedForward::Moe(moe.after_step(load)),
            (other, _) => other,
        }
    }

    /// Per-expert router state to log, each `[K]` (empty for most variants).
    pub fn router_state(&self) -> Vec<(&'static str, Tensor<1>)> {
        match self {
            FeedForward::Moe(moe) => moe.router.state(),
            FeedForward::Dense(_) => Vec::new(),
        }
    }
}
