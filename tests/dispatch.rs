//! The packed dropless dispatch equals the buffered reference path: outputs and gradients,
//! on random routing and on routing that leaves experts empty, on flex and on wgpu.

mod common;

use burn::module::Param;
use burn::prelude::*;
use common::{max_rel_diff, to_vec};
use moe_lab::model::ffn::MoeLayer;
use moe_lab::model::ffn::moe::Dispatch;

fn layer(device: &Device, skewed: bool) -> MoeLayer {
    let mut layer = moe_lab::model::init::seeded(11, || {
        common::MoeParts {
            d_model: 16,
            experts: 6,
            top_k: 2,
            d_expert: 12,
            renormalize: true,
            capacity_factor: None,
            balance_coef: 0.01,
            z_coef: 0.001,
            n_layers: 2,
        }
        .init(device)
    });
    if skewed {
        // Large router weights toward experts 0 and 1 leave experts 2..5 without tokens.
        let mut w = vec![0.0f32; 16 * 6];
        for i in 0..16 {
            w[i * 6] = 3.0;
            w[i * 6 + 1] = 2.0;
        }
        *common::router_weight(&mut layer) =
            Param::from_tensor(Tensor::from_data(TensorData::new(w, [16, 6]), device));
    }
    layer
}

/// Output and gradients (x, router, w1, w3, w2) of `dispatch`.
fn run(device: &Device, skewed: bool, dispatch: Dispatch) -> Vec<Vec<f32>> {
    let layer = layer(device, skewed);
    let n = 37; // not a multiple of anything
    let data: Vec<f32> = (0..n * 16)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0 + if skewed { 1.0 } else { 0.0 })
        .collect();
    let x = Tensor::<2>::from_data(TensorData::new(data, [n, 16]), device).require_grad();
    let (y, aux) = layer.forward_with(x.clone(), common::ids(&x), dispatch);
    let r = Tensor::<2>::from_data(
        TensorData::new(
            (0..n * 16)
                .map(|i| ((i * 31 % 17) as f32) / 17.0 - 0.5)
                .collect::<Vec<f32>>(),
            [n, 16],
        ),
        device,
    );
    let loss = (y.clone() * r).sum() + aux.balance_loss + aux.z_loss;
    let g = loss.backward();
    vec![
        to_vec(y.detach()),
        to_vec(x.grad(&g).unwrap()),
        to_vec(
            common::router_weight(&mut layer.clone())
                .val()
                .grad(&g)
                .unwrap(),
        ),
        to_vec(layer.experts.w1.val().grad(&g).unwrap()),
        to_vec(layer.experts.w3.val().grad(&g).unwrap()),
        to_vec(layer.experts.w2.val().grad(&g).unwrap()),
    ]
}

fn compare(device: &Device, where_: &str) {
    for skewed in [false, true] {
        let reference = run(device, skewed, Dispatch::Buffered);
        let packed = run(device, skewed, Dispatch::Packed);
        for (i, (p, r)) in packed.iter().zip(&reference).enumerate() {
            let d = max_rel_diff(p, r);
            assert!(
                d < 1e-5,
                "{where_}, skewed {skewed}: output/gradient {i} differs by {d}"
            );
        }
        if skewed {
            // Experts 2..5 received nothing: their weight gradients are zero on both paths.
            let w1 = &packed[3];
            let per_expert = w1.len() / 6;
            assert!(w1[2 * per_expert..].iter().all(|v| *v == 0.0));
            assert!(w1[..per_expert].iter().any(|v| *v != 0.0));
        }
    }
}

#[test]
fn packed_dispatch_equals_reference_on_flex() {
    compare(&Device::flex().autodiff(), "flex");
}

#[test]
fn packed_dispatch_equals_reference_on_wgpu() {
    let Some(choice) = common::wgpu_choice() else {
        return;
    };
    compare(&choice.open().unwrap().device.autodiff(), "wgpu");
}
