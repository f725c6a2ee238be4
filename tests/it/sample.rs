//! Cached decoding against the whole-sequence forward pass: feeding a prompt and then one byte
//! at a time through the key/value cache gives, at every position, the logits the model gives
//! that position when it reads the whole sequence at once; and sampling is reproducible.

use crate::common;

use burn::prelude::*;
use common::{DENSE, MOE, config, flex_options, tiny_spec, to_vec};
use moe_lab::model::transformer::KvCache;
use moe_lab::run::RunDir;
use moe_lab::sample::{SampleOptions, extend, generate};
use moe_lab::train::train;

/// A trained tiny model (trained, so its logits are far from uniform).
fn trained(ffn: &str, dir: &std::path::Path) -> (moe_lab::model::Transformer, usize) {
    let cfg = config(&tiny_spec("sample", ffn, ""));
    train(&cfg, flex_options(dir, false, None)).unwrap();
    let (cfg, model) = RunDir::new(dir).load_model(&crate::common::flex()).unwrap();
    (model, cfg.spec.model.seq_len)
}

fn check_cache(ffn: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (model, t) = trained(ffn, tmp.path());
    let device = crate::common::flex();
    let text: Vec<u8> = b"q: what is the capital of x? a: y."[..t].to_vec();
    let ids: Vec<i64> = text.iter().map(|b| *b as i64).collect();
    let full = model.forward(Tensor::<2, Int>::from_data(
        TensorData::new(ids, [1, t]),
        &device,
    ));
    let full = to_vec(full.logits);
    let row = |p: usize| &full[p * 256..(p + 1) * 256];
    let mut cache = KvCache::new();
    let prompt = 5;
    let mut worst = 0f32;
    let text: Vec<u32> = text.iter().map(|&b| b as u32).collect();
    let mut got = extend(&model, &text[..prompt], &mut cache, 0, &device);
    for p in prompt - 1..t {
        if p >= prompt {
            got = extend(&model, &text[p..p + 1], &mut cache, p, &device);
        }
        let diff = got
            .iter()
            .zip(row(p))
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        worst = worst.max(diff);
    }
    let spread = row(t - 1).iter().fold(0f32, |m, v| m.max(v.abs()));
    // Measured 0 (the same operations on the same rows); a key rotated at the wrong position
    // shows as ≈ 1e-4 on this lightly trained model, so the bound is tight.
    assert!(
        worst < 1e-6,
        "{ffn}: cached logits differ by {worst} (logits reach {spread})"
    );
    assert!(
        spread > 1.0,
        "the logits are informative: max |logit| {spread}"
    );
}

#[test]
fn cached_decoding_equals_the_full_forward_dense() {
    check_cache(DENSE);
}

#[test]
fn cached_decoding_equals_the_full_forward_moe() {
    check_cache(MOE);
}

#[test]
fn sampling_is_reproducible_and_greedy_ignores_the_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, t) = trained(MOE, tmp.path());
    let device = crate::common::flex();
    let run = |temperature: f64, seed: u64| {
        let opts = SampleOptions {
            max_tokens: 3 * t, // crosses the window more than once
            temperature,
            top_k: 0,
            seed,
        };
        let mut out = Vec::new();
        let prompt: Vec<u32> = b"q: ".iter().map(|&b| b as u32).collect();
        let stats = generate(&model, t, &prompt, &opts, &device, |b| out.push(b));
        assert_eq!(stats.tokens, out.len());
        assert!(stats.window_shifts >= 2, "{stats:?}");
        out
    };
    assert_eq!(
        run(0.0, 1),
        run(0.0, 2),
        "greedy does not depend on the seed"
    );
    assert_eq!(run(1.0, 3), run(1.0, 3), "a seed reproduces a sample");
    assert_ne!(run(1.0, 3), run(1.0, 4), "another seed, another sample");
}

/// The attention alone, on inputs large enough that every logit matters: the cached path
/// (prompt, then one position at a time) reproduces the rows of the whole-sequence pass.
#[test]
fn cached_attention_equals_the_full_attention() {
    use moe_lab::model::attention::Attention;
    use moe_lab::model::rope::Rope;
    let device = crate::common::flex();
    device.seed(11);
    let (t, d) = (12, 32);
    let attn = Attention::new(d, 4, 2, 2, &device);
    let rope = Rope::new(d / 4, t, 10_000.0, &device);
    let normal = burn::tensor::Distribution::Normal(0.0, 10.0);
    let x = Tensor::<3>::random([1, t, d], normal, &device);
    let full = to_vec(attn.forward(x.clone(), &rope));
    let mut cache = None;
    let mut rows =
        to_vec(attn.forward_cached(x.clone().slice([0..1, 0..4, 0..d]), &rope, &mut cache, 0));
    for p in 4..t {
        let step = attn.forward_cached(
            x.clone().slice([0..1, p..p + 1, 0..d]),
            &rope,
            &mut cache,
            p,
        );
        rows.extend(to_vec(step));
    }
    let worst = rows
        .iter()
        .zip(&full)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let scale = full.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(
        worst <= 1e-5 * scale,
        "cached rows differ by {worst} (values up to {scale})"
    );
}

#[test]
fn lab_sample_streams_text_and_refuses_a_run_without_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    trained(MOE, tmp.path());
    let lab = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
            .arg("sample")
            .args(args)
            .output()
            .unwrap()
    };
    let dir = tmp.path().to_str().unwrap();
    let out = lab(&[
        dir,
        "--prompt",
        "q: ",
        "--max-bytes",
        "40",
        "--temperature",
        "0",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 3 + 40 + 1, "prompt, 40 bytes, a newline");
    assert!(out.stdout.starts_with(b"q: "));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokens/s"));
    let empty = tempfile::tempdir().unwrap();
    let out = lab(&[empty.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no final model"), "{stderr}");
    let out = lab(&[dir, "--temperature", "-1"]);
    assert_eq!(out.status.code(), Some(2));
}
