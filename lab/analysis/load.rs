//! Reading a sweep's results back from files only (never from training structs), so any
//! result can be re-analysed and re-plotted on any machine.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::sweep::Cell;
use crate::sweep::runner::{MANIFEST, Manifest};
use crate::train::run_dir;
use crate::train::summary::Summary;

#[derive(Debug, Clone, Deserialize)]
pub struct EvalRow {
    pub step: usize,
    pub tokens: u64,
    pub flops: f64,
    pub val_loss: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricRow {
    pub step: usize,
    pub flops: f64,
    pub loss: f64,
    pub grad_norm: f64,
    pub loss_spike: u8,
    pub grad_spike: u8,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RouterRow {
    pub step: usize,
    pub layer: usize,
    pub expert: usize,
    pub load_share: f64,
    pub max_vio: f64,
    pub entropy: f64,
    pub dropped_fraction: f64,
    pub dead_experts: usize,
}

/// A row of `router_state.csv`: per-expert router state after a logged step (e.g. loss-free
/// balancing's bias).
#[derive(Debug, Clone, Deserialize)]
pub struct RouterStateRow {
    pub step: usize,
    pub layer: usize,
    pub quantity: String,
    pub expert: usize,
    pub value: f64,
}

/// Everything one run directory holds.
#[derive(Debug, Clone)]
pub struct RunData {
    pub cell: Cell,
    pub summary: Summary,
    pub evals: Vec<EvalRow>,
    pub metrics: Vec<MetricRow>,
    pub router: Vec<RouterRow>,
    /// Empty for routers without state.
    pub router_state: Vec<RouterStateRow>,
    /// The feed-forward in words (`FfnSpec::summary_line` of `config.toml`), where it parses.
    pub ffn: Option<String>,
}

fn read_csv<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    if !path.exists() {
        return Ok(vec![]);
    }
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    r.deserialize()
        .map(|row| row.with_context(|| format!("parsing {}", path.display())))
        .collect()
}

/// The manifest and every cell that has a summary (cells never started are left out).
pub fn load(dir: &Path) -> Result<(Manifest, Vec<RunData>)> {
    let manifest_path = dir.join(MANIFEST);
    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).with_context(|| {
            format!(
                "{}: no sweep here (run `lab sweep` first)",
                manifest_path.display()
            )
        })?)
        .with_context(|| format!("parsing {}", manifest_path.display()))?;
    let mut runs = Vec::new();
    for cell in &manifest.cells {
        let d = dir.join(&cell.name);
        let Ok(text) = std::fs::read_to_string(d.join(run_dir::SUMMARY)) else {
            continue;
        };
        let summary: Summary = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", d.join(run_dir::SUMMARY).display()))?;
        runs.push(RunData {
            cell: cell.clone(),
            summary,
            evals: read_csv(&d.join(run_dir::EVALS))?,
            metrics: read_csv(&d.join(run_dir::METRICS))?,
            router: read_csv(&d.join(run_dir::ROUTER))?,
            router_state: read_csv(&d.join(run_dir::ROUTER_STATE))?,
            ffn: std::fs::read_to_string(d.join(run_dir::CONFIG))
                .ok()
                .and_then(|t| toml::from_str::<crate::spec::RunSpec>(&t).ok())
                .map(|spec| spec.ffn.summary_line()),
        });
    }
    Ok((manifest, runs))
}
