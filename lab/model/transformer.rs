//! The whole model, built from its (validated) model and feed-forward specs and a seed.

use burn::nn::{Embedding, Linear, RmsNorm, RmsNormConfig};
use burn::prelude::*;

use super::attention::Attention;
use super::block::Block;
use super::ffn::FfnSpec;
use super::ffn::MoeAux;
use super::init;
use super::rope::Rope;
use super::spec::{InitScheme, ModelSpec};
use crate::kernels::{fused, matmul};

#[derive(Module, Debug)]
pub struct Transformer {
    pub embedding: Embedding,
    pub blocks: Vec<Block>,
    pub norm: RmsNorm,
    /// `None` when the head is tied to the embedding.
    pub lm_head: Option<Linear>,
    rope: Rope,
}

/// Per block: the attention's keys and values so far, `[B, H_kv, positions, d_h]`
/// each (`None` before the first step).
pub type KvCache = Vec<Option<(Tensor<4>, Tensor<4>)>>;

/// The model's output for a batch; losses are scalars of shape `[1]` on the device.
pub struct ModelOutput {
    /// `[B, T, V]`
    pub logits: Tensor<3>,
    /// Per block: the MoE's losses and routing statistics, `None` for a dense block.
    pub moe: Vec<Option<MoeAux>>,
    /// Per block: the largest pre-softmax attention logit, `[1]`, detached (a stability
    /// proxy; see [`Attention::forward_probed`]).
    pub attn_logit_max: Vec<Tensor<1>>,
}

impl ModelOutput {
    /// Sum over MoE layers of the balance losses and of the z-losses (zero for a dense model).
    pub fn aux_losses(&self) -> (Tensor<1>, Tensor<1>) {
        let device = self.logits.device();
        let mut balance = Tensor::<1>::zeros([1], &device);
        let mut z = Tensor::<1>::zeros([1], &device);
        for aux in self.moe.iter().flatten() {
            balance = balance + aux.balance_loss.clone();
            z = z + aux.z_loss.clone();
        }
        (balance, z)
    }
}

impl Transformer {
    /// A freshly initialised model; its weights are a function of `seed` (and the spec's
    /// `init` scheme) alone.
    pub fn new(model: &ModelSpec, ffn: &FfnSpec, seed: u64, device: &Device) -> Self {
        init::seeded(seed, || Self::build(model, ffn, device))
    }

    /// Each part draws from its own stream ([`init::part`]), so arms that differ only in their
    /// feed-forward start from the same embedding, attention and head.
    fn build(m: &ModelSpec, ffn: &FfnSpec, device: &Device) -> Self {
        let d = m.d_model;
        let kv = m.kv_heads();
        let norm = || RmsNormConfig::new(d).with_epsilon(m.norm_eps).init(device);
        let own = m.init.unwrap_or_default() == InitScheme::PerPart;
        let blocks = (0..m.n_layers)
            .map(|layer| {
                // The feed-forward first: the order the sequential scheme always drew in.
                let ffn = init::part(&format!("block{layer}.ffn"), own, || {
                    ffn.build(layer, d, m.n_layers, device)
                });
                let attn = init::part(&format!("block{layer}.attention"), own, || {
                    Attention::new(d, m.n_heads, kv, m.n_layers, device)
                });
                Block {
                    attn_norm: norm(),
                    attn,
                    ffn_norm: norm(),
                    ffn,
                }
            })
            .collect();
        let embedding = init::part("embedding", own, || Embedding {
            weight: init::normal([m.vocab_size(), d], init::INIT_STD, device),
        });
        let lm_head = (!m.tie_embeddings).then(|| {
            init::part("lm_head", own, || {
                init::linear(d, m.vocab_size(), init::INIT_STD, device)
            })
        });
        Transformer {
            embedding,
            blocks,
            norm: norm(),
            lm_head,
            rope: Rope::new(m.head_dim(), m.seq_len, m.rope_theta, device),
        }
    }

    /// The same model with the RoPE base `theta` (a long-context stage's), over the same
    /// positions.
    pub fn with_rope_theta(mut self, theta: f64) -> Self {
        let [len, dim] = self.rope.dims();
        let device = self.embedding.weight.device();
        self.rope = Rope::new(dim, len, theta, &device);
        self
    }

