//! Training data: byte-level tokens (vocabulary 256) from a pluggable [`TokenSource`], cut into
//! windows of `seq_len + 1` bytes (inputs and next-byte targets).
//!
//! Train and validation come from disjoint regions of the corpus (the source decides how to
//! split), so no validation window overlaps a training window.

pub mod batches;
pub mod generated;
pub mod text;

use anyhow::Result;

pub use batches::{Batch, Batches};

/// A corpus split into disjoint training and validation bytes.
pub struct Corpus {
    pub train: Vec<u8>,
    pub val: Vec<u8>,
}

/// Anything that can produce a corpus: a text file, a generator, a future dataset.
pub trait TokenSource {
    /// A short description for logs and summaries.
    fn describe(&self) -> String;
    fn load(&self) -> Result<Corpus>;
}

/// Split bytes into (train, val) with the last `val_fraction` as validation.
pub fn split_tail(mut bytes: Vec<u8>, val_fraction: f64) -> Corpus {
    let val_len = ((bytes.len() as f64) * val_fraction).round() as usize;
    let val = bytes.split_off(bytes.len() - val_len);
    Corpus { train: bytes, val }
}

/// The source a spec asks for.
pub fn source_for(data: &crate::spec::DataSpec) -> Box<dyn TokenSource> {
    use crate::spec::SourceKind;
    match data.source {
        SourceKind::Text => Box::new(text::TextSource {
            path: data
                .path
                .clone()
                .expect("validated: text source has a path"),
            val_fraction: data.val_fraction,
        }),
        SourceKind::Generated => Box::new(generated::GeneratedSource {
            bytes: data.corpus_bytes,
            val_fraction: data.val_fraction,
            seed: 0,
        }),
    }
}
