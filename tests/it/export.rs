//! `lab export`: the directory holds Hugging Face's tensor names and shapes for Llama and
//! Mixtral (read from the safetensors header itself, not through burn-store), reloads
//! through burn-store to a model with identical logits, carries a byte tokenizer, and
//! refuses, with exit 2 and nothing written, what has no exact HF counterpart.
//! (`scripts/hf-check.py` runs the same directory in `transformers`; it needs torch.)

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use burn::prelude::*;
use common::{DENSE, config, tiny_spec, to_vec};
use moe_lab::export::{self, tokenizer::byte_char};
use moe_lab::model::ffn::Router;
use moe_lab::run::RunDir;

/// A run directory holding `spec`'s config and a freshly initialised final model.
fn run_dir(dir: &Path, spec: &str) -> moe_lab::model::Transformer {
    let cfg = config(spec);
    let run = RunDir::new(dir);
    run.create().unwrap();
    run.write_config(&cfg).unwrap();
    let model = cfg.init_model(&crate::common::flex());
    run.save_model(&model).unwrap();
    model
}

/// A safetensors file's bytes, its header's length and the header (8-byte little-endian
/// length, then JSON).
fn read_safetensors(path: &Path) -> (Vec<u8>, usize, serde_json::Value) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let json = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (bytes, n, json)
}

/// The f32 tensor `name` of a safetensors file, row-major, read by its header's offsets.
fn raw_tensor(path: &Path, name: &str) -> Vec<f32> {
    let (bytes, n, json) = read_safetensors(path);
    let off = &json[name]["data_offsets"];
    let (a, b) = (
        off[0].as_u64().unwrap() as usize,
        off[1].as_u64().unwrap() as usize,
    );
    bytes[8 + n + a..8 + n + b]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// `W x` for a PyTorch `nn.Linear` weight `[out, in]` (row-major) and `x: [in]`.
fn linear(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks_exact(x.len())
        .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
        .collect()
}

/// HF's SwiGLU on host: `down(silu(gate x) * up x)` from the file's tensors.
fn hf_swiglu(file: &Path, gate: &str, up: &str, down: &str, x: &[f32]) -> Vec<f32> {
    let silu = |v: f32| v / (1.0 + (-v).exp());
    let g = linear(&raw_tensor(file, gate), x);
    let u = linear(&raw_tensor(file, up), x);
    let h: Vec<f32> = g.iter().zip(&u).map(|(g, u)| silu(*g) * u).collect();
    linear(&raw_tensor(file, down), &h)
}

/// `name → (dtype, shape)` from a safetensors file's JSON header, and its metadata.
fn header(path: &Path) -> (BTreeMap<String, (String, Vec<usize>)>, serde_json::Value) {
    let (_, _, json) = read_safetensors(path);
    let mut tensors = BTreeMap::new();
    for (name, v) in json.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        let shape = v["shape"].as_array().unwrap();
        let shape = shape.iter().map(|s| s.as_u64().unwrap() as usize).collect();
        tensors.insert(name.clone(), (v["dtype"].as_str().unwrap().into(), shape));
    }
    (tensors, json["__metadata__"].clone())
}

/// HF's checkpoint keys and shapes for d = 32, 4 heads of 8, 2 KV heads, 2 layers, vocab 256
/// (`modeling_llama.py` / `modeling_mixtral.py`: `nn.Linear(in, out)` stores `[out, in]`).
fn hf_names(ffn: &[(&str, Vec<usize>)], tied: bool) -> BTreeMap<String, Vec<usize>> {
    let mut want = BTreeMap::new();
    want.insert("model.embed_tokens.weight".into(), vec![256, 32]);
    want.insert("model.norm.weight".into(), vec![32]);
    if !tied {
        want.insert("lm_head.weight".into(), vec![256, 32]);
    }
    for i in 0..2 {
        let p = format!("model.layers.{i}");
        for (name, shape) in [
            ("input_layernorm.weight", vec![32]),
            ("post_attention_layernorm.weight", vec![32]),
            ("self_attn.q_proj.weight", vec![32, 32]),
            ("self_attn.k_proj.weight", vec![16, 32]),
            ("self_attn.v_proj.weight", vec![16, 32]),
            ("self_attn.o_proj.weight", vec![32, 32]),
        ] {
            want.insert(format!("{p}.{name}"), shape);
        }
        for (name, shape) in ffn {
            want.insert(format!("{p}.{name}"), shape.clone());
        }
    }
    want
}

fn check_names(out: &Path, want: BTreeMap<String, Vec<usize>>) {
    let (tensors, metadata) = header(&out.join("model.safetensors"));
    // transformers refuses a safetensors file whose format it does not know.
    assert_eq!(metadata["format"], "pt");
    let got: BTreeMap<String, Vec<usize>> = tensors
        .iter()
        .map(|(k, (dtype, shape))| {
            assert_eq!(dtype, "F32", "{k}");
            (k.clone(), shape.clone())
        })
        .collect();
    assert_eq!(got, want);
}

