//! Analysis of a sweep, from its files: scaling fits per arm, the compute multiplier, per-size
//! comparisons across seeds, stability, memory and routing; written to `analysis.json` and
//! rendered by [`report`] into `report.md`.

pub mod figures;
pub mod report;
pub mod study;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::fit::{ArmRuns, ComputeMultiplier, PowerLawFit, compute_multiplier};
use crate::analysis::load::RunData;
use crate::analysis::stats::{MeanCi, Paired, Welch, mean_ci, paired, welch};

use crate::run::Manifest;
use crate::run::RunStatus;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SizeArm {
    pub size: String,
    pub arm: String,
    pub runs: usize,
    pub train_flops: f64,
    pub final_val_loss: Option<(f64, f64, f64)>, // mean, sd, 95% half-width
    /// Mean over seeds of each run's own standard error of its final loss (the final
    /// evaluation's sampling error, beside the seeds' spread).
    #[serde(default)]
    pub final_val_loss_se: Option<f64>,
    /// Question stream → mean over seeds of the exact-match rate of greedy answers.
    #[serde(default)]
    pub exact_match: BTreeMap<String, f64>,
}

/// The final evaluation's standard error and exact-match rates of `runs`, averaged.
fn final_eval_means(runs: &[&&RunData]) -> (Option<f64>, BTreeMap<String, f64>) {
    let ses: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.summary.final_val_loss_se)
        .collect();
    let se = (!ses.is_empty()).then(|| ses.iter().sum::<f64>() / ses.len() as f64);
    let mut rates: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in runs {
        for (stream, m) in &r.summary.final_exact_match_by_stream {
            rates.entry(stream.clone()).or_default().push(m.rate);
        }
    }
    let means = rates
        .into_iter()
        .map(|(s, v)| (s, v.iter().sum::<f64>() / v.len() as f64))
        .collect();
    (se, means)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub size: String,
    pub treatment: String,
    pub baseline: String,
    pub n_treatment: usize,
    pub n_baseline: usize,
    /// mean(treatment) − mean(baseline) and its test; None with < 2 seeds per arm.
    pub welch: Option<Welch>,
    pub diff: Option<f64>,
    /// The primary test: treatment − baseline paired by seed (the arms share data order and
    /// every weight but the feed-forward's at one seed); None with < 2 complete pairs.
    #[serde(default)]
    pub paired: Option<Paired>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stability {
    pub arm: String,
    pub runs: usize,
    pub steps: usize,
    pub loss_spikes: usize,
    pub grad_spikes: usize,
    pub loss_spikes_per_1k: f64,
    pub grad_spikes_per_1k: f64,
    pub diverged: usize,
    /// Runs with no loss spike that did not diverge, over all runs (ST-MoE's "stable seeds").
    pub stable_fraction: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryRow {
    pub size: String,
    pub arm: String,
    /// Mean over seeds of the measured peak: device bytes in use on a GPU, else process RSS.
    pub measured_peak_bytes: f64,
    /// `rss` or `device`
    pub measured_kind: String,
    pub params_bytes: u64,
    pub grads_bytes: u64,
    pub optimizer_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouterRun {
    pub run: String,
    #[serde(default)]
    pub arm: String,
    pub final_max_vio: f64,
    pub peak_max_vio: f64,
    pub dead_experts: usize,
    pub dropped_fraction: f64,
    pub final_entropy: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analysis {
    pub experiment: String,
    pub preset: String,
    pub reference_arm: String,
    pub baseline_arm: Option<String>,
    pub runs_expected: usize,
    pub runs_found: usize,
    pub size_arms: Vec<SizeArm>,
    pub fits: BTreeMap<String, Option<PowerLawFit>>,
    /// Arm → why it has no fit, or no compute multiplier (e.g. too few distinct budgets).
    #[serde(default)]
    pub fit_notes: BTreeMap<String, String>,
    /// Baseline arm → compute it needs relative to the reference arm at the largest budget.
    pub multipliers: BTreeMap<String, ComputeMultiplier>,
    pub comparisons: Vec<Comparison>,
    pub stability: Vec<Stability>,
    /// Per other arm: reference − arm paired by seed, pooled over sizes (size as a fixed
    /// effect); the primary answer to "lower loss at matched compute?".
    #[serde(default)]
    pub pooled: BTreeMap<String, Paired>,
    /// Measured peak memory (MiB), reference − baseline, paired by seed at the largest size
    /// both ran.
    #[serde(default)]
    pub memory_paired: Option<Paired>,
    /// The margin within which a difference counts as equivalent (nats).
    #[serde(default = "default_margin")]
    pub equivalence_margin: f64,
    /// Per other arm: reference − arm loss spikes per 1k steps, run by run, paired by seed
    /// with sizes as fixed effects (spikes cluster in runs, so runs, not spikes, are the
    /// independent units); absent without 2 seed pairs or with no spread (no spikes at all).
    #[serde(default)]
    pub spikes_paired: BTreeMap<String, Paired>,
    pub memory: Vec<MemoryRow>,
    pub router: Vec<RouterRun>,
    /// Arm → the warnings its runs printed (e.g. a router that is not causal).
    #[serde(default)]
    pub warnings: BTreeMap<String, Vec<String>>,
    /// Claim (b)'s evidence, from the learning-rate sweep beside this one (`lr-stability`)
    /// when it has results; this sweep alone does not stress stability.
    #[serde(default)]
    pub stability_claim: Option<crate::analysis::lr::StabilityClaim>,
}

fn complete(r: &RunData) -> bool {
    r.summary.status == RunStatus::Complete && r.summary.final_val_loss.is_some()
}

pub fn analyze(manifest: &Manifest, runs: &[RunData]) -> Analysis {
    let reference = manifest.reference_arm.clone();
    let (size_arms, arm_runs) = size_arms(manifest, runs);
    let mut fit_notes = BTreeMap::new();
    let fits = arm_runs
        .iter()
        .map(|(arm, r)| {
            let fit = r.fit().map_err(|e| fit_notes.insert(arm.clone(), e)).ok();
            (arm.clone(), fit)
        })
        .collect();
    let stability = stability(manifest, runs);
    Analysis {
        warnings: warnings(runs),
        experiment: manifest.experiment.clone(),
        preset: manifest.preset.clone(),
        baseline_arm: manifest.baseline_arm.clone(),
        runs_expected: manifest.cells.len(),
        runs_found: runs.len(),
        size_arms,
        multipliers: multipliers(&arm_runs, &reference, &mut fit_notes),
        fits,
        fit_notes,
        comparisons: comparisons(manifest, runs),
        pooled: pooled(manifest, runs),
        equivalence_margin: manifest.equivalence_margin,
        memory_paired: memory_pairs(manifest, runs),
        spikes_paired: spikes_paired(manifest, runs),
        stability,
        memory: memory(manifest, runs),
        router: router_runs(runs),
        reference_arm: reference,
        stability_claim: None,
    }
}

/// Per (size, arm) the mean final loss over seeds; per arm its complete runs by size (what
/// the scaling fit and its bootstrap draw from).
fn size_arms(manifest: &Manifest, runs: &[RunData]) -> (Vec<SizeArm>, BTreeMap<String, ArmRuns>) {
    let mut size_arms = Vec::new();
    let mut arm_runs = BTreeMap::new();
    for arm in &manifest.arms {
        let mine: Vec<&RunData> = runs
            .iter()
            .filter(|r| &r.cell.arm == arm && complete(r))
            .collect();
        let mut by_size = BTreeMap::new();
        for size in &manifest.sizes {
            let at: Vec<&&RunData> = mine.iter().filter(|r| &r.cell.size == size).collect();
            let points: Vec<(u64, f64, f64)> = at
                .iter()
                .map(|r| {
                    let loss = r.summary.final_val_loss.unwrap();
                    (r.cell.seed, r.summary.train_flops, loss)
                })
                .collect();
            let losses: Vec<f64> = points.iter().map(|p| p.2).collect();
            let (final_val_loss_se, exact_match) = final_eval_means(&at);
            size_arms.push(SizeArm {
                final_val_loss_se,
                exact_match,
                size: size.clone(),
                arm: arm.clone(),
                runs: at.len(),
                train_flops: at.first().map_or(0.0, |r| r.summary.train_flops),
                final_val_loss: (!losses.is_empty()).then(|| {
                    let m: MeanCi = mean_ci(&losses);
                    (m.mean, m.sd, m.half_width)
                }),
            });
            if !points.is_empty() {
                by_size.insert(size.clone(), points);
            }
        }
        arm_runs.insert(arm.clone(), ArmRuns { by_size });
    }
    (size_arms, arm_runs)
}

/// Compute multipliers of every other arm against the reference (see
/// [`fit::compute_multiplier`]); why one is missing goes to `notes`.
fn multipliers(
    arm_runs: &BTreeMap<String, ArmRuns>,
    reference: &String,
    notes: &mut BTreeMap<String, String>,
) -> BTreeMap<String, ComputeMultiplier> {
    let Some(ref_runs) = arm_runs.get(reference) else {
        return BTreeMap::new();
    };
    arm_runs
        .iter()
        .filter(|(arm, _)| *arm != reference)
        .filter_map(|(arm, runs)| match compute_multiplier(ref_runs, runs) {
            Ok(m) => Some((arm.clone(), m)),
            Err(e) => {
                notes.entry(arm.clone()).or_insert(e);
                None
            }
        })
        .collect()
}

/// The reference arm against each other arm, per size, across seeds.
fn comparisons(manifest: &Manifest, runs: &[RunData]) -> Vec<Comparison> {
    let reference = &manifest.reference_arm;
    let margin = manifest.equivalence_margin;
    let losses = |size: &str, arm: &str| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.cell.size == size && r.cell.arm == arm && complete(r))
            .map(|r| r.summary.final_val_loss.unwrap())
            .collect()
    };
    let mut comparisons = Vec::new();
    for size in &manifest.sizes {
        for arm in manifest.arms.iter().filter(|a| *a != reference) {
            let (t, b) = (losses(size, reference), losses(size, arm));
            comparisons.push(Comparison {
                size: size.clone(),
                treatment: reference.clone(),
                baseline: arm.clone(),
                n_treatment: t.len(),
                n_baseline: b.len(),
                diff: (!t.is_empty() && !b.is_empty()).then(|| mean_ci(&t).mean - mean_ci(&b).mean),
                welch: welch(&t, &b),
                paired: paired(&[pair_diffs(runs, size, reference, arm)], margin),
            });
        }
    }

    comparisons
}

/// `treatment − baseline` final validation loss for each seed both completed at `size`.
pub(crate) fn pair_diffs(
    runs: &[RunData],
    size: &str,
    treatment: &str,
    baseline: &str,
) -> Vec<f64> {
    let loss = |r: &RunData| complete(r).then_some(r.summary.final_val_loss).flatten();
    pair_diffs_of(runs, size, treatment, baseline, loss)
}

/// `value(treatment) − value(baseline)` for each seed both have a value for at `size`.
fn pair_diffs_of(
    runs: &[RunData],
    size: &str,
    treatment: &str,
    baseline: &str,
    value: impl Fn(&RunData) -> Option<f64>,
) -> Vec<f64> {
    let of = |arm: &str, seed: u64| {
        runs.iter()
            .find(|r| r.cell.size == size && r.cell.arm == arm && r.cell.seed == seed)
            .and_then(&value)
    };
    let mut seeds: Vec<u64> = runs.iter().map(|r| r.cell.seed).collect();
    seeds.sort();
    seeds.dedup();
    seeds
        .into_iter()
        .filter_map(|s| Some(of(treatment, s)? - of(baseline, s)?))
        .collect()
}

/// Measured peak memory in MiB (device bytes in use where reported, else RSS), reference −
/// baseline, paired by seed at the largest size both ran.
fn memory_pairs(manifest: &Manifest, runs: &[RunData]) -> Option<Paired> {
    let base = manifest.baseline_arm.as_ref()?;
    let peak = |r: &RunData| {
        let m = &r.summary.memory;
        m.peak_bytes_in_use
            .or(m.peak_rss_bytes)
            .map(|b| b as f64 / 1_048_576.0)
    };
    manifest.sizes.iter().rev().find_map(|size| {
        let diffs = pair_diffs_of(runs, size, &manifest.reference_arm, base, peak);
        paired(&[diffs], 1.0)
    })
}

/// The reference against each other arm, paired by seed, pooled over sizes.
fn pooled(manifest: &Manifest, runs: &[RunData]) -> BTreeMap<String, Paired> {
    let reference = &manifest.reference_arm;
    manifest
        .arms
        .iter()
        .filter(|a| *a != reference)
        .filter_map(|arm| {
            let groups: Vec<Vec<f64>> = manifest
                .sizes
                .iter()
                .map(|size| pair_diffs(runs, size, reference, arm))
                .collect();
            Some((arm.clone(), paired(&groups, manifest.equivalence_margin)?))
        })
        .collect()
}

fn default_margin() -> f64 {
    crate::sweep::experiment::AnalysisSpec::default().equivalence_margin
}

/// Spikes, divergences and stable seeds per arm.
fn stability(manifest: &Manifest, runs: &[RunData]) -> Vec<Stability> {
    let mut stability = Vec::new();
    for arm in &manifest.arms {
        let mine: Vec<&RunData> = runs.iter().filter(|r| &r.cell.arm == arm).collect();
        let steps: usize = mine.iter().map(|r| r.summary.steps_done).sum();
        let loss_spikes: usize = mine.iter().map(|r| r.summary.spikes.loss_spikes).sum();
        let grad_spikes: usize = mine.iter().map(|r| r.summary.spikes.grad_norm_spikes).sum();
        let diverged = mine
            .iter()
            .filter(|r| r.summary.status == RunStatus::Diverged)
            .count();
        let stable = mine
            .iter()
            .filter(|r| {
                r.summary.status == RunStatus::Complete && r.summary.spikes.loss_spikes == 0
            })
            .count();
        let per_1k = |n: usize| {
            if steps == 0 {
                0.0
            } else {
                1000.0 * n as f64 / steps as f64
            }
        };
        stability.push(Stability {
            arm: arm.clone(),
            runs: mine.len(),
            steps,
            loss_spikes,
            grad_spikes,
            loss_spikes_per_1k: per_1k(loss_spikes),
            grad_spikes_per_1k: per_1k(grad_spikes),
            diverged,
            stable_fraction: if mine.is_empty() {
                0.0
            } else {
                stable as f64 / mine.len() as f64
            },
        });
    }
    stability
}

/// The reference against each other arm: loss spikes per 1k steps of each run, paired by
/// seed, pooled over sizes.
fn spikes_paired(manifest: &Manifest, runs: &[RunData]) -> BTreeMap<String, Paired> {
    let rate = |r: &RunData| {
        let s = &r.summary;
        (s.steps_done > 0).then(|| 1000.0 * s.spikes.loss_spikes as f64 / s.steps_done as f64)
    };
    let reference = &manifest.reference_arm;
    let others = manifest.arms.iter().filter(|a| *a != reference);
    others
        .filter_map(|arm| {
            let groups: Vec<Vec<f64>> = (manifest.sizes.iter())
                .map(|size| pair_diffs_of(runs, size, reference, arm, rate))
                .collect();
            Some((arm.clone(), paired(&groups, 0.0)?))
        })
        .collect()
}

/// Measured peaks and analytic training state per (size, arm).
fn memory(manifest: &Manifest, runs: &[RunData]) -> Vec<MemoryRow> {
    let mut memory = Vec::new();
    for size in &manifest.sizes {
        for arm in &manifest.arms {
            let at: Vec<&RunData> = runs
                .iter()
                .filter(|r| &r.cell.size == size && &r.cell.arm == arm)
                .collect();
            if at.is_empty() {
                continue;
            }
            let device = at
                .iter()
                .all(|r| r.summary.memory.peak_bytes_in_use.is_some());
            let peaks: Vec<f64> = at
                .iter()
                .filter_map(|r| {
                    if device {
                        r.summary.memory.peak_bytes_in_use
                    } else {
                        r.summary.memory.peak_rss_bytes
                    }
                })
                .map(|b| b as f64)
                .collect();
            let Some(analytic) = at[0].summary.memory.analytic else {
                continue;
            };
            memory.push(MemoryRow {
                size: size.clone(),
                arm: arm.clone(),
                measured_peak_bytes: if peaks.is_empty() {
                    0.0
                } else {
                    peaks.iter().sum::<f64>() / peaks.len() as f64
                },
                measured_kind: if device {
                    "device".into()
                } else {
                    "rss".into()
                },
                params_bytes: analytic.params_bytes,
                grads_bytes: analytic.grads_bytes,
                optimizer_bytes: analytic.optimizer_bytes,
            });
        }
    }

    memory
}

/// Routing at the final evaluation (and MaxVio's peak) of every MoE run.
fn router_runs(runs: &[RunData]) -> Vec<RouterRun> {
    let mut router = Vec::new();
    for r in runs.iter().filter(|r| !r.router.is_empty()) {
        let last_step = r.router.iter().map(|x| x.step).max().unwrap();
        let per_eval = |step: usize| -> Vec<&crate::run::RouterRow> {
            r.router.iter().filter(|x| x.step == step).collect()
        };
        let layer_mean = |rows: &[&crate::run::RouterRow],
                          f: &dyn Fn(&crate::run::RouterRow) -> f64| {
            let mut by_layer: BTreeMap<usize, f64> = BTreeMap::new();
            for x in rows {
                by_layer.insert(x.layer, f(x));
            }
            by_layer.values().sum::<f64>() / by_layer.len().max(1) as f64
        };
        let last = per_eval(last_step);
        let mut steps: Vec<usize> = r.router.iter().map(|x| x.step).collect();
        steps.dedup();
        let peak = steps
            .iter()
            .map(|s| layer_mean(&per_eval(*s), &|x| x.max_vio))
            .fold(0.0, f64::max);
        let mut dead: BTreeMap<usize, usize> = BTreeMap::new();
        for x in &last {
            dead.insert(x.layer, x.dead_experts);
        }
        router.push(RouterRun {
            run: r.cell.name.clone(),
            arm: r.cell.arm.clone(),
            final_max_vio: layer_mean(&last, &|x| x.max_vio),
            peak_max_vio: peak,
            dead_experts: dead.values().sum(),
            dropped_fraction: layer_mean(&last, &|x| x.dropped_fraction),
            final_entropy: layer_mean(&last, &|x| x.entropy),
        });
    }

    router
}

/// Arm → the distinct warnings its runs printed.
fn warnings(runs: &[RunData]) -> BTreeMap<String, Vec<String>> {
    let mut warnings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in runs {
        for w in &r.summary.warnings {
            let list = warnings.entry(r.cell.arm.clone()).or_default();
            if !list.contains(w) {
                list.push(w.clone());
            }
        }
    }

    warnings
}
