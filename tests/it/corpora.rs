//! Real corpora: a BPE tokenizer trained on text, token shards in llm.c's format, mixtures of
//! prepared sources, and the bad inputs each refused with exit 2 before anything is written.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{DENSE, MOE, tiny_spec};
use moe_lab::data::manifest::CorpusManifest;
use moe_lab::train::train;

fn lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = lab(args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lab {args:?} failed: {err}");
    text
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The generated domains written as JSON Lines under `dir/text`, a BPE of `vocab` ids trained
/// on them, and one prepared corpus of all four at `dir/shards`.
fn prepared(dir: &Path, vocab: usize) -> (PathBuf, PathBuf) {
    let text = dir.join("text");
    ok(&["corpus", "--write", s(&text), "--bytes", "40000"]);
    let tok = dir.join("tokenizer.json");
    let vocab = vocab.to_string();
    tokenizer(&vocab, &text, &tok);
    let shards = dir.join("shards");
    prepare(&tok, &text, &shards);
    (tok, shards)
}

/// A spec whose `[data]` mixes `sources` (TOML inline tables), plus `extra` lines.
fn spec_with_sources(name: &str, ffn: &str, sources: &str, extra: &str) -> String {
    tiny_spec(name, ffn, &format!("sources = [{sources}]\n{extra}"))
        .replace("corpus_bytes = 200000\n", "")
}

/// One `[data] sources` entry of weight 1.
fn source(name: &str, path: &Path) -> String {
    format!(
        r#"{{ name = "{name}", path = "{}", weight = 1.0 }}"#,
        s(path)
    )
}

/// A dense spec named `bad` over `sources` (plus `extra` in `[data]`), in `dir/spec.toml`.
fn bad_spec(dir: &Path, sources: &str, extra: &str) -> PathBuf {
    write_spec(dir, &spec_with_sources("bad", DENSE, sources, extra))
}

/// `lab data tokenizer` of `vocab` ids.
fn tokenizer(vocab: &str, input: &Path, out: &Path) {
    ok(&[
        "data",
        "tokenizer",
        "--vocab",
        vocab,
        "--input",
        s(input),
        "--out",
        s(out),
    ]);
}

/// `lab data prepare`, holding out a tenth of the documents.
fn prepare(tok: &Path, input: &Path, out: &Path) {
    ok(&[
        "data",
        "prepare",
        "--tokenizer",
        s(tok),
        "--input",
        s(input),
        "--out",
        s(out),
        "--val-fraction",
        "0.1",
    ]);
}

fn write_spec(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn losses(dir: &Path) -> Vec<String> {
    common::losses(dir).iter().map(|l| format!("{l}")).collect()
}

/// A shard written by hand, as llm.c's `write_datafile` does: 256 int32 of header (magic,
/// version 1, count), then uint16 tokens. Independent of the lab's writer.
fn write_llmc_shard(path: &Path, tokens: &[u16]) {
    let mut bytes = Vec::new();
    let mut header = [0i32; 256];
    header[0] = 20240520;
    header[1] = 1;
    header[2] = tokens.len() as i32;
    for h in header {
        bytes.extend_from_slice(&h.to_le_bytes());
    }
    for t in tokens {
        bytes.extend_from_slice(&t.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// A uint16 shard's tokens, read by hand.
fn read_llmc_shard(path: &Path) -> Vec<u16> {
    let bytes = std::fs::read(path).unwrap();
    let count = i32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    assert_eq!(bytes.len(), 1024 + 2 * count);
    bytes[1024..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

#[test]
fn prepared_shards_hold_every_document_once_split_by_the_seeded_draw() {
    let tmp = tempfile::tempdir().unwrap();
    let (tok, shards) = prepared(tmp.path(), 300);
    let m = CorpusManifest::read(&shards).unwrap();
    let tokenizer = moe_lab::data::tokenizer::SubwordTokenizer::load(&tok).unwrap();
    assert_eq!(m.tokenizer.hash, tokenizer.hash);
    assert_eq!(m.tokenizer.vocab_size, 300);
    // Each document starts with the end-of-text token: count them per split.
    let (mut train_docs, mut val_docs) = (0u64, 0u64);
    for shard in &m.shards {
        let tokens = read_llmc_shard(&shards.join(&shard.file));
        assert_eq!(tokens.len() as u64, shard.tokens);
        assert_eq!(
            tokens[0] as u32, m.tokenizer.eot_id,
            "a shard starts a document"
        );
        let docs = tokens
            .iter()
            .filter(|&&t| t as u32 == m.tokenizer.eot_id)
            .count() as u64;
        assert_eq!(docs, shard.documents, "{}", shard.file);
        match shard.split {
            moe_lab::data::manifest::Split::Train => train_docs += docs,
            moe_lab::data::manifest::Split::Val => val_docs += docs,
        }
    }
    assert_eq!(train_docs + val_docs, m.documents);
    assert_eq!(val_docs, m.val_documents.len() as u64);
    let drawn: Vec<u64> = (0..m.documents)
        .filter(|&i| moe_lab::data::manifest::held_out(m.seed, i, m.val_fraction))
        .collect();
    assert_eq!(
        drawn, m.val_documents,
        "the held-out documents are the seeded draw's"
    );
    let share = val_docs as f64 / m.documents as f64;
    assert!(
        (0.05..0.15).contains(&share),
        "held out {share} of documents at 0.1"
    );
    // The shards decode back to the text: the first training document is the first line group.
    let first = read_llmc_shard(&shards.join("train_000000.bin"));
    let end = first[1..]
        .iter()
        .position(|&t| t as u32 == m.tokenizer.eot_id)
        .unwrap()
        + 1;
    let ids: Vec<u32> = first[1..end].iter().map(|&t| t as u32).collect();
    let text = tokenizer.decode(&ids).unwrap();
    let source = std::fs::read_to_string(tmp.path().join("text/code.jsonl")).unwrap();
    let first_doc: serde_json::Value =
        serde_json::from_str(source.lines().next().unwrap()).unwrap();
    if !m.val_documents.contains(&0) {
        assert_eq!(text, first_doc["text"].as_str().unwrap());
    }
}

#[test]
fn llmc_shards_from_an_independent_writer_train_to_the_labs_own_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let (tok, shards) = prepared(tmp.path(), 300);
    // The same tokens, rewritten by hand under llm.c's names and without a manifest.
    let llmc = tmp.path().join("llmc");
    std::fs::create_dir(&llmc).unwrap();
    let tokens = |split: &str| -> Vec<u16> {
        let m = CorpusManifest::read(&shards).unwrap();
        (m.shards.iter())
            .filter(|e| e.split.name() == split)
            .flat_map(|e| read_llmc_shard(&shards.join(&e.file)))
            .collect()
    };
    write_llmc_shard(&llmc.join("tiny_train_000001.bin"), &tokens("train"));
    write_llmc_shard(&llmc.join("tiny_val_000000.bin"), &tokens("val"));
    let run = |name: &str, path: &Path| {
        let source = source("text", path);
        let extra = format!("tokenizer = \"{}\"", s(&tok));
        let config = common::config(&spec_with_sources(name, MOE, &source, &extra));
        assert_eq!(config.spec.model.vocab_size(), 300);
        let dir = tmp.path().join(name);
        train(&config, common::flex_options(&dir, false, None)).unwrap();
        (
            losses(&dir),
            std::fs::read_to_string(dir.join("evals.csv")).unwrap(),
        )
    };
    let (own, own_evals) = run("own", &shards);
    let (theirs, their_evals) = run("theirs", &llmc);
    assert_eq!(own.len(), 20);
    assert_eq!(own, theirs, "training losses");
    assert_eq!(own_evals, their_evals, "validation losses");
}

#[test]
fn a_mixture_reports_validation_and_routing_per_source_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (tok, _) = prepared(tmp.path(), 300);
    let mut sources = Vec::new();
    for (domain, weight, anneal) in [("math", 0.6, 0.2), ("code", 0.4, 0.8)] {
        let out = tmp.path().join(domain);
        let input = tmp.path().join(format!("text/{domain}.jsonl"));
        prepare(&tok, &input, &out);
        sources.push(format!(
            r#"{{ name = "{domain}", path = "{}", weight = {weight}, anneal_weight = {anneal} }}"#,
            s(&out)
        ));
    }
    let text = spec_with_sources("mix", MOE, &sources.join(", "), "anneal = true");
    let config = common::config(&text);
    assert!(config.anneal_from().is_some());
    let whole = tmp.path().join("whole");
    train(&config, common::flex_options(&whole, false, None)).unwrap();
    let evals = std::fs::read_to_string(whole.join("evals.csv")).unwrap();
    let header = evals.lines().next().unwrap();
    assert!(
        header.contains("math") && header.contains("code"),
        "{header}"
    );
    let router = std::fs::read_to_string(whole.join("router_domains.csv")).unwrap();
    assert!(
        router.contains("math") && router.contains("code"),
        "routing by source"
    );
    // Stopped at step 12 and resumed: the same losses as uninterrupted.
    let split = tmp.path().join("split");
    let opts = common::flex_options(&split, false, Some(12));
    let with_checkpoints = text.replace("[train]\n", "[train]\ncheckpoint_every = 4\n");
    let config = common::config(&with_checkpoints);
    train(&config, opts).unwrap();
    train(&config, common::flex_options(&split, true, None)).unwrap();
    assert_eq!(losses(&whole), losses(&split), "resumed losses");
}

#[test]
fn text_to_export_keeps_the_tokenizer_and_the_logits() {
    let tmp = tempfile::tempdir().unwrap();
    // A folder of plain text files, documents separated by the end-of-text marker.
    let folder = tmp.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    ok(&[
        "corpus",
        "--write",
        s(&tmp.path().join("gen")),
        "--bytes",
        "30000",
    ]);
    for domain in ["knowledge", "math", "code", "multilingual"] {
        let jsonl =
            std::fs::read_to_string(tmp.path().join(format!("gen/{domain}.jsonl"))).unwrap();
        let docs: Vec<String> = jsonl
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        std::fs::write(
            folder.join(format!("{domain}.txt")),
            docs.join("<|endoftext|>"),
        )
        .unwrap();
    }
    let tok = tmp.path().join("tok.json");
    tokenizer("400", &folder, &tok);
    let shards = tmp.path().join("shards");
    ok(&[
        "data",
        "prepare",
        "--tokenizer",
        s(&tok),
        "--input",
        s(&folder),
        "--out",
        s(&shards),
    ]);
    let source = source("folder", &shards);
    let spec = write_spec(tmp.path(), &spec_with_sources("chain", DENSE, &source, ""));
    let results = tmp.path().join("results");
    ok(&[
        "train",
        "--quiet",
        "--device",
        "flex",
        "--spec",
        s(&spec),
        "--out",
        s(&results),
    ]);
    let run = results.join("tests/chain");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("vocab_size = 400"), "{config}");
    let out = tmp.path().join("hf");
    let line = ok(&["export", s(&run), "--out", s(&out)]);
    assert!(line.contains("max"), "{line}");
    // The exported tokenizer is the run's: it encodes text to the same ids.
    let ours = moe_lab::data::tokenizer::SubwordTokenizer::load(&tok).unwrap();
    let exported =
        moe_lab::data::tokenizer::SubwordTokenizer::load(&out.join("tokenizer.json")).unwrap();
    assert_eq!(ours.hash, exported.hash);
    let hf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(hf["vocab_size"], 400);
    let generation: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("generation_config.json")).unwrap())
            .unwrap();
    assert_eq!(generation["eos_token_id"], ours.eot_id);
    // `lab sample` decodes tokens to text.
    let sample = ok(&["sample", s(&run), "--prompt", "the ", "--max-tokens", "20"]);
    assert!(sample.starts_with("the ") && sample.len() > 8, "{sample:?}");
}

// ---- Bad input: exit 2, naming the file, nothing written ----

/// `lab train` on `spec` must exit 2 naming `names` and `expect`, writing no run.
fn refused(spec: &Path, names: &str, expect: &str) {
    let results = spec.parent().unwrap().join("refused-results");
    let out = lab(&[
        "train",
        "--quiet",
        "--device",
        "flex",
        "--spec",
        s(spec),
        "--out",
        s(&results),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit code for {expect}: {stderr}"
    );
    assert!(stderr.contains(names), "error names {names}: {stderr}");
    assert!(stderr.contains(expect), "error says `{expect}`: {stderr}");
    assert!(!results.exists(), "nothing written for {expect}");
}

/// A prepared corpus and a spec over it, with `damage` applied to the corpus's directory.
fn damaged(damage: impl FnOnce(&Path), names: &str, expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (_, shards) = prepared(tmp.path(), 300);
    damage(&shards);
    let source = source("text", &shards);
    let spec = bad_spec(tmp.path(), &source, "");
    refused(&spec, names, expect);
}

fn patch(path: &Path, at: usize, bytes: &[u8]) {
    let mut data = std::fs::read(path).unwrap();
    data[at..at + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, data).unwrap();
}

#[test]
fn a_shard_with_a_wrong_magic_is_refused() {
    damaged(
        |d| patch(&d.join("train_000000.bin"), 0, &7i32.to_le_bytes()),
        "train_000000.bin",
        "magic",
    );
}

#[test]
fn a_truncated_shard_is_refused() {
    damaged(
        |d| {
            let p = d.join("val_000000.bin");
            let data = std::fs::read(&p).unwrap();
            std::fs::write(&p, &data[..data.len() - 2]).unwrap();
        },
        "val_000000.bin",
        "truncated",
    );
}

#[test]
fn a_shard_that_changed_is_refused_by_its_checksum() {
    // A valid token id swapped for another: only the checksum can tell.
    damaged(
        |d| {
            let p = d.join("train_000000.bin");
            let t = read_llmc_shard(&p);
            let other = if t[5] == 65 { 66u16 } else { 65u16 };
            patch(&p, 1024 + 2 * 5, &other.to_le_bytes());
        },
        "train_000000.bin",
        "checksum",
    );
}

#[test]
fn a_token_outside_the_vocabulary_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (tok, _) = prepared(tmp.path(), 300);
    let llmc = tmp.path().join("llmc");
    std::fs::create_dir(&llmc).unwrap();
    let tokens: Vec<u16> = (0..400).map(|i| (i % 250) as u16).collect();
    write_llmc_shard(&llmc.join("x_val_000000.bin"), &tokens);
    let mut bad = tokens.clone();
    bad[123] = 50256; // a GPT-2 id, outside a 300-id vocabulary
    write_llmc_shard(&llmc.join("x_train_000000.bin"), &bad);
    let source = source("x", &llmc);
    let extra = format!("tokenizer = \"{}\"", s(&tok));
    let spec = bad_spec(tmp.path(), &source, &extra);
    refused(&spec, "x_train_000000.bin", "outside the vocabulary");
}

#[test]
fn a_tokenizer_other_than_the_manifests_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, shards) = prepared(tmp.path(), 300);
    let other = tmp.path().join("other.json");
    let text = tmp.path().join("text");
    tokenizer("290", &text, &other);
    let source = source("text", &shards);
    let extra = format!("tokenizer = \"{}\"", s(&other));
    let spec = bad_spec(tmp.path(), &source, &extra);
    refused(&spec, "manifest.json", "tokenizer.hash");
}

