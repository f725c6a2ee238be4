//! Swappable feed-forwards. The block calls [`FeedForward::forward`] and never asks which kind
//! it holds; each kind lives in its own file.

pub mod dense;
pub mod experts;
pub mod moe;
pub mod router;

use burn::prelude::*;

pub use dense::SwiGlu;
pub use experts::Experts;
pub use moe::MoeLayer;
pub use router::{Router, Routing};

#[derive(Module, Debug)]
pub enum FeedForward {
    Dense(SwiGlu),
    Moe(MoeLayer),
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
    /// Slots dropped for lack of capacity, `[1]`.
    pub dropped: Tensor<1>,
    /// Mean entropy (nats) of the router's softmax, `[1]`.
    pub entropy: Tensor<1>,
    /// Slots in the batch: tokens × top_k.
    pub slots: usize,
}

impl FeedForward {
    pub fn forward(&self, x: Tensor<3>) -> FfnOutput {
        match self {
            FeedForward::Dense(ffn) => FfnOutput {
                y: ffn.forward(x),
                moe: None,
            },
            FeedForward::Moe(moe) => {
                let [b, t, d] = x.dims();
                let (y, aux) = moe.forward(x.reshape([b * t, d]));
                FfnOutput {
                    y: y.reshape([b, t, d]),
                    moe: Some(aux),
                }
            }
        }
    }
}
