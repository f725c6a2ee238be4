//! What a feed-forward takes and gives: the hidden states and token ids in, the output and
//! an MoE's auxiliary losses and routing statistics out.

use burn::prelude::*;

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
