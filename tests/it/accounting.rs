//! Parameter and FLOP counts against a hand count, against the real module, and matching.

use crate::common;

use burn::prelude::*;
use common::{DENSE, MOE, config, tiny_spec};
use moe_lab::spec::resolve_str;
use std::path::Path;

// Tiny config: d 32, 2 layers, 4 heads (head_dim 8), 2 kv heads, seq 16, vocab 256, untied.
// Attention params per layer: q 32·32 + k 32·16 + v 32·16 + o 32·32 = 3072; norms 2·32.

#[test]
fn dense_counts_equal_hand_count() {
    let c = config(&tiny_spec("d", DENSE, ""));
    // embedding 8192 + head 8192 + final norm 32 + 2 × (3072 + 64 + 3·32·48 = 4608)
    assert_eq!(c.params.total, 8192 + 8192 + 32 + 2 * (3072 + 64 + 4608));
    assert_eq!(c.params.active, c.params.total);
    assert_eq!(c.params.embedding, 8192);
    // per token: projections 2·3072·2 = 12288; QKᵀ+AV 4·16·32·2 = 4096;
    // FFN 6·32·48·2 = 18432; head 2·32·256 = 16384
    assert_eq!(
        c.flops.forward_per_token,
        12288.0 + 4096.0 + 18432.0 + 16384.0
    );
    assert_eq!(c.flops.train_per_token, 3.0 * 51200.0);
}

#[test]
fn moe_counts_equal_hand_count() {
    let c = config(&tiny_spec("m", MOE, ""));
    // Per MoE layer: router 32·4 = 128; experts 4 × 3·32·16 = 4 × 1536.
    assert_eq!(c.params.total, 16416 + 2 * (3072 + 64 + 128 + 4 * 1536));
    assert_eq!(c.params.active, 16416 + 2 * (3072 + 64 + 128 + 2 * 1536));
    // router 2·32·4 = 256 and two experts 2·6·32·16 = 6144, per layer
    assert_eq!(
        c.flops.forward_per_token,
        12288.0 + 4096.0 + 2.0 * (256.0 + 6144.0) + 16384.0
    );
    // The grouped matmul (flex and wgpu) executes exactly the routed rows: 2 per token, each
    // expert row 6·32·16 = 3072 FLOPs, 2 layers.
    assert_eq!(c.flops.moe_executed_expert_flops, 2.0 * 2.0 * 3072.0);
    assert_eq!(c.flops.moe_experts_active, 2.0 * 2.0 * 3072.0);
    // The buffered dropless dispatch (for a backend without it): every expert takes a buffer
    // of all N tokens, so 4 experts × 64 tokens = 256 rows, 4 rows/token.
    let buffered = moe_lab::model::model_shape_with(
        &c.spec.model,
        &c.spec.ffn,
        c.tokens_per_step,
        moe_lab::model::ffn::moe::Dispatch::Buffered,
    );
    assert_eq!(
        buffered.flops().moe_executed_expert_flops,
        2.0 * 4.0 * 3072.0
    );
}

/// Count the real module's parameters with burn, per config.
#[test]
fn parameter_count_equals_the_module() {
    let device = crate::common::flex();
    for (ffn, extra) in [(DENSE, ""), (MOE, ""), (DENSE, "")] {
        let c = config(&tiny_spec("p", ffn, extra));
        let model = c.init_model(&device);
        assert_eq!(model.num_params() as u64, c.params.total, "ffn: {ffn}");
    }
    let tied = config(
        &tiny_spec("t", DENSE, "").replace("seq_len = 16", "seq_len = 16\ntie_embeddings = true"),
    );
    let model = tied.init_model(&device);
    assert_eq!(model.num_params() as u64, tied.params.total);
    assert_eq!(tied.params.total, 31904 - 8192);
}

