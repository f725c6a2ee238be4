//! A corpus as named streams, each with disjoint training and validation tokens, and the
//! trait of what produces one.

use anyhow::Result;

use super::tokens::Tokens;

/// One stream of a corpus.
pub struct Stream {
    pub name: String,
    pub train: Tokens,
    pub val: Tokens,
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
