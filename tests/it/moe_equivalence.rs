//! An MoE that must reduce to the dense FFN: one expert with top-1, or K identical experts with
//! renormalised gates (dropless, no auxiliary losses).

use crate::common;

use burn::module::Param;
use burn::prelude::*;
use common::{max_rel_diff, to_vec};
use moe_lab::model::ffn::SwiGlu;

fn moe(experts: usize, top_k: usize, device: &Device) -> moe_lab::model::ffn::MoeLayer {
    common::MoeParts {
        d_model: 16,
        experts,
        top_k,
        d_expert: 24,
        renormalize: true,
        capacity_factor: None,
        balance_coef: 0.0,
        z_coef: 0.0,
        n_layers: 2,
    }
    .init(device)
}

/// Give every expert of `layer` the dense FFN's weights.
fn copy_dense_into_experts(dense: &SwiGlu, layer: &mut moe_lab::model::ffn::MoeLayer) {
    let k = layer.experts.count();
    let stack = |w: Tensor<2>| w.unsqueeze::<3>().repeat_dim(0, k);
    layer.experts.w1 = Param::from_tensor(stack(dense.w1.val()));
    layer.experts.w3 = Param::from_tensor(stack(dense.w3.val()));
    layer.experts.w2 = Param::from_tensor(stack(dense.w2.val()));
}

#[test]
fn one_expert_top1_equals_dense_ffn() {
    let device = crate::common::flex();
    device.seed(1);
    let dense = SwiGlu::new(16, 24, 2, &device);
    let mut layer = moe(1, 1, &device);
    copy_dense_into_experts(&dense, &mut layer);
    let x = Tensor::<2>::random(
        [40, 16],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let (y, aux) = layer.forward(x.clone(), common::ids(&x));
    let want = dense.forward(x);
    let diff = max_rel_diff(&to_vec(y), &to_vec(want));
    assert!(diff < 1e-5, "MoE(K=1,k=1) differs from dense by {diff}");
    assert_eq!(aux.stats.dropped.into_scalar::<f32>(), 0.0);
}

#[test]
fn identical_experts_with_renormalisation_equal_dense_ffn() {
    let device = crate::common::flex();
    device.seed(2);
    let dense = SwiGlu::new(16, 24, 2, &device);
    let mut layer = moe(4, 2, &device);
    copy_dense_into_experts(&dense, &mut layer);
    let x = Tensor::<2>::random(
        [40, 16],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let (y, _) = layer.forward(x.clone(), common::ids(&x));
    let want = dense.forward(x);
    let diff = max_rel_diff(&to_vec(y), &to_vec(want));
    assert!(
        diff < 1e-5,
        "4 identical experts (top-2, renormalised) differ from dense by {diff}"
    );
}

#[test]
fn identical_experts_without_renormalisation_scale_by_gate_mass() {
    // Without renormalisation the output is the dense output times the chosen probability mass
    // (< 1): a check that the flag does something.
    let device = crate::common::flex();
    device.seed(3);
    let dense = SwiGlu::new(16, 24, 2, &device);
    let mut layer = common::MoeParts {
        d_model: 16,
        experts: 4,
        top_k: 2,
        d_expert: 24,
        renormalize: false,
        capacity_factor: None,
        balance_coef: 0.0,
        z_coef: 0.0,
        n_layers: 2,
    }
    .init(&device);
    copy_dense_into_experts(&dense, &mut layer);
    let x = Tensor::<2>::random(
        [10, 16],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let (y, _) = layer.forward(x.clone(), common::ids(&x));
    let want = dense.forward(x);
    let size = |v: Vec<f32>| v.iter().map(|x| x.abs() as f64).sum::<f64>();
    let ratio = size(to_vec(y)) / size(to_vec(want));
    // Top-2 of 4 near-uniform probabilities carries about half the mass.
    assert!(
        ratio > 0.3 && ratio < 0.8,
        "output / dense output = {ratio}"
    );
}
