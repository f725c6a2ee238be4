//! The fast dropless dispatches equal the buffered reference path: outputs and gradients,
//! on random routing and on routing that leaves experts empty: the packed one (dropless) on
//! flex and on wgpu, the grouped one (flex only; dropless and with a capacity that drops) on
//! flex, with and without autodiff.

mod common;

use burn::module::Param;
use burn::prelude::*;
use common::{max_rel_diff, to_vec};
use moe_lab::model::ffn::MoeLayer;
use moe_lab::model::ffn::moe::Dispatch;

fn layer(device: &Device, skewed: bool, capacity_factor: Option<f64>) -> MoeLayer {
    let mut layer = moe_lab::model::init::seeded(11, || {
        common::MoeParts {
            d_model: 16,
            experts: 6,
            top_k: 2,
            d_expert: 12,
            renormalize: true,
            capacity_factor,
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
fn run(device: &Device, skewed: bool, dispatch: Dispatch, capacity: Option<f64>) -> Vec<Vec<f32>> {
    let layer = layer(device, skewed, capacity);
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

fn compare(device: &Device, where_: &str, fast: Dispatch, capacity: Option<f64>) {
    for skewed in [false, true] {
        let reference = run(device, skewed, Dispatch::Buffered, capacity);
        let packed = run(device, skewed, fast, capacity);
        for (i, (p, r)) in packed.iter().zip(&reference).enumerate() {
            let d = max_rel_diff(p, r);
            assert!(
                d < 1e-5,
                "{where_}, {fast:?}, capacity {capacity:?}, skewed {skewed}: output/gradient {i} \
                 differs by {d}"
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
    compare(&Device::flex().autodiff(), "flex", Dispatch::Packed, None);
}

#[test]
fn grouped_dispatch_equals_reference_on_flex() {
    let device = Device::flex();
    assert_eq!(Dispatch::for_layer(&device, true), Dispatch::Grouped);
    assert_eq!(
        Dispatch::for_layer(&device.clone().autodiff(), false),
        Dispatch::Grouped
    );
    // Dropless, and a capacity of ⌈1.0·k·N/K⌉ = 13 slots that drops slots (most of them
    // when skewed).
    for capacity in [None, Some(1.0)] {
        compare(
            &device.clone().autodiff(),
            "flex",
            Dispatch::Grouped,
            capacity,
        );
    }
    // Without autodiff (evaluation): the same outputs as the reference.
    for skewed in [false, true] {
        let layer = layer(&device, skewed, Some(1.0));
        let x = Tensor::<2>::random([29, 16], burn::tensor::Distribution::Default, &device);
        let ids = common::ids(&x);
        let (a, _) = layer.forward_with(x.clone(), ids.clone(), Dispatch::Grouped);
        let (b, _) = layer.forward_with(x, ids, Dispatch::Buffered);
        let d = max_rel_diff(&to_vec(a), &to_vec(b));
        assert!(d < 1e-5, "flex without autodiff, skewed {skewed}: {d}");
    }
}

#[test]
fn packed_dispatch_equals_reference_on_wgpu() {
    let Some(choice) = common::wgpu_choice() else {
        return;
    };
    let device = choice.open().unwrap().device;
    assert_eq!(Dispatch::for_layer(&device, true), Dispatch::Packed);
    assert_eq!(Dispatch::for_layer(&device, false), Dispatch::Buffered);
    compare(&device.autodiff(), "wgpu", Dispatch::Packed, None);
}

/// The grouped matmul itself against per-group matmuls of slices: groups of 3, 0 and 4 rows
/// over 9 rows (the last 2 rows belong to no group and come out zero), and its gradients
/// against those of the sliced reference.
#[test]
fn grouped_matmul_equals_per_group_matmuls() {
    use moe_lab::model::ffn::grouped_matmul::grouped_matmul;
    let device = Device::flex().autodiff();
    let (rows, a, b) = (9, 5, 3);
    let x =
        Tensor::<2>::random([rows, a], burn::tensor::Distribution::Default, &device).require_grad();
    let w =
        Tensor::<3>::random([3, a, b], burn::tensor::Distribution::Default, &device).require_grad();
    let sizes = Tensor::<1>::from_floats([3.0, 0.0, 4.0], &device);
    let r = Tensor::<2>::random([rows, b], burn::tensor::Distribution::Default, &device);

    let y = grouped_matmul(x.clone(), w.clone(), sizes);
    let g = (y.clone() * r.clone()).sum().backward();
    let (gx, gw) = (to_vec(x.grad(&g).unwrap()), to_vec(w.grad(&g).unwrap()));

    let x2 = x.clone().detach().require_grad();
    let w2 = w.clone().detach().require_grad();
    let expert = |e: usize| w2.clone().slice([e..e + 1, 0..a, 0..b]).reshape([a, b]);
    let reference = Tensor::cat(
        vec![
            x2.clone().slice([0..3, 0..a]).matmul(expert(0)),
            x2.clone().slice([3..7, 0..a]).matmul(expert(2)),
            Tensor::<2>::zeros([2, b], &device),
        ],
        0,
    );
    let g2 = (reference.clone() * r).sum().backward();
    for (what, ours, theirs) in [
        ("output", to_vec(y.detach()), to_vec(reference.detach())),
        ("x grad", gx, to_vec(x2.grad(&g2).unwrap())),
        ("w grad", gw, to_vec(w2.grad(&g2).unwrap())),
    ] {
        let d = max_rel_diff(&ours, &theirs);
        assert!(d < 1e-5, "grouped matmul {what} differs by {d}");
    }
}
