//! `[ffn] kind = "moe"`: the experts, their router and dispatch limits; validation and the
//! layer's parameter and FLOP accounting.

use serde::{Deserialize, Serialize};

use super::dispatch::{Dispatch, capacity_slots};
use crate::compute::FfnShape;
use crate::error::{FieldError, at_most, check, positive};
use crate::limits;
use crate::model::ffn::router::{Choice, RouterSpec};

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
        (layer + 1).is_multiple_of(self.moe_every)
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

impl MoeSpec {
    /// Check the fields; errors name the field relative to the MoE table (`top_k`,
    /// `router.capacity_factor`, ...).
    pub fn validate(&self, n_layers: usize, tokens_per_step: usize) -> Result<(), FieldError> {
        self.validate_experts()?;
        check(
            self.moe_every > 0 && self.moe_every <= n_layers,
            "moe_every",
            || {
                format!(
                    "must be in 1..={n_layers} (n_layers), got {}",
                    self.moe_every
                )
            },
        )?;
        check(
            self.moe_every == 1 || self.d_ff.is_some_and(|d| d > 0),
            "d_ff",
            || "moe_every > 1 needs d_ff, the hidden size of the dense blocks".into(),
        )?;
        if let Capacity::Factor(c) = self.capacity {
            self.validate_capacity(c, tokens_per_step)?;
        }
        check(
            self.aux_loss_coef >= 0.0 && self.z_loss_coef >= 0.0,
            "aux_loss_coef",
            || "loss coefficients must be ≥ 0".into(),
        )?;
        self.router.validate().map_err(|e| e.under("router"))
    }

    /// The experts: counts, their split into fine-grained ones, the shared ones.
    fn validate_experts(&self) -> Result<(), FieldError> {
        at_most("experts", self.experts, limits::EXPERTS)?;
        at_most("top_k", self.top_k, limits::EXPERTS)?;
        at_most("d_expert", self.d_expert, limits::HIDDEN)?;
        at_most("granularity", self.granularity, limits::GRANULARITY)?;
        at_most("shared_experts", self.shared_experts, limits::EXPERTS)?;
        at_most("d_ff", self.d_ff.unwrap_or(0), limits::HIDDEN)?;
        positive("experts", self.experts)?;
        positive("top_k", self.top_k)?;
        positive("d_expert", self.d_expert)?;
        positive("granularity", self.granularity)?;
        check(self.top_k <= self.experts, "top_k", || {
            format!(
                "top_k ({}) must not exceed experts ({})",
                self.top_k, self.experts
            )
        })?;
        check(
            self.d_expert.is_multiple_of(self.granularity),
            "granularity",
            || {
                format!(
                    "must divide d_expert ({}) to split each expert evenly, got {}",
                    self.d_expert, self.granularity
                )
            },
        )?;
        let choices = self.top_k * self.granularity;
        check(self.shared_experts < choices, "shared_experts", || {
            format!(
                "must be below top_k · granularity ({choices}) so at least one expert is \
                 routed, got {}",
                self.shared_experts
            )
        })
    }

    /// A capacity factor `c`: positive, leaving a slot per expert, for a token-choice router.
    fn validate_capacity(&self, c: f64, tokens_per_step: usize) -> Result<(), FieldError> {
        check(c > 0.0 && c.is_finite(), "capacity", || {
            format!("must be \"dropless\" or > 0, got {c}")
        })?;
        let (k, experts) = (self.routed_top_k(), self.routed_experts());
        check(
            capacity_slots(c, k, tokens_per_step, experts) > 0,
            "capacity",
            || format!("factor {c} leaves no slot per expert"),
        )?;
        check(self.router.choice() == Choice::Tokens, "capacity", || {
            format!(
                "router {:?} sets its own capacity (under [ffn.router]); leave capacity at \
                 \"dropless\"",
                self.router.name()
            )
        })
    }

    /// Accounting of block `layer` for a step of `tokens` tokens (the executed expert rows
    /// depend on it), token-choice layers dispatched by `dispatch` (see
    /// [`Dispatch::for_layer`], [`Dispatch::expert_rows`]).
    pub fn layer_shape(
        &self,
        layer: usize,
        d_model: usize,
        tokens: usize,
        dispatch: Dispatch,
    ) -> FfnShape {
        if !self.is_moe_layer(layer) {
            return FfnShape::swiglu(d_model, self.d_ff.unwrap_or(0));
        }
        let experts = self.routed_experts();
        let k = self.routed_top_k();
        let one_expert = FfnShape::swiglu(d_model, self.expert_hidden());
        let shared = FfnShape::swiglu(d_model, self.shared_hidden());
        let router = self.router.params(d_model, experts);
        let rows_per_token = match (self.router.choice(), self.capacity) {
            (Choice::Experts { capacity_factor }, _) => {
                let c = capacity_slots(capacity_factor, k, tokens, experts);
                (experts * c) as f64 / tokens as f64
            }
            (Choice::Tokens, capacity) => {
                let capacity = match capacity {
                    Capacity::Dropless => None,
                    Capacity::Factor(c) => Some(capacity_slots(c, k, tokens, experts)),
                };
                dispatch.expert_rows(tokens, k, experts, capacity) as f64 / tokens as f64
            }
        };
        FfnShape {
            params_total: router.trainable
                + experts as u64 * one_expert.params_total
                + shared.params_total,
            params_active: router.trainable
                + k as u64 * one_expert.params_total
                + shared.params_total,
            buffers: router.buffers,
            dense_flops: 0.0,
            router_flops: self.router.flops_per_token(d_model, experts),
            // Expert choice activates K·C / N ≈ c·k experts per token on average, not k.
            expert_flops_active: match self.router.choice() {
                Choice::Experts { .. } => rows_per_token * one_expert.dense_flops,
                Choice::Tokens => k as f64 * one_expert.dense_flops,
            } + shared.dense_flops,
            expert_flops_executed: rows_per_token * one_expert.dense_flops + shared.dense_flops,
            // The experts' stacked `[K, d, f]` weights, else a shared expert's or the
            // router's.
            largest_param: (experts as u64 * one_expert.largest_param)
                .max(shared.largest_param)
                .max(router.trainable),
        }
    }
}
