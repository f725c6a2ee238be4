//! Parameter and FLOP accounting from a model's shape: pure arithmetic, no burn.
//!
//! Conventions (also in docs/manual.md, "Compute accounting"):
//! - a multiply-add is 2 FLOPs; only matmuls are counted (norms, softmax, RoPE, SiLU and the
//!   residual adds are left out, as in Kaplan et al. and Chinchilla);
//! - attention scores are counted at the full sequence length T for every token: QKᵀ and AV are
//!   each `2·T·n_heads·head_dim` FLOPs per token. The causal mask does not skip work in this
//!   implementation, so this is what is executed;
//! - an MoE layer counts its router (`2·d·K` for a learned one) and the experts a token is
//!   routed to (`k · 6·d·d_expert`, plus shared experts): the FLOPs the routing asks for, not
//!   what a dispatch executes (see [`FlopCount::moe_executed_expert_flops`]). Each feed-forward
//!   variant states its own counts ([`FfnShape`]); tests check them against the matmuls the
//!   variant executes (`kernels::flop_meter`);
//! - training FLOPs = 3 × forward (backward ≈ 2 × forward).

use serde::{Deserialize, Serialize};

/// The feed-forward of one block, as accounting sees it: its parameter and per-token FLOP
/// counts, filled in by the feed-forward variant itself (`FfnSpec::layer_shape`), so this
/// module never asks which variant it holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct FfnShape {
    /// Trainable parameters.
    pub params_total: u64,
    /// Trainable parameters a token passes through.
    pub params_active: u64,
    /// State saved with the model but not trained (e.g. a balancing bias).
    pub buffers: u64,
    /// Forward FLOPs per token of a dense SwiGLU.
    pub dense_flops: f64,
    /// Forward FLOPs per token of a router.
    pub router_flops: f64,
    /// Forward FLOPs per token of the experts a token is routed to, shared experts included.
    pub expert_flops_active: f64,
    /// Expert FLOPs per token the dispatch executes (≥ active: padding, capacity).
    pub expert_flops_executed: f64,
    /// Elements of the largest parameter tensor (an MoE layer's stacked `[K, d, d_expert]`
    /// expert weights): one wgpu buffer must hold it, and so must its gradient and each AdamW
    /// moment.
    #[serde(default)]
    pub largest_param: u64,
}

impl FfnShape {
    /// A dense SwiGLU of hidden size `d_ff`: three `d·d_ff` matrices.
    pub fn swiglu(d_model: usize, d_ff: usize) -> FfnShape {
        let params = 3 * (d_model * d_ff) as u64;
        FfnShape {
            params_total: params,
            params_active: params,
            dense_flops: 2.0 * params as f64,
            largest_param: (d_model * d_ff) as u64,
            ..FfnShape::default()
        }
    }
}

/// The byte vocabulary (token id = byte value): the default, where no tokenizer is given.
pub const BYTE_VOCAB: usize = 256;

