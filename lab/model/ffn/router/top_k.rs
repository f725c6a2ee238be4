//! Softmax top-k (Switch Transformer, Mixtral): `Linear(d, K)` without bias, softmax over the
//! experts, each token takes its k most probable experts. Kept in f32 (Switch found bf16
//! routers diverge; the whole lab trains in f32, so this holds by construction).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernels::router_softmax::softmax;

use super::interface::{RouterForward, RouterInput, RouterKind, Routing, Scores, top_k_choice};

/// `[ffn.router] kind = "top-k"` (the default router): no options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TopKSpec {}

#[derive(Module, Debug)]
pub struct TopKRouter {
    pub scores: Scores,
}

impl RouterKind for TopKSpec {
    type Module = TopKRouter;
    fn init(&self, d_model: usize, experts: usize, device: &Device) -> TopKRouter {
        TopKRouter {
            scores: Scores::new(d_model, experts, device),
        }
    }
}

impl RouterForward for TopKRouter {
    fn route(&self, input: &RouterInput) -> Routing {
        let logits = self.scores.logits(input.x.clone());
        let probs = softmax(logits.clone());
        Routing {
            assignment: top_k_choice(probs.clone(), probs.clone(), input.top_k, input.renormalize),
            logits: Some(logits),
            probs,
        }
    }
}
