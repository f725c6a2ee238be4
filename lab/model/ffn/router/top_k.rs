//! Softmax top-k (Switch Transformer, Mixtral): `Linear(d, K)` without bias, softmax over the
//! experts, each token takes its k most probable experts. Kept in f32 (Switch found bf16
//! routers diverge; the whole lab trains in f32, so this holds by construction).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use super::{RouterForward, RouterInput, RouterKind, RouterParams, Routing, top_k_choice};
use crate::model::{flop_meter, init};

/// `[ffn.router] kind = "top-k"` (the default router): no options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TopKSpec {}

#[derive(Module, Debug)]
pub struct TopKRouter {
    /// `[d_model, K]`
    pub weight: Param<Tensor<2>>,
}

impl RouterKind for TopKSpec {
    type Module = TopKRouter;
    fn init(&self, d_model: usize, experts: usize, device: &Device) -> TopKRouter {
        TopKRouter {
            weight: init::normal([d_model, experts], init::INIT_STD, device),
        }
    }
    fn params(&self, d_model: usize, experts: usize) -> RouterParams {
        RouterParams {
            trainable: (d_model * experts) as u64,
            buffers: 0,
        }
    }
    fn flops_per_token(&self, d_model: usize, experts: usize) -> f64 {
        2.0 * (d_model * experts) as f64
    }
}

impl RouterForward for TopKRouter {
    fn route(&self, input: &RouterInput) -> Routing {
        let logits = flop_meter::matmul(input.x.clone(), self.weight.val());
        let probs = softmax(logits.clone(), 1);
        Routing {
            assignment: top_k_choice(probs.clone(), probs.clone(), input.top_k, input.renormalize),
            logits: Some(logits),
            probs,
        }
    }
}
