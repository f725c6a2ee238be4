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

/// A shard written by hand, as llm.c's `write_datafile` does for GPT-2 (`model_desc="gpt-2"`):
/// 256 int32 of header (magic 20240520, version 1, count), then uint16 tokens. Independent of
/// the lab's writer.
fn write_llmc_shard(path: &Path, tokens: &[u16]) {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    write_llmc_file(path, 20240520, 1, tokens.len(), &bytes);
}

/// The same for LLaMA-3 (`model_desc="llama-3"`): magic 20240801, version 7, uint32 tokens.
fn write_llama3_shard(path: &Path, tokens: &[u32]) {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    write_llmc_file(path, 20240801, 7, tokens.len(), &bytes);
}

fn write_llmc_file(path: &Path, magic: i32, version: i32, count: usize, tokens: &[u8]) {
    let mut header = [0i32; 256];
    (header[0], header[1], header[2]) = (magic, version, count as i32);
    let mut bytes: Vec<u8> = header.iter().flat_map(|h| h.to_le_bytes()).collect();
    bytes.extend_from_slice(tokens);
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
    // Every input document once: counted from the inputs themselves (a JSON line with text).
    let mut input_docs = 0u64;
    for f in std::fs::read_dir(tmp.path().join("text")).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        input_docs += (text.lines())
            .filter(|l| !l.trim().is_empty())
            .filter(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                !v["text"].as_str().unwrap().is_empty()
            })
            .count() as u64;
    }
    assert!(input_docs > 10, "{input_docs} documents in the inputs");
    assert_eq!(train_docs + val_docs, input_docs, "documents in the shards");
    assert_eq!(m.documents, input_docs);
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
    // And as LLaMA-3's kind (uint32 tokens), under names with `val` inside a word: training.
    let llama3 = tmp.path().join("llama3");
    std::fs::create_dir(&llama3).unwrap();
    let wide = |split| tokens(split).into_iter().map(u32::from).collect::<Vec<_>>();
    let train_tokens = wide("train");
    let half = train_tokens.len() / 2;
    write_llama3_shard(&llama3.join("retrieval_000.bin"), &train_tokens[..half]);
    write_llama3_shard(&llama3.join("the_interval_001.bin"), &train_tokens[half..]);
    write_llama3_shard(&llama3.join("tiny-val.bin"), &wide("val"));
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
    let (llama, llama_evals) = run("llama3", &llama3);
    assert_eq!(own, llama, "training losses from LLaMA-3 shards");
    assert_eq!(
        own_evals, llama_evals,
        "validation losses from LLaMA-3 shards"
    );
}

/// llm.c's validation shards by name: `val` as a word of its own, not inside another word.
#[test]
fn validation_shards_are_named_by_val_as_a_word() {
    use moe_lab::data::sources::is_validation_shard;
    for name in [
        "fineweb_val_000000.bin",
        "tinyshakespeare_val.bin",
        "val.bin",
        "tiny-val-01.bin",
        "VAL_0.bin",
    ] {
        assert!(is_validation_shard(name), "{name}");
    }
    for name in [
        "retrieval_000.bin",
        "interval_01.bin",
        "fineweb_train_000001.bin",
        "values.bin",
        "eval_000.bin",
    ] {
        assert!(!is_validation_shard(name), "{name}");
    }
}

/// A shard the lab writes for a vocabulary over 65 536 is LLaMA-3's kind, read by hand.
#[test]
fn the_labs_uint32_shards_are_llama3s_kind() {
    use moe_lab::data::shard::{ShardWriter, Width};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("train_000000.bin");
    assert_eq!(Width::for_vocab(128_256), Width::U32);
    let mut w = ShardWriter::create(&path, Width::for_vocab(128_256)).unwrap();
    w.push(&[128_000, 5, 70_000]).unwrap();
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let int = |i: usize| i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!((int(0), int(1), int(2)), (20240801, 7, 3));
    assert!(
        bytes[12..1024].iter().all(|b| *b == 0),
        "the header's rest is zero"
    );
    let tokens: Vec<u32> = (bytes[1024..].chunks_exact(4))
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(tokens, [128_000, 5, 70_000]);
}

