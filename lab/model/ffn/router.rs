//! Token-choice top-k router: `Linear(d, K)` without bias, softmax over experts, the k most
//! probable experts per token. Kept in f32 (Switch Transformer found bf16 routers diverge; the
//! whole lab trains in f32, so this holds by construction).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::model::init;

#[derive(Module, Debug)]
pub struct Router {
    /// `[d_model, K]`
    pub weight: Param<Tensor<2>>,
}

/// A routing decision for N tokens.
pub struct Routing {
    /// Raw router logits `[N, K]` (for the z-loss).
    pub logits: Tensor<2>,
    /// Softmax probabilities `[N, K]` (for the balance loss and entropy).
    pub probs: Tensor<2>,
    /// Chosen experts `[N, k]`, most probable first.
    pub experts: Tensor<2, Int>,
    /// Gate weight of each choice `[N, k]` (renormalised to sum to 1 if asked).
    pub gates: Tensor<2>,
}

impl Router {
    pub fn new(d_model: usize, experts: usize, device: &Device) -> Self {
        Router {
            weight: init::normal([d_model, experts], init::INIT_STD, device),
        }
    }

    pub fn route(&self, x: Tensor<2>, top_k: usize, renormalize: bool) -> Routing {
        let logits = x.matmul(self.weight.val());
        let probs = softmax(logits.clone(), 1);
        let (_, experts) = probs.clone().detach().topk_with_indices(top_k, 1);
        // Gather (differentiable) rather than topk's values, so gradients reach the router
        // through the chosen probabilities.
        let mut gates = probs.clone().gather(1, experts.clone());
        if renormalize {
            let total = gates.clone().sum_dim(1);
            gates = gates / total;
        }
        Routing {
            logits,
            probs,
            experts,
            gates,
        }
    }
}
