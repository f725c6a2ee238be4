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
    // Each token's output is the dense output times its top-2 probability mass, computed here
    // from the router's weights: softmax(x · W) per row, its two largest entries summed.
    let w = common::router_weight(&mut layer).val();
    let probs = to_vec(burn::tensor::activation::softmax(x.clone().matmul(w), 1));
    let mass: Vec<f32> = (probs.chunks(4))
        .map(|row| {
            let mut r = row.to_vec();
            r.sort_by(|a, b| b.total_cmp(a));
            r[0] + r[1]
        })
        .collect();
    let dense_out = to_vec(dense.forward(x));
    let want: Vec<f32> = (dense_out.chunks(16).zip(&mass))
        .flat_map(|(row, m)| row.iter().map(move |v| v * m))
        .collect();
    assert!(
        mass.iter().all(|m| *m < 0.99),
        "the mass is below 1: {mass:?}"
    );
    let diff = common::max_rel_diff(&to_vec(y), &want);
    assert!(diff < 1e-5, "output vs mass × dense output: {diff}");
}
