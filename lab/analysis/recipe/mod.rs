//! The analysis of a recipe experiment (an experiment with a `[teacher]`, e.g.
//! `small-model-recipe`): each lever arm's gain over the baseline arm at each size, paired by
//! seed; per validation domain; and the slope of the gain against log parameters, which tests
//! LLaMA-3's "anti-scale" conjecture (the smaller the model, the more the lever helps).
//!
//! Gain = baseline loss − lever loss (nats/byte; positive: the lever helps). An arm that
//! averages checkpoints is scored by its averaged model (the recipe's product); its last
//! model's gain is reported beside it. A lever that names what it aims at (`recipe.aims_at`:
//! annealing up-samples math and code to improve math and code) is also scored there: the
//! gain on those streams' mean loss and in their exact-match rates ([`AimResult`]); the
//! mixture's loss is then its cost.

pub mod figures;
pub mod report;
pub mod study;

pub use crate::analysis::stats::{Slope, slope};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::load::RunData;
use crate::analysis::stats::{Paired, paired};
use crate::run::{LeverAim, Manifest, RunStatus};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecipeAnalysis {
    pub baseline_arm: String,
    /// Student sizes (name, parameters), smallest first.
    pub sizes: Vec<(String, u64)>,
    pub levers: Vec<Lever>,
    pub teacher: Option<TeacherResult>,
    pub margin: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeacherResult {
    pub cell: String,
    pub params: u64,
    pub final_val_loss: Option<f64>,
    /// The teacher's forward FLOPs the distilling students used, in all (not charged to
    /// their budgets unless their summaries say so).
    pub forward_flops_used: f64,
    pub charged: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lever {
    pub arm: String,
    /// What the arm changes, in words.
    pub uses: String,
    pub by_size: Vec<LeverAtSize>,
    /// Over all sizes (sizes as fixed effects).
    pub pooled: Option<Paired>,
    /// Pooled gain per validation domain.
    pub by_domain: BTreeMap<String, Option<Paired>>,
    pub slope: Option<Slope>,
    /// The lever on what it aims at, when its recipe names it.
    #[serde(default)]
    pub aim: Option<AimResult>,
}

/// A lever scored on its aim, pooled over sizes (sizes as fixed effects).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AimResult {
    pub streams: Vec<String>,
    /// Gain on the mean validation loss of `streams` (nats/byte; positive: the lever helps).
    pub gain: Option<Paired>,
    /// Per question stream, the gain in exact-match rate (lever − baseline, of the last model:
    /// positive, more answers exactly right), judged with ±[`RATE_MARGIN`] as equivalent.
    pub exact_match: Vec<(String, Option<Paired>)>,
}

/// Exact-match rates within ±1 percentage point count as equivalent.
pub const RATE_MARGIN: f64 = 0.01;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeverAtSize {
    pub size: String,
    pub params: u64,
    pub gain: Option<Paired>,
    /// For an averaging arm: the gain of its last (not averaged) model.
    pub gain_last: Option<Paired>,
}

/// The loss a run is scored by: its averaged model's when it has one, else its last model's.
fn scored(r: &RunData, by_stream: Option<&str>) -> Option<f64> {
    let s = &r.summary;
    match by_stream {
        None => s.final_val_loss_averaged.or(s.final_val_loss),
        Some(d) => s
            .final_val_loss_by_stream_averaged
            .get(d)
            .or(s.final_val_loss_by_stream.get(d))
            .copied(),
    }
}

/// Paired gains over the baseline, read from the runs.
struct Pairs<'a> {
    runs: &'a [RunData],
    baseline: &'a str,
}

impl Pairs<'_> {
    fn find(&self, size: &str, arm: &str, seed: u64) -> Option<&RunData> {
        self.runs.iter().find(|r| {
            r.cell.size == size
                && r.cell.arm == arm
                && r.cell.seed == seed
                && r.summary.status == RunStatus::Complete
        })
    }

    /// The gains of `arm` at `size`, one per seed with both runs finished, scored by `score`.
    fn gains(&self, size: &str, arm: &str, score: &dyn Fn(&RunData) -> Option<f64>) -> Vec<f64> {
        let seeds = self
            .runs
            .iter()
            .filter(|r| r.cell.size == size && r.cell.arm == arm);
        seeds
            .filter_map(|r| {
                let base = score(self.find(size, self.baseline, r.cell.seed)?)?;
                Some(base - score(self.find(size, arm, r.cell.seed)?)?)
            })
            .collect()
    }
}

