//! An arm's runs on the mixture axis: each mixture's seeds with their target and domain
//! losses, and the same as rows for the fits.

use serde::{Deserialize, Serialize};

use crate::analysis::load::RunData;

/// One mixture's runs in one arm: the seeds' target losses, and their domains' losses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixPoint {
    pub name: String,
    pub weights: Vec<f64>,
    /// `(seed, target loss)`.
    pub losses: Vec<(u64, f64)>,
    /// Per seed (in `losses`' order), each domain's final validation loss.
    pub domain_losses: Vec<Vec<f64>>,
}

impl MixPoint {
    pub fn mean(&self) -> f64 {
        self.losses.iter().map(|l| l.1).sum::<f64>() / self.losses.len() as f64
    }
}

/// A run's domains' final validation losses; the target is their mean.
pub(super) fn domain_losses(r: &RunData, domains: &[String]) -> Option<Vec<f64>> {
    let by = &r.summary.final_val_loss_by_stream;
    let losses: Option<Vec<f64>> = domains.iter().map(|d| by.get(d).copied()).collect();
    losses.filter(|l| l.iter().all(|x| x.is_finite()))
}

pub(super) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// An arm's runs as rows: each run's mixture, target, domains' losses and mixture index.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub mixtures: Vec<Vec<f64>>,
    pub targets: Vec<f64>,
    pub domain_losses: Vec<Vec<f64>>,
    pub groups: Vec<usize>,
}

pub fn rows(points: &[MixPoint]) -> Rows {
    let mut out = Rows::default();
    for (i, p) in points.iter().enumerate() {
        for ((_, l), d) in p.losses.iter().zip(&p.domain_losses) {
            out.mixtures.push(p.weights.clone());
            out.targets.push(*l);
            out.domain_losses.push(d.clone());
            out.groups.push(i);
        }
    }
    out
}