/// `val_documents` are input-order indices: with empty documents among the inputs (skipped,
/// but counted), each held-out index names a non-empty input document, and the validation
/// shards hold exactly those documents' texts, in order.
#[test]
fn held_out_documents_are_named_by_their_input_order() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("docs.jsonl");
    let texts: Vec<String> = (0..300)
        .map(|i| match i % 3 {
            1 => String::new(),
            _ => format!("document {i} says {} things", i * 7),
        })
        .collect();
    let lines: Vec<String> = (texts.iter())
        .map(|t| serde_json::json!({ "text": t }).to_string())
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let tok = tmp.path().join("tok.json");
    tokenizer("300", &input, &tok);
    let out = tmp.path().join("shards");
    prepare(&tok, &input, &out);
    let m = CorpusManifest::read(&out).unwrap();
    assert_eq!(m.documents, 200, "the non-empty documents are written");
    assert!(!m.val_documents.is_empty());
    for &i in &m.val_documents {
        assert!(
            !texts[i as usize].is_empty(),
            "held-out index {i} is an empty input"
        );
    }
    let tokenizer = moe_lab::data::tokenizer::SubwordTokenizer::load(&tok).unwrap();
    let mut held: Vec<String> = Vec::new();
    for e in m.shards.iter().filter(|e| e.split.name() == "val") {
        let tokens = read_llmc_shard(&out.join(&e.file));
        for doc in tokens.split(|t| *t as u32 == m.tokenizer.eot_id).skip(1) {
            let ids: Vec<u32> = doc.iter().map(|t| *t as u32).collect();
            held.push(tokenizer.decode(&ids).unwrap());
        }
    }
    let want: Vec<String> = (m.val_documents.iter())
        .map(|&i| texts[i as usize].clone())
        .collect();
    assert_eq!(held, want);
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
    mix_follows_the_weights(&config, [0.6, 0.4], [0.2, 0.8]);
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
    let resumed = train(&config, common::flex_options(&split, true, None)).unwrap();
    assert_eq!(resumed.resumed_from, [12], "resumed, not restarted");
    assert_eq!(losses(&whole), losses(&split), "resumed losses");
}