    /// `tokens: [B, T]` → logits and per-block MoE outputs.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> ModelOutput {
        let mut x = self.embedding.forward(tokens.clone());
        let mut moe = Vec::with_capacity(self.blocks.len());
        let mut attn_logit_max = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (next, aux, logit_max) = block.forward(x, tokens.clone(), &self.rope);
            x = next;
            moe.push(aux);
            attn_logit_max.push(logit_max);
        }
        let logits = self.head(fused::rms_norm(&self.norm, x));
        ModelOutput {
            logits,
            moe,
            attn_logit_max,
        }
    }

    /// Logits `[B, n, V]` for new positions `start..start + n` (`tokens: [B, n]`),
    /// given the key/value cache of positions `0..start` (one entry per block, `None` when
    /// `start` is 0), which it extends: the decoding path, equal to the last `n` rows of
    /// [`forward`](Self::forward) on the whole sequence for causal feed-forwards. `start + n`
    /// must not exceed the model's `seq_len` (its RoPE table).
    pub fn forward_cached(
        &self,
        tokens: Tensor<2, Int>,
        cache: &mut KvCache,
        start: usize,
    ) -> Tensor<3> {
        cache.resize(self.blocks.len(), None);
        let mut x = self.embedding.forward(tokens.clone());
        for (block, layer_cache) in self.blocks.iter().zip(cache.iter_mut()) {
            x = block.forward_cached(x, tokens.clone(), &self.rope, layer_cache, start);
        }
        self.head(fused::rms_norm(&self.norm, x))
    }

    /// The LM head (or the tied embedding) on normalised states `[b, t, d]`.
    fn head(&self, h: Tensor<3>) -> Tensor<3> {
        match &self.lm_head {
            Some(head) => matmul::linear(head, h),
            None => {
                let [b, t, d] = h.dims();
                let table = self.embedding.weight.val();
                let vocab = table.dims()[0];
                matmul::matmul(h.reshape([b * t, d]), table.transpose()).reshape([b, t, vocab])
            }
        }
    }

    /// After an optimizer step: each feed-forward's update from the routing of that step's
    /// forward (`moe` as returned in its [`ModelOutput`]); e.g. loss-free balancing's bias.
    pub fn after_step(mut self, moe: &[Option<MoeAux>]) -> Self {
        self.blocks = self
            .blocks
            .into_iter()
            .zip(moe)
            .map(|(mut block, aux)| {
                let load = aux.as_ref().map(|a| a.stats.load.clone().detach());
                block.ffn = block.ffn.after_step(load);
                block
            })
            .collect();
        self
    }

    /// Router state to log: (block, name, `[K]` values), e.g. loss-free balancing's biases.
    pub fn router_state(&self) -> Vec<(usize, &'static str, Tensor<1>)> {
        self.blocks
            .iter()
            .enumerate()
            .flat_map(|(layer, b)| {
                b.ffn
                    .router_state()
                    .into_iter()
                    .map(move |(name, t)| (layer, name, t))
            })
            .collect()
    }
}

/// Mean next-token cross-entropy (nats): `logits: [B, T, V]`, `targets: [B, T]`.
pub fn cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
    token_cross_entropy(logits, targets).mean()
}

/// [`cross_entropy`], and the mean over positions of the output log-partition
/// `log Σ_v exp(logit_v)` (`[1]`, detached): the drift of the output logits that Wortsman et al.
/// (2023) find diverges at high learning rates without a z-loss. On flex both come from one
/// pass over the logits.
pub fn cross_entropy_and_log_partition(
    logits: Tensor<3>,
    targets: Tensor<2, Int>,
) -> (Tensor<1>, Tensor<1>) {
    let [b, t, v] = logits.dims();
    let (loss, lse) = fused::cross_entropy_and_log_partition_rows(
        logits.reshape([b * t, v]),
        targets.reshape([b * t]),
    );
    (loss.mean(), lse.mean())
}

/// Cross-entropy of every position, `[B·T]` row-major.
pub fn token_cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
    let [b, t, v] = logits.dims();
    fused::cross_entropy_rows(logits.reshape([b * t, v]), targets.reshape([b * t]))
}
