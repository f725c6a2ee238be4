//! `[data]`: where the tokens come from, and its validation.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::corpus::Domain;
use super::manifest::TOKENIZER;
use super::sources::{SourceSpec, source_files};
use super::tokenizer::{BYTE_VOCAB, SubwordTokenizer};
use crate::error::SpecError;
use crate::error::{FieldError, at_most, check, positive};
use crate::limits;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    #[default]
    Generated,
    Text,
    /// Prepared token shards (`sources`); implied by a non-empty `sources`.
    Prepared,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataSpec {
    pub source: SourceKind,
    /// A text file or a directory of text files (`source = "text"`), relative to the spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<std::path::PathBuf>,
    /// Text source: share of the data held out for validation (the tail). Generated source:
    /// validation bytes per domain = corpus_bytes · val_fraction / 4.
    pub val_fraction: f64,
    /// Training bytes of the generated corpus, over all domains.
    pub corpus_bytes: usize,
    /// Seed of the generated world and text (independent of the run's seed, so every seed of
    /// a sweep sees the same world).
    pub corpus_seed: u64,
    /// Entities in the generated world (the knowledge domain's size knob).
    pub entities: usize,
    /// Share of facts never stated in training (the `knowledge_heldout` validation stream).
    pub heldout_facts: f64,
    /// Mixture weights of the generated domains (LLaMA-3's pre-training mix by default).
    pub weights: DomainWeights,
    /// Switch to `anneal_weights` for the final `train.decay_fraction` of the steps.
    pub anneal: bool,
    pub anneal_weights: DomainWeights,
    /// Prepared corpora mixed by weight (`lab data prepare`, or llm.c shards).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceSpec>,
    /// The `tokenizer.json` the sources were made with; by default the one the first
    /// source's directory carries. Without sources the vocabulary is bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<PathBuf>,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            source: SourceKind::Generated,
            path: None,
            val_fraction: 0.1,
            corpus_bytes: 2_000_000,
            corpus_seed: 0,
            entities: 400,
            heldout_facts: 0.05,
            weights: DomainWeights::default(),
            anneal: false,
            anneal_weights: DomainWeights::ANNEAL,
            sources: Vec::new(),
            tokenizer: None,
        }
    }
}

/// Mixture weights of the four generated domains (normalised when used).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DomainWeights {
    pub knowledge: f64,
    pub math: f64,
    pub code: f64,
    pub multilingual: f64,
}

impl Default for DomainWeights {
    /// About 50% general knowledge, 25% math and reasoning, 17% code, 8% multilingual.
    fn default() -> Self {
        DomainWeights {
            knowledge: 0.50,
            math: 0.25,
            code: 0.17,
            multilingual: 0.08,
        }
    }
}

impl DomainWeights {
    /// The annealing default: math and code up-sampled.
    pub const ANNEAL: DomainWeights = DomainWeights {
        knowledge: 0.30,
        math: 0.35,
        code: 0.27,
        multilingual: 0.08,
    };

    pub fn of(&self, d: Domain) -> f64 {
        match d {
            Domain::Knowledge => self.knowledge,
            Domain::Math => self.math,
            Domain::Code => self.code,
            Domain::Multilingual => self.multilingual,
            Domain::KnowledgeHeldout => 0.0,
        }
    }

    pub fn valid(&self) -> bool {
        let all = [self.knowledge, self.math, self.code, self.multilingual];
        all.iter().all(|w| *w >= 0.0 && w.is_finite()) && all.iter().sum::<f64>() > 0.0
    }
}

