//! The grouped dispatch equals the buffered reference path: outputs and gradients, on random
//! routing and on routing that leaves experts empty, dropless and with a capacity that drops,
//! on flex with and without autodiff and on wgpu through its cubecl kernels; and the grouped
//! matmul itself against per-group matmuls on both backends.

use crate::common;

use burn::module::Param;
use burn::prelude::*;
use common::{assert_close, max_rel_diff, to_vec};
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
        let fast_out = run(device, skewed, fast, capacity);
        let what = format!("{where_}, {fast:?}, capacity {capacity:?}, skewed {skewed}");
        assert_close(&fast_out, &reference, &what, 1e-5);
        if skewed {
            // Experts 2..5 received nothing: their weight gradients are zero on both paths.
            let w1 = &fast_out[3];
            let per_expert = w1.len() / 6;
            assert!(w1[2 * per_expert..].iter().all(|v| *v == 0.0));
            assert!(w1[..per_expert].iter().any(|v| *v != 0.0));
        }
    }
}

#[test]
fn grouped_dispatch_equals_reference_on_flex() {
    let device = crate::common::flex();
    assert_eq!(Dispatch::for_layer(&device), Dispatch::Grouped);
    assert_eq!(
        Dispatch::for_layer(&device.clone().autodiff()),
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

/// The MoE layer through the grouped matmul's cubecl kernels equals the buffered reference,
/// dropless and with a capacity that drops slots, on random and skewed routing.
#[test]
fn grouped_dispatch_equals_reference_on_wgpu() {
    let Some(choice) = common::wgpu_choice() else {
        return;
    };
    let device = choice.open().unwrap().device;
    assert_eq!(Dispatch::for_layer(&device), Dispatch::Grouped);
    assert_eq!(Dispatch::for_layer(&device), Dispatch::Grouped);
    for capacity in [None, Some(1.0)] {
        compare(
            &device.clone().autodiff(),
            "wgpu",
            Dispatch::Grouped,
            capacity,
        );
    }
}

/// The grouped matmul itself on `device` → (output, x grad, w grad), checked against
/// per-group matmuls of slices (and their gradients) computed by burn's own ops there. Rows
/// past Σ sizes belong to no group and must come out zero.
fn grouped_against_slices(device: &Device, a: usize, b: usize, sizes: &[usize]) -> Vec<Vec<f32>> {
    use moe_lab::kernels::grouped_matmul::grouped_matmul;
    let (k, rows) = (sizes.len(), sizes.iter().sum::<usize>() + 2);
    let values = |n: usize, seed: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0) - 1.0)
            .collect()
    };
    let tensor = |dims: Vec<usize>, seed| {
        let n = dims.iter().product();
        TensorData::new(values(n, seed), dims)
    };
    let x = Tensor::<2>::from_data(tensor(vec![rows, a], 1), device).require_grad();
    let w = Tensor::<3>::from_data(tensor(vec![k, a, b], 2), device).require_grad();
    let r = Tensor::<2>::from_data(tensor(vec![rows, b], 3), device);
    let sizes_k = Tensor::<1>::from_floats(
        sizes
            .iter()
            .map(|&c| c as f32)
            .collect::<Vec<_>>()
            .as_slice(),
        device,
    );
    let y = grouped_matmul(x.clone(), w.clone(), sizes_k);
    let g = (y.clone() * r.clone()).sum().backward();
    let ours = vec![
        to_vec(y.detach()),
        to_vec(x.grad(&g).unwrap()),
        to_vec(w.grad(&g).unwrap()),
    ];

    let x2 = x.detach().require_grad();
    let w2 = w.detach().require_grad();
    let mut parts = Vec::new();
    let mut offset = 0;
    for (e, &c) in sizes.iter().enumerate() {
        if c > 0 {
            let w_e = w2.clone().slice([e..e + 1, 0..a, 0..b]).reshape([a, b]);
            parts.push(x2.clone().slice([offset..offset + c, 0..a]).matmul(w_e));
        }
        offset += c;
    }
    parts.push(Tensor::<2>::zeros([2, b], device));
    let reference = Tensor::cat(parts, 0);
    let g2 = (reference.clone() * r).sum().backward();
    let theirs = [
        to_vec(reference.detach()),
        to_vec(x2.grad(&g2).unwrap()),
        to_vec(w2.grad(&g2).unwrap()),
    ];
    // Output, x gradient, w gradient.
    let what = format!("grouped matmul, sizes {sizes:?}, a {a}, b {b}");
    assert_close(&ours, &theirs, &what, 1e-5);
    ours
}

/// Group sizes the grouped matmul is checked on: mixed with an empty group; all rows to the
/// last expert (skewed routing: every other weight gradient zero); several empty groups
/// around two; a shape wider than one cube of threads; and one large enough that flex runs
/// its groups in parallel.
const GROUPED_CASES: [(usize, usize, &[usize]); 5] = [
    (5, 3, &[3, 0, 4]),
    (4, 6, &[0, 0, 0, 11]),
    (7, 5, &[0, 5, 0, 0, 1, 0]),
    (37, 29, &[40, 3, 0, 21, 17, 0, 9, 30]),
    (64, 48, &[100, 0, 150, 60]),
];

#[test]
fn grouped_matmul_equals_per_group_matmuls() {
    let device = crate::common::flex().autodiff();
    for (a, b, sizes) in GROUPED_CASES {
        grouped_against_slices(&device, a, b, sizes);
    }
}

