//! Swappable feed-forwards, and the registry the rest of the lab goes through.
//!
//! Two feed-forward kinds (`[ffn] kind = ...`): `dense` (one SwiGLU, [`dense`]) and `moe`
//! (experts behind a router, [`moe`]); an MoE's router is itself a registered variant
//! ([`router`]: top-k, sigmoid, loss-free, expert-choice, ...), and its experts may be
//! fine-grained and shared. The block, the FLOP and parameter counts, logging and sweeps use
//! the methods below and never match on a kind themselves; each kind's own logic lives in its
//! file.

pub mod dense;
pub mod experts;
pub mod grouped_matmul;
pub mod moe;
pub mod router;

use burn::prelude::*;

pub use dense::SwiGlu;
pub use experts::Experts;
pub use moe::{MoeConfig, MoeLayer};
pub use router::{Router, RouterSpec, Routing};

use crate::compute::FfnShape;
use crate::spec::FfnSpec;

#[derive(Module, Debug)]
pub enum FeedForward {
    Dense(SwiGlu),
    Moe(MoeLayer),
}

/// What a feed-forward sees: normalised hidden states `[B, T, d]` and the input token ids
/// `[B, T]` of the same positions (for routers that route by token).
pub struct FfnInput {
    pub x: Tensor<3>,
    pub tokens: Tensor<2, Int>,
}

/// What a feed-forward returns: its output, and for an MoE its auxiliary losses and routing
/// statistics (all still on the device; nothing is read back here).
pub struct FfnOutput {
    pub y: Tensor<3>,
    pub moe: Option<MoeAux>,
}

/// Auxiliary losses (already scaled by their coefficients) and routing statistics of one MoE
/// layer for one batch.
#[derive(Clone, Debug)]
pub struct MoeAux {
    /// Switch load-balancing loss `α·K·Σ f_i·P_i`, shape `[1]`.
    pub balance_loss: Tensor<1>,
    /// Router z-loss `β·mean(logsumexp(logits)²)`, shape `[1]`.
    pub z_loss: Tensor<1>,
    pub stats: RouterStats,
}

/// Routing statistics of one MoE layer for one batch, on the device.
#[derive(Clone, Debug)]
pub struct RouterStats {
    /// Token-slots routed to each expert before capacity dropping, `[K]`.
    pub load: Tensor<1>,
    /// Slots dropped for lack of capacity (expert choice: tokens no expert took), `[1]`.
    pub dropped: Tensor<1>,
    /// Mean entropy (nats) of the router's distribution, `[1]`.
    pub entropy: Tensor<1>,
    /// Slots in the batch: tokens × top_k (expert choice: K × C).
    pub slots: usize,
}

impl FeedForward {
    pub fn forward(&self, input: FfnInput) -> FfnOutput {
        match self {
            // Tokens as rows of one matrix: a `[B, T, d]` batched matmul against broadcast
            // weights computes the weight gradient per sequence and then sums them, which
            // cost the dense arm 9% (d 256) and 19% (d 512) of its step on flex (`lab bench`).
            FeedForward::Dense(ffn) => {
                let [b, t, d] = input.x.dims();
                FfnOutput {
                    y: ffn.forward(input.x.reshape([b * t, d])).reshape([b, t, d]),
                    moe: None,
                }
            }
            FeedForward::Moe(moe) => {
                let [b, t, d] = input.x.dims();
                let (y, aux) =
                    moe.forward(input.x.reshape([b * t, d]), input.tokens.reshape([b * t]));
                FfnOutput {
                    y: y.reshape([b, t, d]),
                    moe: Some(aux),
                }
            }
        }
    }

    /// After an optimizer step, with the load this layer's router saw in that step.
    pub fn after_step(self, load: Option<Tensor<1>>) -> Self {
        match (self, load) {
            (FeedForward::Moe(moe), Some(load)) => FeedForward::Moe(moe.after_step(load)),
            (other, _) => other,
        }
    }

