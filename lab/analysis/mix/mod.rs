//! The data-mix study: small runs at many training mixtures, a law of how the target loss
//! depends on the mixture, fitted per arm, trusted only if it predicts held-out mixtures better
//! than their mean, and the mixture it puts the target's minimum at, with intervals.
//!
//! - [`law`]: the data mixing law `L_d(r) = c + exp(b + Σ_j t_j r_j)` of each domain d (Ye et
//!   al. 2024), the target their mean; and a linear baseline for the target,
//!   `L(r) = β₀ + Σ_j β_j r_j` (RegMix's simplest regression);
//! - [`loo`]: leave-one-mixture-out prediction error, beside predicting the mean;
//! - [`simplex`]: the minimum of a target over the mixtures with a floor on every weight;
//! - [`bootstrap`]: the optimum's interval over mixtures and seeds.
//!
//! The target is a weighted sum of streams' final losses (`[mixtures.target]`), by default the
//! equal-weight mean of the domains' validation losses (each run's headline loss weighs the
//! streams by its own mixture, so it is not comparable across mixtures). Each weighted stream
//! loss gets a mixing law of its own. Mixtures are drawn by `sweep::mixtures`.

pub mod arm;
pub mod bootstrap;
pub mod check;
pub mod figures;
pub mod law;
pub mod linear;
pub mod loo;
pub mod points;
pub mod report;
pub mod simplex;
pub mod study;

use serde::{Deserialize, Serialize};

use crate::analysis::load::RunData;
use crate::analysis::stats::{Slope, slope};
use crate::run::MixTarget;
use crate::run::{Manifest, RunStatus};
pub use arm::{ArmMix, Optimum, Trusted, fit_components, fit_target_linear, target_law};
use loo::{LooError, leave_one_out, mean_baseline};
use points::components;
pub use points::{MixPoint, Rows, rows};

/// Spearman's ρ between the small size's and a larger size's target (seed means) over the
/// mixtures both trained, with its 95% interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RankCheck {
    pub arm: String,
    pub small: String,
    pub large: String,
    pub mixtures: Vec<String>,
    pub rho: f64,
    pub interval: Option<(f64, f64)>,
}

/// The whole study: every arm's fit, and how the arms compare across mixtures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixAnalysis {
    pub experiment: String,
    pub preset: String,
    pub domains: Vec<String>,
    pub target: MixTarget,
    pub floor: f64,
    pub arms: Vec<ArmMix>,
    /// The reference arm minus the baseline, per mixture (seed means), against the mixture's
    /// entropy (nats): does the MoE gain more on diverse data?
    pub gap_by_entropy: Option<Slope>,
    /// The reference arm's routing specialisation (domain–expert mutual information, bits,
    /// mean over layers and seeds) per mixture, against the mixture's entropy.
    #[serde(default)]
    pub specialisation_by_entropy: Option<Slope>,
    pub reference_arm: String,
    pub baseline_arm: Option<String>,
    /// Per arm, whether a larger size ranks the mixtures it trained as the small size does.
    #[serde(default)]
    pub rank_checks: Vec<RankCheck>,
    /// Per arm, its predicted optimum against `base` and `uniform` at the check size.
    #[serde(default)]
    pub optimum_checks: Vec<check::OptimumCheck>,
    /// The equivalence margin of those checks (nats).
    #[serde(default)]
    pub margin: f64,
    /// Runs left out (unfinished, or without a domain's loss).
    pub notes: Vec<String>,
}

pub fn is_mix(manifest: &Manifest) -> bool {
    !manifest.domains.is_empty()
}

/// The manifest's target, or the equal-weight mean of the domains' validation losses.
pub fn target_of(manifest: &Manifest) -> MixTarget {
    manifest.mixture_target.clone().unwrap_or_else(|| {
        let w = 1.0 / manifest.domains.len().max(1) as f64;
        let streams = manifest.domains.iter().map(|d| (d.clone(), w)).collect();
        MixTarget {
            streams,
            measure: "loss".into(),
        }
    })
}

