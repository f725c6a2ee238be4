//! `sweep.json`: a sweep's manifest, the cells it runs and what its analysis needs to know
//! about them. Written by the sweep; read by the analysis, the figures and `--status` (all
//! above this layer), so it lives with the run directory's other file types.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One (size, arm, seed) run of an expanded experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// `<size>-<arm>-s<seed>`: the run directory's name.
    pub name: String,
    pub size: String,
    pub arm: String,
    pub seed: u64,
    /// Model shape, for reports (absent in manifests of older versions: 0).
    #[serde(default)]
    pub d_model: usize,
    #[serde(default)]
    pub n_layers: usize,
    /// The cell's learning rate, in experiments with a learning-rate axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// The cell's training FLOPs, in IsoFLOP experiments (its profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<f64>,
    /// The cell's training mixture, in experiments with a mixture axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixture: Option<Mixture>,
}

/// What a mixture axis minimises: a weighted sum of streams' final losses (`measure`: `loss`,
/// the validation loss, or `answer_loss`, the loss on the answer bytes of question streams).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixTarget {
    /// `(stream, weight)`, the weights summing to 1.
    pub streams: Vec<(String, f64)>,
    pub measure: String,
}

/// A training mixture on a sweep's mixture axis: its name (`base`, `uniform`, or `d<i>` for the
/// i-th Dirichlet draw) and its weights, one per domain of the manifest's `domains`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mixture {
    pub name: String,
    pub weights: Vec<f64>,
}

/// `sweep.json`: what the analysis needs to know about the cells.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub experiment: String,
    pub preset: String,
    pub source: PathBuf,
    pub description: String,
    pub cells: Vec<Cell>,
    pub arms: Vec<String>,
    pub sizes: Vec<String>,
    /// The arm the budget is set from (the MoE under test).
    pub reference_arm: String,
    /// The arm the verdicts compare it with: the dense arm matched on active FLOPs if there is
    /// one, else the first other arm.
    pub baseline_arm: Option<String>,
    /// A difference inside ±this (nats) counts as equivalent (`[analysis]` of the experiment).
    #[serde(default = "default_margin")]
    pub equivalence_margin: f64,
    /// The learning-rate axis, ascending; empty when the experiment has none.
    #[serde(default)]
    pub learning_rates: Vec<f64>,
    /// The domains a mixture axis weighs (the generated corpus's, or the `[data] sources`),
    /// in the order of each cell's mixture weights; empty without the axis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// The least weight the optimal mixture may give a domain (`[mixtures] floor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixture_floor: Option<f64>,
    /// The mixture axis's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixture_target: Option<MixTarget>,
    /// The teacher's cell in experiments with one (`[teacher]`): trained first, not an arm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<String>,
    /// The results directory beside this one whose learning-rate analysis answers this
    /// report's stability claim (`[analysis] stability_from`); publishing that sweep
    /// re-publishes this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stability_from: Option<String>,
    /// Per lever arm of a recipe experiment, what it aims to improve (`recipe.aims_at`): the
    /// report answers the lever on these, with the mixture loss beside them as its cost.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub aims: std::collections::BTreeMap<String, LeverAim>,
}

/// What a training lever aims to improve: the mean validation loss over `streams`, and the
/// exact-match rate of the question streams in `exact_match` (LLaMA-3 anneals on math and
/// code to gain there, and reports those gains, not the mixture's loss).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeverAim {
    pub streams: Vec<String>,
    #[serde(default)]
    pub exact_match: Vec<String>,
}

fn default_margin() -> f64 {
    DEFAULT_EQUIVALENCE_MARGIN
}

/// The equivalence margin (nats) of an experiment that sets none.
pub const DEFAULT_EQUIVALENCE_MARGIN: f64 = 0.01;

pub const MANIFEST: &str = "sweep.json";

impl Manifest {
    /// The manifest of the sweep whose results are in `dir`.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("{}: no sweep here (run `lab sweep` first)", path.display())
        })?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}
