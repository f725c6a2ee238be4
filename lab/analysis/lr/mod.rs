//! Learning-rate sensitivity of a sweep with a learning-rate axis (`learning_rates` in the
//! experiment), after Wortsman et al. 2023, "Small-scale proxies for large-scale Transformer
//! training instabilities": per arm, final loss against learning rate, the optimal rate, the
//! LR sensitivity, divergence and spike rates, and the instability proxies; and the arms'
//! sensitivities compared, paired by seed.
//!
//! **LR sensitivity** (the paper's §3.1): `E_η[min(ℓ(η), ℓ0) − ℓ*]`, the mean over the
//! learning-rate grid (log-spaced, so a log-uniform η) of how far each rate's final loss lies
//! above the best rate's `ℓ*`, with losses capped at the loss at initialisation `ℓ0` (a
//! diverged run counts as no better than an untrained one, however large its loss). A run
//! that training stopped on a non-finite loss scores ℓ0, not its last evaluation before that
//! (which would understate the sensitivity); one that rose above ℓ0 and recovered keeps its
//! measured final loss, capped.
//! It is computed per seed (its own curve and its own `ℓ*`), so arms pair by seed.
//!
//! **Diverged**: the loss turned non-finite, or rose more than [`DIVERGENCE_MARGIN`] above `ℓ0`
//! at a step after the first (a run that blew up and later recovered under the decaying rate
//! has still diverged).

pub mod figures;
pub mod report;
pub mod study;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::decisive::report as decisive_report;
use crate::analysis::decisive::{Judged, Record};
use crate::analysis::load::RunData;
use crate::analysis::stats::{MeanCi, Paired, mean_ci, paired};
use crate::run::Manifest;
use crate::run::RunStatus;
use crate::run::rows::peak;

/// One arm at one size and one learning rate, over its seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LrPoint {
    pub lr: f64,
    pub runs: usize,
    /// Final validation loss per seed, capped at ℓ0 (seed order).
    pub losses: Vec<f64>,
    pub mean_loss: f64,
    pub min_loss: f64,
    pub max_loss: f64,
    pub diverged: usize,
    pub loss_spikes_per_1k: f64,
    /// Mean over seeds of the largest attention logit any layer reached in the run.
    pub attn_logit_peak: Option<f64>,
    /// Mean over seeds of the output logits' mean log-partition at the last step.
    pub output_log_z_final: Option<f64>,
    /// Mean over seeds of the largest router logit any MoE layer reached.
    pub router_logit_peak: Option<f64>,
}

/// One arm at one size across the learning-rate grid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LrCurve {
    pub size: String,
    pub arm: String,
    pub points: Vec<LrPoint>,
    /// ℓ0: the mean loss at initialisation (first step) of the arm's runs.
    pub loss_at_init: f64,
    /// The rate with the lowest mean final loss, and that loss.
    pub optimal_lr: Option<f64>,
    pub best_loss: Option<f64>,
    /// Per seed: LR sensitivity of that seed's curve (seeds with every rate complete).
    pub sensitivity_by_seed: BTreeMap<u64, f64>,
    /// Mean, sd and 95% half-width of the per-seed sensitivities.
    pub sensitivity: Option<MeanCi>,
    /// The smallest rate at which any seed diverged.
    pub first_diverging_lr: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LrAnalysis {
    pub experiment: String,
    pub preset: String,
    pub learning_rates: Vec<f64>,
    pub reference_arm: String,
    pub baseline_arm: Option<String>,
    pub runs_expected: usize,
    pub runs_found: usize,
    pub curves: Vec<LrCurve>,
    /// Per other arm: reference − arm LR sensitivity, paired by (size, seed), size as a fixed
    /// effect (nats; positive: the reference arm is more sensitive, i.e. less stable).
    pub sensitivity_paired: BTreeMap<String, Paired>,
    /// Sensitivity differences inside ±this (nats) count as equivalent.
    pub equivalence_margin: f64,
    /// The looks of `lab sweep --until-decisive`, when this sweep ran that way and its last
    /// look saw the seeds analysed here: the verdict reads the repeated interval.
    #[serde(default)]
    pub sequential: Option<Record>,
}

/// The name of the primary comparison of a learning-rate sweep (and of its look record).
pub fn sensitivity_name(reference: &str, arm: &str) -> String {
    format!("LR sensitivity {reference} − {arm} (nats)")
}

/// How far (nats) above its loss at initialisation a run's training loss must rise to count as
/// diverged. Near initialisation the loss wanders by batch noise alone: at rate 1e-3 (which
/// barely moves the weights in the first steps) the peak exceeded ℓ0 by at most 0.005 nats
/// in the lr-stability sweep (docs/measurements.md), so a rise of 0.1 is no noise.
pub const DIVERGENCE_MARGIN: f64 = 0.1;

/// Whether a run diverged (see the module docs).
pub fn diverged(r: &RunData) -> bool {
    let s = &r.summary;
    let rose = match (s.initial_train_loss, s.peak_train_loss) {
        (Some(l0), Some(peak)) => peak > l0 + DIVERGENCE_MARGIN,
        _ => false,
    };
    s.status == RunStatus::Diverged || rose
}