/// The cubecl kernels (lavapipe in CI): equal to per-group matmuls on wgpu, and to the flex
/// implementation for the same inputs (outputs, x and weight gradients); empty groups give
/// zero weight gradients.
#[test]
fn grouped_matmul_on_wgpu_equals_flex_and_per_group_matmuls() {
    let Some(choice) = common::wgpu_choice() else {
        return;
    };
    let wgpu = choice.open().unwrap().device.autodiff();
    let flex = crate::common::flex().autodiff();
    for (a, b, sizes) in GROUPED_CASES {
        let on_wgpu = grouped_against_slices(&wgpu, a, b, sizes);
        let on_flex = grouped_against_slices(&flex, a, b, sizes);
        assert_close(
            &on_wgpu,
            &on_flex,
            &format!("wgpu vs flex, sizes {sizes:?}"),
            1e-5,
        );
        let per_expert = a * b;
        for (e, &c) in sizes.iter().enumerate() {
            let dw_e = &on_wgpu[2][e * per_expert..(e + 1) * per_expert];
            assert_eq!(
                c == 0,
                dw_e.iter().all(|v| *v == 0.0),
                "expert {e} of {sizes:?}"
            );
        }
    }
}

/// `(output, gradients of the float inputs)` of `f` against a fixed random cotangent.
fn slot_grads(
    f: impl Fn(Tensor<2>, Tensor<2>) -> Tensor<2>,
    a: &Tensor<2>,
    b: &Tensor<2>,
    cotangent: &Tensor<2>,
) -> Vec<Vec<f32>> {
    let (a, b) = (a.clone().require_grad(), b.clone().require_grad());
    let y = f(a.clone(), b.clone());
    let g = (y.clone() * cotangent.clone()).sum().backward();
    let mut out = vec![to_vec(y.detach()), to_vec(a.grad(&g).unwrap())];
    if let Some(gb) = b.grad(&g) {
        out.push(to_vec(gb));
    }
    out
}

#[test]
fn slot_movements_equal_burns_ops() {
    use burn::tensor::Distribution;
    use moe_lab::kernels::slots;
    let device = crate::common::flex().autodiff();
    // 300 tokens, k = 2, d = 64: several parallel tasks. Rows: a permutation of the slots,
    // as the grouped dispatch builds (a fixed shuffle).
    let (n, k, d) = (300, 2, 64);
    let s = n * k;
    let perm: Vec<i64> = (0..s as i64).map(|i| (i * 7 + 3) % s as i64).collect();
    let slot_row = Tensor::<1, Int>::from_data(TensorData::new(perm, [s]), &device);
    let normal =
        |shape: [usize; 2]| Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let (x, rows, gate) = (normal([n, d]), normal([s, d]), normal([s, 1]));
    let unused = normal([1, 1]);

    let dy = normal([s, d]);
    let fused = slot_grads(|x, _| slots::to_rows(x, slot_row.clone()), &x, &unused, &dy);
    let composed = slot_grads(
        |x, _| slots::to_rows_composed(x, slot_row.clone()),
        &x,
        &unused,
        &dy,
    );
    assert_eq!(fused, composed, "to_rows: output and input gradient");

    let dy = normal([n, d]);
    let fused = slot_grads(
        |r, g| slots::combine(r, slot_row.clone(), g, k),
        &rows,
        &gate,
        &dy,
    );
    let composed = slot_grads(
        |r, g| slots::combine_composed(r, slot_row.clone(), g, k),
        &rows,
        &gate,
        &dy,
    );
    assert_eq!(fused.len(), 3, "combine: gradients of rows and gates");
    // Output and row gradients are the same products and sums in the same order; the gate
    // gradient is a dot product over d, summed in another order than burn's reduction.
    assert_eq!(
        fused[..2],
        composed[..2],
        "combine: output and row gradient"
    );
    assert_close(&fused[2..], &composed[2..], "combine: gate gradient", 1e-5);
}

#[test]
#[should_panic(expected = "permutation")]
fn slot_rows_that_are_not_a_permutation_are_refused() {
    use moe_lab::kernels::slots;
    let device = crate::common::flex();
    let x = Tensor::<2>::ones([3, 4], &device);
    // Slots 0 and 1 both to row 0: row 5 would be left unwritten.
    let rows =
        Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 0, 1, 2, 3, 4], [6]), &device);
    let _ = slots::to_rows(x, rows).into_data();
}

#[test]
fn the_host_plan_equals_the_tensor_plan() {
    use moe_lab::kernels::plan;
    let device = crate::common::flex();
    let experts = 6;
    // 2 × 150 slots, skewed toward experts 0 and 1 so a capacity drops some; expert 5 unused.
    let ids: Vec<i64> = (0..300i64)
        .map(|i| [0, 1, 0, 2, 1, 0, 3, 4, 1, 0][(i * 7 % 10) as usize])
        .collect();
    let slot_expert = Tensor::<1, Int>::from_data(TensorData::new(ids, [300]), &device);
    for capacity in [None, Some(40), Some(1)] {
        let (load, host) = plan::on_host(&slot_expert, experts, capacity);
        let (t_load, position) = plan::positions(slot_expert.clone(), experts);
        let tensors = plan::grouped_layout(&slot_expert, position, t_load.clone(), capacity);
        let ints = |t: Tensor<1, Int>| t.into_data().iter::<i64>().collect::<Vec<_>>();
        let what = format!("capacity {capacity:?}");
        assert_eq!(to_vec(load), to_vec(t_load), "{what}: load");
        assert_eq!(ints(host.slot_row), ints(tensors.slot_row), "{what}: rows");
        assert_eq!(to_vec(host.sizes), to_vec(tensors.sizes), "{what}: sizes");
        assert_eq!(to_vec(host.kept), to_vec(tensors.kept), "{what}: kept");
    }
}
