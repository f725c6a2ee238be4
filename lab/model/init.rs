//! Weight initialisation shared by all layers.
//!
//! Normal(0, 0.02) everywhere (GPT-2 / LLaMA practice); projections that write into the
//! residual stream (attention output, FFN down projection) are scaled by 1/√(2·n_layers) so the
//! residual's variance does not grow with depth (GPT-2).

use burn::module::Param;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

pub const INIT_STD: f64 = 0.02;

pub fn normal<const D: usize>(shape: [usize; D], std: f64, device: &Device) -> Param<Tensor<D>> {
    Initializer::Normal { mean: 0.0, std }.init(shape, device)
}

/// A bias-free linear layer `x · W` with `W: [d_in, d_out]`.
pub fn linear(d_in: usize, d_out: usize, std: f64, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_bias(false)
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device)
}

/// The standard deviation of residual-stream output projections.
pub fn residual_std(n_layers: usize) -> f64 {
    INIT_STD / (2.0 * n_layers as f64).sqrt()
}
