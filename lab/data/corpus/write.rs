//! `lab corpus --write DIR`: the generated corpus's training domains as JSON Lines files, one
//! per domain, so that `lab data tokenizer` and `lab data prepare` can be tried (and tested)
//! on text that needs no download.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{CorpusConfig, Domain, Generator, Split};
use crate::data::spec::DataSpec;

/// Lines of generated text per JSON Lines document.
pub const LINES_PER_DOCUMENT: usize = 8;

/// Write `bytes` of training text per domain to `dir/<domain>.jsonl`, in documents of
/// [`LINES_PER_DOCUMENT`] lines; returns the files written.
pub fn write_domains(dir: &Path, bytes: usize, seed: u64) -> Result<Vec<PathBuf>> {
    let defaults = DataSpec::default();
    let generator = Generator::new(&CorpusConfig {
        seed,
        entities: defaults.entities,
        heldout_facts: defaults.heldout_facts,
    });
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for d in Domain::TRAINING {
        let text = String::from_utf8(generator.text(d, Split::Train, bytes))
            .context("generated text is UTF-8")?;
        let lines: Vec<&str> = text.lines().collect();
        let path = dir.join(format!("{}.jsonl", d.name()));
        let tmp = path.with_extension("jsonl.tmp");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for doc in lines.chunks(LINES_PER_DOCUMENT) {
            let record = serde_json::json!({ "text": doc.join("\n") + "\n" });
            writeln!(out, "{record}")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        written.push(path);
    }
    Ok(written)
}
