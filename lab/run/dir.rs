//! A run directory: where its files are, and whole-file writes. Whole files (`config.toml`,
//! `summary.json`) are written to a temporary name and renamed, so a killed run never leaves
//! half of one; CSV rows are appended and flushed as they are produced ([`super::log`]), so a
//! killed run keeps every finished row.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::log::read_rows;
use super::rows::{EvalRow, MetricRow, ProbeRow, RouterDomainRow, RouterRow, RouterStateRow, Row};
use super::summary::Summary;
use crate::spec::RunConfig;

pub const CONFIG: &str = "config.toml";
pub const SUMMARY: &str = "summary.json";
pub const CHECKPOINT: &str = "checkpoint";

#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.path)
            .with_context(|| format!("creating run directory {}", self.path.display()))
    }

    /// Write `config.toml`, the resolved spec (atomically); returns its path.
    pub fn write_config(&self, config: &RunConfig) -> Result<PathBuf> {
        let path = self.file(CONFIG);
        write_atomic(&path, config.spec_toml().as_bytes())?;
        Ok(path)
    }

    /// Write `summary.json` (atomically).
    pub fn write_summary(&self, summary: &Summary) -> Result<()> {
        let json = serde_json::to_string_pretty(summary)?;
        write_atomic(&self.file(SUMMARY), json.as_bytes())
    }

    /// Read `summary.json`; `None` when the run has none yet.
    pub fn read_summary(&self) -> Result<Option<Summary>> {
        let path = self.file(SUMMARY);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        let summary =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Some(summary))
    }

    /// Every row file parses (a file cut mid-line or overwritten does not). Err: the first
    /// that does not, named.
    pub fn check_rows(&self) -> Result<()> {
        read_rows::<MetricRow>(&self.path)?;
        read_rows::<EvalRow>(&self.path)?;
        read_rows::<RouterRow>(&self.path)?;
        read_rows::<RouterDomainRow>(&self.path)?;
        read_rows::<RouterStateRow>(&self.path)?;
        read_rows::<ProbeRow>(&self.path)?;
        Ok(())
    }

    /// In every row file, keep the header and the rows whose `step` (first column) is below
    /// `below`: rows past a checkpoint belong to the attempt that was interrupted. With
    /// `below = 0` (a fresh start) the files go entirely, header too: an earlier version's
    /// columns must not head this run's rows.
    pub fn truncate_rows(&self, below: usize) -> Result<()> {
        for name in [
            MetricRow::FILE,
            EvalRow::FILE,
            RouterRow::FILE,
            RouterDomainRow::FILE,
            RouterStateRow::FILE,
            ProbeRow::FILE,
        ] {
            truncate_rows(&self.file(name), below)?;
        }
        Ok(())
    }
}

/// Keep the header and the rows whose `step` (first column) is below `below` (nothing at all
/// when `below` is 0).
fn truncate_rows(path: &Path, below: usize) -> Result<()> {
    if below == 0 {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Ok(());
    };
    let mut kept = format!("{header}\n");
    for line in lines {
        let step: Option<usize> = line.split(',').next().and_then(|s| s.parse().ok());
        if step.is_some_and(|s| s < below) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    write_atomic(path, kept.as_bytes())
}

/// Write `contents` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    {
        let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}
