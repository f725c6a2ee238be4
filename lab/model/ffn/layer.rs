//! The feed-forward of a block: dense or MoE, built by [`super::spec::FfnSpec`], one per
//! block; the block and the training loop call it without matching on its kind.

use burn::prelude::*;

use super::dense::SwiGlu;
use super::moe::MoeLayer;
use super::output::{FfnInput, FfnOutput};

// One per block, built once: the size gap between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum FeedForward {
    Dense(SwiGlu),
    Moe(MoeLayer),
}

impl FeedForward {
    pub fn forward(&self, input: FfnInput) -> FfnOutput {
        match self {
            // Tokens as rows of one matrix: a `[B, T, d]` batched matmul against broadcast
            // weights computes the weight gradient per sequence and then sums them, a slower
            // step on flex (`lab bench`).
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
