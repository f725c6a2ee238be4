//! What the conformance suites share: the registered variants at the test size, and how to
//! build, feed and score one.

use burn::prelude::*;
use moe_lab::model::ffn::{FeedForward, FfnInput};
use moe_lab::model::init;
use moe_lab::spec::FfnSpec;
use rand::{Rng, SeedableRng};

pub const D_MODEL: usize = 16;
pub const BATCH: usize = 2;
pub const SEQ: usize = 8;

/// Every registered variant at the test size: dense d_ff 32; MoE K = 4, k = 2, d_expert 8.
pub fn variants() -> Vec<(String, FfnSpec)> {
    FfnSpec::examples(32, 4, 2, 8)
        .into_iter()
        .map(|s| {
            let name = match &s {
                FfnSpec::Moe(m) if m.granularity > 1 || m.shared_experts > 0 => format!(
                    "{} G={} shared={}",
                    s.describe(),
                    m.granularity,
                    m.shared_experts
                ),
                _ => s.describe(),
            };
            (name, s)
        })
        .collect()
}

pub fn layer(spec: &FfnSpec, device: &Device) -> FeedForward {
    init::seeded(3, || spec.build(0, D_MODEL, 2, device))
}

pub fn input(device: &Device, seed: u64) -> FfnInput {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let x: Vec<f32> = (0..BATCH * SEQ * D_MODEL)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let tokens: Vec<i64> = (0..BATCH * SEQ).map(|_| rng.random_range(0..256)).collect();
    FfnInput {
        x: Tensor::from_data(TensorData::new(x, [BATCH, SEQ, D_MODEL]), device),
        tokens: Tensor::from_data(TensorData::new(tokens, [BATCH, SEQ]), device),
    }
}

/// A fixed projection of the output plus the auxiliary losses: the scalar the gradient check
/// differentiates.
pub fn loss(ffn: &FeedForward, x: Tensor<3>, tokens: Tensor<2, Int>) -> Tensor<1> {
    let out = ffn.forward(FfnInput { x, tokens });
    let n = out.y.shape().num_elements();
    let r: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 23) as f32) / 23.0 - 0.5)
        .collect();
    let r = Tensor::<1>::from_data(TensorData::new(r, [n]), &out.y.device());
    let mut total = (out.y.reshape([n]) * r).sum();
    if let Some(aux) = out.moe {
        total = total + aux.balance_loss + aux.z_loss;
    }
    total
}