/// Everything accounting needs to know about a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub seq_len: usize,
    pub vocab_size: usize,
    pub tie_embeddings: bool,
    /// One entry per block.
    pub layers: Vec<FfnShape>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParamCount {
    /// Every trainable parameter (a tied embedding counted once).
    pub total: u64,
    /// Parameters a token passes through: MoE layers count the router and k experts.
    pub active: u64,
    /// The input embedding table.
    pub embedding: u64,
    /// Saved with the model but not trained (balancing biases); not in `total`.
    #[serde(default)]
    pub buffers: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlopCount {
    /// q, k, v and o projections, all layers.
    pub attention_projections: f64,
    /// QKᵀ and AV at the full sequence length, all layers.
    pub attention_scores: f64,
    /// Dense SwiGLU layers.
    pub dense_ffn: f64,
    /// MoE routers.
    pub router: f64,
    /// The k active experts per token in MoE layers.
    pub moe_experts_active: f64,
    /// Expert FLOPs the dispatch executes (≥ `moe_experts_active`).
    pub moe_executed_expert_flops: f64,
    pub lm_head: f64,
    /// Forward FLOPs per token: the sum of the counted parts (active experts only).
    pub forward_per_token: f64,
    /// 3 × forward.
    pub train_per_token: f64,
}

impl ModelShape {
    fn attention_params_per_layer(&self) -> u64 {
        let d = self.d_model as u64;
        let q = (self.n_heads * self.head_dim) as u64;
        let kv = (self.n_kv_heads * self.head_dim) as u64;
        d * q + 2 * d * kv + q * d
    }

    pub fn params(&self) -> ParamCount {
        let d = self.d_model as u64;
        let v = self.vocab_size as u64;
        let embedding = v * d;
        let head = if self.tie_embeddings { 0 } else { v * d };
        let norms_per_layer = 2 * d;
        let mut total = embedding + head + d; // + final norm
        let mut active = total;
        let mut buffers = 0;
        for ffn in &self.layers {
            let shared = self.attention_params_per_layer() + norms_per_layer;
            total += shared;
            active += shared;
            total += ffn.params_total;
            active += ffn.params_active;
            buffers += ffn.buffers;
        }
        ParamCount {
            total,
            active,
            embedding,
            buffers,
        }
    }

    pub fn flops(&self) -> FlopCount {
        let d = self.d_model as f64;
        let t = self.seq_len as f64;
        let attn_width = (self.n_heads * self.head_dim) as f64;
        let mut c = FlopCount {
            attention_projections: 0.0,
            attention_scores: 0.0,
            dense_ffn: 0.0,
            router: 0.0,
            moe_experts_active: 0.0,
            moe_executed_expert_flops: 0.0,
            lm_head: 2.0 * d * self.vocab_size as f64,
            forward_per_token: 0.0,
            train_per_token: 0.0,
        };
        for ffn in &self.layers {
            c.attention_projections += 2.0 * self.attention_params_per_layer() as f64;
            c.attention_scores += 2.0 * 2.0 * t * attn_width;
            c.dense_ffn += ffn.dense_flops;
            c.router += ffn.router_flops;
            c.moe_experts_active += ffn.expert_flops_active;
            c.moe_executed_expert_flops += ffn.expert_flops_executed;
        }
        c.forward_per_token = c.attention_projections
            + c.attention_scores
            + c.dense_ffn
            + c.router
            + c.moe_experts_active
            + c.lm_head;
        c.train_per_token = 3.0 * c.forward_per_token;
        c
    }

    /// Elements of the largest parameter tensor: the embedding (and LM head), an attention
    /// projection, or a feed-forward's largest.
    pub fn largest_param(&self) -> u64 {
        let d = self.d_model as u64;
        let q = (self.n_heads * self.head_dim) as u64;
        let ffn = self.layers.iter().map(|f| f.largest_param).max();
        (self.vocab_size as u64 * d)
            .max(d * q)
            .max(ffn.unwrap_or(0))
    }

    /// The same model with every block's feed-forward replaced by a dense SwiGLU of `d_ff`.
    pub fn with_dense_ffn(&self, d_ff: usize) -> ModelShape {
        ModelShape {
            layers: vec![FfnShape::swiglu(self.d_model, d_ff); self.layers.len()],
            ..self.clone()
        }
    }

    /// The dense `d_ff` whose forward FLOPs per token equal `target`'s (nearest integer).
    pub fn dense_d_ff_matching_flops(&self, target: &ModelShape) -> usize {
        let base = self.with_dense_ffn(0).flops().forward_per_token;
        let per_unit = 6.0 * self.d_model as f64 * self.layers.len() as f64;
        let want = target.flops().forward_per_token;
        ((want - base) / per_unit).round().max(1.0) as usize
    }

    /// The dense `d_ff` whose total parameters equal `target`'s (nearest integer).
    pub fn dense_d_ff_matching_params(&self, target: &ModelShape) -> usize {
        let base = self.with_dense_ffn(0).params().total as f64;
        let per_unit = 3.0 * self.d_model as f64 * self.layers.len() as f64;
        let want = target.params().total as f64;
        ((want - base) / per_unit).round().max(1.0) as usize
    }
}

/// Bytes one training step holds at its peak, by part (f32 everywhere), estimated from the
/// shape: the check before a run starts, and `lab flops`. Activations count what autodiff
/// keeps for the backward pass per block (attention: q, k, v, output, norms and residuals
/// ≈ 12·T·d, scores, masked scores and softmax 3·H·T²; feed-forward: 4 values per hidden unit
/// a token passes through, and the dispatch's copies), and the logits with their softmax and
/// gradient (3·T·V). Against the process's measured peak (VmHWM) less its idle size, on flex:
/// estimate / measured 0.94–0.95 for d 64–128, T 128–256, batch 16–32, dense and MoE
/// (docs/reliability.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainingMemory {
    pub params: u64,
    pub grads: u64,
    /// AdamW's two moments.
    pub optimizer: u64,
    pub activations: u64,
    /// Bytes of the largest single tensor (a wgpu buffer must hold it), and which it is.
    pub largest_tensor: u64,
    pub largest_kind: LargestTensor,
}

