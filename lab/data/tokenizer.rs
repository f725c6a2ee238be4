//! The vocabulary a run trains on: bytes (the default: token id = byte value, 256 ids), or a
//! Hugging Face `tokenizer.json` (a byte-level BPE this lab trained, or a user's GPT-2 or
//! LLaMA-3 file).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use super::documents::Inputs;
use crate::error::SpecError;

pub use crate::compute::BYTE_VOCAB;

/// The end-of-text token a trained tokenizer gets (GPT-2's spelling).
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Spellings of the end-of-text token in common tokenizers, tried in order.
const END_OF_TEXT_NAMES: [&str; 5] = [
    END_OF_TEXT,
    "<|end_of_text|>",
    "</s>",
    "<eos>",
    "<|im_end|>",
];

/// A loaded `tokenizer.json` and what the lab needs to know of it.
pub struct SubwordTokenizer {
    pub inner: Tokenizer,
    pub path: PathBuf,
    /// SHA-256 of the tokenizer's canonical JSON (formatting of the file does not count).
    pub hash: String,
    pub eot_id: u32,
    pub eot: String,
}

fn bad(path: &Path, message: impl std::fmt::Display) -> SpecError {
    SpecError::Parse {
        file: path.to_path_buf(),
        message: message.to_string(),
    }
}

impl SubwordTokenizer {
    /// Load a `tokenizer.json`; Err naming the file if it does not parse or has no
    /// end-of-text token (documents are separated by it).
    pub fn load(path: &Path) -> Result<SubwordTokenizer, SpecError> {
        if !path.is_file() {
            return Err(SpecError::Io {
                file: path.to_path_buf(),
                message: "no such tokenizer file".into(),
            });
        }
        let inner = Tokenizer::from_file(path)
            .map_err(|e| bad(path, format!("not a tokenizer.json: {e}")))?;
        let (eot_id, eot) = END_OF_TEXT_NAMES
            .iter()
            .find_map(|n| inner.token_to_id(n).map(|id| (id, n.to_string())))
            .ok_or_else(|| {
                bad(
                    path,
                    format!(
                        "no end-of-text token (looked for {})",
                        END_OF_TEXT_NAMES.join(", ")
                    ),
                )
            })?;
        let hash = hash_of(&inner).map_err(|e| bad(path, e))?;
        Ok(SubwordTokenizer {
            inner,
            path: path.to_path_buf(),
            hash,
            eot_id,
            eot,
        })
    }

    /// Ids in `0..vocab_size` (added tokens included).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The tokens of each text, in parallel over the texts (no special tokens added).
    pub fn encode_batch(&self, texts: Vec<String>) -> anyhow::Result<Vec<Vec<u32>>> {
        let encodings = self
            .inner
            .encode_batch_fast(texts, false)
            .map_err(|e| anyhow::anyhow!("{}: encoding failed: {e}", self.path.display()))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    pub fn decode(&self, ids: &[u32]) -> anyhow::Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| anyhow::anyhow!("{}: decoding failed: {e}", self.path.display()))
    }
}

fn hash_of(t: &Tokenizer) -> Result<String, String> {
    let json = t.to_string(false).map_err(|e| e.to_string())?;
    Ok(format!("{:x}", Sha256::digest(json.as_bytes())))
}

/// Train a byte-level BPE (GPT-2 / LLaMA-3 style: every byte is a token, so nothing is
/// unknown; `<|endoftext|>` is a special token) of `vocab_size` ids on `inputs`' documents.
/// `progress` is told the input bytes consumed as documents are read.
pub fn train_bpe(
    inputs: &Inputs,
    vocab_size: usize,
    mut progress: impl FnMut(u64) + Send,
) -> anyhow::Result<Tokenizer> {
    let alphabet = ByteLevel::alphabet().into_iter().collect();
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .initial_alphabet(alphabet)
        .build()
        .into();
    let mut tokenizer = Tokenizer::new(BPE::default());
    // GPT-2's pre-tokenizer: its regex split, no prefix space; bytes mapped to visible chars.
    let byte_level = ByteLevel::new(false, true, true);
    tokenizer
        .with_pre_tokenizer(Some(byte_level))
        .with_post_processor(Some(byte_level))
        .with_decoder(Some(byte_level));
    let (mut failure, mut texts) = (None, 0usize);
    let docs = inputs.documents().map_while(|d| match d {
        Ok(d) => {
            progress(d.bytes);
            texts += usize::from(!d.text.is_empty());
            Some(d.text)
        }
        Err(e) => {
            failure = Some(e);
            None
        }
    });
    let trained = tokenizer.train(&mut trainer, docs).map(|_| ());
    if let Some(e) = failure {
        return Err(e.into());
    }
    if texts == 0 {
        let first = inputs.files.first().cloned().unwrap_or_default();
        let m = "no text in the inputs (empty files or documents)".to_string();
        return Err(SpecError::Io {
            file: first,
            message: m,
        }
        .into());
    }
    trained.map_err(|e| anyhow::anyhow!("training the tokenizer: {e}"))?;
    Ok(tokenizer)
}

/// A run's vocabulary: bytes, or a subword tokenizer (what `lab sample` and `lab export` use).
pub enum Vocabulary {
    Bytes,
    Subword(Box<SubwordTokenizer>),
}

impl Vocabulary {
    /// The vocabulary of a resolved `[data]`, by its `tokenizer`: bytes without one.
    pub fn of(tokenizer: Option<&std::path::Path>) -> Result<Vocabulary, SpecError> {
        Ok(match tokenizer {
            None => Vocabulary::Bytes,
            Some(p) => Vocabulary::Subword(Box::new(SubwordTokenizer::load(p)?)),
        })
    }

    /// The ids of each text (bytes: its UTF-8 bytes), no special tokens added.
    pub fn encode_batch(&self, texts: Vec<String>) -> anyhow::Result<Vec<Vec<u32>>> {
        match self {
            Vocabulary::Bytes => Ok(texts
                .iter()
                .map(|t| t.bytes().map(u32::from).collect())
                .collect()),
            Vocabulary::Subword(t) => t.encode_batch(texts),
        }
    }

    /// The end-of-text token and its id (none for bytes).
    pub fn eos(&self) -> Option<(String, u32)> {
        match self {
            Vocabulary::Bytes => None,
            Vocabulary::Subword(t) => Some((t.eot.clone(), t.eot_id)),
        }
    }
}
