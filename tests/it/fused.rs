//! The fused flex kernels (SwiGLU, causal softmax, the attention-logit probe, the
//! cross-entropy, RMSNorm, the router's softmax and log-partition) against burn's composed ops:
//! outputs and gradients, on contiguous and strided inputs, with NaN carried through (a
//! diverged run must stay visible to the spike and divergence checks).

use crate::common;

use burn::prelude::*;
use burn::tensor::Distribution;
use common::{assert_close, to_vec};
use moe_lab::kernels::fused;

fn random<const D: usize>(shape: [usize; D], scale: f32, device: &Device) -> Tensor<D> {
    Tensor::<D>::random(shape, Distribution::Normal(0.0, scale as f64), device)
}

/// `(output, d_a, d_b)` of `f(a, b)` against a fixed random cotangent.
fn grads<const D: usize>(
    f: impl Fn(Tensor<D>, Tensor<D>) -> Tensor<D>,
    a: &Tensor<D>,
    b: &Tensor<D>,
    r: &Tensor<D>,
) -> [Vec<f32>; 3] {
    let (a, b) = (a.clone().require_grad(), b.clone().require_grad());
    let y = f(a.clone(), b.clone());
    let g = (y.clone() * r.clone()).sum().backward();
    [
        to_vec(y.detach()),
        to_vec(a.grad(&g).unwrap()),
        to_vec(b.grad(&g).unwrap()),
    ]
}

#[test]
fn swiglu_equals_silu_times_up() {
    let device = crate::common::flex().autodiff();
    // Large enough for several parallel chunks, values far into both tails of the sigmoid.
    let (g, u) = (
        random([3, 173, 257], 6.0, &device),
        random([3, 173, 257], 1.0, &device),
    );
    let r = random([3, 173, 257], 1.0, &device);
    let fused = grads(fused::swiglu, &g, &u, &r);
    let composed = grads(fused::swiglu_composed, &g, &u, &r);
    assert_close(&fused, &composed, "swiglu", 1e-5);
    // A strided (transposed) gate.
    let gt = random([257, 40], 2.0, &device).transpose();
    let (u2, r2) = (
        random([40, 257], 1.0, &device),
        random([40, 257], 1.0, &device),
    );
    let fused = grads(fused::swiglu, &gt, &u2, &r2);
    let composed = grads(fused::swiglu_composed, &gt, &u2, &r2);
    assert_close(&fused, &composed, "swiglu, strided gate", 1e-5);
}

/// Scores `[2, 3, T, T]` with both a short and a long row, spread wide enough that the
/// softmax saturates in places.
#[test]
fn causal_softmax_equals_masked_softmax() {
    let device = crate::common::flex().autodiff();
    for t in [1, 7, 130] {
        let s = random([2, 3, t, t], 4.0, &device);
        let r = random([2, 3, t, t], 1.0, &device);
        let scale = 1.0 / 8f32.sqrt();
        let f = |s: Tensor<4>, _: Tensor<4>| fused::causal_softmax(s, scale);
        let c = |s: Tensor<4>, _: Tensor<4>| fused::causal_softmax_composed(s, scale);
        let (fused_out, composed_out) = (grads(f, &s, &s, &r), grads(c, &s, &s, &r));
        assert_close(
            &fused_out[..2],
            &composed_out[..2],
            &format!("softmax T {t}"),
            1e-5,
        );
        let w = &fused_out[0];
        for (row, chunk) in w.chunks(t).enumerate() {
            let i = row % t;
            assert!(
                chunk[i + 1..].iter().all(|v| *v == 0.0),
                "future weight, row {row}"
            );
            let sum: f32 = chunk.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "row {row} sums to {sum}");
        }
        let max = to_vec(fused::causal_logit_max(s.clone(), scale))[0];
        let composed_max = to_vec(
            s.clone()
                .mul_scalar(scale)
                .mask_fill(
                    Tensor::<2, Bool>::tril_mask([t, t], 0, &device)
                        .unsqueeze::<4>()
                        .expand([2, 3, t, t]),
                    f32::NEG_INFINITY,
                )
                .max(),
        )[0];
        assert_eq!(max, composed_max, "logit max, T {t}");
    }
}

