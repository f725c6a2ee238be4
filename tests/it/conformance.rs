//! The conformance suite: every registered feed-forward variant (`FfnSpec::examples`, which
//! lists dense, top-k MoE, fine-grained + shared experts and an MoE with each registered
//! router) must pass every check below. A new router registered in
//! `lab/model/ffn/router/mod.rs` is picked up here without editing this file.
//!
//! Checks: gradients against central finite differences (f64, in `conformance_gradients.rs`:
//! flex's float type is chosen once per process), causality (or, for a variant
//! that declares itself non-causal, that the leak is real), the FLOP formula against the
//! matmul FLOPs the layer executes, the parameter count against the module's, determinism,
//! wgpu against flex, and a short training run that lowers the loss.

use crate::common;

use burn::module::Module;
use burn::prelude::*;
use common::conformance::{BATCH, D_MODEL, SEQ, input, layer, loss, variants};
use common::{DENSE, config, max_rel_diff, tiny_spec, to_vec};
use moe_lab::kernels::flop_meter;
use moe_lab::model::ffn::FfnInput;
use moe_lab::model::ffn::moe::Dispatch;
use moe_lab::model::init;
use moe_lab::spec::{FfnSpec, RunConfig, resolve_spec};
use moe_lab::train::train;

#[test]
fn every_router_is_among_the_variants() {
    let names: Vec<String> = variants().into_iter().map(|(n, _)| n).collect();
    for router in moe_lab::model::ffn::RouterSpec::NAMES {
        assert!(
            names.iter().any(|n| n == &format!("moe/{router}")),
            "router {router} has no example in the conformance suite: {names:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Causality

fn model_config(spec: &FfnSpec) -> RunConfig {
    let mut base = config(&tiny_spec("conformance", DENSE, "")).spec;
    base.ffn = spec.clone();
    resolve_spec(
        base,
        std::path::Path::new("conformance.toml"),
        std::path::Path::new("."),
    )
    .expect("example variants resolve")
}

#[test]
fn causal_variants_do_not_see_the_future_and_the_others_do() {
    let device = crate::common::flex();
    for (name, spec) in variants() {
        let cfg = model_config(&spec);
        let model = init::seeded(5, || cfg.init_model(&device));
        let (b, t, cut) = (2, 16, 9);
        let tokens: Vec<i64> = (0..b * t).map(|i| ((i * 37 + 11) % 256) as i64).collect();
        let run = |toks: Vec<i64>| {
            let x = Tensor::<2, Int>::from_data(TensorData::new(toks, [b, t]), &device);
            model.forward(x).logits
        };
        let prefix = |l: Tensor<3>| to_vec(l.slice([0..b, 0..cut + 1, 0..256]));
        let reference = prefix(run(tokens.clone()));
        // Several different futures: a leak through routing shows in at least one.
        let mut worst = 0.0f64;
        for shift in [101, 57, 3, 200] {
            let mut changed = tokens.clone();
            for row in 0..b {
                for pos in cut + 1..t {
                    changed[row * t + pos] = (changed[row * t + pos] + shift) % 256;
                }
            }
            worst = worst.max(max_rel_diff(&prefix(run(changed)), &reference));
        }
        if spec.causal() {
            assert!(
                worst < 1e-6,
                "{name} declares itself causal but logits at positions ≤ {cut} changed by {worst} when later tokens changed"
            );
        } else {
            assert!(
                worst > 1e-6,
                "{name} declares itself non-causal but no leak was seen (worst change {worst}): declare it causal"
            );
            assert!(
                !spec.warnings().is_empty(),
                "{name} is not causal and must warn when used for a causal LM"
            );
        }
        println!(
            "{name}: causal = {}, worst prefix change {worst:.2e}",
            spec.causal()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Accounting

#[test]
fn flop_formula_equals_executed_matmul_flops() {
    let device = crate::common::flex();
    let tokens = BATCH * SEQ;
    for (name, spec) in variants() {
        let ffn = layer(&spec, &device);
        let inp = input(&device, 2);
        let (_, executed) = flop_meter::measure(|| ffn.forward(inp));
        let shape = spec.layer_shape(0, D_MODEL, tokens, Dispatch::for_layer(&device));
        let formula =
            (shape.dense_flops + shape.router_flops + shape.expert_flops_executed) * tokens as f64;
        assert!(
            (executed - formula).abs() <= 1e-9 * formula,
            "{name}: the layer executed {executed} matmul FLOPs for {tokens} tokens, its formula says {formula}"
        );
        assert!(
            shape.expert_flops_active <= shape.expert_flops_executed + 1e-9,
            "{name}: active expert FLOPs above executed"
        );
        println!("{name}: {executed} FLOPs executed = formula");
    }
}

#[test]
fn parameter_counts_equal_the_modules() {
    let device = crate::common::flex();
    for (name, spec) in variants() {
        let ffn = layer(&spec, &device);
        let shape = spec.layer_shape(0, D_MODEL, BATCH * SEQ, Dispatch::Grouped);
        assert_eq!(
            ffn.num_params() as u64,
            shape.params_total + shape.buffers,
            "{name}: module parameters vs the variant's count (trained + buffers)"
        );
        let cfg = model_config(&spec);
        let model = cfg.init_model(&device);
        assert_eq!(
            model.num_params() as u64,
            cfg.params.total + cfg.params.buffers,
            "{name}: whole model"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Determinism and devices

/// Three optimizer steps on fixed batches: the losses and the final outputs.
fn three_steps(cfg: &RunConfig, device: &Device) -> (Vec<f64>, Vec<f32>) {
    let auto = device.clone().autodiff();
    let mut model = cfg.init_model(&auto);
    let mut optim = moe_lab::train::optimizer(&cfg.spec.train);
    let mut losses = Vec::new();
    let toks: Vec<i64> = (0..2 * 17).map(|i| ((i * 53 + 7) % 256) as i64).collect();
    let all = Tensor::<2, Int>::from_data(TensorData::new(toks, [2, 17]), &auto);
    let (x, y) = (all.clone().slice([0..2, 0..16]), all.slice([0..2, 1..17]));
    for _ in 0..3 {
        let out = moe_lab::train::train_step(
            model,
            &mut optim,
            moe_lab::train::StepBatch::new(x.clone(), y.clone()),
            3e-3,
            1.0,
            &auto,
        );
        losses.push(out.lm_loss);
        model = out.model;
    }
    (losses, to_vec(model.forward(x).logits))
}

#[test]
fn two_runs_with_one_seed_are_identical() {
    let device = crate::common::flex();
    for (name, spec) in variants() {
        let cfg = model_config(&spec);
        let (la, oa) = three_steps(&cfg, &device);
        let (lb, ob) = three_steps(&cfg, &device);
        assert_eq!(la, lb, "{name}: losses differ between identical runs");
        assert_eq!(oa, ob, "{name}: outputs differ between identical runs");
    }
}

#[test]
fn wgpu_agrees_with_flex() {
    let Some(choice) = common::wgpu_choice() else {
        return;
    };
    let wgpu = choice.open().unwrap().device;
    let flex = crate::common::flex();
    for (name, spec) in variants() {
        let run = |device: &Device| {
            let auto = device.clone().autodiff();
            let ffn = layer(&spec, &auto);
            let inp = input(&auto, 4);
            let x = inp.x.require_grad();
            let out = ffn.forward(FfnInput {
                x: x.clone(),
                tokens: inp.tokens,
            });
            let y = to_vec(out.y.clone().detach());
            let g = loss(&ffn, x.clone(), input(&auto, 4).tokens).backward();
            (y, to_vec(x.grad(&g).unwrap()))
        };
        let (yf, gf) = run(&flex);
        let (yw, gw) = run(&wgpu);
        let (dy, dg) = (max_rel_diff(&yw, &yf), max_rel_diff(&gw, &gf));
        assert!(
            dy < 1e-4 && dg < 1e-4,
            "{name}: wgpu vs flex output {dy:.2e}, input gradient {dg:.2e}"
        );
        println!("{name}: wgpu vs flex output {dy:.2e}, gradient {dg:.2e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Learning

#[test]
fn a_short_training_run_lowers_the_loss() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, (name, spec)) in variants().into_iter().enumerate() {
        let mut cfg = model_config(&spec);
        cfg = cfg.with_steps(40);
        let dir = tmp.path().join(format!("v{i}"));
        let summary = train(&cfg, common::flex_options(&dir, false, None)).unwrap();
        let losses = common::losses(&dir);
        let (first, last) = (losses[0], summary.final_train_loss.unwrap());
        assert!(
            last < 0.8 * first,
            "{name}: training loss went from {first:.3} to {last:.3} in 40 steps"
        );
        println!("{name}: loss {first:.3} → {last:.3}");
    }
}

/// Fit each variant's layer, alone, to a fixed random teacher (a SwiGLU of other weights) by
/// mean squared error: (MSE of the zero output, final MSE after 60 Adam steps). `broken`
/// multiplies the layer's output by 0, the feed-forward that learns nothing.
fn fit_teacher(spec: &FfnSpec, broken: bool) -> (f64, f64) {
    use burn::optim::{AdamConfig, GradientsParams};
    let device = crate::common::flex().autodiff();
    let teacher = common::conformance::layer(&FfnSpec::examples(64, 4, 2, 8)[0], &device);
    let input = common::conformance::input(&device, 9);
    // Scaled to unit mean square: the zero output's MSE is 1.
    let raw = teacher.forward(input_clone(&input)).y.detach();
    let scale = to_vec(raw.clone().powi_scalar(2).mean())[0].sqrt();
    let target = raw.div_scalar(scale);
    let mut ffn = init::seeded(4, || {
        spec.build(0, common::conformance::D_MODEL, 2, &device)
    });
    let mut optim = AdamConfig::new().init();
    let zero_mse = to_vec(target.clone().powi_scalar(2).mean())[0] as f64;
    let mut mse = zero_mse;
    for _ in 0..60 {
        let mut y = ffn.forward(input_clone(&input)).y;
        if broken {
            y = y.mul_scalar(0.0);
        }
        let loss = (y - target.clone()).powi_scalar(2).mean();
        mse = to_vec(loss.clone())[0] as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &ffn);
        ffn = optim.step(3e-2, ffn, grads);
    }
    (zero_mse, mse)
}

fn input_clone(i: &moe_lab::model::ffn::FfnInput) -> moe_lab::model::ffn::FfnInput {
    moe_lab::model::ffn::FfnInput {
        x: i.x.clone(),
        tokens: i.tokens.clone(),
    }
}

#[test]
fn every_variant_fits_a_teacher_that_a_zero_feed_forward_cannot() {
    let dense = &variants()[0].1;
    let (zero, broken) = fit_teacher(dense, true);
    assert!(
        broken > 0.99 * zero,
        "the check must fail a feed-forward that outputs zeros: {broken:.4} vs {zero:.4}"
    );
    for (name, spec) in variants() {
        let (zero, fitted) = fit_teacher(&spec, false);
        assert!(
            fitted < 0.1 * zero,
            "{name}: MSE {fitted:.4} after 60 steps against {zero:.4} for zeros"
        );
        println!("{name}: teacher MSE {zero:.4} → {fitted:.4}");
    }
}

#[test]
fn every_dispatch_executes_what_the_accounting_states() {
    use moe_lab::model::ffn::FeedForward;
    use moe_lab::model::ffn::moe::{Capacity, MoeSpec};
    let device = crate::common::flex();
    let tokens = BATCH * SEQ;
    for capacity in [Capacity::Dropless, Capacity::Factor(1.25)] {
        let spec = FfnSpec::Moe(MoeSpec {
            capacity,
            ..MoeSpec::new(4, 2, 8)
        });
        let FeedForward::Moe(moe) = layer(&spec, &device) else {
            panic!("an MoE spec builds an MoE layer")
        };
        let inp = input(&device, 5);
        let x = inp.x.reshape([tokens, D_MODEL]);
        let ids = inp.tokens.reshape([tokens]);
        for dispatch in [Dispatch::Buffered, Dispatch::Grouped] {
            let (_, executed) =
                flop_meter::measure(|| moe.forward_with(x.clone(), ids.clone(), dispatch));
            let shape = spec.layer_shape(0, D_MODEL, tokens, dispatch);
            let stated = (shape.router_flops + shape.expert_flops_executed) * tokens as f64;
            let what = format!("{capacity:?} through {dispatch:?}");
            if matches!(
                (capacity, dispatch),
                (Capacity::Factor(_), Dispatch::Grouped)
            ) {
                // Dropped slots are not multiplied: the stated count is a bound.
                assert!(executed <= stated, "{what}: {executed} > {stated}");
            } else {
                assert_eq!(executed, stated, "{what}");
            }
            println!("{what}: executed {executed}, stated {stated}");
        }
    }
}
