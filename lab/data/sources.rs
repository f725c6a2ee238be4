//! `[data] sources`: prepared corpora mixed by weight, each one stream of the run's corpus.
//!
//! A source's directory is either a corpus `lab data prepare` wrote (a manifest names its
//! shards, their checksums and the tokenizer's hash), or a folder of shards that llm.c or
//! modded-nanogpt wrote: every `*.bin` in it, those whose name has `val` as a word of its own
//! for validation (`fineweb_val_000000.bin`, `shakespeare_val.bin`: [`is_validation_shard`]),
//! the rest for training (`retrieval_000.bin`, `interval_01.bin`). Loading checks every shard before a
//! step is trained: header and size, checksum where a manifest gives one, and every token id
//! below the vocabulary.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::manifest::{CorpusManifest, MANIFEST, ShardEntry, Split};
use super::shard::{self, Shard};
use super::stream::{Corpus, Stream, TokenSource};
use super::tokens::{ShardSeq, Tokens};
use crate::error::SpecError;

/// One entry of `[data] sources`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub name: String,
    /// A prepared corpus's directory, or a folder of llm.c shards; relative to the spec.
    pub path: PathBuf,
    /// Mixture weight (normalised over the sources).
    pub weight: f64,
    /// Weight after the annealing switch (`anneal = true`); the weight when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anneal_weight: Option<f64>,
}

impl SourceSpec {
    pub fn anneal_weight(&self) -> f64 {
        self.anneal_weight.unwrap_or(self.weight)
    }
}

/// The training and validation shard files of a source directory, and the manifest when it
/// has one.
pub struct SourceFiles {
    pub manifest: Option<CorpusManifest>,
    pub train: Vec<ShardFile>,
    pub val: Vec<ShardFile>,
}

/// A shard file, and what the manifest says it holds (none without a manifest).
pub struct ShardFile {
    pub path: PathBuf,
    pub listed: Option<ShardEntry>,
}

/// List a source directory's shards; Err naming the directory when it holds none of a split.
pub fn source_files(dir: &Path) -> Result<SourceFiles, SpecError> {
    let io = |m: String| SpecError::Io {
        file: dir.to_path_buf(),
        message: m,
    };
    if dir.join(MANIFEST).exists() || dir.join(super::manifest::PREPARING).exists() {
        let m = CorpusManifest::read(dir)?;
        let files = |split| {
            (m.shards.iter())
                .filter(|e| e.split == split)
                .map(|e| ShardFile {
                    path: dir.join(&e.file),
                    listed: Some(e.clone()),
                })
                .collect()
        };
        let (train, val) = (files(Split::Train), files(Split::Val));
        return Ok(SourceFiles {
            manifest: Some(m),
            train,
            val,
        });
    }
    let mut bins: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    bins.sort();
    let is_val =
        |p: &PathBuf| (p.file_name()).is_some_and(|n| is_validation_shard(&n.to_string_lossy()));
    let (val, train): (Vec<_>, Vec<_>) = bins.into_iter().partition(is_val);
    let unlisted = |paths: Vec<PathBuf>| -> Vec<ShardFile> {
        let file = |path| ShardFile { path, listed: None };
        paths.into_iter().map(file).collect()
    };
    let (train, val) = (unlisted(train), unlisted(val));
    for (files, what) in [
        (&train, "training"),
        (
            &val,
            "validation (`val` as a word of the name, as in `x_val_000000.bin`)",
        ),
    ] {
        if files.is_empty() {
            let m = format!("no manifest.json and no {what} shards (*.bin)");
            return Err(io(m));
        }
    }
    Ok(SourceFiles {
        manifest: None,
        train,
        val,
    })
}

/// Whether a shard file's name marks it as validation, as llm.c names them: `val` as a whole
/// word of the name, between separators (`_`, `-`, `.`) or at an end: `fineweb_val_000000.bin`,
/// `val.bin`, `tiny-val.bin`; not `retrieval_000.bin` or `interval_01.bin`.
pub fn is_validation_shard(name: &str) -> bool {
    (name.split(|c: char| !c.is_ascii_alphanumeric())).any(|w| w.eq_ignore_ascii_case("val"))
}

/// The sources of a resolved `[data]`, loaded as streams.
pub struct PreparedSource {
    pub sources: Vec<SourceSpec>,
    pub vocab_size: usize,
}

impl TokenSource for PreparedSource {
    fn describe(&self) -> String {
        let names: Vec<String> = self
            .sources
            .iter()
            .map(|s| format!("{} ({})", s.name, s.path.display()))
            .collect();
        format!("prepared: {}", names.join(", "))
    }

    fn load(&self) -> Result<Corpus> {
        let mut streams = Vec::new();
        for s in &self.sources {
            let files = source_files(&s.path)?;
            let open = |files: &[ShardFile]| -> Result<Tokens, SpecError> {
                // Every shard is read whole once: in parallel, a thread per core.
                let shards = files
                    .par_iter()
                    .map(|f| self.checked(f))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Tokens::Shards(ShardSeq::new(shards)))
            };
            streams.push(Stream {
                name: s.name.clone(),
                train: open(&files.train)?,
                val: open(&files.val)?,
                weight: s.weight,
                anneal_weight: s.anneal_weight(),
                val_answers: None,
                line_aligned_val: false,
            });
        }
        Ok(Corpus { streams })
    }
}

impl PreparedSource {
    /// Open one shard after reading it whole: its header, its checksum against the manifest
    /// (when there is one), and every token id below the vocabulary.
    fn checked(&self, file: &ShardFile) -> Result<Shard, SpecError> {
        let path = &file.path;
        let scan = shard::scan(path)?;
        if let Some(e) = &file.listed
            && (e.sha256 != scan.sha256 || e.tokens != scan.tokens as u64)
        {
            let m = format!(
                "{} tokens with checksum {}, but the manifest lists {} tokens with {} \
                     (the file changed or is damaged)",
                scan.tokens, scan.sha256, e.tokens, e.sha256
            );
            return Err(SpecError::field(path, "checksum", m));
        }
        if let Some(max) = scan.max_token
            && max as usize >= self.vocab_size
        {
            let m = format!(
                "token id {max} is outside the vocabulary of {} (a shard made with another \
                 tokenizer?)",
                self.vocab_size
            );
            return Err(SpecError::field(path, "tokens", m));
        }
        Shard::open(path)
    }
}
