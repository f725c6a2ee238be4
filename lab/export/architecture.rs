//! Which Hugging Face architecture computes exactly the lab model's function, or why none does.
//!
//! The attention, norms, RoPE (rotate-half) and embeddings are Llama's in both cases; only the
//! feed-forward decides:
//! - dense SwiGLU → `LlamaForCausalLM` (`mlp.gate_proj / up_proj / down_proj`);
//! - MoE, softmax top-k router with renormalised gates, dropless, every block, no shared
//!   experts → `MixtralForCausalLM` (`block_sparse_moe.gate`, `experts.{e}.w1 / w3 / w2`).
//!   Fine-grained experts (granularity G) are plain Mixtral experts: K·G of them, hidden
//!   `d_expert / G`, `top_k · G` per token.
//!
//! Everything else changes the function at inference and is refused: a capacity factor drops
//! tokens by batch (HF drops none), shared experts and dense blocks between MoE blocks have no
//! Mixtral slot, unnormalised gates, sigmoid, loss-free, expert-choice and hash routers score
//! or pick experts differently from Mixtral's router.

use crate::error::FieldError;
use crate::model::ffn::{Capacity, FfnSpec, MoeSpec, RouterSpec};

/// A Hugging Face causal-LM architecture the lab exports to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Mixtral,
}

/// What can be exported, for the refusal message.
pub const EXPORTABLE: &str = "dense SwiGLU (→ LlamaForCausalLM); MoE with the softmax top-k \
    router, renormalize = true, capacity = \"dropless\", moe_every = 1 and shared_experts = 0, \
    any granularity (→ MixtralForCausalLM)";

impl Architecture {
    /// The class name in `config.json`'s `architectures`.
    pub fn class(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Mixtral => "MixtralForCausalLM",
        }
    }

    /// `config.json`'s `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mixtral => "mixtral",
        }
    }

    /// The architecture of a run's feed-forward; Err names the field (relative to the run
    /// spec) that has no HF counterpart, and lists what can be exported.
    pub fn of(ffn: &FfnSpec) -> Result<Architecture, FieldError> {
        match ffn {
            FfnSpec::Dense(_) => Ok(Architecture::Llama),
            FfnSpec::Moe(moe) => mixtral(moe).map(|()| Architecture::Mixtral),
        }
    }
}

fn mixtral(moe: &MoeSpec) -> Result<(), FieldError> {
    let refuse = |field: &str, what: String| {
        Err(FieldError::new(
            format!("ffn.{field}"),
            format!("{what} has no exact Hugging Face counterpart; exportable: {EXPORTABLE}"),
        ))
    };
    if !matches!(moe.router, RouterSpec::TopK(_)) {
        return refuse("router.kind", format!("the `{}` router", moe.router.name()));
    }
    if !moe.renormalize {
        return refuse("renormalize", "top-k gates without renormalisation".into());
    }
    if let Capacity::Factor(c) = moe.capacity {
        return refuse(
            "capacity",
            format!("capacity factor {c} (tokens dropped per batch)"),
        );
    }
    if moe.shared_experts > 0 {
        return refuse("shared_experts", "shared experts".into());
    }
    if moe.moe_every > 1 {
        return refuse(
            "moe_every",
            format!("MoE in every {}th block only", moe.moe_every),
        );
    }
    Ok(())
}
