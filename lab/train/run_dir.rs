//! A run directory and its files. Whole files (`config.toml`, `summary.json`) are written to a
//! temporary name and renamed, so a killed run never leaves half of one; CSV rows are appended
//! and flushed as they are produced, so a killed run keeps every finished row.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub const CONFIG: &str = "config.toml";
pub const METRICS: &str = "metrics.csv";
pub const EVALS: &str = "evals.csv";
pub const ROUTER: &str = "router.csv";
pub const ROUTER_DOMAINS: &str = "router_domains.csv";
/// Router state per logged step (e.g. loss-free balancing's biases); only for routers with any.
pub const ROUTER_STATE: &str = "router_state.csv";
pub const SUMMARY: &str = "summary.json";
pub const CHECKPOINT: &str = "checkpoint";

pub const METRICS_HEADER: &[&str] = &[
    "step",
    "tokens",
    "flops",
    "lr",
    "loss",
    "aux_loss",
    "z_loss",
    "grad_norm",
    "tokens_per_s",
    "mem_in_use",
    "mem_reserved",
    "rss",
    "loss_spike",
    "grad_spike",
];
/// `evals.csv` starts with these columns, then `val_loss_<stream>` for every validation stream.
pub const EVALS_HEADER: &[&str] = &["step", "tokens", "flops", "val_loss"];
pub const ROUTER_DOMAINS_HEADER: &[&str] = &[
    "step",
    "layer",
    "domain",
    "expert",
    "share",
    "mutual_information_bits",
    "max_bits",
];
pub const ROUTER_STATE_HEADER: &[&str] = &["step", "layer", "quantity", "expert", "value"];
pub const ROUTER_HEADER: &[&str] = &[
    "step",
    "layer",
    "expert",
    "load_share",
    "max_vio",
    "entropy",
    "dropped_fraction",
    "dead_experts",
];

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

/// An append-only CSV file whose rows are flushed as written.
pub struct CsvLog {
    writer: csv::Writer<BufWriter<File>>,
}

impl CsvLog {
    /// Open `path` for appending; write `header` first if the file is new or empty.
    pub fn open<S: AsRef<str>>(path: &Path, header: &[S]) -> Result<Self> {
        let exists = path.metadata().map(|m| m.len() > 0).unwrap_or(false);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(file));
        if !exists {
            writer.write_record(header.iter().map(|h| h.as_ref()))?;
            writer.flush()?;
        }
        Ok(CsvLog { writer })
    }

    pub fn row(&mut self, fields: &[String]) -> Result<()> {
        self.writer.write_record(fields)?;
        self.writer.flush()?;
        Ok(())
    }
}

/// Format an optional number as a CSV field (empty when absent).
pub fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}