/// ℓ0 of a run: its first step's loss, else the uniform prediction's `ln V`.
fn loss_at_init(r: &RunData) -> f64 {
    r.summary
        .initial_train_loss
        .unwrap_or((r.vocab_size as f64).ln())
}

/// The run's final loss capped at ℓ0; a run that diverged (stopped on a non-finite loss or
/// gradient) counts as ℓ0, whatever its last evaluation before that said, as does one with no
/// finite final loss. `None` while it has not ended.
fn capped_loss(r: &RunData) -> Option<f64> {
    let l0 = loss_at_init(r);
    match r.summary.status {
        RunStatus::Running => None,
        RunStatus::Diverged => Some(l0),
        RunStatus::Complete => Some(
            r.summary
                .final_val_loss
                .filter(|l| l.is_finite())
                .map_or(l0, |l| l.min(l0)),
        ),
    }
}

/// LR sensitivity of one curve: the mean over rates of `loss − min loss` (losses capped).
pub fn sensitivity(capped_losses: &[f64]) -> f64 {
    let best = capped_losses.iter().copied().fold(f64::INFINITY, f64::min);
    capped_losses.iter().map(|l| l - best).sum::<f64>() / capped_losses.len() as f64
}

pub fn analyze(manifest: &Manifest, runs: &[RunData]) -> LrAnalysis {
    let mut curves = Vec::new();
    for size in &manifest.sizes {
        for arm in &manifest.arms {
            let mine: Vec<&RunData> = runs
                .iter()
                .filter(|r| &r.cell.size == size && &r.cell.arm == arm)
                .collect();
            if !mine.is_empty() {
                curves.push(curve(size, arm, &mine, &manifest.learning_rates));
            }
        }
    }
    let reference = &manifest.reference_arm;
    let sensitivity_paired = manifest
        .arms
        .iter()
        .filter(|a| *a != reference)
        .filter_map(|arm| {
            let groups = sensitivity_pairs(&curves, &manifest.sizes, reference, arm);
            Some((arm.clone(), paired(&groups, manifest.equivalence_margin)?))
        })
        .collect();
    LrAnalysis {
        experiment: manifest.experiment.clone(),
        preset: manifest.preset.clone(),
        learning_rates: manifest.learning_rates.clone(),
        reference_arm: reference.clone(),
        baseline_arm: manifest.baseline_arm.clone(),
        runs_expected: manifest.cells.len(),
        runs_found: runs.len(),
        curves,
        sensitivity_paired,
        equivalence_margin: manifest.equivalence_margin,
        sequential: None,
    }
}

/// Per size: `treatment − baseline` sensitivity for each seed both have.
fn sensitivity_pairs(
    curves: &[LrCurve],
    sizes: &[String],
    treatment: &str,
    baseline: &str,
) -> Vec<Vec<f64>> {
    let find = |size: &str, arm: &str| curves.iter().find(|c| c.size == size && c.arm == arm);
    sizes
        .iter()
        .filter_map(|size| {
            let (t, b) = (find(size, treatment)?, find(size, baseline)?);
            let diffs = t
                .sensitivity_by_seed
                .iter()
                .filter_map(|(seed, st)| Some(st - b.sensitivity_by_seed.get(seed)?))
                .collect();
            Some(diffs)
        })
        .collect()
}

/// The curve of one (size, arm) from its runs.
fn curve(size: &str, arm: &str, runs: &[&RunData], lrs: &[f64]) -> LrCurve {
    let at = |lr: f64| -> Vec<&RunData> {
        let mut v: Vec<&RunData> = runs
            .iter()
            .copied()
            .filter(|r| r.cell.lr == Some(lr))
            .collect();
        v.sort_by_key(|r| r.cell.seed);
        v
    };
    let points: Vec<LrPoint> = lrs
        .iter()
        .map(|&lr| point(lr, &at(lr)))
        .filter(|p| p.runs > 0)
        .collect();
    let best = points
        .iter()
        .min_by(|a, b| a.mean_loss.total_cmp(&b.mean_loss));
    let sensitivity_by_seed = seed_sensitivities(runs, lrs);
    let per_seed: Vec<f64> = sensitivity_by_seed.values().copied().collect();
    let l0: Vec<f64> = runs.iter().map(|r| loss_at_init(r)).collect();
    LrCurve {
        size: size.into(),
        arm: arm.into(),
        loss_at_init: l0.iter().sum::<f64>() / l0.len() as f64,
        optimal_lr: best.map(|p| p.lr),
        best_loss: best.map(|p| p.mean_loss),
        sensitivity: (per_seed.len() >= 2).then(|| mean_ci(&per_seed)),
        sensitivity_by_seed,
        first_diverging_lr: points.iter().find(|p| p.diverged > 0).map(|p| p.lr),
        points,
    }
}