#[test]
fn derived_dense_arm_matches_moe_within_one_percent() {
    let dense = config(&tiny_spec(
        "d",
        "kind = \"dense\"\nd_ff = \"match-active\"\n[ffn.match]\nexperts = 4\ntop_k = 2\nd_expert = 16",
        "",
    ));
    let moe = config(&tiny_spec("m", MOE, ""));
    let (a, b) = (dense.flops.forward_per_token, moe.flops.forward_per_token);
    assert!(((a - b) / b).abs() <= 0.01, "dense {a} vs moe {b}");
    // 6·32·d_ff·2 must replace 2·6400: d_ff = 33 is the nearest integer.
    let moe_lab::spec::FfnSpec::Dense(d) = &dense.spec.ffn else {
        panic!()
    };
    assert_eq!(d.d_ff, moe_lab::spec::DffSpec::Size(33));

    let total = config(&tiny_spec(
        "t",
        "kind = \"dense\"\nd_ff = \"match-total\"\n[ffn.match]\nexperts = 4\ntop_k = 2\nd_expert = 16",
        "",
    ));
    let gap = (total.params.total as f64 - moe.params.total as f64).abs() / moe.params.total as f64;
    assert!(
        gap < 0.01,
        "dense-total params {} vs moe {}",
        total.params.total,
        moe.params.total
    );
}

#[test]
fn stated_dense_arm_off_by_more_than_one_percent_is_refused() {
    let text = tiny_spec(
        "d",
        "kind = \"dense\"\nd_ff = 48\n[ffn.match]\nexperts = 4\ntop_k = 2\nd_expert = 16",
        "",
    );
    let err = resolve_str(&text, Path::new("arm.toml"), Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("arm.toml") && err.contains("ffn.d_ff"),
        "{err}"
    );
    assert!(
        err.contains("51200") && err.contains("45568"),
        "both counts printed: {err}"
    );
}

#[test]
fn flop_budget_becomes_whole_steps() {
    // One step = 153600 FLOPs/token × 64 tokens = 9 830 400 FLOPs.
    let text = tiny_spec("b", DENSE, "").replace("steps = 20", "flop_budget = 1.0e8");
    let c = config(&text);
    assert_eq!(c.steps, (1.0e8f64 / 9_830_400.0).round() as usize);
    assert_eq!(c.steps, 10);
}

/// A copy of the experiment at `path` in `dir/experiments/`, beside a small prepared BPE corpus
/// in `dir/data/generated-bpe/` (what scripts/prepare-generated-bpe.sh makes, smaller).
fn with_generated_bpe(dir: &std::path::Path, path: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("data/generated-bpe");
    if !out.join("tokenizer.json").exists() {
        let lab = |args: &[&std::ffi::OsStr]| {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
                .args(args)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        };
        let (text, tok) = (out.join("text"), out.join("tokenizer.json"));
        lab(&[
            "corpus".as_ref(),
            "--write".as_ref(),
            text.as_os_str(),
            "--bytes".as_ref(),
            "20000".as_ref(),
        ]);
        lab(&[
            "data".as_ref(),
            "tokenizer".as_ref(),
            "--vocab".as_ref(),
            "300".as_ref(),
            "--input".as_ref(),
            text.as_os_str(),
            "--out".as_ref(),
            tok.as_os_str(),
        ]);
        for d in ["knowledge", "math", "code", "multilingual"] {
            let input = text.join(format!("{d}.jsonl"));
            lab(&[
                "data".as_ref(),
                "prepare".as_ref(),
                "--tokenizer".as_ref(),
                tok.as_os_str(),
                "--input".as_ref(),
                input.as_os_str(),
                "--out".as_ref(),
                out.join(d).as_os_str(),
            ]);
        }
    }
    let copy = dir.join("experiments").join(path.file_name().unwrap());
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(path, &copy).unwrap();
    copy
}

#[test]
fn every_shipped_spec_resolves() {
    // The examples and experiments the docs point to must stay valid as the schema grows.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut runs = 0;
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        moe_lab::spec::resolve_str(&text, &path, path.parent().unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        runs += 1;
    }
    assert!(runs >= 4, "example run specs found: {runs}");
    let mut experiments = 0;
    // Experiments on prepared corpora (data/, not in git) resolve against small ones made here.
    let data = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&root).unwrap() {
        let mut path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains("../data/generated-bpe/") {
                path = with_generated_bpe(data.path(), &path);
            }
            let exp: moe_lab::sweep::experiment::ExperimentSpec = toml::from_str(&text).unwrap();
            for preset in exp.presets.keys().cloned().collect::<Vec<_>>() {
                moe_lab::sweep::experiment::expand(exp.clone(), &path, Some(&preset))
                    .unwrap_or_else(|e| panic!("{} preset {preset}: {e}", path.display()));
            }
            experiments += 1;
        }
    }
    assert!(experiments >= 2, "experiments found: {experiments}");
}
