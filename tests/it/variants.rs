//! What each variant promises beyond the conformance suite: fine-grained and shared experts
//! keep active FLOPs; loss-free balancing moves its bias by ±γ toward balance after every step
//! and logs it; sigmoid gates sum to 1; expert choice warns; specs name bad fields.

use crate::common;

use burn::prelude::*;
use common::{MOE, config, tiny_spec, to_vec};
use moe_lab::model::ffn::moe::Dispatch;
use moe_lab::model::ffn::router::{Assignment, RouterInput};
use moe_lab::model::ffn::{FeedForward, RouterSpec};
use moe_lab::model::init;
use moe_lab::spec::{FfnSpec, MoeSpec, resolve_str};
use moe_lab::train::train;

#[test]
fn fine_grained_and_shared_experts_keep_active_flops() {
    let d = 32;
    let base = MoeSpec::new(8, 2, 64);
    let active = |m: &MoeSpec| {
        m.layer_shape(0, d, 128, Dispatch::Grouped)
            .expert_flops_active
    };
    let reference = active(&base);
    assert_eq!(reference, 2.0 * 6.0 * (d * 64) as f64);
    for (g, shared) in [(2, 0), (4, 0), (4, 1), (2, 3)] {
        let m = MoeSpec {
            granularity: g,
            shared_experts: shared,
            ..base.clone()
        };
        assert_eq!(m.routed_experts(), 8 * g);
        assert_eq!(m.routed_top_k(), 2 * g - shared);
        assert_eq!(
            active(&m),
            reference,
            "G = {g}, shared = {shared}: active expert FLOPs changed"
        );
        // Total parameters: same experts' worth, except the shared ones are not routed.
        let shape = m.layer_shape(0, d, 128, Dispatch::Grouped);
        let experts_params = 3 * d as u64 * (m.routed_experts() * m.expert_hidden()) as u64;
        let shared_params = 3 * d as u64 * m.shared_hidden() as u64;
        assert_eq!(
            shape.params_total,
            (d * m.routed_experts()) as u64 + experts_params + shared_params
        );
    }
}

#[test]
fn loss_free_bias_moves_by_gamma_toward_balance_and_is_logged() {
    let device = crate::common::flex().autodiff();
    let spec = FfnSpec::Moe(MoeSpec {
        router: toml::from_str::<RouterSpec>("kind = \"loss-free\"\nbias_update_rate = 0.01")
            .unwrap(),
        aux_loss_coef: 0.0,
        ..MoeSpec::new(4, 1, 8)
    });
    let ffn = init::seeded(1, || spec.build(0, 16, 1, &device));
    let bias = |f: &FeedForward| to_vec(f.router_state()[0].1.clone());
    assert_eq!(bias(&ffn), vec![0.0; 4]);
    // Loads 6, 2, 0, 0 over 8 slots: mean 2 → expert 0 down, 1 unchanged, 2 and 3 up.
    let load = Tensor::<1>::from_data(TensorData::new(vec![6.0f32, 2.0, 0.0, 0.0], [4]), &device);
    let ffn = ffn.after_step(Some(load));
    let b = bias(&ffn);
    let want = [-0.01f32, 0.0, 0.01, 0.01];
    for (got, want) in b.iter().zip(want) {
        assert!((got - want).abs() < 1e-7, "bias {b:?}, want {want:?}");
    }

    // In a run: router_state.csv holds each layer's bias at every logged step, and the bias
    // moves in steps of γ (default 1e-3).
    let text = tiny_spec(
        "loss-free",
        &format!("{MOE}\naux_loss_coef = 0.0\n[ffn.router]\nkind = \"loss-free\""),
        "",
    );
    let cfg = config(&text);
    let tmp = tempfile::tempdir().unwrap();
    let summary = train(&cfg, common::flex_options(tmp.path(), false, None)).unwrap();
    assert_eq!(summary.ffn_variant, "moe/loss-free");
    let rows: Vec<moe_lab::run::RouterStateRow> = moe_lab::run::read_rows(tmp.path()).unwrap();
    // 20 steps × 2 layers × 4 experts.
    assert_eq!(rows.len(), 20 * 2 * 4);
    let last: Vec<f64> = rows
        .iter()
        .filter(|r| r.step == 19 && r.layer == 0)
        .map(|r| r.value)
        .collect();
    assert!(last.iter().any(|b| b.abs() > 0.0), "bias never moved");
    for b in &last {
        let steps = b / 1e-3;
        assert!(
            (steps - steps.round()).abs() < 1e-3 && steps.abs() <= 20.0,
            "bias {b} is not a multiple of γ within 20 steps"
        );
    }
}

