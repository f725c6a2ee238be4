//! `lab data tokenizer` and `lab data prepare`:
//! flags checked, progress bars over the input bytes, a summary line.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::data::documents::Inputs;
use crate::data::prepare::{PrepareOptions, prepare};
use crate::data::tokenizer::{BYTE_VOCAB, END_OF_TEXT, SubwordTokenizer, train_bpe};
use crate::error::SpecError;
use indicatif::{ProgressBar, ProgressStyle};

use super::args::DataCommand;

pub fn run(cmd: DataCommand) -> anyhow::Result<i32> {
    match cmd {
        DataCommand::Tokenizer {
            vocab,
            input,
            field,
            out,
        } => tokenizer(vocab, &input, &field, &out),
        DataCommand::Prepare {
            tokenizer,
            input,
            out,
            field,
            val_fraction,
            seed,
            shard_tokens,
        } => {
            let flag = |name: &str, m: String| SpecError::field(&out, name, m);
            if !(val_fraction > 0.0 && val_fraction <= 0.5) {
                return Err(flag(
                    "--val-fraction",
                    format!("must be in (0, 0.5], got {val_fraction}"),
                )
                .into());
            }
            if shard_tokens == 0 {
                return Err(flag("--shard-tokens", "must be positive".into()).into());
            }
            let options = PrepareOptions {
                out,
                val_fraction,
                seed,
                shard_tokens,
                batch_bytes: 16 << 20,
            };
            prepare_cmd(&tokenizer, &input, &field, &options)
        }
    }
}

fn bytes_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("a valid template"),
    );
    bar
}

fn tokenizer(vocab: usize, input: &[PathBuf], field: &str, out: &Path) -> anyhow::Result<i32> {
    let least = BYTE_VOCAB + 1;
    let (max, why) = crate::limits::VOCAB;
    if vocab < least || vocab > max {
        let m = format!(
            "must be in {least}..={max} (the 256 bytes and <|endoftext|>; {why}), got {vocab}"
        );
        return Err(SpecError::field(out, "--vocab", m).into());
    }
    if out.exists() {
        let m = "exists (choose another --out)".to_string();
        return Err(SpecError::Io {
            file: out.to_path_buf(),
            message: m,
        }
        .into());
    }
    let inputs = Inputs::new(input, field, Some(END_OF_TEXT.to_string()))?;
    let bar = bytes_bar(inputs.bytes());
    bar.set_message("reading");
    let started = Instant::now();
    let trained = train_bpe(&inputs, vocab, |b| {
        bar.inc(b);
        if bar.position() >= bar.length().unwrap_or(0) {
            bar.set_message("merging");
        }
    });
    bar.finish_and_clear();
    let trained = trained?;
    let tmp = out.with_extension("json.tmp");
    trained.save(&tmp, true).map_err(anyhow::Error::msg)?;
    std::fs::rename(&tmp, out)?;
    let t = SubwordTokenizer::load(out)?;
    if t.vocab_size() < vocab {
        crate::say!(
            "warning: {} ids, not the {vocab} asked for: no more pairs occur twice in this text \
             (more text gives more merges)",
            t.vocab_size()
        );
    }
    println!(
        "{}: byte-level BPE, {} ids ({} = {}), trained on {:.1} MB in {:.1} s",
        out.display(),
        t.vocab_size(),
        t.eot,
        t.eot_id,
        inputs.bytes() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

fn prepare_cmd(
    tokenizer: &Path,
    input: &[PathBuf],
    field: &str,
    options: &PrepareOptions,
) -> anyhow::Result<i32> {
    let tokenizer = SubwordTokenizer::load(tokenizer)?;
    let inputs = Inputs::new(input, field, Some(tokenizer.eot.clone()))?;
    let names: Vec<String> = input.iter().map(|p| p.display().to_string()).collect();
    let bar = bytes_bar(inputs.bytes());
    bar.set_message("tokenizing");
    let started = Instant::now();
    let manifest = prepare(&inputs, &names, &tokenizer, options, |b| bar.inc(b));
    bar.finish_and_clear();
    let m = manifest?;
    let seconds = started.elapsed().as_secs_f64();
    let tokens = |split| {
        (m.shards.iter())
            .filter(|s| s.split == split)
            .map(|s| s.tokens)
            .sum::<u64>()
    };
    use crate::data::manifest::Split;
    let mb_s = m.text_bytes as f64 / 1e6 / seconds.max(1e-9);
    println!(
        "{}: {} documents ({} held out), {} training and {} validation tokens in {} shards; \
         {:.1} MB of text in {:.1} s ({:.1} MB/s on {} threads)",
        options.out.display(),
        m.documents,
        m.val_documents.len(),
        tokens(Split::Train),
        tokens(Split::Val),
        m.shards.len(),
        m.text_bytes as f64 / 1e6,
        seconds,
        mb_s,
        rayon::current_num_threads()
    );
    Ok(0)
}