pub fn analyze(manifest: &Manifest, runs: &[RunData]) -> RecipeAnalysis {
    let baseline = manifest.reference_arm.clone();
    // Student sizes: those with baseline runs (the teacher's size has none unless shared).
    let sizes: Vec<(String, u64)> = manifest
        .sizes
        .iter()
        .filter_map(|s| {
            let r = runs
                .iter()
                .find(|r| &r.cell.size == s && r.cell.arm == baseline)?;
            Some((s.clone(), r.summary.params.total))
        })
        .collect();
    let domains: Vec<String> = runs
        .iter()
        .flat_map(|r| r.summary.final_val_loss_by_stream.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let pairs = Pairs {
        runs,
        baseline: &baseline,
    };
    let m = manifest.equivalence_margin;
    let levers = manifest
        .arms
        .iter()
        .filter(|a| **a != baseline)
        .map(|arm| {
            let mut l = lever(&pairs, arm, &sizes, &domains, m);
            l.aim = (manifest.aims.get(arm)).map(|aim| aim_result(&pairs, arm, &sizes, aim, m));
            l
        })
        .collect();
    RecipeAnalysis {
        baseline_arm: baseline.clone(),
        sizes,
        levers,
        teacher: teacher(manifest, runs),
        margin: m,
    }
}

/// One lever arm against the baseline: per size, pooled, per domain, and the slope.
fn lever(p: &Pairs, arm: &str, sizes: &[(String, u64)], domains: &[String], m: f64) -> Lever {
    let overall = |r: &RunData| scored(r, None);
    let last = |r: &RunData| r.summary.final_val_loss;
    let per_size: Vec<Vec<f64>> = sizes
        .iter()
        .map(|(s, _)| p.gains(s, arm, &overall))
        .collect();
    let averages = p
        .runs
        .iter()
        .any(|r| r.cell.arm == arm && r.summary.averaged_snapshots > 0);
    let by_size = sizes
        .iter()
        .zip(&per_size)
        .map(|((s, params), g)| LeverAtSize {
            size: s.clone(),
            params: *params,
            gain: paired(std::slice::from_ref(g), m),
            gain_last: averages
                .then(|| paired(&[p.gains(s, arm, &last)], m))
                .flatten(),
        })
        .collect();
    let by_domain = domains
        .iter()
        .map(|d| {
            let score = |r: &RunData| scored(r, Some(d));
            let groups: Vec<Vec<f64>> =
                sizes.iter().map(|(s, _)| p.gains(s, arm, &score)).collect();
            (d.clone(), paired(&groups, m))
        })
        .collect();
    // One point per size (its mean gain): the seeds of a size are replicates of one x, so
    // per-seed points would claim degrees of freedom the design does not have.
    let points: Vec<(f64, f64)> = sizes
        .iter()
        .zip(&per_size)
        .filter(|(_, g)| !g.is_empty())
        .map(|((_, n), g)| ((*n as f64).ln(), g.iter().sum::<f64>() / g.len() as f64))
        .collect();
    Lever {
        arm: arm.to_string(),
        uses: uses(p.runs, arm),
        by_size,
        pooled: paired(&per_size, m),
        by_domain,
        slope: slope(&points),
        aim: None,
    }
}

/// `arm` against the baseline on what it aims at, pooled over sizes.
fn aim_result(p: &Pairs, arm: &str, sizes: &[(String, u64)], aim: &LeverAim, m: f64) -> AimResult {
    let mean_loss = |r: &RunData| {
        let losses: Option<Vec<f64>> = aim.streams.iter().map(|s| scored(r, Some(s))).collect();
        losses.map(|l| l.iter().sum::<f64>() / l.len() as f64)
    };
    let loss_gains: Vec<Vec<f64>> = (sizes.iter())
        .map(|(s, _)| p.gains(s, arm, &mean_loss))
        .collect();
    let exact_match = (aim.exact_match.iter())
        .map(|stream| {
            // A rate's gain is the lever's minus the baseline's: `gains` subtracts the other way.
            let rate = |r: &RunData| {
                let e = r.summary.final_exact_match_by_stream.get(stream)?;
                Some(-e.rate)
            };
            let groups: Vec<Vec<f64>> = sizes.iter().map(|(s, _)| p.gains(s, arm, &rate)).collect();
            (stream.clone(), paired(&groups, RATE_MARGIN))
        })
        .collect();
    AimResult {
        streams: aim.streams.clone(),
        gain: paired(&loss_gains, m),
        exact_match,
    }
}

/// What an arm's runs changed, read from their summaries.
fn uses(runs: &[RunData], arm: &str) -> String {
    let Some(r) = runs.iter().find(|r| r.cell.arm == arm) else {
        return "no finished run".into();
    };
    let s = &r.summary;
    let mut parts = Vec::new();
    if s.anneal_switch_step.is_some() {
        parts.push("annealing data over the final decay".to_string());
    }
    if s.averaged_snapshots > 0 {
        parts.push(format!("the average of {} snapshots", s.averaged_snapshots));
    }
    if let Some(d) = &s.distill {
        let k = if d.top_k > 0 {
            format!(", top-{}", d.top_k)
        } else {
            String::new()
        };
        parts.push(format!(
            "distillation (w {}, T {}{k})",
            d.weight, d.temperature
        ));
    }
    if parts.is_empty() {
        "nothing beyond the baseline".into()
    } else {
        parts.join(" + ")
    }
}

fn teacher(manifest: &Manifest, runs: &[RunData]) -> Option<TeacherResult> {
    let cell = manifest.teacher.clone()?;
    let t = runs.iter().find(|r| r.cell.name == cell);
    let distilled = runs.iter().filter_map(|r| r.summary.distill.as_ref());
    Some(TeacherResult {
        params: t.map_or(0, |t| t.summary.params.total),
        final_val_loss: t.and_then(|t| t.summary.final_val_loss),
        forward_flops_used: distilled.clone().map(|d| d.teacher_forward_flops).sum(),
        charged: distilled.clone().any(|d| d.teacher_flops_charged),
        cell,
    })
}
