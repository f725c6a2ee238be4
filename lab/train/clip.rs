//! Global gradient-norm clipping: one norm over every parameter's gradient, one scale for all.
//! (burn's `GradientClipping::Norm` clips each tensor by its own norm, which changes the
//! update's direction; this keeps it.) Everything stays on the device.

use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// √(Σ over all parameters of Σ g²), shape `[1]`.
pub fn global_norm<M: Module>(model: &M, grads: &GradientsParams, device: &Device) -> Tensor<1> {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Tensor<1>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.total = self.total.clone() + g.powi_scalar(2).sum();
            }
        }
    }
    let mut visitor = SumSquares {
        grads,
        total: Tensor::zeros([1], device),
    };
    model.visit(&mut visitor);
    visitor.total.sqrt()
}

/// Scale every gradient by `min(1, max_norm / norm)`; `norm` is [`global_norm`]'s output.
pub fn clip_to<M: Module>(
    model: &M,
    grads: GradientsParams,
    norm: Tensor<1>,
    max_norm: f64,
) -> GradientsParams {
    let scale = norm
        .add_scalar(1e-6)
        .recip()
        .mul_scalar(max_norm)
        .clamp_max(1.0);
    struct Scale {
        grads: GradientsParams,
        scale: Tensor<1>,
    }
    impl ModuleVisitor for Scale {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                let s = self.scale.clone().reshape([1; D]);
                self.grads.register::<D>(param.id, g * s);
            }
        }
    }
    let mut visitor = Scale { grads, scale };
    model.visit(&mut visitor);
    visitor.grads
}
