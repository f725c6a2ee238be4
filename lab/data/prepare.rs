//! `lab data prepare`: documents → tokens → shards in llm.c's format, with a manifest.
//!
//! Documents stream through in batches (a corpus need not fit in memory), each batch encoded
//! in parallel over its documents. Each document goes whole to the training or the validation
//! shards by a seeded draw ([`held_out`]), preceded by the end-of-text token as llm.c's
//! writers do. Shards roll over at document boundaries.
//!
//! A killed prepare leaves its directory marked [`PREPARING`] and without a manifest: no run
//! reads it, and the next prepare into it clears it and starts again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::documents::Inputs;
use super::manifest::{
    CorpusManifest, FORMAT, MANIFEST, PREPARING, ShardEntry, Split, TOKENIZER, TokenizerEntry,
    held_out,
};
use super::shard::{ShardWriter, Width};
use super::tokenizer::SubwordTokenizer;
use crate::error::SpecError;

pub struct PrepareOptions {
    pub out: PathBuf,
    /// Each document's chance of being held out for validation.
    pub val_fraction: f64,
    pub seed: u64,
    /// A shard is closed once it holds this many tokens (llm.c: 100 M).
    pub shard_tokens: usize,
    /// Text per encoding batch, in bytes (memory in use is a few times this).
    pub batch_bytes: usize,
}

/// Largest token count a shard's int32 header can state.
const MAX_SHARD_TOKENS: usize = i32::MAX as usize;

/// Prepare `inputs` with `tokenizer` into `options.out`; `progress` is told input bytes as
/// they are written.
pub fn prepare(
    inputs: &Inputs,
    input_names: &[String],
    tokenizer: &SubwordTokenizer,
    options: &PrepareOptions,
    mut progress: impl FnMut(u64),
) -> Result<CorpusManifest> {
    let out = &options.out;
    claim_directory(out)?;
    let saved = tokenizer
        .inner
        .to_string(true)
        .map_err(anyhow::Error::msg)?;
    std::fs::write(out.join(TOKENIZER), saved)?;
    let width = Width::for_vocab(tokenizer.vocab_size());
    let mut train = SplitWriter::new(out, Split::Train, width, options.shard_tokens);
    let mut val = SplitWriter::new(out, Split::Val, width, options.shard_tokens);
    let (mut index, mut text_bytes, mut val_documents) = (0u64, 0u64, Vec::new());
    let mut written = 0u64;
    let mut docs = inputs.documents();
    loop {
        let (batch, bytes) = next_batch(&mut docs, options.batch_bytes, &mut index)?;
        if batch.is_empty() {
            break;
        }
        let (indices, texts): (Vec<u64>, Vec<String>) = batch.into_iter().unzip();
        for (i, ids) in indices.into_iter().zip(tokenizer.encode_batch(texts)?) {
            let split = match held_out(options.seed, i, options.val_fraction) {
                true => {
                    val_documents.push(i);
                    &mut val
                }
                false => &mut train,
            };
            split.push_document(tokenizer.eot_id, &ids)?;
            written += 1;
        }
        text_bytes += bytes;
        progress(bytes);
    }
    if written == 0 {
        bail!(SpecError::Io {
            file: PathBuf::from(&input_names.join(" ")),
            message: "no text in the inputs (empty files or documents)".into(),
        });
    }
    for (split, w) in [("training", &train), ("validation", &val)] {
        if w.documents == 0 {
            bail!(SpecError::Io {
                file: PathBuf::from(&input_names.join(" ")),
                message: format!(
                    "{written} documents, none drawn for {split}: give more documents (split \
                     large files) or change --val-fraction"
                ),
            });
        }
    }
    let mut shards = train.finish()?;
    shards.extend(val.finish()?);
    let manifest = CorpusManifest {
        format: FORMAT.into(),
        tokenizer: TokenizerEntry {
            hash: tokenizer.hash.clone(),
            vocab_size: tokenizer.vocab_size(),
            eot_id: tokenizer.eot_id,
        },
        inputs: input_names.to_vec(),
        text_bytes,
        documents: written,
        seed: options.seed,
        val_fraction: options.val_fraction,
        val_documents,
        shards,
    };
    let tmp = out.join(format!("{MANIFEST}.tmp"));
    std::fs::write(&tmp, serde_json::to_string_pretty(&manifest)?)?;
    std::fs::rename(&tmp, out.join(MANIFEST))?;
    std::fs::remove_file(out.join(PREPARING))?;
    Ok(manifest)
}

