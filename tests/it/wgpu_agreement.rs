//! The same tiny MoE model, forward and backward, on wgpu (a hardware adapter, or lavapipe in
//! CI) and on flex: logits and gradients agree within 1e-4 relative.

use crate::common;

use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use common::{MOE, config, max_rel_diff, tiny_spec, to_vec};
use moe_lab::model::Transformer;
use moe_lab::model::transformer::cross_entropy;

fn grads_of(model: &Transformer, grads: &GradientsParams) -> Vec<Vec<f32>> {
    struct Collect<'a>(&'a GradientsParams, Vec<Vec<f32>>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(p.id) {
                self.1.push(g.into_data().try_to_vec().unwrap());
            }
        }
    }
    let mut c = Collect(grads, vec![]);
    model.visit(&mut c);
    c.1
}

fn forward_backward(model: &Transformer, device: &Device) -> (Vec<f32>, Vec<Vec<f32>>) {
    let (b, t) = (2, 16);
    let toks: Vec<i64> = (0..b * t).map(|i| ((i * 53 + 7) % 256) as i64).collect();
    let x = Tensor::<2, Int>::from_data(TensorData::new(toks.clone(), [b, t]), device);
    let y = Tensor::<2, Int>::from_data(
        TensorData::new(
            toks.iter().map(|v| (v + 1) % 256).collect::<Vec<_>>(),
            [b, t],
        ),
        device,
    );
    let out = model.forward(x);
    let (bal, z) = out.aux_losses();
    let loss = cross_entropy(out.logits.clone(), y) + bal + z;
    let grads = GradientsParams::from_grads(loss.backward(), model);
    (to_vec(out.logits.detach()), grads_of(model, &grads))
}

#[test]
fn moe_forward_and_backward_on_wgpu_match_flex() {
    let Some(choice) = common::wgpu_choice() else {
        return;
    };
    let cfg = config(&tiny_spec("agree", MOE, ""));
    // The same seed gives bit-identical initial weights on both devices (host-side init).
    let flex = crate::common::flex().autodiff();
    let model = cfg.init_model(&flex);
    let wgpu = choice.open().unwrap().device.autodiff();
    let on_wgpu = cfg.init_model(&wgpu);

    let (logits_f, grads_f) = forward_backward(&model, &flex);
    let (logits_w, grads_w) = forward_backward(&on_wgpu, &wgpu);
    let d = max_rel_diff(&logits_w, &logits_f);
    assert!(d < 1e-4, "logits differ by {d}");
    assert_eq!(grads_f.len(), grads_w.len());
    assert!(!grads_f.is_empty(), "no gradients collected");
    for (i, (w, f)) in grads_w.iter().zip(&grads_f).enumerate() {
        // Relative to the gradient's own scale.
        let scale = f.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
        let worst = w
            .iter()
            .zip(f)
            .map(|(a, b)| (a - b).abs() / scale)
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-4,
            "gradient {i} differs by {worst} (relative to max {scale})"
        );
    }
}
