//! `[model]`: the Transformer's shape (everything but the feed-forward), and its validation.

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, at_most, check, positive};
use crate::limits;

pub use crate::compute::BYTE_VOCAB;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// Key/value heads for grouped-query attention; defaults to `n_heads` (plain multi-head).
    #[serde(default)]
    pub n_kv_heads: Option<usize>,
    pub seq_len: usize,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// Share the token embedding with the LM head.
    #[serde(default)]
    pub tie_embeddings: bool,
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
    /// How initial weights are drawn; resolved specs always state it, so a run written before
    /// the field existed (drawn `sequential`ly) is told apart from a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitScheme>,
    /// Token ids the embedding and LM head cover. Set by resolution from `[data]` (the
    /// tokenizer's vocabulary); absent means bytes (256), so byte runs' files are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
}

/// `init = "per-part"` (the default): each part of the model (embedding, each block's
/// attention and feed-forward, head) draws from its own stream of the seed, so arms at one seed
/// share every weight but the feed-forward's. `"sequential"`: one stream in build order, as
/// runs before this option were drawn (each block's feed-forward, then its attention; then the
/// embedding and head): arms then start from different weights.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum InitScheme {
    #[default]
    PerPart,
    Sequential,
}

/// RoPE's base when a spec names none (LLaMA-2's; an experiment's `[base]` shares it).
pub fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_norm_eps() -> f64 {
    1e-5
}

impl ModelSpec {
    /// The vocabulary's size: the tokenizer's, or 256 bytes.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size.unwrap_or(BYTE_VOCAB)
    }
    pub fn kv_heads(&self) -> usize {
        self.n_kv_heads.unwrap_or(self.n_heads)
    }
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Check the fields (paths relative to `[model]`) and fill in `n_kv_heads`.
    pub fn resolve(mut self) -> Result<ModelSpec, FieldError> {
        at_most("d_model", self.d_model, limits::D_MODEL)?;
        at_most("n_layers", self.n_layers, limits::N_LAYERS)?;
        at_most("n_heads", self.n_heads, limits::N_HEADS)?;
        at_most("n_kv_heads", self.kv_heads(), limits::N_HEADS)?;
        at_most("seq_len", self.seq_len, limits::SEQ_LEN)?;
        positive("d_model", self.d_model)?;
        positive("n_layers", self.n_layers)?;
        positive("n_heads", self.n_heads)?;
        positive("seq_len", self.seq_len)?;
        let kv = self.kv_heads();
        positive("n_kv_heads", kv)?;
        check(self.d_model.is_multiple_of(self.n_heads), "d_model", || {
            format!(
                "d_model ({}) must be divisible by n_heads ({})",
                self.d_model, self.n_heads
            )
        })?;
        check(self.n_heads.is_multiple_of(kv), "n_kv_heads", || {
            format!(
                "n_heads ({}) must be divisible by n_kv_heads ({kv})",
                self.n_heads
            )
        })?;
        check(self.head_dim().is_multiple_of(2), "n_heads", || {
            format!(
                "head dimension d_model / n_heads = {} must be even for RoPE",
                self.head_dim()
            )
        })?;
        check(self.rope_theta > 0.0, "rope_theta", || {
            format!("must be positive, got {}", self.rope_theta)
        })?;
        check(self.norm_eps > 0.0, "norm_eps", || {
            format!("must be positive, got {}", self.norm_eps)
        })?;
        self.n_kv_heads = Some(kv);
        self.init = Some(self.init.unwrap_or_default());
        Ok(self)
    }
}
