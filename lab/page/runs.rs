//! The run browser's data: one row per run (what the table sorts and filters), and per run the
//! curves the page overlays when runs are selected (training loss, validation loss) and its
//! router load per layer and expert over steps (the heatmap).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analysis::load::{RunData, thin};
use crate::run::RunStatus;

#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub name: String,
    pub size: String,
    pub arm: String,
    pub seed: u64,
    /// The peak learning rate, in a learning-rate sweep.
    pub lr: Option<f64>,
    pub status: String,
    pub steps: usize,
    pub final_val_loss: Option<f64>,
    pub loss_spikes: usize,
    /// Peak memory in MiB: the device's where measured, else the process's resident set.
    pub peak_mib: Option<f64>,
    pub tokens_per_s: f64,
    /// The run's directory, relative to the page (`report.html` sits in the results folder).
    pub dir: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunCurves {
    pub train: (Vec<f64>, Vec<f64>),
    pub val: (Vec<f64>, Vec<f64>),
    /// Rows "block l · expert e", columns the evaluation steps, cells the load share.
    pub router: Option<Heatmap>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Heatmap {
    pub x: Vec<f64>,
    pub y: Vec<String>,
    pub z: Vec<Vec<Option<f64>>>,
}

pub fn rows(runs: &[RunData]) -> Vec<RunRow> {
    runs.iter().map(row).collect()
}

fn row(r: &RunData) -> RunRow {
    let s = &r.summary;
    let status = match s.status {
        RunStatus::Complete => "complete",
        RunStatus::Diverged => "diverged",
        RunStatus::Running => "unfinished",
    };
    let mem = s.memory.peak_bytes_in_use.or(s.memory.peak_rss_bytes);
    RunRow {
        name: r.cell.name.clone(),
        size: r.cell.size.clone(),
        arm: r.cell.arm.clone(),
        seed: r.cell.seed,
        lr: r.cell.lr,
        status: status.into(),
        steps: s.steps_done,
        final_val_loss: s.final_val_loss,
        loss_spikes: s.spikes.loss_spikes,
        peak_mib: mem.map(|b| b as f64 / (1024.0 * 1024.0)),
        tokens_per_s: s.tokens_per_s,
        dir: r.cell.name.clone(),
    }
}

pub fn curves(runs: &[RunData]) -> BTreeMap<String, RunCurves> {
    let curve = |r: &RunData| RunCurves {
        train: thin(&r.metrics, |m| m.loss),
        val: (
            r.evals.iter().map(|e| e.step as f64).collect(),
            r.evals.iter().map(|e| e.val_loss).collect(),
        ),
        router: router_heatmap(r),
    };
    runs.iter()
        .map(|r| (r.cell.name.clone(), curve(r)))
        .collect()
}

/// The router's load share per (layer, expert) at each evaluation; None for runs without a
/// router.
fn router_heatmap(r: &RunData) -> Option<Heatmap> {
    if r.router.is_empty() {
        return None;
    }
    let mut steps: Vec<usize> = r.router.iter().map(|x| x.step).collect();
    steps.sort();
    steps.dedup();
    let mut keys: Vec<(usize, usize)> = r.router.iter().map(|x| (x.layer, x.expert)).collect();
    keys.sort();
    keys.dedup();
    let mut z = vec![vec![None; steps.len()]; keys.len()];
    for x in &r.router {
        let (Ok(i), Ok(j)) = (
            keys.binary_search(&(x.layer, x.expert)),
            steps.binary_search(&x.step),
        ) else {
            continue;
        };
        z[i][j] = x.load_share.is_finite().then_some(x.load_share);
    }
    Some(Heatmap {
        x: steps.iter().map(|s| *s as f64).collect(),
        y: keys
            .iter()
            .map(|(l, e)| format!("block {l} · expert {e}"))
            .collect(),
        z,
    })
}
