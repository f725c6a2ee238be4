//! The AdamW update on flex: one loop over parameter, gradient and both moments, written into
//! the parameter's and the moments' own buffers where this step holds them alone (burn hands
//! the optimizer the parameter and its state by value), else into copies.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::DType;
use rayon::prelude::*;

use super::AdamWOps;
use crate::kernels::gemm::zeros;
use crate::simd::multiversion;

/// Elements per parallel task: below this, a parameter is one task.
const CHUNK: usize = 1 << 15;

/// The step's constants, as [`AdamWOps::adamw_update`] receives them.
#[derive(Clone, Copy)]
struct Coefs {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    bias_1: f32,
    bias_2: f32,
    keep: f32,
    lr: f32,
}

impl AdamWOps for Flex {
    fn adamw_update(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        first: bool,
        coefs: [f32; 7],
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        crate::kernels::entries::enter("adamw_update");
        let [beta_1, beta_2, epsilon, bias_1, bias_2, keep, lr] = coefs;
        let c = Coefs {
            beta_1,
            beta_2,
            epsilon,
            bias_1,
            bias_2,
            keep,
            lr,
        };
        let grad = owned_contiguous(grad);
        let mut param = owned_contiguous(param);
        let shape = param.layout().shape().clone();
        // A first step has no moments yet: fresh buffers, written below without being read.
        let (mut m, mut v) = match first {
            true => (zeros::<f32>(shape.clone()), zeros::<f32>(shape.clone())),
            false => (owned_contiguous(moment_1), owned_contiguous(moment_2)),
        };
        let n = shape.num_elements();
        for (what, t) in [("gradient", &grad), ("moment 1", &m), ("moment 2", &v)] {
            assert_eq!(
                t.layout().shape().num_elements(),
                n,
                "adamw: the {what} has another size than its parameter"
            );
        }
        let g = grad.as_slice::<f32>().expect("contiguous f32");
        (param.storage_mut::<f32>().par_chunks_mut(CHUNK))
            .zip(m.storage_mut::<f32>().par_chunks_mut(CHUNK))
            .zip(v.storage_mut::<f32>().par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(i, ((p, m), v))| {
                let g = &g[i * CHUNK..i * CHUNK + p.len()];
                match first {
                    true => adamw_first(p, m, v, g, c),
                    false => adamw_next(p, m, v, g, c),
                }
            });
        (param, m, v)
    }
}

/// `t` as an f32 tensor whose buffer holds exactly its elements in order (so `storage_mut` is
/// the tensor): itself when it already is, else a contiguous copy.
fn owned_contiguous(t: FlexTensor) -> FlexTensor {
    assert_eq!(
        t.dtype(),
        DType::F32,
        "adamw: f32 only, got {:?}",
        t.dtype()
    );
    let n = t.layout().shape().num_elements();
    let whole = t.layout().contiguous_offsets() == Some((0, n)) && t.storage::<f32>().len() == n;
    if whole { t } else { t.to_contiguous() }
}

multiversion! {
    // Each element as burn's AdamW computes it, one f32 operation at a time:
    // m ← m·β₁ + g·(1−β₁), v ← v·β₂ + g²·(1−β₂), p ← p·keep − (m/bias₁) / (√(v/bias₂) + ε) · lr.
    fn adamw_next(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], c: Coefs) {
        let (f1, f2) = (1.0 - c.beta_1, 1.0 - c.beta_2);
        for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            *m = *m * c.beta_1 + g * f1;
            *v = *v * c.beta_2 + g * g * f2;
            *p = step(*p, *m, *v, c);
        }
    }

    // The first step: m ← g·(1−β₁), v ← g²·(1−β₂), then the same update.
    fn adamw_first(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], c: Coefs) {
        let (f1, f2) = (1.0 - c.beta_1, 1.0 - c.beta_2);
        for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            *m = g * f1;
            *v = g * g * f2;
            *p = step(*p, *m, *v, c);
        }
    }
}

/// The parameter after the step from its new moments.
#[inline(always)]
fn step(p: f32, m: f32, v: f32, c: Coefs) -> f32 {
    let delta = (m / c.bias_1) / ((v / c.bias_2).sqrt() + c.epsilon);
    p * c.keep - delta * c.lr
}
