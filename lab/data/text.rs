//! A text file, or every file under a directory (sorted by path, hidden files left out), as one
//! stream whose last `val_fraction` is held out for validation.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::stream::{Corpus, Stream, TokenSource};

pub struct TextSource {
    pub path: PathBuf,
    pub val_fraction: f64,
}

impl TokenSource for TextSource {
    fn describe(&self) -> String {
        format!("text:{}", self.path.display())
    }

    fn load(&self) -> Result<Corpus> {
        let files = super::documents::files_under(&self.path)?;
        let mut bytes = Vec::new();
        for f in &files {
            bytes.extend(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?);
        }
        if bytes.is_empty() {
            bail!("{}: no text found", self.path.display());
        }
        let val_len = ((bytes.len() as f64) * self.val_fraction).round() as usize;
        let val = bytes.split_off(bytes.len() - val_len);
        Ok(Corpus {
            streams: vec![Stream {
                name: "text".into(),
                train: bytes.into(),
                val: val.into(),
                weight: 1.0,
                anneal_weight: 1.0,
                val_answers: None,
                line_aligned_val: false,
            }],
        })
    }
}
