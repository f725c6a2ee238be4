//! `config.json` of an export: the HF config of `LlamaForCausalLM` / `MixtralForCausalLM`
//! that builds the lab model's function, written from and read back into the lab's specs (the
//! round trip is how the tests know the file describes the model).

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::architecture::Architecture;
use crate::model::ffn::{Capacity, DenseSpec, DffSpec, FfnSpec, MoeSpec, RouterSpec};
use crate::model::{InitScheme, ModelSpec};

/// The fields `transformers` reads for these two architectures (both 4.x and 5.x names for
/// RoPE: `rope_theta`, and `rope_parameters`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HfConfig {
    pub architectures: Vec<String>,
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    /// Dense: the SwiGLU's hidden size; Mixtral: one expert's.
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_parameters: RopeParameters,
    pub hidden_act: String,
    pub tie_word_embeddings: bool,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub attention_dropout: f64,
    pub torch_dtype: String,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_local_experts: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_experts_per_tok: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_jitter_noise: Option<f64>,
    /// Where the weights came from: the run directory and which model (final / averaged).
    pub moe_lab: Provenance,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RopeParameters {
    pub rope_type: String,
    pub rope_theta: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    pub run_dir: String,
    pub weights: String,
}

impl HfConfig {
    /// The config of `model` + `ffn` (resolved specs), whose feed-forward hidden size is
    /// `hidden` (one expert's for an MoE).
    pub fn new(
        arch: Architecture,
        model: &ModelSpec,
        ffn: &FfnSpec,
        hidden: usize,
        moe_lab: Provenance,
    ) -> HfConfig {
        let moe = match ffn {
            FfnSpec::Moe(m) => Some(m),
            FfnSpec::Dense(_) => None,
        };
        HfConfig {
            architectures: vec![arch.class().into()],
            model_type: arch.model_type().into(),
            vocab_size: model.vocab_size(),
            hidden_size: model.d_model,
            intermediate_size: hidden,
            num_hidden_layers: model.n_layers,
            num_attention_heads: model.n_heads,
            num_key_value_heads: model.kv_heads(),
            head_dim: model.head_dim(),
            max_position_embeddings: model.seq_len,
            rms_norm_eps: model.norm_eps,
            rope_theta: model.rope_theta,
            rope_parameters: RopeParameters {
                rope_type: "default".into(),
                rope_theta: model.rope_theta,
            },
            hidden_act: "silu".into(),
            tie_word_embeddings: model.tie_embeddings,
            attention_bias: false,
            mlp_bias: false,
            attention_dropout: 0.0,
            torch_dtype: "float32".into(),
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
            num_local_experts: moe.map(|m| m.routed_experts()),
            num_experts_per_tok: moe.map(|m| m.routed_top_k()),
            router_jitter_noise: moe.map(|_| 0.0),
            moe_lab,
        }
    }

    pub fn read(path: &Path) -> Result<HfConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The lab specs of the model this config describes (an MoE as plain Mixtral experts:
    /// granularity 1, its K and k already fine-grained).
    pub fn specs(&self) -> Result<(ModelSpec, FfnSpec)> {
        let model = ModelSpec {
            d_model: self.hidden_size,
            n_layers: self.num_hidden_layers,
            n_heads: self.num_attention_heads,
            n_kv_heads: Some(self.num_key_value_heads),
            seq_len: self.max_position_embeddings,
            rope_theta: self.rope_theta,
            tie_embeddings: self.tie_word_embeddings,
            norm_eps: self.rms_norm_eps,
            init: Some(InitScheme::PerPart),
            vocab_size: Some(self.vocab_size),
        }
        .resolve()
        .map_err(|e| anyhow::anyhow!("config.json: {e}"))?;
        let ffn = match (self.num_local_experts, self.num_experts_per_tok) {
            (None, None) => FfnSpec::Dense(DenseSpec {
                d_ff: DffSpec::Size(self.intermediate_size),
                match_moe: None,
            }),
            (Some(experts), Some(top_k)) => FfnSpec::Moe(MoeSpec {
                experts,
                top_k,
                d_expert: self.intermediate_size,
                renormalize: true,
                capacity: Capacity::Dropless,
                aux_loss_coef: 0.0,
                z_loss_coef: 0.0,
                moe_every: 1,
                d_ff: None,
                granularity: 1,
                shared_experts: 0,
                router: RouterSpec::default(),
            }),
            _ => bail!("config.json: num_local_experts and num_experts_per_tok come together"),
        };
        Ok((model, ffn))
    }
}
