//! Bad specs: a clear error naming the file and field, exit code 2, nothing written.

use crate::common;

use std::process::Command;

use common::{DENSE, MOE, tiny_spec};

fn refused(text: &str, expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("bad.toml");
    std::fs::write(&spec, text).unwrap();
    let out_dir = tmp.path().join("results");
    let out = train(&spec, "flex", &out_dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit code for {expect}: {stderr}"
    );
    assert!(
        stderr.contains("bad.toml"),
        "error names the file: {stderr}"
    );
    assert!(stderr.contains(expect), "error names `{expect}`: {stderr}");
    assert!(!out_dir.exists(), "nothing written for {expect}");
}

/// `lab train --device DEVICE --spec SPEC --out OUT_DIR`, its output captured.
fn train(spec: &std::path::Path, device: &str, out_dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["train", "--device", device, "--spec"])
        .arg(spec)
        .arg("--out")
        .arg(out_dir)
        .output()
        .unwrap()
}

#[test]
fn unknown_field() {
    refused(
        &tiny_spec("x", DENSE, "").replace("seq_len = 16", "seq_len = 16\nd_modle = 3"),
        "d_modle",
    );
}

#[test]
fn top_k_above_experts() {
    refused(
        &tiny_spec("x", &MOE.replace("top_k = 2", "top_k = 5"), ""),
        "ffn.top_k",
    );
}

#[test]
fn d_model_not_divisible_by_heads() {
    refused(
        &tiny_spec("x", DENSE, "").replace("n_heads = 4", "n_heads = 5"),
        "model.d_model",
    );
}

#[test]
fn heads_not_divisible_by_kv_heads() {
    refused(
        &tiny_spec("x", DENSE, "").replace("n_kv_heads = 2", "n_kv_heads = 3"),
        "model.n_kv_heads",
    );
}

#[test]
fn zero_and_negative_sizes() {
    refused(
        &tiny_spec("x", DENSE, "").replace("n_layers = 2", "n_layers = 0"),
        "model.n_layers",
    );
    refused(
        &tiny_spec("x", DENSE, "").replace("d_ff = 48", "d_ff = -4"),
        "d_ff",
    );
    refused(
        &tiny_spec("x", DENSE, "").replace("batch_size = 4", "batch_size = -1"),
        "batch_size",
    );
}

#[test]
fn missing_data_path() {
    refused(
        &tiny_spec("x", DENSE, "source = \"text\"\npath = \"no/such/file.txt\""),
        "data.path",
    );
}

#[test]
fn budget_smaller_than_one_step() {
    refused(
        &tiny_spec("x", DENSE, "").replace("steps = 20", "flop_budget = 1000.0"),
        "train.flop_budget",
    );
}

#[test]
fn spike_history_longer_than_its_window() {
    // Such a detector never fires: refused rather than silently blind.
    refused(
        &tiny_spec("x", DENSE, "\n[stability]\nwindow = 10\nmin_history = 20"),
        "stability.min_history",
    );
}

#[test]
fn more_averaged_snapshots_than_decay_steps() {
    // 20 steps, decay_fraction 0.2: a 4-step decay cannot hold 5 snapshots.
    refused(
        &tiny_spec("x", MOE, "").replace("steps = 20", "steps = 20\naverage_checkpoints = 5"),
        "train.average_checkpoints",
    );
}

/// A token-choice MoE step of more than 2^24 token-slots (here 2^20 sequences of 16 tokens,
/// top-2: 2^25) is refused: the dispatch counts slot positions in f32, where such counts
/// collide. (Accepted before, up to the 2^26-token limit.) Checked on the resolved spec, so
/// nothing of that size is allocated.
#[test]
fn more_token_slots_than_f32_counts_exactly() {
    let text = tiny_spec("x", MOE, "").replace("batch_size = 4", "batch_size = 1048576");
    let path = std::path::Path::new("slots.toml");
    let err = moe_lab::spec::resolve_str(&text, path, std::path::Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train.batch_size") && err.contains("2^24"),
        "{err}"
    );
    // 2^23 tokens × top-2 = 2^24 slots: the most accepted.
    let most = tiny_spec("x", MOE, "").replace("batch_size = 4", "batch_size = 524288");
    moe_lab::spec::resolve_str(&most, path, std::path::Path::new(".")).unwrap();
    // A dense model is not limited by it.
    let dense = tiny_spec("x", DENSE, "").replace("batch_size = 4", "batch_size = 1048576");
    moe_lab::spec::resolve_str(&dense, path, std::path::Path::new(".")).unwrap();
}

/// A build without the wgpu backend (the `wgpu` feature off, as a CPU-only machine builds it):
/// `auto` falls back to flex, and asking for wgpu by name is refused with the command that
/// builds it, exit 2, nothing written. `just test` builds with the feature, where this skips;
/// `cargo test` without it runs it.
#[test]
fn wgpu_without_the_backend_says_how_to_build_it() {
    use moe_lab::train::device::{DeviceChoice, WGPU_BUILT, adapters};
    if WGPU_BUILT {
        println!("SKIPPED: this build has the wgpu backend");
        return;
    }
    assert!(adapters().is_empty(), "no adapter without the backend");
    assert_eq!(DeviceChoice::Auto.open().unwrap().backend, "flex");
    for choice in ["wgpu", "wgpu-cpu"] {
        let tmp = tempfile::tempdir().unwrap();
        let spec = tmp.path().join("run.toml");
        std::fs::write(&spec, tiny_spec("x", DENSE, "")).unwrap();
        let out_dir = tmp.path().join("results");
        let out = train(&spec, choice, &out_dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--device {choice}: {stderr}");
        assert!(stderr.contains("--features wgpu"), "says how: {stderr}");
        assert!(!out_dir.exists(), "nothing written for --device {choice}");
    }
}
