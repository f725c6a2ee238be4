//! The spec's TOML schema. Field names here are the names users write; defaults are documented
//! in README.md ("Spec reference") and must stay in step with the `default_*` functions below.

use serde::{Deserialize, Serialize};

pub use crate::model::ffn::router::RouterSpec;

/// Byte-level tokens: the vocabulary is every byte value.
pub const VOCAB_SIZE: usize = 256;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Run name: the run directory is `results/<experiment>/<name>/`.
    pub name: String,
    #[serde(default = "default_experiment")]
    pub experiment: String,
    #[serde(default)]
    pub seed: u64,
    pub model: ModelSpec,
    pub ffn: FfnSpec,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(default)]
    pub stability: StabilitySpec,
    #[serde(default)]
    pub data: DataSpec,
}

fn default_experiment() -> String {
    "default".into()
}

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
}

fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_norm_eps() -> f64 {
    1e-5
}

impl ModelSpec {
    pub fn kv_heads(&self) -> usize {
        self.n_kv_heads.unwrap_or(self.n_heads)
    }
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }
}

/// The feed-forward of every block: `kind = "dense"` or `kind = "moe"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FfnSpec {
    Dense(DenseSpec),
    Moe(MoeSpec),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DenseSpec {
    /// Hidden size of the SwiGLU, or a rule that derives it from `[ffn.match]`.
    pub d_ff: DffSpec,
    /// The MoE feed-forward this dense arm is matched against (with `d_ff = "match-active"` or
    /// `"match-total"`, or a number that must then agree within 1%).
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_moe: Option<MoeSpec>,
}

/// `d_ff = 256`, or derived: `"match-active"` (equal active FLOPs per token to `[ffn.match]`) or
/// `"match-total"` (equal total parameters).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum DffSpec {
    Size(usize),
    Rule(MatchRule),
}

impl<'de> Deserialize<'de> for DffSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Name(String),
            Other(toml::Value),
        }
        let bad = |got: String| {
            serde::de::Error::custom(format!(
                "d_ff must be a positive integer, \"match-active\" or \"match-total\"; got {got}"
            ))
        };
        match Raw::deserialize(d)? {
            Raw::Int(n) if n > 0 => Ok(DffSpec::Size(n as usize)),
            Raw::Int(n) => Err(bad(n.to_string())),
            Raw::Name(s) if s == "match-active" => Ok(DffSpec::Rule(MatchRule::MatchActive)),
            Raw::Name(s) if s == "match-total" => Ok(DffSpec::Rule(MatchRule::MatchTotal)),
            Raw::Name(s) => Err(bad(format!("{s:?}"))),
            Raw::Other(v) => Err(bad(v.to_string())),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MatchRule {
    MatchActive,
    MatchTotal,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MoeSpec {
    pub experts: usize,
    pub top_k: usize,
    pub d_expert: usize,
    /// Renormalise the k gate weights to sum to 1 (Mixtral) or keep raw softmax mass (OLMoE).
    #[serde(default = "default_true")]
    pub renormalize: bool,
    #[serde(default)]
    pub capacity: Capacity,
    #[serde(default = "default_aux_loss_coef")]
    pub aux_loss_coef: f64,
    #[serde(default = "default_z_loss_coef")]
    pub z_loss_coef: f64,
    /// MoE in every n-th block (blocks n-1, 2n-1, ...), dense SwiGLU of `d_ff` elsewhere.
    #[serde(default = "default_one")]
    pub moe_every: usize,
    /// Hidden size of the dense blocks when `moe_every > 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_ff: Option<usize>,
    /// Fine-grained experts (DeepSeekMoE): each of the `experts` is split into G experts of
    /// hidden `d_expert / G`, and tokens take `top_k · G` of them: active FLOPs unchanged.
    #[serde(default = "default_one")]
    pub granularity: usize,
    /// Fine-grained experts every token passes through, outside the router (DeepSeekMoE);
    /// routed choices drop to `top_k · G − shared_experts`, so active FLOPs stay unchanged.
    #[serde(default)]
    pub shared_experts: usize,
    /// The router variant (`[ffn.router]`, `kind = "top-k"` by default).
    #[serde(default)]
    pub router: RouterSpec,
}

fn default_true() -> bool {
    true
}
fn default_one() -> usize {
    1
}
fn default_aux_loss_coef() -> f64 {
    0.01
}
fn default_z_loss_coef() -> f64 {
    0.001
}

/// `capacity = "dropless"` (default) or a capacity factor such as `capacity = 1.25`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Capacity {
    #[default]
    Dropless,
    Factor(f64),
}

impl Serialize for Capacity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Capacity::Dropless => s.serialize_str("dropless"),
            Capacity::Factor(f) => s.serialize_f64(*f),
        }
    }
}

impl<'de> Deserialize<'de> for Capacity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Factor(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Name(s) if s == "dropless" => Ok(Capacity::Dropless),
            Raw::Name(s) => Err(serde::de::Error::custom(format!(
                "capacity must be \"dropless\" or a number such as 1.25, got \"{s}\""
            ))),
            Raw::Factor(f) => Ok(Capacity::Factor(f)),
        }
    }
}

impl MoeSpec {
    /// `experts` experts of hidden `d_expert`, top-k routing, every other field at its default
    /// (dropless, top-k softmax router, balance 0.01, z 0.001, renormalised gates).
    pub fn new(experts: usize, top_k: usize, d_expert: usize) -> MoeSpec {
        MoeSpec {
            experts,
            top_k,
            d_expert,
            renormalize: true,
            capacity: Capacity::Dropless,
            aux_loss_coef: default_aux_loss_coef(),
            z_loss_coef: default_z_loss_coef(),
            moe_every: 1,
            d_ff: None,
            granularity: 1,
            shared_experts: 0,
            router: RouterSpec::default(),
        }
    }

