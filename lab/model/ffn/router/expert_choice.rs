//! Expert-choice routing (Zhou et al. 2022): instead of each token picking k experts, each
//! expert picks the C tokens of the batch with the highest softmax score for it,
//! C = ⌈capacity_factor · k · N / K⌉ (factor 1: on average the same active FLOPs as top-k).
//! Load is perfectly balanced by construction; a token may get several experts or none.
//!
//! **Not causal.** Whether expert i takes token t depends on the scores of every token in the
//! batch, later positions included, so a causal LM trained this way sees the future through
//! the routing: its loss is not comparable with causal arms, and it cannot generate
//! autoregressively as trained. The lab prints a warning when a run uses it, keeps it in
//! summary.json, and the sweep report repeats it.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernels::router_softmax::softmax;

use super::interface::{
    Assignment, Choice, FieldError, RouterForward, RouterInput, RouterKind, Routing, Scores,
};

/// `[ffn.router] kind = "expert-choice"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpertChoiceSpec {
    /// Tokens per expert = ⌈capacity_factor · top_k · N / K⌉.
    pub capacity_factor: f64,
}

impl Default for ExpertChoiceSpec {
    fn default() -> Self {
        ExpertChoiceSpec {
            capacity_factor: 1.0,
        }
    }
}

#[derive(Module, Debug)]
pub struct ExpertChoiceRouter {
    pub scores: Scores,
}

impl RouterKind for ExpertChoiceSpec {
    type Module = ExpertChoiceRouter;
    fn init(&self, d_model: usize, experts: usize, device: &Device) -> ExpertChoiceRouter {
        ExpertChoiceRouter {
            scores: Scores::new(d_model, experts, device),
        }
    }
    fn choice(&self) -> Choice {
        Choice::Experts {
            capacity_factor: self.capacity_factor,
        }
    }
    fn causal(&self) -> bool {
        false
    }
    // Gates are each chosen token's own probability; there are no k of them to renormalise.
    fn uses_renormalize(&self) -> bool {
        false
    }
    fn validate(&self) -> Result<(), FieldError> {
        if !(self.capacity_factor > 0.0 && self.capacity_factor.is_finite()) {
            return Err(FieldError::new(
                "capacity_factor",
                format!("must be > 0, got {}", self.capacity_factor),
            ));
        }
        Ok(())
    }
    fn warning(&self) -> Option<String> {
        Some(
            "expert-choice routing is not causal: each expert picks its tokens from the whole \
             batch, later positions included, so this causal LM's loss sees the future and is \
             not comparable with token-choice arms"
                .into(),
        )
    }
}

impl RouterForward for ExpertChoiceRouter {
    fn route(&self, input: &RouterInput) -> Routing {
        let logits = self.scores.logits(input.x.clone());
        let probs = softmax(logits.clone());
        // Each expert's C best tokens: top-C along the token axis of the transposed scores.
        let by_expert = probs.clone().transpose();
        let (_, tokens) = by_expert
            .clone()
            .detach()
            .topk_with_indices(input.capacity, 1);
        let gates = by_expert.gather(1, tokens.clone());
        Routing {
            assignment: Assignment::ExpertChoice { tokens, gates },
            logits: Some(logits),
            probs,
        }
    }
}
