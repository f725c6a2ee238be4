//! One transformer block: `x + Attn(RMSNorm(x))`, then `x + FFN(RMSNorm(x))`.

use burn::nn::RmsNorm;
use burn::prelude::*;

use super::attention::Attention;
use super::ffn::{FeedForward, FfnInput, MoeAux};
use super::rope::Rope;

#[derive(Module, Debug)]
pub struct Block {
    pub attn_norm: RmsNorm,
    pub attn: Attention,
    pub ffn_norm: RmsNorm,
    pub ffn: FeedForward,
}

impl Block {
    /// `tokens`: the input ids of the positions, for routers that route by token.
    pub fn forward(
        &self,
        x: Tensor<3>,
        tokens: Tensor<2, Int>,
        rope: &Rope,
    ) -> (Tensor<3>, Option<MoeAux>) {
        let x = x.clone() + self.attn.forward(self.attn_norm.forward(x), rope);
        let out = self.ffn.forward(FfnInput {
            x: self.ffn_norm.forward(x.clone()),
            tokens,
        });
        (x + out.y, out.moe)
    }
}
