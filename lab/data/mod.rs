//! Training data: token ids from a pluggable [`TokenSource`], cut into windows of `seq_len + 1`
//! tokens (inputs and next-token targets).
//!
//! A corpus is a set of named streams (the generated corpus's domains, one stream for a text
//! file, or one per prepared source), each with disjoint training and validation tokens and a
//! mixture weight. Every training row comes from one stream, so routing can be attributed to
//! domains and sources. Bytes (vocabulary 256) are the default vocabulary; prepared sources
//! carry a subword tokenizer's ids (`tokenizer`, `prepare`, `shard`).

pub mod batches;
pub mod corpus;
pub mod documents;
pub mod manifest;
pub mod prepare;
pub mod shard;
pub mod sources;
pub mod spec;
mod stream;
pub mod text;
pub mod tokenizer;
pub mod tokens;

pub use batches::{Batch, Batches, ValBatch};
pub use spec::{DataSpec, DomainWeights, SourceKind};
pub use stream::{Corpus, Stream, TokenSource};
pub use tokens::Tokens;

/// The source a (resolved) spec asks for; a generated corpus makes at least `min_val_bytes`
/// of validation text per stream (for a large final evaluation). `vocab_size`: the run's.
pub fn source_for(
    data: &DataSpec,
    min_val_bytes: usize,
    vocab_size: usize,
) -> Box<dyn TokenSource> {
    match data.source {
        SourceKind::Prepared => Box::new(sources::PreparedSource {
            sources: data.sources.clone(),
            vocab_size,
        }),
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