#[test]
fn nan_propagates() {
    let device = crate::common::flex();
    let mut g = vec![0.5f32; 12];
    g[5] = f32::NAN;
    let g = Tensor::<2>::from_data(TensorData::new(g, [3, 4]), &device);
    let y = to_vec(fused::swiglu(g, Tensor::ones([3, 4], &device)));
    assert!(y[5].is_nan() && y.iter().filter(|v| v.is_nan()).count() == 1);

    let mut s = vec![0.1f32; 16];
    s[4 * 2] = f32::NAN; // row 2, key 0: a key that row attends to
    let s = Tensor::<4>::from_data(TensorData::new(s, [1, 1, 4, 4]), &device);
    let w = to_vec(fused::causal_softmax(s.clone(), 1.0));
    assert!(
        w[8..11].iter().all(|v| v.is_nan()),
        "row 2: {:?}",
        &w[8..12]
    );
    assert!(w[..8].iter().chain(&w[12..]).all(|v| !v.is_nan()));
    assert!(to_vec(fused::causal_logit_max(s, 1.0))[0].is_nan());
}

/// `(loss, d logits)` of `f(logits, targets)` against a fixed random cotangent.
fn ce_grads(
    f: impl Fn(Tensor<2>, Tensor<1, Int>) -> Tensor<1>,
    logits: &Tensor<2>,
    targets: &Tensor<1, Int>,
    r: &Tensor<1>,
) -> [Vec<f32>; 2] {
    let x = logits.clone().require_grad();
    let y = f(x.clone(), targets.clone());
    let g = (y.clone() * r.clone()).sum().backward();
    [to_vec(y.detach()), to_vec(x.grad(&g).unwrap())]
}

/// Rows over several parallel tasks, a vocabulary that is not a multiple of the vector width,
/// logits wide enough to saturate, the first and last class among the targets; contiguous and
/// strided (transposed) logits.
#[test]
fn cross_entropy_equals_log_softmax_and_gather() {
    let device = crate::common::flex().autodiff();
    let (n, v) = (402, 259);
    let ids: Vec<i64> = (0..n as i64).map(|i| (i * 38) % v as i64).collect();
    assert!(ids.contains(&0) && ids.contains(&(v as i64 - 1)));
    let targets = Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &device);
    let r = random([n], 1.0, &device);
    for (what, logits) in [
        ("contiguous", random([n, v], 8.0, &device)),
        ("strided", random([v, n], 8.0, &device).transpose()),
    ] {
        let fused = ce_grads(fused::cross_entropy_rows, &logits, &targets, &r);
        let composed = ce_grads(fused::cross_entropy_rows_composed, &logits, &targets, &r);
        assert_close(&fused, &composed, &format!("cross-entropy, {what}"), 1e-5);
    }
}

#[test]
fn cross_entropy_keeps_a_nan_in_its_row_and_refuses_a_class_outside_the_vocabulary() {
    let device = crate::common::flex();
    let mut x = vec![0.3f32; 3 * 5];
    x[5 + 2] = f32::NAN; // row 1
    let x = Tensor::<2>::from_data(TensorData::new(x, [3, 5]), &device);
    let t = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 4, 2], [3]), &device);
    let loss = to_vec(fused::cross_entropy_rows(x.clone(), t));
    assert!(
        loss[1].is_nan() && !loss[0].is_nan() && !loss[2].is_nan(),
        "{loss:?}"
    );
    assert!(
        (loss[0] - 5f32.ln()).abs() < 1e-6,
        "uniform row: {}",
        loss[0]
    );

    let bad = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 5, 2], [3]), &device);
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fused::cross_entropy_rows(x, bad)
    }));
    assert!(
        refused.is_err(),
        "a target of 5 among 5 classes was accepted"
    );
}

/// `(y, dx, d_gamma)` of `f(norm, x)` against a fixed random cotangent.
fn norm_grads(
    f: impl Fn(&burn::nn::RmsNorm, Tensor<3>) -> Tensor<3>,
    gamma: &Tensor<1>,
    x: &Tensor<3>,
    r: &Tensor<3>,
) -> [Vec<f32>; 3] {
    let norm = burn::nn::RmsNorm {
        gamma: burn::module::Param::from_tensor(gamma.clone().require_grad()),
        epsilon: 1e-5,
    };
    let x = x.clone().require_grad();
    let y = f(&norm, x.clone());
    let g = (y.clone() * r.clone()).sum().backward();
    [
        to_vec(y.detach()),
        to_vec(x.grad(&g).unwrap()),
        to_vec(norm.gamma.val().grad(&g).unwrap()),
    ]
}

