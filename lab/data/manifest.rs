//! `manifest.json` of a prepared corpus: which tokenizer made it, its shards with their
//! checksums, and which documents were held out for validation.
//!
//! A directory is a finished corpus only once its manifest exists: `lab data prepare` writes
//! it last, and marks a directory it is still writing with [`PREPARING`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::SpecError;

pub const MANIFEST: &str = "manifest.json";
/// Present while `lab data prepare` writes a directory; a killed prepare leaves it behind.
pub const PREPARING: &str = ".preparing";
/// The tokenizer file a prepared corpus carries (a copy of the one that made it).
pub const TOKENIZER: &str = "tokenizer.json";
pub const FORMAT: &str = "moe-lab token shards 1";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    /// File name inside the corpus directory.
    pub file: String,
    pub split: Split,
    pub tokens: u64,
    pub documents: u64,
    /// SHA-256 of the token bytes (the file after its 1024-byte header).
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenizerEntry {
    /// SHA-256 of the tokenizer's canonical JSON.
    pub hash: String,
    pub vocab_size: usize,
    pub eot_id: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CorpusManifest {
    pub format: String,
    pub tokenizer: TokenizerEntry,
    /// The input paths as given.
    pub inputs: Vec<String>,
    pub text_bytes: u64,
    /// Documents written to the shards (the inputs' non-empty documents).
    pub documents: u64,
    /// Seed of the validation draw, and each document's chance of being held out.
    pub seed: u64,
    pub val_fraction: f64,
    /// Input-order indices of the documents held out for validation: the n-th document of the
    /// inputs (files in the order given, a directory's files sorted by name; an empty
    /// document, skipped, still counts) has index n − 1.
    pub val_documents: Vec<u64>,
    pub shards: Vec<ShardEntry>,
}

impl CorpusManifest {
    /// Read `dir/manifest.json`; Err naming the file when it is unreadable or not a manifest,
    /// or when the directory is a prepare that never finished.
    pub fn read(dir: &Path) -> Result<CorpusManifest, SpecError> {
        if dir.join(PREPARING).exists() {
            let m = "an unfinished `lab data prepare` (rerun it to restart)";
            return Err(SpecError::Io {
                file: dir.to_path_buf(),
                message: m.into(),
            });
        }
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| SpecError::Io {
            file: path.clone(),
            message: e.to_string(),
        })?;
        let m: CorpusManifest = serde_json::from_str(&text).map_err(|e| SpecError::Parse {
            file: path.clone(),
            message: e.to_string(),
        })?;
        if m.format != FORMAT {
            let msg = format!("format {:?}, expected {FORMAT:?}", m.format);
            return Err(SpecError::field(&path, "format", msg));
        }
        m.check_shards(&path)?;
        Ok(m)
    }

    /// Every shard a plain file name inside the corpus (a corpus may come from someone else:
    /// `../x.bin` or `/x.bin` would make a run read outside it), and both splits present.
    fn check_shards(&self, path: &Path) -> Result<(), SpecError> {
        for (i, e) in self.shards.iter().enumerate() {
            let mut parts = Path::new(&e.file).components();
            let plain = matches!(
                (parts.next(), parts.next()),
                (Some(std::path::Component::Normal(_)), None)
            );
            if !plain || e.file.contains(['/', '\\']) {
                let m = format!(
                    "{:?} is not a plain file name inside the corpus directory",
                    e.file
                );
                return Err(SpecError::field(path, &format!("shards[{i}].file"), m));
            }
        }
        for split in [Split::Train, Split::Val] {
            if !self.shards.iter().any(|e| e.split == split) {
                let m = format!(
                    "no shard with split \"{}\": a corpus needs training and validation shards \
                     (prepare it again)",
                    split.name()
                );
                return Err(SpecError::field(path, "shards", m));
            }
        }
        Ok(())
    }
}

/// Whether a document (by input order) is held out: a pure function of (seed, index), so the
/// draw needs no count of the documents and repeats exactly.
pub fn held_out(seed: u64, index: u64, val_fraction: f64) -> bool {
    // SplitMix64 of the pair: a well-mixed 64-bit value per document.
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < val_fraction
}
