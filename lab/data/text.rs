//! A text file, or every file under a directory (sorted by path), as one stream whose last
//! `val_fraction` is held out for validation.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{Corpus, Stream, TokenSource};

pub struct TextSource {
    pub path: PathBuf,
    pub val_fraction: f64,
}

impl TokenSource for TextSource {
    fn describe(&self) -> String {
        format!("text:{}", self.path.display())
    }

    fn load(&self) -> Result<Corpus> {
        let mut files = Vec::new();
        collect(&self.path, &mut files)?;
        files.sort();
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

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_dir() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("listing {}", path.display()))?
        {
            collect(&entry?.path(), out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}