pub fn analyze(manifest: &Manifest, runs: &[RunData]) -> MixAnalysis {
    let floor = manifest.mixture_floor.unwrap_or(0.0);
    let target = target_of(manifest);
    let mut notes = Vec::new();
    let mut arms = Vec::new();
    for size in &manifest.sizes {
        for arm in &manifest.arms {
            let mine: Vec<&RunData> = (runs.iter())
                .filter(|r| &r.cell.arm == arm && &r.cell.size == size)
                .collect();
            let points = points(&mine, &target, &mut notes);
            if !points.is_empty() {
                arms.push(arm_mix(arm, size, points, manifest, floor));
            }
        }
    }
    let reference_arm = manifest.reference_arm.clone();
    let baseline_arm = manifest.baseline_arm.clone();
    let gap_by_entropy = baseline_arm
        .as_ref()
        .and_then(|b| gap_slope(&arms, &reference_arm, b));
    // Read at the size with the most mixtures (a check size trains only a few).
    let main_size = (arms.iter().filter(|m| m.arm == reference_arm))
        .max_by_key(|m| m.points.len())
        .map(|m| m.size.clone());
    let specialisation_by_entropy =
        main_size.and_then(|size| specialisation_slope(runs, &reference_arm, &size));
    let rank_checks = rank_checks(&arms);
    let margin = manifest.equivalence_margin;
    let optimum_checks = check::optimum_checks(&arms, margin);
    MixAnalysis {
        experiment: manifest.experiment.clone(),
        preset: manifest.preset.clone(),
        domains: manifest.domains.clone(),
        target,
        floor,
        arms,
        gap_by_entropy,
        specialisation_by_entropy,
        rank_checks,
        optimum_checks,
        margin,
        reference_arm,
        baseline_arm,
        notes,
    }
}

/// The runs' target losses grouped by mixture, in the axis' order.
fn points(runs: &[&RunData], target: &MixTarget, notes: &mut Vec<String>) -> Vec<MixPoint> {
    let mut out: Vec<MixPoint> = Vec::new();
    for r in runs {
        let Some(m) = &r.cell.mixture else { continue };
        let by_domain = (r.summary.status == RunStatus::Complete)
            .then(|| components(r, target))
            .flatten();
        let Some(by_domain) = by_domain else {
            notes.push(format!(
                "{}: no final loss for every target stream",
                r.cell.name
            ));
            continue;
        };
        let loss = (r.cell.seed, by_domain.iter().sum::<f64>());
        match out.iter_mut().find(|p| p.name == m.name) {
            Some(p) => {
                p.losses.push(loss);
                p.components.push(by_domain);
            }
            None => out.push(MixPoint {
                name: m.name.clone(),
                weights: m.weights.clone(),
                losses: vec![loss],
                components: vec![by_domain],
            }),
        }
    }
    out
}

fn arm_mix(
    arm: &str,
    size: &str,
    points: Vec<MixPoint>,
    manifest: &Manifest,
    floor: f64,
) -> ArmMix {
    let rows = rows(&points);
    let (y, groups) = (&rows.targets, &rows.groups);
    let at = |i: usize| &rows.mixtures[i];
    let fit_laws = |s: &[usize]| fit_components(&rows, s);
    let loo_law = leave_one_out(y, groups, fit_laws, |m, i| target_law(m, at(i)));
    let fit_lin = |s: &[usize]| fit_target_linear(&rows, s);
    let loo_linear = leave_one_out(y, groups, fit_lin, |m, i| m.at(at(i)));
    let loo_mean = mean_baseline(y, groups);
    let trusted = trust(&loo_law, &loo_linear, &loo_mean);
    let all: Vec<usize> = (0..y.len()).collect();
    let mut mix = ArmMix {
        arm: arm.into(),
        size: size.into(),
        laws: fit_components(&rows, &all),
        linear: fit_target_linear(&rows, &all),
        points,
        loo_law,
        loo_linear,
        loo_mean,
        trusted,
        optimum: None,
    };
    mix.optimum = bootstrap::optimum(&mix, manifest, floor);
    mix
}