#[test]
fn sigmoid_gates_are_normalised_affinities() {
    let device = crate::common::flex();
    let spec = toml::from_str::<RouterSpec>("kind = \"sigmoid\"").unwrap();
    let router = init::seeded(2, || spec.init(8, 6, &device));
    let x = Tensor::<2>::random(
        [5, 8],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let routing = router.route(&RouterInput {
        x,
        tokens: Tensor::zeros([5], &device),
        experts: 6,
        top_k: 3,
        renormalize: true,
        capacity: 0,
    });
    let Assignment::TokenChoice { experts, gates } = routing.assignment else {
        panic!("sigmoid is token choice")
    };
    for s in to_vec(gates.clone().sum_dim(1)) {
        assert!((s - 1.0).abs() < 1e-6, "gates sum to {s}");
    }
    // Not softmax: the affinities of one token do not sum to 1 before normalising.
    let logits = routing.logits.unwrap();
    let raw = to_vec(burn::tensor::activation::sigmoid(logits.clone()).sum_dim(1));
    assert!(raw.iter().all(|s| (s - 1.0).abs() > 0.1), "{raw:?}");
    // The chosen experts are each token's 3 largest logits (sigmoid is monotone), in order,
    // and each gate is its expert's affinity over the chosen affinities' sum.
    let logits = to_vec(logits);
    let chosen: Vec<i64> = experts.into_data().convert::<i64>().try_to_vec().unwrap();
    let gates = to_vec(gates);
    for t in 0..5 {
        let row = &logits[t * 6..t * 6 + 6];
        let mut order: Vec<usize> = (0..6).collect();
        order.sort_by(|a, b| row[*b].total_cmp(&row[*a]));
        let picked: Vec<usize> = chosen[t * 3..t * 3 + 3]
            .iter()
            .map(|e| *e as usize)
            .collect();
        assert_eq!(picked, order[..3], "token {t}: logits {row:?}");
        let aff = |e: usize| 1.0 / (1.0 + (-row[e]).exp());
        let total: f32 = picked.iter().map(|e| aff(*e)).sum();
        for (j, e) in picked.iter().enumerate() {
            let want = aff(*e) / total;
            assert!(
                (gates[t * 3 + j] - want).abs() < 1e-6,
                "token {t}, choice {j}"
            );
        }
    }
}

#[test]
fn expert_choice_warns_in_the_summary() {
    let text = tiny_spec(
        "ec",
        &format!("{MOE}\n[ffn.router]\nkind = \"expert-choice\""),
        "",
    )
    .replace("steps = 20", "steps = 2");
    let cfg = config(&text);
    assert!(!cfg.spec.ffn.causal());
    let tmp = tempfile::tempdir().unwrap();
    let summary = train(&cfg, common::flex_options(tmp.path(), false, None)).unwrap();
    assert_eq!(summary.warnings.len(), 1);
    assert!(summary.warnings[0].contains("not causal"));
    // Each expert takes C = k·N/K tokens: the model still runs end to end.
    let model = cfg.init_model(&crate::common::flex());
    let out = model.forward(Tensor::zeros([2, 16], &crate::common::flex()));
    assert_eq!(out.logits.dims(), [2, 16, 256]);
}

#[test]
fn bad_variant_fields_are_named() {
    let bad = |ffn: &str| {
        resolve_str(
            &tiny_spec("bad", ffn, ""),
            std::path::Path::new("bad.toml"),
            std::path::Path::new("."),
        )
        .unwrap_err()
        .to_string()
    };
    let e = bad(&format!("{MOE}\n[ffn.router]\nkind = \"nope\""));
    assert!(
        e.contains("bad.toml") && e.contains("nope") && e.contains("loss-free"),
        "{e}"
    );
    let e = bad(&format!("{MOE}\ngranularity = 3"));
    assert!(e.contains("ffn.granularity"), "{e}");
    let e = bad(&format!("{MOE}\nshared_experts = 2"));
    assert!(e.contains("ffn.shared_experts"), "{e}");
    let e = bad(&format!(
        "{MOE}\n[ffn.router]\nkind = \"loss-free\"\nbias_update_rate = -1.0"
    ));
    assert!(e.contains("ffn.router.bias_update_rate"), "{e}");
    let e = bad(&format!(
        "{MOE}\ncapacity = 1.25\n[ffn.router]\nkind = \"expert-choice\""
    ));
    assert!(
        e.contains("ffn.capacity") && e.contains("expert-choice"),
        "{e}"
    );
}

#[test]
fn loss_free_bias_survives_a_checkpoint() {
    // The bias is model state: a run stopped after 13 steps and resumed from its step-8
    // checkpoint must end with the same bias and losses as the uninterrupted run.
    let text = tiny_spec(
        "lf-resume",
        &format!("{MOE}\naux_loss_coef = 0.0\n[ffn.router]\nkind = \"loss-free\""),
        "",
    )
    .replace("steps = 20", "steps = 24\ncheckpoint_every = 8");
    let cfg = config(&text);
    let tmp = tempfile::tempdir().unwrap();
    let opts = |dir: &std::path::Path, resume: bool, stop_after: Option<usize>| {
        common::flex_options(dir, resume, stop_after)
    };
    let (whole, cut) = (tmp.path().join("whole"), tmp.path().join("cut"));
    let a = train(&cfg, opts(&whole, false, None)).unwrap();
    train(&cfg, opts(&cut, true, Some(13))).unwrap();
    let b = train(&cfg, opts(&cut, true, None)).unwrap();
    assert_eq!(b.resumed_from, [8], "resumed, not restarted");
    assert_eq!(a.final_train_loss, b.final_train_loss);
    let state = |d: &std::path::Path| std::fs::read_to_string(d.join("router_state.csv")).unwrap();
    assert_eq!(
        state(&whole),
        state(&cut),
        "router_state.csv differs after resuming"
    );
    assert!(
        state(&whole).lines().count() > 24 * 8,
        "one row per step, layer and expert"
    );
}

#[test]
fn expert_choice_counts_c_times_k_experts_and_drops_in_tokens() {
    use moe_lab::model::ffn::FfnInput;
    use moe_lab::model::ffn::moe::Dispatch;
    let device = crate::common::flex();
    let spec = |c: f64| {
        let text = format!("{MOE}\n[ffn.router]\nkind = \"expert-choice\"\ncapacity_factor = {c}");
        config(&tiny_spec("ec", &text, "")).spec.ffn
    };
    // 16 tokens, K = 4, k = 2: C = ⌈c·k·N/K⌉ = 16 at c = 2, so c·k = 4 experts per token.
    let shape = spec(2.0).layer_shape(0, 32, 16, Dispatch::Grouped);
    let one = 6.0 * 32.0 * 16.0;
    assert_eq!(
        shape.expert_flops_active,
        4.0 * one,
        "c·k experts' FLOPs, not k's"
    );
    assert_eq!(shape.expert_flops_active, shape.expert_flops_executed);
    // c = 0.25: C = 2, 8 token-slots for 16 tokens: at least 8 tokens untaken, as a share of
    // the 16 tokens (not of the 8 slots, which could exceed 1).
    let ffn = init::seeded(1, || spec(0.25).build(0, 32, 2, &device));
    let x = Tensor::<3>::random(
        [1, 16, 32],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let out = ffn.forward(FfnInput {
        x,
        tokens: Tensor::zeros([1, 16], &device),
    });
    let stats = out.moe.expect("an MoE").stats;
    assert_eq!(stats.dropped_of, 16);
    let dropped = stats.dropped.into_scalar::<f32>() as usize;
    assert!((8..=16).contains(&dropped), "{dropped}");
}
