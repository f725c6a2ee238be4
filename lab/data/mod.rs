//! Training data: byte-level tokens (vocabulary 256) from a pluggable [`TokenSource`], cut into
//! windows of `seq_len + 1` bytes (inputs and next-byte targets).
//!
//! A corpus is a set of named streams (the generated corpus's domains, or one stream for a text
//! file), each with disjoint training and validation bytes and a mixture weight. Every training
//! row comes from one stream, so routing can be attributed to domains.

pub mod batches;
pub mod corpus;
pub mod spec;
pub mod text;

use anyhow::Result;

pub use batches::{Batch, Batches, ValBatch};
pub use spec::{DataSpec, DomainWeights, SourceKind};

/// One stream of a corpus.
pub struct Stream {
    pub name: String,
    pub train: Vec<u8>,
    pub val: Vec<u8>,
    /// Mixture weight during training (0: validation only).
    pub weight: f64,
    /// Mixture weight after the annealing switch (equal to `weight` when not annealing).
    pub anneal_weight: f64,
    /// For each validation byte, whether it belongs to an answer (the object of a stated
    /// fact); `None` for streams without answers.
    pub val_answers: Option<Vec<bool>>,
    /// Validation windows start at line starts (the generators make every validation line
    /// absent from training, so such windows never occur in training).
    pub line_aligned_val: bool,
}

pub struct Corpus {
    pub streams: Vec<Stream>,
}

/// Anything that can produce a corpus: a text file, the generator, a future dataset.
pub trait TokenSource {
    /// A short description for logs and summaries.
    fn describe(&self) -> String;
    fn load(&self) -> Result<Corpus>;
}

/// The source a spec asks for; a generated corpus makes at least `min_val_bytes` of
/// validation text per stream (for a large final evaluation).
pub fn source_for(data: &DataSpec, min_val_bytes: usize) -> Box<dyn TokenSource> {
    match data.source {
        SourceKind::Text => Box::new(text::TextSource {
            path: data
                .path
                .clone()
                .expect("validated: text source has a path"),
            val_fraction: data.val_fraction,
        }),
        SourceKind::Generated => Box::new(corpus::source::GeneratedSource::from_spec(
            data,
            min_val_bytes,
        )),
    }
}
