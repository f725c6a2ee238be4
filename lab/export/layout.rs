//! The lab model re-laid as Hugging Face names it: burn modules whose field paths are the
//! checkpoint keys of `LlamaForCausalLM` / `MixtralForCausalLM`
//! (`model.layers.{i}.self_attn.q_proj.weight`, `…block_sparse_moe.experts.{e}.w1.weight`),
//! built from a [`Transformer`] and turned back into one.
//!
//! Every weight is a burn `Linear`, `Embedding` or `RmsNorm` here, so burn-store's PyTorch
//! adapter does the rest of the layout on save and load: `Linear` weights transposed to
//! PyTorch's `[out, in]`, `RmsNorm`'s `gamma` named `weight`. The stacked expert weights
//! `[K, d, f]` are split into one `Linear` per expert (Mixtral's checkpoint layout, which
//! `transformers` 4.x reads as is and 5.x converts to its fused experts on load).

use anyhow::{Result, bail};
use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::*;

use crate::model::ffn::router::top_k::TopKRouter;
use crate::model::ffn::router::{Router, Scores};
use crate::model::ffn::{Experts, MoeLayer, SwiGlu};
use crate::model::{Block, FeedForward, Transformer};

#[derive(Module, Debug)]
pub struct HfCausalLm {
    pub model: HfModel,
    /// `None` with tied embeddings (`tie_word_embeddings`: HF reuses `embed_tokens`).
    pub lm_head: Option<Linear>,
}

#[derive(Module, Debug)]
pub struct HfModel {
    pub embed_tokens: Embedding,
    pub layers: Vec<HfLayer>,
    pub norm: RmsNorm,
}

/// One decoder layer; exactly one of `mlp` (Llama) and `block_sparse_moe` (Mixtral) is set.
#[derive(Module, Debug)]
pub struct HfLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: HfAttention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: Option<HfMlp>,
    pub block_sparse_moe: Option<HfSparseMoe>,
}

#[derive(Module, Debug)]
pub struct HfAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
}

#[derive(Module, Debug)]
pub struct HfMlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

#[derive(Module, Debug)]
pub struct HfSparseMoe {
    /// The router, `Linear(d_model, K)`.
    pub gate: Linear,
    pub experts: Vec<HfExpert>,
}

/// Mixtral's names: `w1` gate, `w3` up, `w2` down.
#[derive(Module, Debug)]
pub struct HfExpert {
    pub w1: Linear,
    pub w2: Linear,
    pub w3: Linear,
}

fn linear(weight: Tensor<2>) -> Linear {
    Linear {
        weight: Param::from_tensor(weight),
        bias: None,
    }
}

impl HfCausalLm {
    /// The model's weights under HF's names. Err: a feed-forward with no HF layout (callers
    /// check [`super::architecture::Architecture::of`] first and name the field).
    pub fn from_model(model: &Transformer) -> Result<HfCausalLm> {
        let layers = model
            .blocks
            .iter()
            .map(HfLayer::from_block)
            .collect::<Result<_>>()?;
        Ok(HfCausalLm {
            model: HfModel {
                embed_tokens: model.embedding.clone(),
                layers,
                norm: model.norm.clone(),
            },
            lm_head: model.lm_head.clone(),
        })
    }

    /// Fill `template` (a model of the same shape, e.g. freshly initialised) with these
    /// weights. Err: a layer whose feed-forward does not fit the template's.
    pub fn into_model(self, mut template: Transformer) -> Result<Transformer> {
        if self.model.layers.len() != template.blocks.len() {
            bail!(
                "{} layers, the model has {}",
                self.model.layers.len(),
                template.blocks.len()
            );
        }
        template.embedding = self.model.embed_tokens;
        template.norm = self.model.norm;
        template.lm_head = self.lm_head;
        template.blocks = self
            .model
            .layers
            .into_iter()
            .zip(template.blocks)
            .map(|(layer, block)| layer.into_block(block))
            .collect::<Result<_>>()?;
        Ok(template)
    }
}

