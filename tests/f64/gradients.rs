//! Gradients of the dense FFN, the MoE layer (with its balance and z losses) and attention
//! against central finite differences, in f64 on the flex backend.

use crate::common;

use burn::module::Param;
use burn::prelude::*;
use moe_lab::model::attention::Attention;
use moe_lab::model::ffn::SwiGlu;
use moe_lab::model::rope::Rope;
use rand::{Rng, SeedableRng};

/// Flex in f64 (`f64_device`).
fn device() -> Device {
    crate::f64_device()
}

fn tensor<const D: usize>(v: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec().unwrap()
}

trait RequireGradIf {
    fn require_grad_if(self, grad: bool) -> Self;
}
impl<const D: usize> RequireGradIf for Tensor<D> {
    fn require_grad_if(self, grad: bool) -> Self {
        if grad { self.require_grad() } else { self }
    }
}

/// Inputs of a check: named flat values with shapes.
struct Inputs(Vec<(&'static str, Vec<usize>, Vec<f64>)>);

/// `f(values, device, with_grad)` → (loss, gradient of every input if asked).
type LossFn<'a> = &'a dyn Fn(&[Vec<f64>], &Device, bool) -> (f64, Vec<Vec<f64>>);

fn check(name: &str, inputs: Inputs, f: LossFn) {
    let values: Vec<Vec<f64>> = inputs.0.iter().map(|(_, _, v)| v.clone()).collect();
    let dev = device();
    let (_, grads) = f(&values, &dev.clone().autodiff(), true);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let eps = 1e-6;
    for (i, (input, _, v)) in inputs.0.iter().enumerate() {
        for _ in 0..6 {
            let j = rng.random_range(0..v.len());
            let mut plus = values.clone();
            plus[i][j] += eps;
            let mut minus = values.clone();
            minus[i][j] -= eps;
            let numeric = (f(&plus, &dev, false).0 - f(&minus, &dev, false).0) / (2.0 * eps);
            let analytic = grads[i][j];
            let err = (numeric - analytic).abs() / numeric.abs().max(analytic.abs()).max(1e-3);
            assert!(
                err < 1e-4,
                "{name}: d/d{input}[{j}]: autodiff {analytic:.8e} vs finite difference {numeric:.8e}"
            );
        }
    }
}

fn random(n: usize, scale: f64, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| rng.random_range(-1.0..1.0) * scale)
        .collect()
}

/// A fixed projection of the output to a scalar, so every output element matters.
fn project<const D: usize>(y: Tensor<D>, seed: u64) -> Tensor<1> {
    let n = y.shape().num_elements();
    let r = Tensor::<1>::from_data(TensorData::new(random(n, 1.0, seed), [n]), &y.device());
    (y.reshape([n]) * r).sum()
}

#[test]
fn dense_ffn_gradients_match_finite_differences() {
    let (n, d, h) = (5, 6, 8);
    let inputs = Inputs(vec![
        ("x", vec![n, d], random(n * d, 1.0, 1)),
        ("w1", vec![d, h], random(d * h, 0.5, 2)),
        ("w3", vec![d, h], random(d * h, 0.5, 3)),
        ("w2", vec![h, d], random(h * d, 0.5, 4)),
    ]);
    check("dense FFN", inputs, &|v, dev, grad| {
        let x = tensor(&v[0], [n, d], dev).require_grad_if(grad);
        let ffn = SwiGlu {
            w1: Param::from_tensor(tensor(&v[1], [d, h], dev)),
            w3: Param::from_tensor(tensor(&v[2], [d, h], dev)),
            w2: Param::from_tensor(tensor(&v[3], [h, d], dev)),
        };
        let loss = project(ffn.forward(x.clone()), 9);
        let value = loss.clone().into_scalar::<f64>();
        if !grad {
            return (value, vec![]);
        }
        let g = loss.backward();
        let gs = vec![
            host(x.grad(&g).unwrap()),
            host(ffn.w1.val().grad(&g).unwrap()),
            host(ffn.w3.val().grad(&g).unwrap()),
            host(ffn.w2.val().grad(&g).unwrap()),
        ];
        (value, gs)
    })
}

#[test]
fn moe_gradients_with_aux_and_z_losses_match_finite_differences() {
    let (n, d, k_experts, h) = (7, 6, 4, 5);
    let inputs = Inputs(vec![
        ("x", vec![n, d], random(n * d, 1.0, 5)),
        ("router", vec![d, k_experts], random(d * k_experts, 1.0, 6)),
        (
            "w1",
            vec![k_experts, d, h],
            random(k_experts * d * h, 0.5, 7),
        ),
        (
            "w3",
            vec![k_experts, d, h],
            random(k_experts * d * h, 0.5, 8),
        ),
        (
            "w2",
            vec![k_experts, h, d],
            random(k_experts * h * d, 0.5, 9),
        ),
    ]);
    check("MoE", inputs, &|v, dev, grad| {
        let x = tensor(&v[0], [n, d], dev).require_grad_if(grad);
        let mut layer = common::MoeParts {
            d_model: d,
            experts: k_experts,
            top_k: 2,
            d_expert: h,
            renormalize: true,
            capacity_factor: None,
            // Large coefficients so the auxiliary terms weigh in the check.
            balance_coef: 0.5,
            z_coef: 0.1,
            n_layers: 1,
        }
        .init(dev);
        *common::router_weight(&mut layer) = Param::from_tensor(tensor(&v[1], [d, k_experts], dev));
        layer.experts.w1 = Param::from_tensor(tensor(&v[2], [k_experts, d, h], dev));
        layer.experts.w3 = Param::from_tensor(tensor(&v[3], [k_experts, d, h], dev));
        layer.experts.w2 = Param::from_tensor(tensor(&v[4], [k_experts, h, d], dev));
        let (y, aux) = layer.forward(x.clone(), common::ids(&x));
        let loss = project(y, 10) + aux.balance_loss + aux.z_loss;
        let value = loss.clone().into_scalar::<f64>();
        if !grad {
            return (value, vec![]);
        }
        let g = loss.backward();
        let gs = vec![
            host(x.grad(&g).unwrap()),
            host(
                common::router_weight(&mut layer.clone())
                    .val()
                    .grad(&g)
                    .unwrap(),
            ),
            host(layer.experts.w1.val().grad(&g).unwrap()),
            host(layer.experts.w3.val().grad(&g).unwrap()),
            host(layer.experts.w2.val().grad(&g).unwrap()),
        ];
        (value, gs)
    })
}

#[test]
fn attention_gradients_match_finite_differences() {
    let (b, t, d, heads, kv) = (2, 5, 8, 4, 2);
    let dh = d / heads;
    let inputs = Inputs(vec![
        ("x", vec![b, t, d], random(b * t * d, 1.0, 12)),
        ("wq", vec![d, heads * dh], random(d * d, 0.5, 13)),
        ("wk", vec![d, kv * dh], random(d * kv * dh, 0.5, 14)),
        ("wv", vec![d, kv * dh], random(d * kv * dh, 0.5, 15)),
        ("wo", vec![heads * dh, d], random(d * d, 0.5, 16)),
    ]);
    check("attention", inputs, &|v, dev, grad| {
        let x = tensor(&v[0], [b, t, d], dev).require_grad_if(grad);
        let mut attn = Attention::new(d, heads, kv, 1, dev);
        attn.wq.weight = Param::from_tensor(tensor(&v[1], [d, heads * dh], dev));
        attn.wk.weight = Param::from_tensor(tensor(&v[2], [d, kv * dh], dev));
        attn.wv.weight = Param::from_tensor(tensor(&v[3], [d, kv * dh], dev));
        attn.wo.weight = Param::from_tensor(tensor(&v[4], [heads * dh, d], dev));
        let rope = Rope::new(dh, t, 10_000.0, dev);
        let loss = project(attn.forward(x.clone(), &rope), 17);
        let value = loss.clone().into_scalar::<f64>();
        if !grad {
            return (value, vec![]);
        }
        let g = loss.backward();
        let gs = vec![
            host(x.grad(&g).unwrap()),
            host(attn.wq.weight.val().grad(&g).unwrap()),
            host(attn.wk.weight.val().grad(&g).unwrap()),
            host(attn.wv.weight.val().grad(&g).unwrap()),
            host(attn.wo.weight.val().grad(&g).unwrap()),
        ];
        (value, gs)
    })
}
