//! Auxiliary-loss-free balancing (DeepSeek-V3, Wang et al. 2024): a per-expert bias `b_i` is
//! added to the softmax scores **for selecting** the top-k experts only; the gates still come
//! from the unbiased scores, so the bias steers load without entering the loss or its gradient.
//! After every optimizer step `b_i += γ · sign(mean load − load_i)`: overloaded experts become
//! less attractive, idle ones more. The bias is saved with the model (a parameter the
//! optimizer never touches: it has no gradient) and logged per step in `router_state.csv`.
//! Pair it with `aux_loss_coef = 0`, which is the point of the method.

use burn::module::Param;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernels::router_softmax::softmax;

use super::interface::{
    FieldError, RouterForward, RouterInput, RouterKind, RouterParams, Routing, Scores, top_k_choice,
};

/// `[ffn.router] kind = "loss-free"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossFreeSpec {
    /// γ, the bias update per step (DeepSeek-V3: 1e-3).
    pub bias_update_rate: f64,
}

impl Default for LossFreeSpec {
    fn default() -> Self {
        LossFreeSpec {
            bias_update_rate: 1e-3,
        }
    }
}

#[derive(Module, Debug)]
pub struct LossFreeRouter {
    pub scores: Scores,
    /// `[K]`, not trained by the optimizer.
    pub bias: Param<Tensor<1>>,
    rate: f64,
}

impl RouterKind for LossFreeSpec {
    type Module = LossFreeRouter;
    fn init(&self, d_model: usize, experts: usize, device: &Device) -> LossFreeRouter {
        LossFreeRouter {
            scores: Scores::new(d_model, experts, device),
            bias: Param::from_tensor(Tensor::zeros([experts], device)).set_require_grad(false),
            rate: self.bias_update_rate,
        }
    }
    fn params(&self, d_model: usize, experts: usize) -> RouterParams {
        RouterParams {
            buffers: experts as u64,
            ..Scores::params(d_model, experts)
        }
    }
    fn validate(&self) -> Result<(), FieldError> {
        if !(self.bias_update_rate >= 0.0 && self.bias_update_rate.is_finite()) {
            return Err(FieldError::new(
                "bias_update_rate",
                format!("must be ≥ 0, got {}", self.bias_update_rate),
            ));
        }
        Ok(())
    }
}

impl RouterForward for LossFreeRouter {
    fn route(&self, input: &RouterInput) -> Routing {
        let logits = self.scores.logits(input.x.clone());
        let probs = softmax(logits.clone());
        let [n, k] = probs.dims();
        let biased =
            probs.clone().detach() + self.bias.val().detach().reshape([1, k]).expand([n, k]);
        Routing {
            assignment: top_k_choice(probs.clone(), biased, input.top_k, input.renormalize),
            logits: Some(logits),
            probs,
        }
    }

    fn after_step(mut self, load: Tensor<1>) -> Self {
        let mean = load.clone().mean();
        let step = (mean.expand(load.dims()) - load)
            .sign()
            .mul_scalar(self.rate);
        self.bias = self.bias.map(|b| (b.detach() + step.detach()).detach());
        self
    }

    fn state(&self) -> Vec<(&'static str, Tensor<1>)> {
        vec![("bias", self.bias.val().detach())]
    }
}
