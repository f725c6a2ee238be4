//! The lab's matmul on flex (gemm writing into the lab's own outputs, `kernels::matmul`) against
//! burn's matmul: outputs and both gradients, for the shapes the model multiplies. Covered:
//! - plain matrices;
//! - a batch times one shared weight matrix (rows stacked, and rows that are not evenly
//!   spaced);
//! - batched attention products with a transposed operand, small and large enough for the
//!   parallel paths;
//! - the linear layer against burn's `Linear`.

use crate::common;

use burn::prelude::*;
use burn::tensor::Distribution;
use common::{assert_close, to_vec};
use moe_lab::kernels::matmul;

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// `(c, da, db)` of `f(a, b)` against a fixed cotangent.
fn grads<const D: usize>(
    f: impl Fn(Tensor<D>, Tensor<D>) -> Tensor<D>,
    a: &Tensor<D>,
    b: &Tensor<D>,
) -> [Vec<f32>; 3] {
    let (a, b) = (a.clone().require_grad(), b.clone().require_grad());
    let c = f(a.clone(), b.clone());
    let g = (c.clone() * cotangent(c.dims(), &c.device()))
        .sum()
        .backward();
    [
        to_vec(c.detach()),
        to_vec(a.grad(&g).unwrap()),
        to_vec(b.grad(&g).unwrap()),
    ]
}

/// A fixed, non-constant cotangent of shape `dims`.
fn cotangent<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
    let n: usize = dims.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
        .collect();
    Tensor::<D>::from_data(TensorData::new(values, dims), device)
}

fn check<const D: usize>(what: &str, a: Tensor<D>, b: Tensor<D>) {
    let ours = grads(matmul::matmul, &a, &b);
    let burns = grads(|a, b| a.matmul(b), &a, &b);
    assert_close(&ours, &burns, what, 1e-5);
}

#[test]
fn matmul_equals_burns_matmul_with_gradients() {
    let device = crate::common::flex().autodiff();
    check("2-D", random([37, 29], &device), random([29, 23], &device));
    check(
        "a batch times one shared matrix",
        random([3, 41, 19], &device),
        random([1, 19, 27], &device),
    );
    check(
        "shared matrix, rows not evenly spaced (a transposed view)",
        random([3, 19, 41], &device).swap_dims(1, 2),
        random([1, 19, 27], &device),
    );
    check(
        "batched, b transposed (attention scores)",
        random([2, 3, 33, 8], &device),
        random([2, 3, 17, 8], &device).swap_dims(2, 3),
    );
    check(
        "batched, large enough for parallel batches",
        random([4, 2, 256, 16], &device),
        random([4, 2, 16, 128], &device),
    );
    check(
        "one product large enough to split over threads",
        random([300, 200], &device),
        random([200, 130], &device),
    );
    check(
        "a shared weight over many stacked rows",
        random([16, 128, 64], &device),
        random([1, 64, 96], &device),
    );
}

#[test]
fn linear_equals_burns_linear() {
    let device = crate::common::flex().autodiff();
    for bias in [false, true] {
        let layer = burn::nn::LinearConfig::new(24, 40)
            .with_bias(bias)
            .init(&device);
        let x = random([2, 9, 24], &device).require_grad();
        let ours = matmul::linear(&layer, x.clone());
        let burns = layer.forward(x.clone());
        let r = cotangent([2, 9, 40], &device);
        let g1 = (ours.clone() * r.clone()).sum().backward();
        let g2 = (burns.clone() * r).sum().backward();
        let w = layer.weight.val();
        let side = |c: Tensor<3>, g: &_| {
            vec![
                to_vec(c.detach()),
                to_vec(x.grad(g).unwrap()),
                to_vec(w.grad(g).unwrap()),
            ]
        };
        assert_close(
            &side(ours, &g1),
            &side(burns, &g2),
            &format!("linear, bias {bias}"),
            1e-5,
        );
    }
}