impl DataSpec {
    /// Check the fields (paths relative to `[data]`); a text source's path is made absolute,
    /// relative paths taken from `base` (the spec's directory).
    pub fn resolve(mut self, base: &Path) -> Result<DataSpec, FieldError> {
        check(
            self.val_fraction > 0.0 && self.val_fraction <= 0.5,
            "val_fraction",
            || format!("must be in (0, 0.5], got {}", self.val_fraction),
        )?;
        if !self.sources.is_empty() && self.source == SourceKind::Generated {
            self.source = SourceKind::Prepared;
        }
        if self.source != SourceKind::Prepared {
            check(self.sources.is_empty(), "sources", || {
                format!(
                    "sources need source = \"prepared\" (or no `source`), not {:?}",
                    self.source
                )
            })?;
            check(self.tokenizer.is_none(), "tokenizer", || {
                "a tokenizer applies to prepared sources; make shards of the text with \
                 `lab data prepare` and list them in `sources`"
                    .into()
            })?;
        }
        match self.source {
            SourceKind::Prepared => self.resolve_sources(base)?,
            SourceKind::Text => {
                let Some(p) = &self.path else {
                    return Err(FieldError::new("path", "source = \"text\" needs a path"));
                };
                let full: PathBuf = if p.is_absolute() {
                    p.clone()
                } else {
                    base.join(p)
                };
                check(full.exists(), "path", || {
                    format!("{} does not exist", full.display())
                })?;
                self.path = Some(full.canonicalize().unwrap_or(full));
            }
            SourceKind::Generated => {
                at_most("corpus_bytes", self.corpus_bytes, limits::CORPUS_BYTES)?;
                at_most("entities", self.entities, limits::ENTITIES)?;
                positive("corpus_bytes", self.corpus_bytes)?;
                positive("entities", self.entities)?;
                check(
                    (0.0..1.0).contains(&self.heldout_facts),
                    "heldout_facts",
                    || format!("must be in [0, 1), got {}", self.heldout_facts),
                )?;
                let weights = "weights must be ≥ 0 with a positive sum";
                check(self.weights.valid(), "weights", || weights.into())?;
                check(self.anneal_weights.valid(), "anneal_weights", || {
                    weights.into()
                })?;
            }
        }
        Ok(self)
    }
}

/// `path` made absolute against `base`; Err naming `field` when it does not exist.
fn existing(path: &Path, base: &Path, field: &str) -> Result<PathBuf, FieldError> {
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    check(full.exists(), field, || {
        format!("{} does not exist", full.display())
    })?;
    Ok(full.canonicalize().unwrap_or(full))
}

impl DataSpec {
    /// Check `sources` and `tokenizer`: names unique, paths present (made absolute), weights
    /// ≥ 0 with a positive sum, a tokenizer named or carried by the first source.
    fn resolve_sources(&mut self, base: &Path) -> Result<(), FieldError> {
        check(!self.sources.is_empty(), "sources", || {
            "source = \"prepared\" needs at least one entry in `sources`".into()
        })?;
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sources.iter_mut().enumerate() {
            let field = |f: &str| format!("sources[{i}].{f}");
            check(
                !s.name.is_empty() && names.insert(s.name.clone()),
                &field("name"),
                || format!("{:?}: names must be non-empty and distinct", s.name),
            )?;
            s.path = existing(&s.path, base, &field("path"))?;
            for (w, f) in [(s.weight, "weight"), (s.anneal_weight(), "anneal_weight")] {
                check(w >= 0.0 && w.is_finite(), &field(f), || {
                    format!("must be a finite number ≥ 0, got {w}")
                })?;
            }
        }
        for (f, sum) in [
            ("weight", self.sources.iter().map(|s| s.weight).sum::<f64>()),
            (
                "anneal_weight",
                self.sources.iter().map(|s| s.anneal_weight()).sum(),
            ),
        ] {
            check(sum > 0.0, "sources", || {
                format!("the sources' `{f}`s sum to 0: at least one must be positive")
            })?;
        }
        self.tokenizer = Some(match &self.tokenizer {
            Some(t) => existing(t, base, "tokenizer")?,
            None => {
                let carried = self.sources[0].path.join(TOKENIZER);
                check(carried.is_file(), "tokenizer", || {
                    format!(
                        "not given, and {} has none: name the tokenizer.json the shards were \
                         made with",
                        self.sources[0].path.display()
                    )
                })?;
                carried
            }
        });
        Ok(())
    }

    /// The size of the vocabulary a (resolved) run trains on: 256 bytes, or the tokenizer's.
    /// Prepared sources are checked against it: each manifest must name this tokenizer's
    /// hash. Err naming the tokenizer or manifest file.
    pub fn vocab_size(&self) -> Result<usize, SpecError> {
        let Some(path) = &self.tokenizer else {
            return Ok(BYTE_VOCAB);
        };
        let tokenizer = SubwordTokenizer::load(path)?;
        for s in &self.sources {
            if let Some(m) = source_files(&s.path)?.manifest
                && m.tokenizer.hash != tokenizer.hash
            {
                let msg = format!(
                    "the shards were made with tokenizer {}, not {} ({})",
                    m.tokenizer.hash,
                    tokenizer.hash,
                    path.display()
                );
                return Err(SpecError::field(
                    &s.path.join(super::manifest::MANIFEST),
                    "tokenizer.hash",
                    msg,
                ));
            }
        }
        Ok(tokenizer.vocab_size())
    }
}
