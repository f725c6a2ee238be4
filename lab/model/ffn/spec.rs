//! `[ffn]`: which feed-forward every block holds. The registry of feed-forward kinds: the
//! block, accounting, logging and sweeps go through these methods and never match on a kind
//! themselves; each kind's own logic lives in its folder.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::dense::SwiGlu;
use super::dense::spec::{DenseSpec, DffSpec};
use super::layer::FeedForward;
use super::moe::{Capacity, Dispatch, MoeConfig, MoeSpec};
use super::router::RouterSpec;
use crate::compute::FfnShape;

/// The feed-forward of every block: `kind = "dense"` or `kind = "moe"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FfnSpec {
    Dense(DenseSpec),
    Moe(MoeSpec),
}

impl FfnSpec {
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
                    Capacity::Dropless => "dropless".to_string(),
                    Capacity::Factor(c) => format!("capacity factor {c}"),
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

    /// Accounting of block `layer` for steps of `tokens` tokens, token-choice MoE layers
    /// dispatched by `dispatch` (which sets their executed expert FLOPs).
    pub fn layer_shape(
        &self,
        layer: usize,
        d_model: usize,
        tokens: usize,
        dispatch: Dispatch,
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
            FfnSpec::Moe(moe) => moe.router.causal() && matches!(moe.capacity, Capacity::Dropless),
        }
    }

    /// Warnings to print when a run starts and keep in its summary.
    pub fn warnings(&self) -> Vec<String> {
        match self {
            FfnSpec::Dense(_) => Vec::new(),
            FfnSpec::Moe(moe) => {
                let mut w: Vec<String> = moe.router.warning().into_iter().collect();
                if !moe.renormalize && !moe.router.uses_renormalize() {
                    w.push(format!(
                        "ffn.renormalize = false has no effect with router {:?}",
                        moe.router.name()
                    ));
                }
                w
            }
        }
    }

    /// One example spec of every registered variant, at a given size, for the conformance
    /// suite: dense, top-k MoE, fine-grained with a shared expert, and an MoE with each
    /// registered router. `d_expert` must be divisible by 2.
    pub fn examples(d_ff: usize, experts: usize, top_k: usize, d_expert: usize) -> Vec<FfnSpec> {
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