/// The law with the smaller leave-one-out error among those that beat predicting the mean:
/// lower squared error on the held-out mixtures, paired by mixture, its 95% interval above
/// zero (a law whose fit failed on any held-out set is not trusted). Without the test a law
/// would win on noise about half the time when the mixture changes nothing.
fn trust(law: &LooError, linear: &LooError, mean: &LooError) -> Option<Trusted> {
    let beats = |e: &LooError| {
        let (ours, theirs) = (e.by_mixture(), mean.by_mixture());
        let gains: Vec<f64> = (theirs.iter())
            .filter_map(|(g, m)| Some(m - ours.get(g)?))
            .collect();
        let p = crate::analysis::stats::paired(&[gains], 0.0)?;
        (e.failed == 0 && p.ci_low > 0.0)
            .then(|| e.rmse())
            .flatten()
    };
    let candidates = [
        (Trusted::MixingLaw, beats(law)),
        (Trusted::Linear, beats(linear)),
    ];
    (candidates.into_iter())
        .filter_map(|(t, s)| Some((t, s?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(t, _)| t)
}

/// The slope of `arm`'s routing specialisation at `size` (mutual information, bits; mean over
/// layers, then over a mixture's seeds) on the mixture's entropy; `None` without routers.
fn specialisation_slope(runs: &[RunData], arm: &str, size: &str) -> Option<Slope> {
    let mut by_mixture: std::collections::BTreeMap<&str, (f64, Vec<f64>)> = Default::default();
    for r in runs
        .iter()
        .filter(|r| r.cell.arm == arm && r.cell.size == size)
    {
        let (Some(m), layers) = (&r.cell.mixture, &r.summary.routing_specialisation) else {
            continue;
        };
        if layers.is_empty() {
            continue;
        }
        let bits = layers
            .iter()
            .map(|l| l.mutual_information_bits)
            .sum::<f64>()
            / layers.len() as f64;
        let at = by_mixture
            .entry(&m.name)
            .or_insert((entropy(&m.weights), Vec::new()));
        at.1.push(bits);
    }
    let points: Vec<(f64, f64)> = (by_mixture.values())
        .map(|(h, bits)| (*h, bits.iter().sum::<f64>() / bits.len() as f64))
        .collect();
    slope(&points)
}

/// For each arm, its size with the most mixtures against each other size of it.
fn rank_checks(arms: &[ArmMix]) -> Vec<RankCheck> {
    let mut out = Vec::new();
    for a in arms {
        let small = (arms.iter().filter(|b| b.arm == a.arm))
            .max_by_key(|b| b.points.len())
            .expect("a itself");
        if small.size == a.size {
            continue;
        }
        let shared: Vec<(&MixPoint, &MixPoint)> = (a.points.iter())
            .filter_map(|p| Some((small.points.iter().find(|q| q.name == p.name)?, p)))
            .collect();
        let x: Vec<f64> = shared.iter().map(|s| s.0.mean()).collect();
        let y: Vec<f64> = shared.iter().map(|s| s.1.mean()).collect();
        let Some(rho) = crate::analysis::stats::spearman(&x, &y) else {
            continue;
        };
        out.push(RankCheck {
            arm: a.arm.clone(),
            small: small.size.clone(),
            large: a.size.clone(),
            mixtures: shared.iter().map(|s| s.0.name.clone()).collect(),
            rho,
            interval: crate::analysis::stats::spearman_interval(rho, shared.len()),
        });
    }
    out
}

/// Entropy of a mixture (nats).
pub fn entropy(r: &[f64]) -> f64 {
    -r.iter()
        .filter(|x| **x > 0.0)
        .map(|x| x * x.ln())
        .sum::<f64>()
}

/// The slope of the reference − baseline gap (seed-paired means per mixture) on the mixture's
/// entropy, at the first size both arms have.
fn gap_slope(arms: &[ArmMix], reference: &str, baseline: &str) -> Option<Slope> {
    let a = arms.iter().find(|a| a.arm == reference)?;
    let b = arms
        .iter()
        .find(|x| x.arm == baseline && x.size == a.size)?;
    let gaps: Vec<(f64, f64)> = (a.points.iter())
        .filter_map(|p| {
            let q = b.points.iter().find(|q| q.name == p.name)?;
            let pairs: Vec<f64> = (p.losses.iter())
                .filter_map(|(s, l)| Some(l - q.losses.iter().find(|x| x.0 == *s)?.1))
                .collect();
            (!pairs.is_empty()).then(|| {
                let gap = pairs.iter().sum::<f64>() / pairs.len() as f64;
                (entropy(&p.weights), gap)
            })
        })
        .collect();
    slope(&gaps)
}
