//! An arm's runs on the mixture axis: each mixture's seeds with their target and domain
//! losses, and the same as rows for the fits.

use serde::{Deserialize, Serialize};

use crate::analysis::load::RunData;
use crate::run::MixTarget;

/// One mixture's runs in one arm: the seeds' target losses, and their domains' losses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixPoint {
    pub name: String,
    pub weights: Vec<f64>,
    /// `(seed, target loss)`.
    pub losses: Vec<(u64, f64)>,
    /// Per seed (in `losses`' order), the target's components (each target stream's weighted
    /// loss).
    pub components: Vec<Vec<f64>>,
}

impl MixPoint {
    pub fn mean(&self) -> f64 {
        self.losses.iter().map(|l| l.1).sum::<f64>() / self.losses.len() as f64
    }
}

/// A run's target components: each target stream's final measure times the stream's weight
/// (its validation loss, its answer loss, or the share of its answers not reproduced exactly,
/// 1 − exact match, so that lower is better for every measure); the target is their sum.
pub(super) fn components(r: &RunData, target: &MixTarget) -> Option<Vec<f64>> {
    let s = &r.summary;
    let measure = |stream: &str| match target.measure.as_str() {
        "answer_loss" => s.final_answer_loss_by_stream.get(stream).copied(),
        "exact_match" => (s.final_exact_match_by_stream.get(stream)).map(|e| 1.0 - e.rate),
        _ => s.final_val_loss_by_stream.get(stream).copied(),
    };
    let parts = target.streams.iter().map(|(st, w)| Some(w * measure(st)?));
    let parts: Option<Vec<f64>> = parts.collect();
    parts.filter(|l| l.iter().all(|x| x.is_finite()))
}

/// An arm's runs as rows: each run's mixture, target, domains' losses and mixture index.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub mixtures: Vec<Vec<f64>>,
    pub targets: Vec<f64>,
    pub components: Vec<Vec<f64>>,
    pub groups: Vec<usize>,
}

pub fn rows(points: &[MixPoint]) -> Rows {
    let mut out = Rows::default();
    for (i, p) in points.iter().enumerate() {
        for ((_, l), d) in p.losses.iter().zip(&p.components) {
            out.mixtures.push(p.weights.clone());
            out.targets.push(*l);
            out.components.push(d.clone());
            out.groups.push(i);
        }
    }
    out
}