    /// Whether block `layer` (0-based) holds the MoE feed-forward.
    pub fn is_moe_layer(&self, layer: usize) -> bool {
        (layer + 1) % self.moe_every == 0
    }
    /// Experts the router chooses from: `experts · granularity`.
    pub fn routed_experts(&self) -> usize {
        self.experts * self.granularity
    }
    /// Hidden size of one (fine-grained) expert: `d_expert / granularity`.
    pub fn expert_hidden(&self) -> usize {
        self.d_expert / self.granularity.max(1)
    }
    /// Routed experts per token: `top_k · granularity − shared_experts`.
    pub fn routed_top_k(&self) -> usize {
        (self.top_k * self.granularity).saturating_sub(self.shared_experts)
    }
    /// Hidden size of the shared SwiGLU (all shared experts fused): `shared · d_expert / G`.
    pub fn shared_hidden(&self) -> usize {
        self.shared_experts * self.expert_hidden()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Linear warmup, then cosine decay to `min_lr_ratio · lr`.
    #[default]
    Cosine,
    /// Warmup, stable at `lr`, then linear decay to 0 over the final `decay_fraction` of steps.
    Wsd,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSpec {
    pub batch_size: usize,
    /// Training steps; give this or `flop_budget`, not both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Training FLOPs; steps = budget / (training FLOPs per token · tokens per step), rounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flop_budget: Option<f64>,
    pub lr: f64,
    pub min_lr_ratio: f64,
    pub warmup_steps: usize,
    pub schedule: Schedule,
    pub decay_fraction: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Clip the global gradient norm (over all parameters) to this; 0 disables clipping.
    pub grad_clip: f64,
    pub eval_every: usize,
    pub eval_batches: usize,
    pub log_every: usize,
    /// Save model, optimizer and position every N steps (0: only at the end of a sweep cell).
    pub checkpoint_every: usize,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            batch_size: 16,
            steps: None,
            flop_budget: None,
            lr: 3e-3,
            min_lr_ratio: 0.1,
            warmup_steps: 20,
            schedule: Schedule::Cosine,
            decay_fraction: 0.2,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            eval_every: 50,
            eval_batches: 4,
            log_every: 1,
            checkpoint_every: 0,
        }
    }
}

/// Spike detection: a value is a spike when it exceeds the rolling median of the previous
/// `window` steps by more than `z` robust standard deviations (σ̂ = 1.4826 · MAD).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StabilitySpec {
    pub window: usize,
    pub z: f64,
    /// Steps of history needed before any spike is flagged.
    pub min_history: usize,
}

impl Default for StabilitySpec {
    fn default() -> Self {
        StabilitySpec {
            window: 50,
            z: 6.0,
            min_history: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    #[default]
    Generated,
    Text,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataSpec {
    pub source: SourceKind,
    /// A text file or a directory of text files (`source = "text"`), relative to the spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<std::path::PathBuf>,
    /// Text source: share of the data held out for validation (the tail). Generated source:
    /// validation bytes per domain = corpus_bytes · val_fraction / 4.
    pub val_fraction: f64,
    /// Training bytes of the generated corpus, over all domains.
    pub corpus_bytes: usize,
    /// Seed of the generated world and text (independent of the run's seed, so every seed of
    /// a sweep sees the same world).
    pub corpus_seed: u64,
    /// Entities in the generated world (the knowledge domain's size knob).
    pub entities: usize,
    /// Share of facts never stated in training (the `knowledge_heldout` validation stream).
    pub heldout_facts: f64,
    /// Mixture weights of the generated domains (LLaMA-3's pre-training mix by default).
    pub weights: DomainWeights,
    /// Switch to `anneal_weights` for the final `train.decay_fraction` of the steps.
    pub anneal: bool,
    pub anneal_weights: DomainWeights,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            source: SourceKind::Generated,
            path: None,
            val_fraction: 0.1,
            corpus_bytes: 2_000_000,
            corpus_seed: 0,
            entities: 400,
            heldout_facts: 0.05,
            weights: DomainWeights::default(),
            anneal: false,
            anneal_weights: DomainWeights::ANNEAL,
        }
    }
}

/// Mixture weights of the four generated domains (normalised when used).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DomainWeights {
    pub knowledge: f64,
    pub math: f64,
    pub code: f64,
    pub multilingual: f64,
}

impl Default for DomainWeights {
    /// About 50% general knowledge, 25% math and reasoning, 17% code, 8% multilingual.
    fn default() -> Self {
        DomainWeights {
            knowledge: 0.50,
            math: 0.25,
            code: 0.17,
            multilingual: 0.08,
        }
    }
}

impl DomainWeights {
    /// The annealing default: math and code up-sampled.
    pub const ANNEAL: DomainWeights = DomainWeights {
        knowledge: 0.30,
        math: 0.35,
        code: 0.27,
        multilingual: 0.08,
    };

    pub fn of(&self, d: crate::data::corpus::Domain) -> f64 {
        use crate::data::corpus::Domain;
        match d {
            Domain::Knowledge => self.knowledge,
            Domain::Math => self.math,
            Domain::Code => self.code,
            Domain::Multilingual => self.multilingual,
            Domain::KnowledgeHeldout => 0.0,
        }
    }

    pub fn valid(&self) -> bool {
        let all = [self.knowledge, self.math, self.code, self.multilingual];
        all.iter().all(|w| *w >= 0.0 && w.is_finite()) && all.iter().sum::<f64>() > 0.0
    }
}