#[test]
fn a_missing_source_and_zero_weights_are_refused_naming_the_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, shards) = prepared(tmp.path(), 300);
    let missing = r#"{ name = "gone", path = "no/such/dir", weight = 1.0 }"#;
    let spec = bad_spec(tmp.path(), missing, "");
    refused(&spec, "spec.toml", "data.sources[0].path");
    let zero = format!(
        r#"{{ name = "text", path = "{}", weight = 0.0 }}"#,
        s(&shards)
    );
    let spec = bad_spec(tmp.path(), &zero, "");
    refused(&spec, "spec.toml", "sum to 0");
}

#[test]
fn an_unfinished_prepare_is_never_read_and_a_rerun_restarts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (tok, shards) = prepared(tmp.path(), 300);
    // What a prepare killed after its first shard leaves: the marker, a shard, no manifest.
    let killed = tmp.path().join("killed");
    std::fs::create_dir(&killed).unwrap();
    std::fs::write(killed.join(".preparing"), "").unwrap();
    std::fs::copy(
        shards.join("train_000000.bin"),
        killed.join("train_000000.bin"),
    )
    .unwrap();
    std::fs::copy(&tok, killed.join("tokenizer.json")).unwrap();
    let source = source("text", &killed);
    let spec = bad_spec(tmp.path(), &source, "");
    refused(&spec, "killed", "unfinished");
    let text = tmp.path().join("text");
    prepare(&tok, &text, &killed);
    assert_eq!(
        CorpusManifest::read(&killed).unwrap().shards,
        CorpusManifest::read(&shards).unwrap().shards,
        "the restarted prepare wrote the same shards"
    );
    // A finished corpus is never overwritten.
    let again = lab(&[
        "data",
        "prepare",
        "--tokenizer",
        s(&tok),
        "--input",
        s(&text),
        "--out",
        s(&killed),
    ]);
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn empty_input_is_refused_by_prepare_and_the_tokenizer_trainer() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let tok = tmp.path().join("tok.json");
    let out = lab(&[
        "data",
        "tokenizer",
        "--vocab",
        "300",
        "--input",
        s(&empty),
        "--out",
        s(&tok),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!tok.exists());
    let (tok, _) = prepared(tmp.path(), 300);
    let shards = tmp.path().join("none");
    let out = lab(&[
        "data",
        "prepare",
        "--tokenizer",
        s(&tok),
        "--input",
        s(&empty),
        "--out",
        s(&shards),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("empty.txt") && stderr.contains("no text"),
        "{stderr}"
    );
    let jsonl = tmp.path().join("bad.jsonl");
    std::fs::write(
        &jsonl,
        "{\"text\": \"fine\"}\n{\"body\": \"no text field\"}\n",
    )
    .unwrap();
    let out = lab(&[
        "data",
        "prepare",
        "--tokenizer",
        s(&tok),
        "--input",
        s(&jsonl),
        "--out",
        s(&tmp.path().join("j")),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.jsonl") && stderr.contains("line 2"),
        "{stderr}"
    );
}
