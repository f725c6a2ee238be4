//! The fused AdamW update against burn's `AdamW`: parameters and both moments bit for bit over
//! several steps, with and without weight decay, on plain and autodiff flex tensors, with a
//! strided gradient, a parameter large enough for the parallel path, and a parameter still
//! held elsewhere (updated in place only when the optimizer holds it alone).

use crate::common;

use burn::optim::{AdamWConfig, AdamWState, Optimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use common::to_vec;
use moe_lab::kernels::adamw::FusedAdamW;

const BETAS: (f32, f32) = (0.9, 0.95);
const EPS: f32 = 1e-8;

fn pair(weight_decay: f32) -> (FusedAdamW, burn::optim::AdamW) {
    let burn = AdamWConfig::new()
        .with_beta_1(BETAS.0)
        .with_beta_2(BETAS.1)
        .with_epsilon(EPS)
        .with_weight_decay(weight_decay)
        .build();
    (FusedAdamW::new(BETAS.0, BETAS.1, EPS, weight_decay), burn)
}

fn state_vecs<const D: usize>(s: &AdamWState<D>) -> (usize, Vec<f32>, Vec<f32>) {
    let m = &s.momentum;
    (
        m.time,
        to_vec(m.moment_1.clone()),
        to_vec(m.moment_2.clone()),
    )
}

/// Four steps of both optimizers from the same parameter and gradients; everything must match
/// exactly. `grad_of(step)` makes each step's gradient (it may be strided).
fn same_steps<const D: usize>(
    weight_decay: f32,
    param: Tensor<D>,
    grad_of: impl Fn(usize) -> Tensor<D>,
) {
    let (fused, burn) = pair(weight_decay);
    let (mut p_fused, mut p_burn) = (param.clone(), param);
    let (mut s_fused, mut s_burn) = (None, None);
    for step in 0..4 {
        let lr = 3e-3 * (step + 1) as f64;
        let g = grad_of(step);
        let (p, s) = fused.step(lr, p_fused, g.clone(), s_fused);
        (p_fused, s_fused) = (p, s);
        let (p, s) = burn.step(lr, p_burn, g, s_burn);
        (p_burn, s_burn) = (p, s);
        assert_eq!(
            to_vec(p_fused.clone()),
            to_vec(p_burn.clone()),
            "parameter after step {step}"
        );
        assert_eq!(
            state_vecs(s_fused.as_ref().unwrap()),
            state_vecs(s_burn.as_ref().unwrap()),
            "time and moments after step {step}"
        );
    }
}

fn random<const D: usize>(shape: [usize; D], scale: f64, device: &Device) -> Tensor<D> {
    Tensor::<D>::random(shape, Distribution::Normal(0.0, scale), device)
}

#[test]
fn fused_adamw_equals_burns_bit_for_bit() {
    for device in [crate::common::flex(), crate::common::flex().autodiff()] {
        for wd in [0.0, 0.1] {
            // A norm gain (rank 1), and a matrix with several parallel chunks (77 k elements).
            let gains = random([67], 1.0, &device);
            let grads: Vec<_> = (0..4).map(|_| random([67], 0.3, &device)).collect();
            same_steps(wd, gains, |s| grads[s].clone());
            let w = random([300, 257], 0.02, &device);
            let grads: Vec<_> = (0..4).map(|_| random([300, 257], 1e-3, &device)).collect();
            same_steps(wd, w, |s| grads[s].clone());
            // A transposed (strided) gradient.
            let w = random([40, 24], 0.02, &device);
            let grads: Vec<_> = (0..4).map(|_| random([24, 40], 1.0, &device)).collect();
            same_steps(wd, w, |s| grads[s].clone().transpose());
        }
    }
}

#[test]
fn fused_adamw_leaves_a_parameter_held_elsewhere_unchanged() {
    let device = crate::common::flex();
    let (fused, _) = pair(0.1);
    let w = random([50, 70], 1.0, &device);
    let kept = to_vec(w.clone());
    let held = w.clone();
    let (updated, state) = fused.step(1e-2, w, random([50, 70], 1.0, &device), None);
    assert_ne!(to_vec(updated.clone()), kept, "the step changed nothing");
    assert_eq!(
        to_vec(held.clone()),
        kept,
        "the first step wrote into a shared parameter"
    );
    // The moments as well: a second step with the state still held elsewhere.
    let (m1, held_state) = (state_vecs(state.as_ref().unwrap()), state.clone());
    let _ = fused.step(1e-2, updated, random([50, 70], 1.0, &device), state);
    assert_eq!(
        state_vecs(held_state.as_ref().unwrap()),
        m1,
        "the second step wrote into shared moments"
    );
}
