//! One transformer block: `x + Attn(RMSNorm(x))`, then `x + FFN(RMSNorm(x))`.

use burn::nn::RmsNorm;
use burn::prelude::*;

use super::attention::Attention;
use super::ffn::{FeedForward, FfnInput, MoeAux};
use super::rope::Rope;
use crate::kernels::fused;

#[derive(Module, Debug)]
pub struct Block {
    pub attn_norm: RmsNorm,
    pub attn: Attention,
    pub ffn_norm: RmsNorm,
    pub ffn: FeedForward,
}

impl Block {
    /// `tokens`: the input ids of the positions, for routers that route by token. Returns the
    /// block's output, its MoE aux (if routed) and its largest attention logit `[1]`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        tokens: Tensor<2, Int>,
        rope: &Rope,
    ) -> (Tensor<3>, Option<MoeAux>, Tensor<1>) {
        let (attn, logit_max) = self
            .attn
            .forward_probed(fused::rms_norm(&self.attn_norm, x.clone()), rope);
        let x = x + attn;
        let out = self.ffn.forward(FfnInput {
            x: fused::rms_norm(&self.ffn_norm, x.clone()),
            tokens,
        });
        (x + out.y, out.moe, logit_max)
    }

    /// [`forward`](Self::forward) for new positions `start..start + n`, with the attention's
    /// key/value cache (the decoding path); returns the block's output only.
    pub fn forward_cached(
        &self,
        x: Tensor<3>,
        tokens: Tensor<2, Int>,
        rope: &Rope,
        cache: &mut Option<(Tensor<4>, Tensor<4>)>,
        start: usize,
    ) -> Tensor<3> {
        let attn = self.attn.forward_cached(
            fused::rms_norm(&self.attn_norm, x.clone()),
            rope,
            cache,
            start,
        );
        let x = x + attn;
        let out = self.ffn.forward(FfnInput {
            x: fused::rms_norm(&self.ffn_norm, x.clone()),
            tokens,
        });
        x + out.y
    }
}