/// Export, then reload through burn-store from config.json + model.safetensors alone: the
/// logits on fresh tokens equal the original model's exactly.
/// Returns the temporary directory (kept alive) and the export in it.
fn round_trip(spec: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let model = run_dir(&tmp.path().join("run"), spec);
    let out = tmp.path().join("hf");
    let device = crate::common::flex();
    let exported = export::export(&tmp.path().join("run"), &out, false, &device).unwrap();
    assert_eq!(exported.reload_max_abs_diff, 0.0);
    let reloaded = export::reload(&out, &device).unwrap();
    let tokens = Tensor::<2, Int>::from_data(
        TensorData::new((0..64).map(|i| (i * 37 % 256) as i64).collect(), [4, 16]),
        &device,
    );
    let want = to_vec(model.forward(tokens.clone()).logits);
    assert_eq!(to_vec(reloaded.forward(tokens).logits), want);
    (tmp, out)
}

#[test]
fn dense_exports_as_llama() {
    let (_tmp, out) = round_trip(&tiny_spec("d", DENSE, ""));
    let mlp = [
        ("mlp.gate_proj.weight", vec![48, 32]),
        ("mlp.up_proj.weight", vec![48, 32]),
        ("mlp.down_proj.weight", vec![32, 48]),
    ];
    check_names(&out, hf_names(&mlp, false));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(config["intermediate_size"], 48);
    assert_eq!(config["num_key_value_heads"], 2);
}

/// After a long-context stage (16 → 64 tokens) every file gives the stage's context:
/// config.json's positions, the tokenizer's and generation's maximum length.
#[test]
fn a_long_context_export_carries_the_stages_length_everywhere() {
    let spec = tiny_spec("long", DENSE, "").replace(
        "final_eval_tokens = 0",
        "final_eval_tokens = 0\n\n[train.long_context]\nseq_len = 64\nfraction = 0.25\n",
    );
    let (_tmp, out) = round_trip(&spec);
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join(name)).unwrap()).unwrap()
    };
    assert_eq!(read("config.json")["max_position_embeddings"], 64);
    assert_eq!(read("tokenizer_config.json")["model_max_length"], 64);
    assert_eq!(read("generation_config.json")["max_length"], 64);
}

/// Fine-grained experts (G = 2: 4 experts of 16 → 8 of 8, top-2 → top-4) and tied
/// embeddings (no `lm_head.weight`).
#[test]
fn fine_grained_top_k_moe_exports_as_mixtral() {
    let moe = "kind = \"moe\"\nexperts = 4\ntop_k = 2\nd_expert = 16\ngranularity = 2";
    let spec =
        tiny_spec("m", moe, "").replace("seq_len = 16", "seq_len = 16\ntie_embeddings = true");
    let (_tmp, out) = round_trip(&spec);
    let mut ffn = vec![("block_sparse_moe.gate.weight".to_string(), vec![8, 32])];
    for e in 0..8 {
        let x = |w: &str| format!("block_sparse_moe.experts.{e}.{w}.weight");
        ffn.push((x("w1"), vec![8, 32]));
        ffn.push((x("w3"), vec![8, 32]));
        ffn.push((x("w2"), vec![32, 8]));
    }
    let ffn: Vec<(&str, Vec<usize>)> = ffn.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
    check_names(&out, hf_names(&ffn, true));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "MixtralForCausalLM");
    assert_eq!(config["num_local_experts"], 8);
    assert_eq!(config["num_experts_per_tok"], 4);
    assert_eq!(config["intermediate_size"], 8);
    assert_eq!(config["tie_word_embeddings"], true);
}

/// The reference file holds the lab's logits on windows of the run's validation text.
#[test]
fn reference_logits_are_the_models() {
    let (_tmp, out) = round_trip(&tiny_spec("r", DENSE, ""));
    let device = crate::common::flex();
    let reference = export::reference::Reference::load(&out, 16, 256, &device).unwrap();
    let [w, t] = reference.tokens.dims();
    assert!((1..=export::reference::WINDOWS).contains(&w) && t == 16);
    let model = export::reload(&out, &device).unwrap();
    assert_eq!(export::reference_diff(&model, &reference), 0.0);
    // ... and the check can fail: another model's logits differ.
    let other = config(&tiny_spec("r", DENSE, "").replace("seed = 7", "seed = 8"));
    assert!(export::reference_diff(&other.init_model(&device), &reference) > 1e-3);
}

/// GPT-2's byte-to-character map, whose characters tokenizer.json's vocabulary holds.
#[test]
fn tokenizer_vocabulary_is_the_bytes() {
    assert_eq!(byte_char(b'A'), 'A');
    assert_eq!(byte_char(b' '), '\u{120}'); // 'Ġ'
    assert_eq!(byte_char(b'\n'), '\u{10A}'); // 'Ċ'
    assert_eq!(byte_char(0), '\u{100}');
    assert_eq!(byte_char(0xAD), '\u{143}');
    assert_eq!(byte_char(0xE9), 'é');
    let json = export::tokenizer::tokenizer_json();
    let vocab = json["model"]["vocab"].as_object().unwrap();
    assert_eq!(vocab.len(), 256);
    for b in 0..=255u8 {
        assert_eq!(vocab[&byte_char(b).to_string()], b as u64, "byte {b}");
    }
    assert!(json["model"]["merges"].as_array().unwrap().is_empty());
}

