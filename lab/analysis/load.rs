//! Reading a sweep's results back from files only (never from training structs), so any
//! result can be re-analysed and re-plotted on any machine.

use std::path::Path;

use anyhow::Result;

use crate::run::Cell;
use crate::run::Manifest;
use crate::run::dir::CONFIG;
use crate::run::{EvalRow, MetricRow, RouterRow, RouterStateRow, RunDir, Summary, read_rows};

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
    /// The model's vocabulary (`config.toml`; bytes where it does not parse).
    pub vocab_size: usize,
    /// What generating from its final model cost, where measured (`generation.json`).
    pub generation: Option<crate::run::generation::Generation>,
}

/// A sweep's files: the manifest, every run that has a summary (cells never started are left
/// out), and the runs whose files do not parse, each with why (left out, and reported).
pub struct Loaded {
    pub manifest: Manifest,
    pub runs: Vec<RunData>,
    pub skipped: Vec<String>,
}

pub fn load(dir: &Path) -> Result<Loaded> {
    let manifest = Manifest::read(dir)?;
    let (mut runs, mut skipped) = (Vec::new(), Vec::new());
    for cell in &manifest.cells {
        match read_run(&dir.join(&cell.name), cell) {
            Ok(Some(run)) => runs.push(run),
            Ok(None) => {}
            Err(e) => skipped.push(format!("{}: {e:#}", cell.name)),
        }
    }
    Ok(Loaded {
        manifest,
        runs,
        skipped,
    })
}

/// One run directory's files; `None` when the cell never started.
fn read_run(d: &Path, cell: &Cell) -> Result<Option<RunData>> {
    let run_dir = RunDir::new(d);
    let Some(summary) = run_dir.read_summary()? else {
        return Ok(None);
    };
    let generation = run_dir.read_generation();
    let spec = std::fs::read_to_string(d.join(CONFIG))
        .ok()
        .and_then(|t| toml::from_str::<crate::spec::RunSpec>(&t).ok());
    Ok(Some(RunData {
        cell: cell.clone(),
        generation,
        summary,
        evals: read_rows(d)?,
        metrics: read_rows(d)?,
        router: read_rows(d)?,
        router_state: read_rows(d)?,
        ffn: spec.as_ref().map(|s| s.ffn.summary_line()),
        vocab_size: spec.map_or(crate::model::BYTE_VOCAB, |s| s.model.vocab_size()),
    }))
}

/// The most points a run's training curve keeps on the page: the page stays small at the
/// flagship's size, and every spike is kept whatever the thinning.
const MAX_POINTS: usize = 400;

/// `(step, value)` of a run's metrics, at most [`MAX_POINTS`] evenly spaced rows plus every
/// loss spike (so thinning never hides one).
pub fn thin(metrics: &[MetricRow], value: fn(&MetricRow) -> f64) -> (Vec<f64>, Vec<f64>) {
    let every = metrics.len().div_ceil(MAX_POINTS).max(1);
    let last = metrics.len().saturating_sub(1);
    let keep = |(i, m): &(usize, &MetricRow)| i % every == 0 || *i == last || m.loss_spike == 1;
    metrics
        .iter()
        .enumerate()
        .filter(keep)
        .map(|(_, m)| (m.step as f64, value(m)))
        .unzip()
}
