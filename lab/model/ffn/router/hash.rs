//! Hash routing (Roller et al. 2021, "Hash Layers For Large Sparse Models"): a token goes to
//! experts fixed by its id, `(id + j) mod K` for its j-th choice, with equal gates. Nothing is
//! learned, so there are no parameters, no router FLOPs and no z-loss; a token's route depends
//! only on itself, so it is causal.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use serde::{Deserialize, Serialize};

use super::interface::{Assignment, RouterForward, RouterInput, RouterKind, RouterParams, Routing};

/// `[ffn.router] kind = "hash"`: no options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HashSpec {}

#[derive(Module, Debug)]
pub struct HashRouter {
    experts: usize,
}

impl RouterKind for HashSpec {
    type Module = HashRouter;
    fn init(&self, _d_model: usize, experts: usize, _device: &Device) -> HashRouter {
        HashRouter { experts }
    }
    fn params(&self, _d_model: usize, _experts: usize) -> RouterParams {
        RouterParams::default()
    }
    fn flops_per_token(&self, _d_model: usize, _experts: usize) -> f64 {
        0.0
    }
    // Equal gates: renormalising them changes nothing.
    fn uses_renormalize(&self) -> bool {
        false
    }
}

impl RouterForward for HashRouter {
    fn route(&self, input: &RouterInput) -> Routing {
        let (n, k, device) = (input.tokens.dims()[0], input.top_k, input.tokens.device());
        let choice = Tensor::<1, Int>::arange(0..k as i64, &device)
            .reshape([1, k])
            .expand([n, k]);
        let experts = (input.tokens.clone().reshape([n, 1]).expand([n, k]) + choice)
            .remainder_scalar(self.experts as i64);
        let gates = Tensor::<2>::full([n, k], 1.0 / k as f64, &device);
        // The routing distribution (for the logged entropy): 1/k on each chosen expert.
        let probs = Tensor::<2>::zeros([n, self.experts], &device).scatter(
            1,
            experts.clone(),
            gates.clone(),
            IndexingUpdateOp::Add,
        );
        Routing {
            logits: None,
            probs,
            assignment: Assignment::TokenChoice { experts, gates },
        }
    }
}