/// The training batches' rows come from each source in its weight's share before the
/// annealing switch and in its `anneal_weight`'s share after it (math, code), within 2 points
/// over 8 000 rows each.
fn mix_follows_the_weights(config: &moe_lab::spec::RunConfig, base: [f64; 2], anneal: [f64; 2]) {
    use moe_lab::data::batches::Batches;
    let spec = &config.spec;
    let corpus = moe_lab::data::source_for(&spec.data, 0, spec.model.vocab_size())
        .load()
        .unwrap();
    let switch = config.anneal_from().unwrap();
    // Wide batches, so the few steps before the switch hold thousands of rows.
    let rows = 8000 / switch + 1;
    let b = Batches::new(corpus, spec.model.seq_len, rows, spec.seed, Some(switch)).unwrap();
    assert_eq!(b.stream_names()[..2], ["math", "code"]);
    let share = |steps: std::ops::Range<usize>| {
        let n = steps.len() * rows;
        let math: usize =
            (steps.map(|step| (0..rows).filter(|&r| b.stream_of(step, r) == 0).count())).sum();
        math as f64 / n as f64
    };
    let (before, after) = (share(0..switch), share(switch..2 * switch));
    assert!(
        (before - base[0]).abs() < 0.02,
        "math share {before} before the switch, weight {}",
        base[0]
    );
    assert!(
        (after - anneal[0]).abs() < 0.02,
        "math share {after} after it, anneal_weight {}",
        anneal[0]
    );
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

/// The lab's former uint32 header (magic 20240520, version 2) is no llm.c kind: refused,
/// naming the file and what it found.
#[test]
fn a_shard_of_neither_llmc_kind_is_refused_naming_its_magic_and_version() {
    damaged(
        |d| patch(&d.join("train_000000.bin"), 4, &2i32.to_le_bytes()),
        "train_000000.bin",
        "magic 20240520, version 2",
    );
}

/// A manifest's shard names are plain file names inside the corpus: a relative path out of
/// it or an absolute one is refused naming manifest.json and the entry, before anything
/// is read (the shard it points at is a valid copy, so only the check can refuse it).
#[test]
fn a_manifest_that_reaches_outside_its_corpus_is_refused() {
    for escape in ["../outside/train_000000.bin", "ABSOLUTE"] {
        damaged(
            |d| {
                let outside = d.parent().unwrap().join("outside");
                std::fs::create_dir_all(&outside).unwrap();
                let shard = outside.join("train_000000.bin");
                std::fs::copy(d.join("train_000000.bin"), &shard).unwrap();
                let name = match escape {
                    "ABSOLUTE" => shard.to_str().unwrap().to_string(),
                    other => other.to_string(),
                };
                let path = d.join("manifest.json");
                let text = std::fs::read_to_string(&path).unwrap();
                let text = text.replace("\"train_000000.bin\"", &format!("{name:?}"));
                std::fs::write(&path, text).unwrap();
            },
            "manifest.json",
            "shards[0].file",
        );
    }
}

/// A manifest without validation (or training) shards: exit 2 naming manifest.json and the
/// split it lacks, not a training error later.
#[test]
fn a_manifest_missing_a_split_is_refused() {
    for split in ["val", "train"] {
        damaged(
            |d| {
                let path = d.join("manifest.json");
                let mut m: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let shards = m["shards"].as_array_mut().unwrap();
                shards.retain(|e| e["split"] != split);
                std::fs::write(&path, m.to_string()).unwrap();
            },
            "manifest.json",
            &format!("no shard with split \"{split}\""),
        );
    }
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

/// A mixture axis over three prepared corpora: each cell trains on its mixture of the sources,
/// and the data-mix study reads the sources as its domains.
#[test]
fn a_mixture_sweep_over_prepared_sources_runs_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let (tok, _) = prepared(tmp.path(), 300);
    let mut sources = Vec::new();
    for domain in ["math", "code", "multilingual"] {
        let out = tmp.path().join(domain);
        prepare(&tok, &tmp.path().join(format!("text/{domain}.jsonl")), &out);
        sources.push(source(domain, &out));
    }
    let data = format!("[base.data]\nsources = [{}]\n", sources.join(", "));
    let text = common::toy_experiment(0.05).replace("[base.data]\ncorpus_bytes = 100000\n", &data)
        + "\n[mixtures]\ndraws = 4\n";
    std::fs::write(tmp.path().join("mix.toml"), text).unwrap();
    let out = common::sweep_in("mix.toml", tmp.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = tmp.path().join("results/toy");
    let manifest = moe_lab::run::Manifest::read(&results).unwrap();
    assert_eq!(manifest.domains, ["math", "code", "multilingual"]);
    for cell in &manifest.cells {
        let m = cell.mixture.as_ref().unwrap();
        let config = std::fs::read_to_string(results.join(&cell.name).join("config.toml")).unwrap();
        let spec: moe_lab::spec::RunSpec = toml::from_str(&config).unwrap();
        let weights: Vec<f64> = spec.data.sources.iter().map(|s| s.weight).collect();
        assert_eq!(weights, m.weights, "{}", cell.name);
    }
    let analysis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("analysis.json")).unwrap())
            .unwrap();
    assert_eq!(
        analysis["domains"],
        serde_json::json!(["math", "code", "multilingual"])
    );
    assert_eq!(
        analysis["arms"][0]["points"].as_array().unwrap().len(),
        6,
        "base, uniform, 4 draws"
    );
}
