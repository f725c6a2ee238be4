//! Sigmoid gating (DeepSeek-V3): each expert's affinity is `sigmoid(x·w_i)`, independent of the
//! other experts' scores; a token takes its k highest-affinity experts and their gates are the
//! chosen affinities normalised to sum to 1 (with `renormalize = false`, the raw affinities).
//! Softmax couples the experts (raising one lowers the rest); sigmoid does not, which
//! DeepSeek-V3 pairs with fine-grained experts.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use super::interface::{RouterForward, RouterInput, RouterKind, Routing, Scores, top_k_choice};

/// `[ffn.router] kind = "sigmoid"`: no options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SigmoidSpec {}

#[derive(Module, Debug)]
pub struct SigmoidRouter {
    pub scores: Scores,
}

impl RouterKind for SigmoidSpec {
    type Module = SigmoidRouter;
    fn init(&self, d_model: usize, experts: usize, device: &Device) -> SigmoidRouter {
        SigmoidRouter {
            scores: Scores::new(d_model, experts, device),
        }
    }
}

impl RouterForward for SigmoidRouter {
    fn route(&self, input: &RouterInput) -> Routing {
        let logits = self.scores.logits(input.x.clone());
        let affinity = sigmoid(logits.clone());
        // The balance loss and the logged entropy read a distribution: affinities normalised
        // per token (DeepSeek-V3's sequence-wise balance loss does the same).
        let probs = affinity.clone() / affinity.clone().sum_dim(1);
        Routing {
            assignment: top_k_choice(affinity.clone(), affinity, input.top_k, input.renormalize),
            logits: Some(logits),
            probs,
        }
    }
}
