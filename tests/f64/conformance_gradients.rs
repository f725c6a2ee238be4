//! The conformance suite's gradient check (see `conformance.rs`): for every registered
//! variant, autodiff gradients of the input and of every trained parameter against central
//! finite differences, in f64 on flex. Its own test binary because flex's float type is set
//! once per process.

use crate::common;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use common::conformance::{BATCH, D_MODEL, SEQ, input, layer, loss, variants};
use common::to_vec;
use moe_lab::model::ffn::FeedForward;
use rand::{Rng, SeedableRng};

use crate::f64_device;

/// Host copies of every trained parameter of an autodiff module, with its position among all
/// float parameters in visiting order (the same in a plain build of the same variant).
fn trained_params(m: &FeedForward) -> Vec<(usize, burn::module::ParamId, Vec<f64>)> {
    struct Collect(Vec<(usize, burn::module::ParamId, Vec<f64>)>, usize);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if p.is_require_grad() {
                let v = p.val().into_data().convert::<f64>().try_to_vec().unwrap();
                self.0.push((self.1, p.id, v));
            }
            self.1 += 1;
        }
    }
    let mut c = Collect(Vec::new(), 0);
    m.visit(&mut c);
    c.0
}

/// Add `delta` to element `elem` of float parameter number `target` (in visiting order).
struct Perturb {
    target: usize,
    elem: usize,
    delta: f64,
    seen: usize,
}
impl ModuleMapper for Perturb {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let here = self.seen;
        self.seen += 1;
        if here != self.target {
            return p;
        }
        let (elem, delta) = (self.elem, self.delta);
        p.map(|t| {
            let shape = t.shape();
            let n = shape.num_elements();
            let mut bump = vec![0.0f64; n];
            bump[elem] = delta;
            let bump =
                Tensor::<1>::from_data(TensorData::new(bump, [n]), &t.device()).reshape(shape);
            t + bump
        })
    }
}

#[test]
fn gradients_match_finite_differences() {
    let plain = f64_device();
    let auto = plain.clone().autodiff();
    for (name, spec) in variants() {
        let inp = input(&plain, 1);
        let x_host = to_vec(inp.x.clone());
        let ffn = layer(&spec, &auto);
        let x = Tensor::<3>::from_data(
            TensorData::new(x_host.clone(), [BATCH, SEQ, D_MODEL]),
            &auto,
        )
        .require_grad();
        let tokens = inp.tokens.clone();
        let g = loss(&ffn, x.clone(), tokens.clone().to_device(&auto)).backward();
        let gx: Vec<f64> = x
            .grad(&g)
            .unwrap()
            .into_data()
            .convert::<f64>()
            .try_to_vec()
            .unwrap();
        let grads = GradientsParams::from_grads(g, &ffn);
        let params = trained_params(&ffn);
        let base = layer(&spec, &plain);
        let eps = 1e-6;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let value = |m: &FeedForward, xv: &[f32]| {
            let x =
                Tensor::<3>::from_data(TensorData::new(xv.to_vec(), [BATCH, SEQ, D_MODEL]), &plain);
            loss(m, x, tokens.clone()).into_scalar::<f64>()
        };
        let close = |what: String, analytic: f64, numeric: f64| {
            let err = (numeric - analytic).abs() / numeric.abs().max(analytic.abs()).max(1e-3);
            assert!(
                err < 1e-4,
                "{name}: d/d{what}: autodiff {analytic:.8e} vs finite difference {numeric:.8e}"
            );
        };
        // The input (f32 host copy in f64 tensors: perturb by a representable step).
        for _ in 0..4 {
            let j = rng.random_range(0..x_host.len());
            let h = 1e-3f32;
            let (mut p, mut m) = (x_host.clone(), x_host.clone());
            p[j] += h;
            m[j] -= h;
            let numeric = (value(&base, &p) - value(&base, &m)) / (p[j] - m[j]) as f64;
            close(format!("x[{j}]"), gx[j], numeric);
        }
        for (i, id, v) in &params {
            let analytic = grads_of(&grads, &ffn, *id);
            for _ in 0..3 {
                let j = rng.random_range(0..v.len());
                let at = |delta| {
                    let m = base.clone().map(&mut Perturb {
                        target: *i,
                        elem: j,
                        delta,
                        seen: 0,
                    });
                    value(&m, &x_host)
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                close(format!("param{i}[{j}]"), analytic[j], numeric);
            }
        }
        println!("{name}: gradients ok ({} trained tensors)", params.len());
    }
}

/// The gradient of the parameter with `id`, flattened.
fn grads_of(grads: &GradientsParams, m: &FeedForward, id: burn::module::ParamId) -> Vec<f64> {
    struct Find<'a> {
        grads: &'a GradientsParams,
        id: burn::module::ParamId,
        out: Option<Vec<f64>>,
    }
    impl ModuleVisitor for Find<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if p.id == self.id {
                self.out = self
                    .grads
                    .get::<D>(p.id)
                    .map(|g| g.into_data().convert::<f64>().try_to_vec().unwrap());
            }
        }
    }
    let mut f = Find {
        grads,
        id,
        out: None,
    };
    m.visit(&mut f);
    f.out.expect("every trained parameter has a gradient")
}