    /// Per-expert router state to log, each `[K]` (empty for most variants).
    pub fn router_state(&self) -> Vec<(&'static str, Tensor<1>)> {
        match self {
            FeedForward::Moe(moe) => moe.router.state(),
            FeedForward::Dense(_) => Vec::new(),
        }
    }
}

/// What a sweep's size supplies to its arms (see `sweep::experiment`).
pub struct SizeFields {
    /// Hidden size of each (coarse) expert.
    pub d_expert: usize,
    /// Hidden size of dense feed-forwards.
    pub d_ff: Option<usize>,
}

impl FfnSpec {
    /// Fill what a sweep's size supplies into an arm's `[ffn]` table where the arm leaves it
    /// out: an MoE's `d_expert` (and `d_ff` for its dense blocks when the size has one), a
    /// dense arm's `d_ff = "size"` (the default). Err: why the size cannot supply it.
    pub fn fill_from_size(table: &mut toml::Table, size: &SizeFields) -> Result<(), String> {
        match table.get("kind").and_then(|k| k.as_str()) {
            Some("moe") => {
                table
                    .entry("d_expert")
                    .or_insert((size.d_expert as i64).into());
                if let Some(d) = size.d_ff {
                    table.entry("d_ff").or_insert((d as i64).into());
                }
            }
            Some("dense") => {
                let wants_size = match table.get("d_ff") {
                    None => true,
                    Some(v) => v.as_str() == Some("size"),
                };
                if wants_size {
                    let d = size
                        .d_ff
                        .ok_or("needed by dense arms with d_ff = \"size\" (the default)")?;
                    table.insert("d_ff".into(), (d as i64).into());
                }
            }
            // Anything else is refused, with the registered kinds, when the table is parsed.
            _ => {}
        }
        Ok(())
    }

    /// A dense arm matched against `target` (its `[ffn.match]`). Err: why it cannot be.
    pub fn matched_to(self, target: FfnSpec) -> Result<FfnSpec, String> {
        match (self, target) {
            (FfnSpec::Dense(mut dense), FfnSpec::Moe(moe)) => {
                dense.match_moe = Some(moe);
                Ok(FfnSpec::Dense(dense))
            }
            (FfnSpec::Dense(_), _) => Err("must name an MoE arm".into()),
            (other, _) => Err(format!(
                "only dense arms are matched to another arm, not {}",
                other.name()
            )),
        }
    }