impl HfLayer {
    fn from_block(block: &Block) -> Result<HfLayer> {
        let (mlp, block_sparse_moe) = match &block.ffn {
            FeedForward::Dense(ffn) => (Some(HfMlp::from_swiglu(ffn)), None),
            FeedForward::Moe(moe) => (None, Some(HfSparseMoe::from_layer(moe)?)),
        };
        Ok(HfLayer {
            input_layernorm: block.attn_norm.clone(),
            self_attn: HfAttention {
                q_proj: block.attn.wq.clone(),
                k_proj: block.attn.wk.clone(),
                v_proj: block.attn.wv.clone(),
                o_proj: block.attn.wo.clone(),
            },
            post_attention_layernorm: block.ffn_norm.clone(),
            mlp,
            block_sparse_moe,
        })
    }

    fn into_block(self, mut block: Block) -> Result<Block> {
        block.attn_norm = self.input_layernorm;
        block.ffn_norm = self.post_attention_layernorm;
        block.attn.wq = self.self_attn.q_proj;
        block.attn.wk = self.self_attn.k_proj;
        block.attn.wv = self.self_attn.v_proj;
        block.attn.wo = self.self_attn.o_proj;
        block.ffn = match (block.ffn, self.mlp, self.block_sparse_moe) {
            (FeedForward::Dense(_), Some(mlp), None) => FeedForward::Dense(mlp.into_swiglu()),
            (FeedForward::Moe(layer), None, Some(moe)) => FeedForward::Moe(moe.into_layer(layer)?),
            _ => bail!("a layer's feed-forward kind differs from the model's"),
        };
        Ok(block)
    }
}

impl HfMlp {
    fn from_swiglu(ffn: &SwiGlu) -> HfMlp {
        HfMlp {
            gate_proj: linear(ffn.w1.val()),
            up_proj: linear(ffn.w3.val()),
            down_proj: linear(ffn.w2.val()),
        }
    }

    fn into_swiglu(self) -> SwiGlu {
        SwiGlu {
            w1: self.gate_proj.weight,
            w3: self.up_proj.weight,
            w2: self.down_proj.weight,
        }
    }
}

impl HfSparseMoe {
    fn from_layer(moe: &MoeLayer) -> Result<HfSparseMoe> {
        let Router::TopK(router) = &moe.router else {
            bail!("only the top-k router has Mixtral's layout");
        };
        if moe.shared.is_some() {
            bail!("shared experts have no Mixtral slot");
        }
        let expert = |w: &Param<Tensor<3>>, e: usize| {
            let [_, rows, cols] = w.dims();
            linear(
                w.val()
                    .slice([e..e + 1, 0..rows, 0..cols])
                    .reshape([rows, cols]),
            )
        };
        let experts = (0..moe.experts.count())
            .map(|e| HfExpert {
                w1: expert(&moe.experts.w1, e),
                w2: expert(&moe.experts.w2, e),
                w3: expert(&moe.experts.w3, e),
            })
            .collect();
        Ok(HfSparseMoe {
            gate: linear(router.scores.weight.val()),
            experts,
        })
    }

    fn into_layer(self, mut layer: MoeLayer) -> Result<MoeLayer> {
        if self.experts.len() != layer.experts.count() {
            bail!(
                "{} experts, the model has {}",
                self.experts.len(),
                layer.experts.count()
            );
        }
        let stack = |pick: fn(&HfExpert) -> &Linear| {
            let ws = self.experts.iter().map(|e| pick(e).weight.val()).collect();
            Param::from_tensor(Tensor::stack::<3>(ws, 0))
        };
        layer.experts = Experts {
            w1: stack(|e| &e.w1),
            w3: stack(|e| &e.w3),
            w2: stack(|e| &e.w2),
        };
        layer.router = Router::TopK(TopKRouter {
            scores: Scores {
                weight: self.gate.weight,
            },
        });
        Ok(layer)
    }
}