/// Which tensor of a step is the largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LargestTensor {
    /// A layer's attention scores, `[B, H, T, T]`.
    Scores,
    /// The output logits, `[B, T, V]`.
    Logits,
    /// A feed-forward's hidden activations, `[B·T·k, hidden]`.
    FfnHidden,
    /// A parameter (or its gradient, or an AdamW moment): the batch does not change it.
    Parameter,
}

impl LargestTensor {
    pub fn describe(self) -> &'static str {
        match self {
            LargestTensor::Scores => "a layer's attention scores",
            LargestTensor::Logits => "the output logits",
            LargestTensor::FfnHidden => "a feed-forward's hidden activations",
            LargestTensor::Parameter => {
                "a parameter tensor (with its gradient and AdamW moments of the same size)"
            }
        }
    }
}

impl TrainingMemory {
    pub fn total(&self) -> u64 {
        self.params + self.grads + self.optimizer + self.activations
    }
}

impl ModelShape {
    /// [`TrainingMemory`] of a step of `batch` sequences.
    pub fn training_memory(&self, batch: usize) -> TrainingMemory {
        const F32: f64 = 4.0;
        let (b, t) = (batch as f64, self.seq_len as f64);
        let (d, h, v) = (
            self.d_model as f64,
            self.n_heads as f64,
            self.vocab_size as f64,
        );
        let params = self.params();
        let weights = (params.total + params.buffers) as f64 * F32;
        let hidden = |ffn: &FfnShape| {
            // Hidden units a token passes through, from the FLOPs: a SwiGLU of hidden h costs
            // 6·d·h per token.
            (ffn.dense_flops + ffn.expert_flops_executed) / (6.0 * d)
        };
        let per_block: f64 = self
            .layers
            .iter()
            .map(|ffn| 12.0 * t * d + 3.0 * h * t * t + t * (4.0 * hidden(ffn) + 2.0 * d))
            .sum();
        let activations = F32 * b * (per_block + 3.0 * t * v + t * d);
        let widest = self.layers.iter().map(hidden).fold(0.0, f64::max);
        let (largest_tensor, largest_kind) = [
            (b * h * t * t, LargestTensor::Scores),
            (b * t * v, LargestTensor::Logits),
            (b * t * widest, LargestTensor::FfnHidden),
            (self.largest_param() as f64, LargestTensor::Parameter),
        ]
        .into_iter()
        .map(|(elements, kind)| ((F32 * elements) as u64, kind))
        .max_by_key(|(bytes, _)| *bytes)
        .expect("four candidates");
        TrainingMemory {
            params: weights as u64,
            grads: (params.total as f64 * F32) as u64,
            optimizer: (2.0 * params.total as f64 * F32) as u64,
            activations: activations as u64,
            largest_tensor,
            largest_kind,
        }
    }
}

/// Relative difference |a − b| / b.
pub fn relative_gap(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}