/// Make `out` an empty directory marked as being prepared: a new one, or the remains of a
/// prepare that was killed. Err (bad input) for a finished corpus or any other directory.
fn claim_directory(out: &Path) -> Result<()> {
    if out.exists() {
        let refuse = |m: &str| SpecError::Io {
            file: out.to_path_buf(),
            message: m.into(),
        };
        if out.join(MANIFEST).exists() && !out.join(PREPARING).exists() {
            bail!(refuse(
                "already a prepared corpus (remove it, or choose another --out)"
            ));
        }
        if !out.join(PREPARING).exists() && std::fs::read_dir(out)?.next().is_some() {
            bail!(refuse("exists and is not empty (choose another --out)"));
        }
        // A killed prepare's files: shards, temporaries, the tokenizer copy.
        for entry in std::fs::read_dir(out)? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("clearing {}", path.display()))?;
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(
        out.join(PREPARING),
        "lab data prepare is writing this directory\n",
    )?;
    Ok(())
}

/// Texts of up to `batch_bytes` (at least one document), each with its input-order index,
/// and the input bytes they used. `index` counts every document read, empty ones too (they
/// are skipped, but keep their place), so an index names a document of the inputs.
fn next_batch(
    docs: &mut impl Iterator<Item = Result<super::documents::Document, SpecError>>,
    batch_bytes: usize,
    index: &mut u64,
) -> Result<(Vec<(u64, String)>, u64)> {
    let (mut texts, mut size, mut bytes) = (Vec::new(), 0usize, 0u64);
    while size < batch_bytes {
        let Some(doc) = docs.next() else { break };
        let doc = doc?;
        bytes += doc.bytes;
        *index += 1;
        if doc.text.is_empty() {
            continue;
        }
        size += doc.text.len();
        texts.push((*index - 1, doc.text));
    }
    Ok((texts, bytes))
}

/// The shards of one split, written one after another.
struct SplitWriter {
    dir: PathBuf,
    split: Split,
    width: Width,
    shard_tokens: usize,
    current: Option<(ShardWriter, u64)>,
    done: Vec<ShardEntry>,
    documents: u64,
}

impl SplitWriter {
    fn new(dir: &Path, split: Split, width: Width, shard_tokens: usize) -> Self {
        SplitWriter {
            dir: dir.to_path_buf(),
            split,
            width,
            shard_tokens: shard_tokens.clamp(1, MAX_SHARD_TOKENS),
            current: None,
            done: Vec::new(),
            documents: 0,
        }
    }

    fn push_document(&mut self, eot: u32, ids: &[u32]) -> Result<()> {
        let n = ids.len() + 1;
        if n > MAX_SHARD_TOKENS {
            bail!("a document of {n} tokens does not fit in one shard");
        }
        let full = self
            .current
            .as_ref()
            .is_some_and(|(w, _)| !w.is_empty() && w.len() + n > self.shard_tokens);
        if full {
            self.close()?;
        }
        if self.current.is_none() {
            let name = format!("{}_{:06}.bin", self.split.name(), self.done.len());
            let writer = ShardWriter::create(&self.dir.join(name), self.width)?;
            self.current = Some((writer, 0));
        }
        let (writer, docs) = self.current.as_mut().expect("opened above");
        writer.push(&[eot])?;
        writer.push(ids)?;
        *docs += 1;
        self.documents += 1;
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if let Some((writer, documents)) = self.current.take() {
            let index = self.done.len();
            let tokens = writer.len() as u64;
            let sha256 = writer.finish()?;
            self.done.push(ShardEntry {
                file: format!("{}_{index:06}.bin", self.split.name()),
                split: self.split,
                tokens,
                documents,
                sha256,
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<ShardEntry>> {
        self.close()?;
        Ok(self.done)
    }
}