/// Rows over several parallel tasks (so the scale's gradient is summed across them), a width
/// that is not a multiple of the vector width, a random scale; contiguous and strided input.
#[test]
fn rms_norm_equals_burns_rms_norm() {
    let device = crate::common::flex().autodiff();
    let d = 67;
    let gamma = random([d], 1.0, &device);
    let r = random([3, 173, d], 1.0, &device);
    for (what, x) in [
        ("contiguous", random([3, 173, d], 3.0, &device)),
        ("strided", random([3, d, 173], 3.0, &device).swap_dims(1, 2)),
    ] {
        let fused = norm_grads(fused::rms_norm, &gamma, &x, &r);
        let composed = norm_grads(|n, x| n.forward(x), &gamma, &x, &r);
        assert_close(&fused, &composed, &format!("rms_norm, {what}"), 1e-5);
    }
}

/// `(output, d logits)` of a router function of `logits: [N, K]` against a random cotangent.
fn router_grads<const D: usize>(
    f: impl Fn(Tensor<2>) -> Tensor<D>,
    logits: &Tensor<2>,
    r: &Tensor<D>,
) -> [Vec<f32>; 2] {
    let x = logits.clone().require_grad();
    let y = f(x.clone());
    let g = (y.clone() * r.clone()).sum().backward();
    [to_vec(y.detach()), to_vec(x.grad(&g).unwrap())]
}

/// The router's softmax and log-partition (`ffn::router_softmax`) on the widths compiled for
/// a fixed row (4, 8, 64 experts) and the loop for others (6, 1); rows over several parallel
/// tasks (5 000 × 8); contiguous and strided logits; outputs and gradients.
#[test]
fn router_softmax_and_log_partition_equal_burns_ops() {
    use moe_lab::kernels::router_softmax as rs;
    let device = crate::common::flex().autodiff();
    for (n, k) in [(37, 8), (5000, 8), (19, 4), (11, 64), (23, 6), (7, 1)] {
        let r2 = random([n, k], 1.0, &device);
        let r1 = random([n], 1.0, &device);
        for (what, x) in [
            ("contiguous", random([n, k], 3.0, &device)),
            ("strided", random([k, n], 3.0, &device).transpose()),
        ] {
            let what = format!("N {n}, K {k}, {what}");
            let ours = router_grads(rs::softmax, &x, &r2);
            let theirs = router_grads(rs::softmax_composed, &x, &r2);
            assert_close(&ours, &theirs, &format!("router softmax, {what}"), 1e-5);
            let ours = router_grads(rs::log_partition, &x, &r1);
            let theirs = router_grads(rs::log_partition_composed, &x, &r1);
            assert_close(
                &ours,
                &theirs,
                &format!("router log-partition, {what}"),
                1e-5,
            );
        }
    }
}

/// A NaN logit makes its own row's softmax and log-partition NaN and leaves the other rows
/// finite, on the fixed-width kernels and the loop.
#[test]
fn router_softmax_keeps_a_nan_in_its_row() {
    use moe_lab::kernels::router_softmax as rs;
    let device = crate::common::flex();
    for k in [8, 6] {
        let mut x = vec![0.25f32; 3 * k];
        x[k + 1] = f32::NAN;
        let x = Tensor::<2>::from_data(TensorData::new(x, [3, k]), &device);
        let p = to_vec(rs::softmax(x.clone()));
        assert!(p[k..2 * k].iter().all(|v| v.is_nan()), "K {k}: {p:?}");
        assert!(
            p[..k]
                .iter()
                .chain(&p[2 * k..])
                .all(|v| (v - 1.0 / k as f32).abs() < 1e-6)
        );
        let lse = to_vec(rs::log_partition(x));
        assert!(
            lse[1].is_nan() && !lse[0].is_nan() && !lse[2].is_nan(),
            "K {k}: {lse:?}"
        );
    }
}
