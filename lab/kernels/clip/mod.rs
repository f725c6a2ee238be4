//! Global gradient-norm clipping: one norm over every parameter's gradient, one scale for all.
//! (burn's `GradientClipping::Norm` clips each tensor by its own norm, which changes the
//! update's direction; this keeps it.) Everything stays on the device.
//!
//! Each gradient's Σ g² is one pass on flex (`flex.rs`; burn squares into a new tensor and
//! then sums it, three passes over what an MoE arm has 2.9× of), and a step whose norm is
//! within the limit skips the scaling, which would multiply every gradient by exactly 1.

mod flex;

use burn::backend::autodiff::{Autodiff, checkpoint::strategy::CheckpointStrategy};
use burn::backend::{AutodiffBackend, Backend, Dispatch, backend_extension, tensor::FloatTensor};
use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::DType;

/// The sum of squares as a backend operation: flex computes it in one pass.
#[backend_extension(Flex, Autodiff)]
pub trait SumSquaresOps: Backend {
    /// `[1]`: Σ x² over every element of `x`.
    fn sum_squares(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

// Gradients are not differentiated: the inner tensor's sum, a constant.
impl<B: SumSquaresOps, C: CheckpointStrategy> SumSquaresOps for Autodiff<B, C> {
    fn sum_squares(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::sum_squares(x.into_primitive()))
    }
}

/// Σ g² over `g`, `[1]`: one pass on flex in f32, burn's `powi` and `sum` elsewhere (the
/// tests' reference).
pub fn sum_squares<const D: usize>(g: Tensor<D>) -> Tensor<1> {
    if g.dtype() != DType::F32 || !crate::kernels::on_flex(&g.device()) {
        return g.powi_scalar(2).sum();
    }
    Tensor::from_dispatch(<Dispatch as SumSquaresOps>::sum_squares(g.into_dispatch()))
}

/// √(Σ over all parameters of Σ g²), shape `[1]`.
pub fn global_norm<M: Module>(model: &M, grads: &GradientsParams, device: &Device) -> Tensor<1> {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Tensor<1>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.total = self.total.clone() + sum_squares(g);
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

/// Whether [`clip_to`] would change the gradients of a step whose [`global_norm`] read back as
/// `norm`: false only where its scale, `min(1, max_norm / (norm + 10⁻⁶))` in f32, is certainly
/// exactly 1 (a margin of 10⁻⁶ relative, far above f32's rounding of that expression), so
/// skipping it leaves the update bit for bit as it was.
pub fn scales(norm: f64, max_norm: f64) -> bool {
    (norm + 1e-6) * (1.0 + 1e-6) >= max_norm
}

/// The factor [`clip_to`] multiplies every gradient by: `min(1, max_norm / (norm + 10⁻⁶))`.
pub fn scale(norm: Tensor<1>, max_norm: f64) -> Tensor<1> {
    norm.add_scalar(1e-6)
        .recip()
        .mul_scalar(max_norm)
        .clamp_max(1.0)
}

/// Scale every gradient by `min(1, max_norm / norm)`; `norm` is [`global_norm`]'s output.
pub fn clip_to<M: Module>(
    model: &M,
    grads: GradientsParams,
    norm: Tensor<1>,
    max_norm: f64,
) -> GradientsParams {
    let scale = scale(norm, max_norm);
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
