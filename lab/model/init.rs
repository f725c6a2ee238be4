//! Weight initialisation shared by all layers.
//!
//! Normal(0, 0.02) everywhere (GPT-2 / LLaMA practice); projections that write into the
//! residual stream (attention output, FFN down projection) are scaled by 1/√(2·n_layers) so the
//! residual's variance does not grow with depth (GPT-2).
//!
//! Weights are drawn on the host from a ChaCha8 stream seeded per model ([`seeded`]), not from
//! the backend's global RNG: the same seed then gives bit-identical weights on flex and on
//! wgpu, and two models built at once on different threads (parallel tests, sweep jobs) do not
//! disturb each other's draws.

use std::cell::RefCell;

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const INIT_STD: f64 = 0.02;

thread_local! {
    static RNG: RefCell<ChaCha8Rng> = RefCell::new(ChaCha8Rng::seed_from_u64(0));
    /// The seed of the current [`seeded`] scope, from which [`part`] derives its streams.
    static SEED: RefCell<u64> = const { RefCell::new(0) };
}

/// Run `build` with this thread's initialisation stream seeded by `seed`.
pub fn seeded<T>(seed: u64, build: impl FnOnce() -> T) -> T {
    SEED.with(|s| *s.borrow_mut() = seed);
    RNG.with(|r| *r.borrow_mut() = ChaCha8Rng::seed_from_u64(seed ^ 0x1a2b_3c4d_5e6f_7081));
    build()
}

/// Run `build` (inside a [`seeded`] scope) on a stream of its own, derived from the scope's
/// seed and `name` alone: a part's weights then do not depend on what was drawn before it.
/// Two models with one seed share every part whose name and shape they share (embedding,
/// attention, head), whatever their feed-forwards: a paired comparison of arms then isolates
/// the feed-forward. With `own_stream` false, `build` draws on from the scope's one stream
/// (the sequential scheme of earlier runs).
pub fn part<T>(name: &str, own_stream: bool, build: impl FnOnce() -> T) -> T {
    if !own_stream {
        return build();
    }
    let seed = SEED.with(|s| *s.borrow());
    // FNV-1a of the name: stable across Rust versions and platforms (unlike `DefaultHasher`).
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    RNG.with(|r| *r.borrow_mut() = ChaCha8Rng::seed_from_u64(seed ^ hash));
    build()
}

/// Draws from N(0, std²) (Box–Muller on the thread's stream).
fn gaussian(n: usize, std: f64) -> Vec<f32> {
    RNG.with(|r| {
        let mut rng = r.borrow_mut();
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let u1: f64 = rng.random::<f64>().max(1e-300);
            let u2: f64 = rng.random();
            let radius = (-2.0 * u1.ln()).sqrt() * std;
            let angle = 2.0 * std::f64::consts::PI * u2;
            out.push((radius * angle.cos()) as f32);
            out.push((radius * angle.sin()) as f32);
        }
        out.truncate(n);
        out
    })
}

pub fn normal<const D: usize>(shape: [usize; D], std: f64, device: &Device) -> Param<Tensor<D>> {
    let n = shape.iter().product();
    Param::from_tensor(Tensor::from_data(
        TensorData::new(gaussian(n, std), shape),
        device,
    ))
}

/// A bias-free linear layer `x · W` with `W: [d_in, d_out]`.
pub fn linear(d_in: usize, d_out: usize, std: f64, device: &Device) -> Linear {
    Linear {
        weight: normal([d_in, d_out], std, device),
        bias: None,
    }
}

/// The standard deviation of residual-stream output projections.
pub fn residual_std(n_layers: usize) -> f64 {
    INIT_STD / (2.0 * n_layers as f64).sqrt()
}
