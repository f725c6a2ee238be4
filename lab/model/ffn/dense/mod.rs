//! The dense SwiGLU feed-forward: `W2 (silu(x W1) ⊙ x W3)`; its spec is in [`spec`].

pub mod spec;

use crate::kernels::{flop_meter, fused};
use crate::model::init;
use burn::module::Param;
use burn::prelude::*;

#[derive(Module, Debug)]
pub struct SwiGlu {
    /// Gate projection `[d, f]`.
    pub w1: Param<Tensor<2>>,
    /// Up projection `[d, f]`.
    pub w3: Param<Tensor<2>>,
    /// Down projection `[f, d]`.
    pub w2: Param<Tensor<2>>,
}

impl SwiGlu {
    pub fn new(d_model: usize, d_ff: usize, n_layers: usize, device: &Device) -> Self {
        SwiGlu {
            w1: init::normal([d_model, d_ff], init::INIT_STD, device),
            w3: init::normal([d_model, d_ff], init::INIT_STD, device),
            w2: init::normal([d_ff, d_model], init::residual_std(n_layers), device),
        }
    }

    /// Works on any rank: `[..., d]` → `[..., d]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let gate = flop_meter::matmul(x.clone(), self.w1.val().unsqueeze());
        let up = flop_meter::matmul(x, self.w3.val().unsqueeze());
        flop_meter::matmul(fused::swiglu(gate, up), self.w2.val().unsqueeze())
    }
}
