//! The generated corpus as a [`TokenSource`]: every domain pre-generated into memory once per
//! run (generation is never the bottleneck; `lab corpus` measures its speed).

use anyhow::Result;

use super::{CorpusConfig, Domain, Generator, Split};
use crate::data::spec::{DataSpec, DomainWeights};
use crate::data::stream::{Corpus, Stream, TokenSource};

pub struct GeneratedSource {
    pub config: CorpusConfig,
    pub train_bytes: usize,
    pub val_fraction: f64,
    pub weights: DomainWeights,
    pub anneal_weights: Option<DomainWeights>,
    /// Validation bytes per stream at least (beyond `train_bytes · val_fraction / 4`).
    pub min_val_bytes: usize,
}

impl GeneratedSource {
    pub fn from_spec(data: &DataSpec, min_val_bytes: usize) -> Self {
        GeneratedSource {
            config: CorpusConfig {
                seed: data.corpus_seed,
                entities: data.entities,
                heldout_facts: data.heldout_facts,
            },
            train_bytes: data.corpus_bytes,
            val_fraction: data.val_fraction,
            weights: data.weights,
            anneal_weights: data.anneal.then_some(data.anneal_weights),
            min_val_bytes,
        }
    }
}

impl TokenSource for GeneratedSource {
    fn describe(&self) -> String {
        format!(
            "generated (seed {}, {} entities, {} bytes)",
            self.config.seed, self.config.entities, self.train_bytes
        )
    }

    fn load(&self) -> Result<Corpus> {
        let generator = Generator::new(&self.config);
        let anneal = self.anneal_weights.unwrap_or(self.weights);
        // Bytes per domain in proportion to the larger of its two weights.
        let share = |d: Domain| self.weights.of(d).max(anneal.of(d));
        let total: f64 = Domain::TRAINING.iter().map(|d| share(*d)).sum();
        let val_bytes = ((self.train_bytes as f64 * self.val_fraction) / 4.0)
            .max(8192.0)
            .max(self.min_val_bytes as f64) as usize;
        let mut streams = Vec::new();
        for d in Domain::ALL {
            let (train, weight, anneal_weight) = match d {
                Domain::KnowledgeHeldout => (Vec::new(), 0.0, 0.0),
                _ => {
                    let bytes = (self.train_bytes as f64 * share(d) / total).max(4096.0) as usize;
                    (
                        generator.text(d, Split::Train, bytes),
                        self.weights.of(d),
                        anneal.of(d),
                    )
                }
            };
            let (val, answers) = generator.text_with_answers(d, Split::Val, val_bytes);
            let val_answers = (!answers.is_empty()).then(|| {
                let mut mask = vec![false; val.len()];
                for r in answers {
                    mask[r].iter_mut().for_each(|m| *m = true);
                }
                mask
            });
            streams.push(Stream {
                name: d.name().to_string(),
                train: train.into(),
                val: val.into(),
                val_answers,
                weight,
                anneal_weight,
                line_aligned_val: true,
            });
        }
        Ok(Corpus { streams })
    }
}