    /// The kind's name in specs and summaries: `dense` or `moe`.
    pub fn name(&self) -> &'static str {
        match self {
            FfnSpec::Dense(_) => "dense",
            FfnSpec::Moe(_) => "moe",
        }
    }

    /// A name that tells arms apart in logs: `moe/loss-free`, `dense`.
    pub fn describe(&self) -> String {
        match self {
            FfnSpec::Dense(_) => "dense".into(),
            FfnSpec::Moe(m) => format!("moe/{}", m.router.name()),
        }
    }

    /// One line for people: `moe/top-k: 32 experts of hidden 8 (8 split in G = 4), 7 routed +
    /// 1 shared per token, dropless`.
    pub fn summary_line(&self) -> String {
        match self {
            FfnSpec::Dense(dense) => format!("dense: SwiGLU of hidden {}", dense.hidden()),
            FfnSpec::Moe(m) => {
                let split = if m.granularity > 1 {
                    format!(" ({} split in G = {})", m.experts, m.granularity)
                } else {
                    String::new()
                };
                let shared = if m.shared_experts > 0 {
                    format!(" + {} shared", m.shared_experts)
                } else {
                    String::new()
                };
                let capacity = match m.capacity {
                    crate::spec::Capacity::Dropless => "dropless".to_string(),
                    crate::spec::Capacity::Factor(c) => format!("capacity factor {c}"),
                };
                let every = if m.moe_every > 1 {
                    format!(", MoE in every {}th block", m.moe_every)
                } else {
                    String::new()
                };
                format!(
                    "{}: {} experts of hidden {}{split}, {} routed{shared} per token, {capacity}{every}",
                    self.describe(),
                    m.routed_experts(),
                    m.expert_hidden(),
                    m.routed_top_k(),
                )
            }
        }
    }

    /// Build block `layer`'s feed-forward (in a resolved config).
    pub fn build(
        &self,
        layer: usize,
        d_model: usize,
        n_layers: usize,
        device: &Device,
    ) -> FeedForward {
        match self {
            FfnSpec::Dense(dense) => {
                FeedForward::Dense(SwiGlu::new(d_model, dense.hidden(), n_layers, device))
            }
            FfnSpec::Moe(moe) if moe.is_moe_layer(layer) => FeedForward::Moe(
                MoeConfig {
                    spec: moe,
                    d_model,
                    n_layers,
                }
                .init(device),
            ),
            FfnSpec::Moe(moe) => FeedForward::Dense(SwiGlu::new(
                d_model,
                moe.d_ff.expect("validated: moe_every > 1 has d_ff"),
                n_layers,
                device,
            )),
        }
    }

    /// Check the fields (errors: (field, message), the field named from the spec's root) and
    /// fill in derived values, such as a dense arm's matched `d_ff`.
    pub fn resolve(
        self,
        spec: &crate::spec::RunSpec,
        tokens_per_step: usize,
    ) -> Result<FfnSpec, (String, String)> {
        match self {
            FfnSpec::Dense(dense) => dense.resolve(spec, tokens_per_step).map(FfnSpec::Dense),
            FfnSpec::Moe(moe) => {
                moe.validate(spec.model.n_layers, tokens_per_step)
                    .map_err(|(f, m)| (format!("ffn.{f}"), m))?;
                Ok(FfnSpec::Moe(moe))
            }
        }
    }

    /// Accounting of block `layer` for steps of `tokens` tokens, token-choice MoE layers
    /// dispatched by `dispatch` (which sets their executed expert FLOPs).
    pub fn layer_shape(
        &self,
        layer: usize,
        d_model: usize,
        tokens: usize,
        dispatch: moe::Dispatch,
    ) -> FfnShape {
        match self {
            FfnSpec::Dense(dense) => dense.layer_shape(d_model),
            FfnSpec::Moe(moe) => moe.layer_shape(layer, d_model, tokens, dispatch),
        }
    }

    /// Whether a position's output depends only on itself and earlier positions.
    pub fn causal(&self) -> bool {
        match self {
            FfnSpec::Dense(_) => true,
            FfnSpec::Moe(moe) => {
                moe.router.causal() && matches!(moe.capacity, crate::spec::Capacity::Dropless)
            }
        }
    }

    /// Warnings to print when a run starts and keep in its summary.
    pub fn warnings(&self) -> Vec<String> {
        match self {
            FfnSpec::Dense(_) => Vec::new(),
            FfnSpec::Moe(moe) => moe.router.warning().into_iter().collect(),
        }
    }

    /// One example spec of every registered variant, at a given size, for the conformance
    /// suite: dense, top-k MoE, fine-grained with a shared expert, and an MoE with each
    /// registered router. `d_expert` must be divisible by 2.
    pub fn examples(d_ff: usize, experts: usize, top_k: usize, d_expert: usize) -> Vec<FfnSpec> {
        use crate::spec::{DenseSpec, DffSpec, MoeSpec};
        let moe = |router: RouterSpec| MoeSpec {
            router,
            ..MoeSpec::new(experts, top_k, d_expert)
        };
        let mut all = vec![
            FfnSpec::Dense(DenseSpec {
                d_ff: DffSpec::Size(d_ff),
                match_moe: None,
            }),
            FfnSpec::Moe(MoeSpec {
                granularity: 2,
                shared_experts: 1,
                ..moe(RouterSpec::default())
            }),
        ];
        all.extend(
            RouterSpec::examples()
                .into_iter()
                .map(|r| FfnSpec::Moe(moe(r))),
        );
        all
    }
}