/// Seed → sensitivity of its curve, for the seeds that finished at every rate.
fn seed_sensitivities(runs: &[&RunData], lrs: &[f64]) -> BTreeMap<u64, f64> {
    let mut seeds: Vec<u64> = runs.iter().map(|r| r.cell.seed).collect();
    seeds.sort();
    seeds.dedup();
    seeds
        .into_iter()
        .filter_map(|seed| {
            let losses: Option<Vec<f64>> = lrs
                .iter()
                .map(|&lr| {
                    let r = runs
                        .iter()
                        .find(|r| r.cell.seed == seed && r.cell.lr == Some(lr))?;
                    capped_loss(r)
                })
                .collect();
            Some((seed, sensitivity(&losses?)))
        })
        .collect()
}

/// One rate's seeds (finished runs only for the losses).
fn point(lr: f64, runs: &[&RunData]) -> LrPoint {
    let losses: Vec<f64> = runs.iter().filter_map(|r| capped_loss(r)).collect();
    let steps: usize = runs.iter().map(|r| r.summary.steps_done).sum();
    let spikes: usize = runs.iter().map(|r| r.summary.spikes.loss_spikes).sum();
    let mean_of = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let mean_peak = |f: fn(&crate::run::MetricRow) -> Option<f64>| {
        mean_of(
            runs.iter()
                .filter_map(|r| peak(r.metrics.iter().filter_map(f)))
                .collect(),
        )
    };
    LrPoint {
        lr,
        runs: losses.len(),
        mean_loss: mean_of(losses.clone()).unwrap_or(f64::NAN),
        min_loss: losses.iter().copied().fold(f64::INFINITY, f64::min),
        max_loss: losses.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        losses,
        diverged: runs.iter().filter(|r| diverged(r)).count(),
        loss_spikes_per_1k: 1000.0 * spikes as f64 / steps.max(1) as f64,
        attn_logit_peak: mean_peak(|m| m.attn_logit_max),
        output_log_z_final: mean_of(
            runs.iter()
                .filter_map(|r| r.metrics.last()?.output_log_z)
                .collect(),
        ),
        router_logit_peak: mean_peak(|m| m.router_logit_max),
    }
}

/// What a flagship report's claim (b) cites from a learning-rate sweep: the reference arm's
/// LR sensitivity against its baseline's, and both arms' divergences.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StabilityClaim {
    /// The learning-rate sweep's `analysis.json`, as read.
    pub source: String,
    pub reference: String,
    pub baseline: String,
    /// reference − baseline LR sensitivity, paired by seed.
    pub sensitivity: Paired,
    /// Diverged and total runs: reference, then baseline.
    pub diverged: [(usize, usize); 2],
    /// From a `--until-decisive` sweep: the sensitivity comparison at its last look (the
    /// repeated interval) and where the looks ended, in words.
    #[serde(default)]
    pub sequential: Option<(Judged, String)>,
}

impl LrCurve {
    /// (diverged runs, finished runs) over every rate.
    pub fn diverged_runs(&self) -> (usize, usize) {
        let points = self.points.iter();
        points.fold((0, 0), |(d, n), p| (d + p.diverged, n + p.runs))
    }
}

impl LrAnalysis {
    /// The sensitivity comparison with `arm` at the last look of the sequential record, and
    /// the record's outcome in words.
    pub fn sequential_judged(&self, arm: &str) -> Option<(Judged, String)> {
        let record = self.sequential.as_ref()?;
        let name = sensitivity_name(&self.reference_arm, arm);
        let judged = record.last()?.comparisons.iter().find(|c| c.name == name)?;
        Some((judged.clone(), decisive_report::when(record)))
    }

    /// The comparisons `--until-decisive` decides: the reference against its baseline.
    pub fn primary(&self) -> Vec<(String, Paired)> {
        let r = &self.reference_arm;
        let base = self.baseline_arm.as_ref();
        let p = base.and_then(|b| Some((sensitivity_name(r, b), *self.sensitivity_paired.get(b)?)));
        p.into_iter().collect()
    }

    /// (diverged runs, finished runs) of `arm`, over sizes and rates.
    pub fn diverged_runs(&self, arm: &str) -> (usize, usize) {
        let curves = self.curves.iter().filter(|c| c.arm == arm);
        curves.fold((0, 0), |(d, n), c| {
            let (cd, cn) = c.diverged_runs();
            (d + cd, n + cn)
        })
    }

    /// The claim (b) evidence of this sweep, if its reference and baseline were compared.
    pub fn stability_claim(&self, source: &str) -> Option<StabilityClaim> {
        let baseline = self.baseline_arm.clone()?;
        let sensitivity = *self.sensitivity_paired.get(&baseline)?;
        Some(StabilityClaim {
            sequential: self.sequential_judged(&baseline),
            source: source.into(),
            diverged: [
                self.diverged_runs(&self.reference_arm),
                self.diverged_runs(&baseline),
            ],
            reference: self.reference_arm.clone(),
            baseline,
            sensitivity,
        })
    }
}