/// `lab export RUN --out OUT` on `run`; returns (exit code, stderr).
fn lab_export(run: &Path, out: &Path) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "export",
            run.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn what_has_no_hf_counterpart_exits_2_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("router.kind", "[ffn.router]\nkind = \"loss-free\""),
        ("router.kind", "[ffn.router]\nkind = \"sigmoid\""),
        ("renormalize", "renormalize = false"),
        ("capacity", "capacity = 1.25"),
        ("shared_experts", "granularity = 2\nshared_experts = 1"),
    ];
    for (i, (field, extra)) in cases.iter().enumerate() {
        let moe = format!("kind = \"moe\"\nexperts = 4\ntop_k = 2\nd_expert = 16\n{extra}");
        // `[ffn.router]` must come after the `[ffn]` keys: tiny_spec puts `ffn` last there.
        let run = tmp.path().join(format!("run{i}"));
        run_dir(&run, &tiny_spec("x", &moe, ""));
        let out = tmp.path().join(format!("out{i}"));
        let (code, err) = lab_export(&run, &out);
        assert_eq!(code, 2, "{extra}: {err}");
        assert!(err.contains(&format!("ffn.{field}")), "{extra}: {err}");
        assert!(err.contains("exportable:"), "{err}");
        assert!(!out.exists(), "{extra}: wrote {}", out.display());
        let partial = tmp.path().join(format!(".out{i}.partial"));
        assert!(!partial.exists());
    }
}

#[test]
fn no_final_model_or_taken_out_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    run_dir(&run, &tiny_spec("d", DENSE, ""));
    let taken = tmp.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    let (code, err) = lab_export(&run, &taken);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--out"), "{err}");
    std::fs::remove_dir_all(run.join("model")).unwrap();
    let out = tmp.path().join("out");
    let (code, err) = lab_export(&run, &out);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no final model"), "{err}");
    assert!(!out.exists());
}

/// The exported feed-forward tensors, read raw from the file and combined as HF's modules
/// combine them (Llama's `down_proj(silu(gate_proj x) * up_proj x)`, Mixtral's expert
/// `w2(silu(w1 x) * w3 x)`), give the lab's feed-forward output: gate and up are not swapped,
/// nothing is transposed twice.
#[test]
fn exported_feed_forwards_compute_hfs_formula() {
    use moe_lab::model::FeedForward;
    let x: Vec<f32> = (0..32).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
    let device = crate::common::flex();
    let xt = Tensor::<2>::from_data(TensorData::new(x.clone(), [1, 32]), &device);

    let (_tmp, out) = round_trip(&tiny_spec("d", DENSE, ""));
    let model = export::reload(&out, &device).unwrap();
    let FeedForward::Dense(ffn) = &model.blocks[1].ffn else {
        panic!("dense")
    };
    let lab = to_vec(ffn.forward(xt.clone()));
    let p = "model.layers.1.mlp";
    let file = out.join("model.safetensors");
    let hf = hf_swiglu(
        &file,
        &format!("{p}.gate_proj.weight"),
        &format!("{p}.up_proj.weight"),
        &format!("{p}.down_proj.weight"),
        &x,
    );
    assert!(common::max_rel_diff(&hf, &lab) < 1e-5, "{hf:?} vs {lab:?}");

    let moe = "kind = \"moe\"\nexperts = 4\ntop_k = 2\nd_expert = 16";
    let (_tmp, out) = round_trip(&tiny_spec("m", moe, ""));
    let model = export::reload(&out, &device).unwrap();
    let FeedForward::Moe(layer) = &model.blocks[0].ffn else {
        panic!("moe")
    };
    let file = out.join("model.safetensors");
    for e in 0..4 {
        let lab = to_vec(
            layer
                .experts
                .forward(xt.clone().reshape([1, 1, 32]).repeat_dim(0, 4))
                .slice([e..e + 1, 0..1, 0..32]),
        );
        let p = format!("model.layers.0.block_sparse_moe.experts.{e}");
        let hf = hf_swiglu(
            &file,
            &format!("{p}.w1.weight"),
            &format!("{p}.w3.weight"),
            &format!("{p}.w2.weight"),
            &x,
        );
        assert!(common::max_rel_diff(&hf, &lab) < 1e-5, "expert {e}");
    }
    // The router: Mixtral's `gate` is `Linear(d, K)`: logits = gate.weight · x.
    let Router::TopK(router) = &layer.router else {
        panic!("top-k")
    };
    let lab = to_vec(router.scores.logits(xt));
    let hf = linear(
        &raw_tensor(&file, "model.layers.0.block_sparse_moe.gate.weight"),
        &x,
    );
    assert!(common::max_rel_diff(&hf, &lab) < 1e-5);
}
