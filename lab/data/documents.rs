//! Documents read from a user's inputs, one at a time so no corpus has to fit in memory:
//! - a text file is one document, or several where it holds the end-of-text marker (as
//!   TinyStories' text files do);
//! - a JSON Lines file (`.jsonl`) holds one document per line, its text under a field
//!   (`text` unless told);
//! - a directory is every such file under it, in path order.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::SpecError;

/// Where documents come from, and how they are cut.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Input files in reading order (directories expanded).
    pub files: Vec<PathBuf>,
    /// The JSON Lines field that holds a document's text.
    pub field: String,
    /// The marker that separates documents inside a text file (the tokenizer's end-of-text
    /// token's text), if any.
    pub separator: Option<String>,
}

fn io(path: &Path, e: impl std::fmt::Display) -> SpecError {
    SpecError::Io {
        file: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl Inputs {
    /// The files under `paths`; Err naming a path that does not exist, or when there is no
    /// file at all.
    pub fn new(
        paths: &[PathBuf],
        field: &str,
        separator: Option<String>,
    ) -> Result<Inputs, SpecError> {
        let mut files = Vec::new();
        for p in paths {
            if !p.exists() {
                return Err(io(p, "no such file or directory"));
            }
            files.extend(files_under(p)?);
        }
        if files.is_empty() {
            let first = paths.first().cloned().unwrap_or_default();
            return Err(io(
                &first,
                "no input files (give text files, .jsonl files or directories)",
            ));
        }
        Ok(Inputs {
            files,
            field: field.to_string(),
            separator,
        })
    }

    /// Total size of the input files in bytes (the progress bar's length).
    pub fn bytes(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Every document in order, each with the number of input bytes it consumed; an Err item
    /// names the file (and line) that could not be read, and ends the iteration.
    pub fn documents(&self) -> impl Iterator<Item = Result<Document, SpecError>> + Send + '_ {
        let mut failed = false;
        self.files
            .iter()
            .flat_map(move |f| self.file_documents(f))
            .take_while(move |d| {
                let go = !failed;
                failed |= d.is_err();
                go
            })
    }

    fn file_documents(
        &self,
        path: &Path,
    ) -> Box<dyn Iterator<Item = Result<Document, SpecError>> + Send + '_> {
        if is_jsonl(path) {
            match File::open(path) {
                Ok(f) => Box::new(JsonLines {
                    path: path.to_path_buf(),
                    lines: BufReader::with_capacity(1 << 20, f).lines(),
                    line: 0,
                    field: &self.field,
                }),
                Err(e) => Box::new(std::iter::once(Err(io(path, e)))),
            }
        } else {
            let text = match std::fs::read(path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(t) => t,
                    Err(e) => {
                        let at = e.utf8_error().valid_up_to();
                        let m = format!("not UTF-8 text (invalid byte at offset {at})");
                        return Box::new(std::iter::once(Err(io(path, m))));
                    }
                },
                Err(e) => return Box::new(std::iter::once(Err(io(path, e)))),
            };
            let bytes = text.len() as u64;
            let parts: Vec<String> = match &self.separator {
                Some(sep) if text.contains(sep.as_str()) => text
                    .split(sep.as_str())
                    .filter(|p| !p.trim().is_empty())
                    .map(str::to_string)
                    .collect(),
                _ => vec![text],
            };
            let n = parts.len().max(1) as u64;
            Box::new(parts.into_iter().enumerate().map(move |(i, text)| {
                // The file's bytes are spread over its documents, the rest on the first.
                let share = bytes / n + if i == 0 { bytes % n } else { 0 };
                Ok(Document { text, bytes: share })
            }))
        }
    }
}

/// One document's text, and the input bytes it accounts for (for progress in MB/s).
pub struct Document {
    pub text: String,
    pub bytes: u64,
}

fn is_jsonl(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "ndjson")
    )
}

/// `path` if it is a file, else every file under it but hidden ones (`.name`), in path order.
pub fn files_under(path: &Path) -> Result<Vec<PathBuf>, SpecError> {
    let mut found = Vec::new();
    collect(path, &mut found)?;
    found.sort();
    Ok(found)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), SpecError> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(|e| io(path, e))? {
            let p = entry.map_err(|e| io(path, e))?.path();
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !hidden {
                collect(&p, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

struct JsonLines<'a> {
    path: PathBuf,
    lines: std::io::Lines<BufReader<File>>,
    line: usize,
    field: &'a str,
}

impl Iterator for JsonLines<'_> {
    type Item = Result<Document, SpecError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = match self.lines.next()? {
                Ok(l) => l,
                Err(e) => return Some(Err(io(&self.path, e))),
            };
            self.line += 1;
            if line.trim().is_empty() {
                continue;
            }
            return Some(self.parse(&line));
        }
    }
}

impl JsonLines<'_> {
    fn parse(&self, line: &str) -> Result<Document, SpecError> {
        let at = |m: String| SpecError::field(&self.path, &format!("line {}", self.line), m);
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| at(format!("not JSON: {e}")))?;
        let text = value.get(self.field).ok_or_else(|| {
            at(format!(
                "no field `{}` (choose another with --field)",
                self.field
            ))
        })?;
        let text = text
            .as_str()
            .ok_or_else(|| at(format!("field `{}` is not a string", self.field)))?;
        Ok(Document {
            text: text.to_string(),
            bytes: line.len() as u64 + 1,
        })
    }
}
