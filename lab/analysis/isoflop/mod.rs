//! The analysis of an IsoFLOP experiment (`[isoflop]`), Chinchilla's approach 2 (Hoffmann et
//! al. 2022) per arm: at each budget, a parabola of final loss in ln N through the sizes
//! trained ([`profile`]) and its vertex, the optimum (N*, D*, L*); across budgets, the
//! frontiers `N*(C)` and `L*(C)` ([`frontier`]); and the compute multiplier **along the
//! frontiers**: the baseline's compute to reach the reference arm's L* at each budget, read
//! between the baseline's measured optima (log-log interpolation), never outside them.
//!
//! Every interval is a parametric bootstrap: a draw moves every run's final loss by the
//! seed-to-seed spread measured in its arm ([`noise`]: why not a bootstrap over 2 seeds),
//! then repeats the whole pipeline. A draw whose parabola has no minimum, or whose frontier
//! cannot be fitted, is left out of that quantity's interval and counted. A multiplier draw
//! whose target lies beyond the baseline's measured optima is censored, known only to lie
//! below the smallest budget's ratio or above the largest's, and counted on its side: an
//! interval whose end falls among such draws is open there ([`censored_quantiles`]), and the
//! verdict ([`MultiplierVerdict`]) never names a winner across an open end.
//! An optimum outside its budget's sizes (an edge optimum) is reported with a warning naming
//! the budget, and is not used by the frontiers.

pub mod figures;
pub mod frontier;
mod intervals;
pub mod noise;
pub mod profile;
pub mod report;
pub mod study;

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::load::RunData;
use crate::run::{Manifest, RunStatus};
use frontier::{Frontier, Reach};
use noise::SeedNoise;
use profile::{Optimum, Parabola, SizePoint, optimum};

/// Bootstrap draws of every interval.
pub const DRAWS: usize = 1000;

/// A 95% bootstrap interval; `None` ends where too few draws succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Ci {
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// Draws left out (no minimum, no fit).
    pub failed_share: f64,
    /// Shares of the draws known only by a bound, below it and above it (a multiplier whose
    /// target lies beyond the baseline's optima).
    #[serde(default)]
    pub below_share: f64,
    #[serde(default)]
    pub above_share: f64,
    /// The end falls among such draws: the interval is open on that side, and `low` (`high`)
    /// is only a bound: "< low" ("> high").
    #[serde(default)]
    pub open_low: bool,
    #[serde(default)]
    pub open_high: bool,
}

/// What a multiplier's interval says: the reference needs less compute (the whole interval
/// above 1), the baseline does (below 1), or neither is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiplierVerdict {
    ReferenceBetter,
    BaselineBetter,
    NotDistinguishable,
}

impl MultiplierVerdict {
    /// From the censored interval: an open end never decides.
    pub fn of(ci: &Ci) -> MultiplierVerdict {
        match (ci.low, ci.high) {
            (Some(lo), _) if lo > 1.0 && !ci.open_low => MultiplierVerdict::ReferenceBetter,
            (_, Some(hi)) if hi < 1.0 && !ci.open_high => MultiplierVerdict::BaselineBetter,
            _ => MultiplierVerdict::NotDistinguishable,
        }
    }
}

/// One arm at one budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub arm: String,
    pub budget: f64,
    pub points: Vec<SizePoint>,
    pub parabola: Option<Parabola>,
    pub optimum: Option<Optimum>,
    pub params_ci: Ci,
    pub loss_ci: Ci,
    pub tokens_ci: Ci,
}

/// One arm's frontiers, with the exponents' intervals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArmFrontier {
    pub arm: String,
    /// `None` with fewer than 2 budgets whose optimum is interior (`note` says so).
    pub frontier: Option<Frontier>,
    /// The exponent a of `N* ∝ C^a`, and the slope −β of `L* ∝ C^−β`.
    pub params_exponent_ci: Ci,
    pub loss_slope_ci: Ci,
    pub note: Option<String>,
}

/// The baseline's compute to reach the reference arm's L* at `budget`, over `budget`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrontierMultiplier {
    pub budget: f64,
    pub target_loss: f64,
    /// `None` when the baseline's frontier reaches the target only outside its budgets.
    pub multiplier: Option<f64>,
    pub ci: Ci,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IsoflopAnalysis {
    pub experiment: String,
    pub preset: String,
    pub reference_arm: String,
    pub baseline_arm: Option<String>,
    pub budgets: Vec<f64>,
    pub arms: Vec<String>,
    pub seeds: usize,
    pub runs_expected: usize,
    pub runs_found: usize,
    pub draws: usize,
    /// Per arm, the standard deviation of a run's final loss across seeds (pooled over its
    /// cells) that the bootstrap draws resample.
    #[serde(default)]
    pub seed_sigma: BTreeMap<String, f64>,
    pub profiles: Vec<Profile>,
    pub frontiers: Vec<ArmFrontier>,
    /// Reference against baseline, at each of the reference's interior budgets.
    pub multipliers: Vec<FrontierMultiplier>,
    /// Edge optima, profiles without a minimum: each names its budget and arm.
    pub warnings: Vec<String>,
}

/// An IsoFLOP sweep's manifest: its cells carry budgets.
pub fn is_isoflop(manifest: &Manifest) -> bool {
    manifest.cells.iter().any(|c| c.budget.is_some())
}

pub fn analyze(manifest: &Manifest, runs: &[RunData]) -> IsoflopAnalysis {
    let grid = Grid::of(manifest, runs);
    let measured: Vec<Vec<SizePoint>> = grid.cells.iter().map(|c| c.2.clone()).collect();
    let point = grid.estimate(&measured, None);
    let draws = grid.bootstrap(&point);
    let profiles = grid.profiles(&point, &draws);
    let frontiers = grid.frontiers(&point, &draws);
    let multipliers = grid.multipliers(&point, &draws);
    IsoflopAnalysis {
        experiment: manifest.experiment.clone(),
        preset: manifest.preset.clone(),
        reference_arm: manifest.reference_arm.clone(),
        baseline_arm: manifest.baseline_arm.clone(),
        budgets: grid.budgets.clone(),
        arms: manifest.arms.clone(),
        seeds: grid.seeds.len(),
        runs_expected: manifest.cells.len(),
        runs_found: runs.len(),
        draws: draws.len(),
        seed_sigma: SeedNoise::pooled(&grid.cells).sigmas(),
        warnings: warnings(&profiles),
        profiles,
        frontiers,
        multipliers,
    }
}

/// The complete runs, by (arm, budget), each a list of sizes.
struct Grid {
    budgets: Vec<f64>,
    arms: Vec<String>,
    reference: String,
    baseline: Option<String>,
    seeds: Vec<u64>,
    cells: Vec<(String, f64, Vec<SizePoint>)>,
}

/// What one set of losses gives: per profile its optimum (`cells` order), per arm its
/// frontier, per reference budget the multiplier (`None`: the baseline has no frontier).
struct Estimate {
    optima: Vec<Opt>,
    frontiers: BTreeMap<String, Option<Frontier>>,
    multipliers: Vec<(f64, f64, Option<Reach>)>,
}

impl Grid {
    fn of(manifest: &Manifest, runs: &[RunData]) -> Grid {
        let complete = |r: &&RunData| r.summary.status == RunStatus::Complete;
        let mut budgets: Vec<f64> = runs.iter().filter_map(|r| r.cell.budget).collect();
        budgets.sort_by(f64::total_cmp);
        budgets.dedup();
        let seeds: BTreeSet<u64> = runs.iter().filter(complete).map(|r| r.cell.seed).collect();
        let mut cells = Vec::new();
        for arm in &manifest.arms {
            for &budget in &budgets {
                let mine: Vec<&RunData> = (runs.iter().filter(complete))
                    .filter(|r| &r.cell.arm == arm && r.cell.budget == Some(budget))
                    .collect();
                cells.push((arm.clone(), budget, size_points(&manifest.sizes, &mine)));
            }
        }
        Grid {
            budgets,
            arms: manifest.arms.clone(),
            reference: manifest.reference_arm.clone(),
            baseline: manifest.baseline_arm.clone(),
            seeds: seeds.into_iter().collect(),
            cells,
        }
    }

    /// The pipeline on `points` (one list of sizes per cell, `cells` order). `keep` marks
    /// the profiles the frontiers and multipliers use: `None` for those whose optimum lies
    /// inside their sizes (the point estimate); a bootstrap draw keeps the point estimate's,
    /// whatever its own vertices do, so every draw estimates the same quantity.
    fn estimate(&self, points: &[Vec<SizePoint>], keep: Option<&[bool]>) -> Estimate {
        let optima: Vec<Opt> = (self.cells.iter().zip(points))
            .map(|((_, budget, _), points)| optimum(points, *budget))
            .collect();
        let keep = keep.map_or_else(|| interior(&optima), <[bool]>::to_vec);
        let frontiers = (self.arms.iter())
            .map(|arm| (arm.clone(), self.frontier(arm, &optima, &keep)))
            .collect();
        let mut e = Estimate {
            optima,
            frontiers,
            multipliers: Vec::new(),
        };
        e.multipliers = self.multipliers_of(&e, &keep);
        e
    }

    /// `arm`'s frontier through its kept optima.
    fn frontier(&self, arm: &str, optima: &[Opt], keep: &[bool]) -> Option<Frontier> {
        let pts: Vec<(f64, f64, f64)> = (self.cells.iter().zip(optima).zip(keep))
            .filter(|(((a, ..), _), k)| a == arm && **k)
            .filter_map(|(((_, budget, _), o), _)| {
                let o = o.as_ref()?.1?;
                Some((*budget, o.params, o.loss))
            })
            .collect();
        Frontier::fit(&pts)
    }

    /// At each budget where the reference's optimum is interior: (budget, its L*, the
    /// baseline's compute to reach it along its frontier over the budget, or its bound).
    fn multipliers_of(&self, e: &Estimate, keep: &[bool]) -> Vec<(f64, f64, Option<Reach>)> {
        let Some(base) = &self.baseline else {
            return Vec::new();
        };
        let dense = e.frontiers.get(base).cloned().flatten();
        (self.cells.iter().zip(&e.optima).zip(keep))
            .filter(|(((arm, ..), _), k)| *arm == self.reference && **k)
            .filter_map(|(((_, budget, _), o), _)| {
                let o = o.as_ref()?.1?;
                let needed = dense.as_ref().and_then(|f| f.reach(o.loss));
                Some((*budget, o.loss, needed.map(|r| r.over(*budget))))
            })
            .collect()
    }

    /// [`DRAWS`] estimates on the runs' losses moved by their arm's seed noise (none where
    /// an arm has no cell with 2 seeds), each with the profiles `point` kept.
    fn bootstrap(&self, point: &Estimate) -> Vec<Estimate> {
        let keep = interior(&point.optima);
        let noise = SeedNoise::pooled(&self.cells);
        if !noise.known() {
            return Vec::new();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        (0..DRAWS)
            .map(|_| {
                let sigma = noise.draw_sigmas(&mut rng);
                let drawn: Vec<Vec<SizePoint>> = (self.cells.iter())
                    .map(|(arm, _, points)| noise::perturbed(points, sigma[arm], &mut rng))
                    .collect();
                self.estimate(&drawn, Some(&keep))
            })
            .collect()
    }
}

/// A profile's parabola and optimum, if any.
type Opt = Option<(Parabola, Option<Optimum>)>;

/// Which profiles have an optimum inside their sizes.
fn interior(optima: &[Opt]) -> Vec<bool> {
    (optima.iter())
        .map(|o| o.as_ref().and_then(|o| o.1).is_some_and(|o| o.interior))
        .collect()
}

/// Sizes of `runs` in ladder order, each with its seeds' losses.
fn size_points(ladder: &[String], runs: &[&RunData]) -> Vec<SizePoint> {
    (ladder.iter())
        .filter_map(|size| {
            let at: Vec<&&RunData> = runs.iter().filter(|r| &r.cell.size == size).collect();
            let first = at.first()?;
            let losses = (at.iter())
                .filter_map(|r| Some((r.cell.seed, r.summary.final_val_loss?)))
                .collect();
            Some(SizePoint {
                size: size.clone(),
                params: first.summary.params.active,
                params_total: first.summary.params.total,
                train_flops_per_token: first.summary.flops_per_token.train_per_token,
                losses,
            })
        })
        .collect()
}

/// 2.5% and 97.5% quantiles of the draws that gave a value.
pub fn quantiles(values: &[Option<f64>]) -> Ci {
    let mut got: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    got.sort_by(f64::total_cmp);
    let q = |p: f64| {
        got.get(((got.len() as f64 - 1.0) * p).round() as usize)
            .copied()
    };
    Ci {
        low: q(0.025),
        high: q(0.975),
        failed_share: 1.0 - got.len() as f64 / values.len().max(1) as f64,
        ..Ci::default()
    }
}

/// 2.5% and 97.5% quantiles of censored draws (`None`: no value). Each end is read with every
/// censored draw at the side of its bound that widens the interval (a draw below `b` counts
/// as −∞ for the lower end and as `b` for the upper), so the interval covers whatever the
/// censored draws' values were; an end that falls on a censored draw is open, its bound kept.
pub fn censored_quantiles(draws: &[Option<Reach>]) -> Ci {
    let got: Vec<Reach> = draws.iter().flatten().copied().collect();
    let end = |p: f64, key: fn(Reach) -> f64| {
        let mut sorted = got.clone();
        sorted.sort_by(|a, b| key(*a).total_cmp(&key(*b)));
        sorted
            .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
            .copied()
    };
    let low = end(0.025, |r| match r {
        Reach::Before(_) => f64::NEG_INFINITY,
        Reach::Inside(v) | Reach::After(v) => v,
    });
    let high = end(0.975, |r| match r {
        Reach::After(_) => f64::INFINITY,
        Reach::Inside(v) | Reach::Before(v) => v,
    });
    let share = |f: fn(&Reach) -> bool| got.iter().filter(|r| f(r)).count() as f64;
    let n = draws.len().max(1) as f64;
    let bound = |r: Reach| match r {
        Reach::Inside(v) | Reach::Before(v) | Reach::After(v) => v,
    };
    Ci {
        low: low.map(bound),
        high: high.map(bound),
        failed_share: 1.0 - got.len() as f64 / n,
        below_share: share(|r| matches!(r, Reach::Before(_))) / n,
        above_share: share(|r| matches!(r, Reach::After(_))) / n,
        open_low: matches!(low, Some(Reach::Before(_))),
        open_high: matches!(high, Some(Reach::After(_))),
    }
}

/// One line per profile whose optimum is not to be trusted, naming its budget.
fn warnings(profiles: &[Profile]) -> Vec<String> {
    (profiles.iter())
        .filter_map(|p| {
            let at = format!("{} at C = {:.2e}", p.arm, p.budget);
            let lo = p.points.first()?.params;
            let hi = p.points.last()?.params;
            match (&p.parabola, &p.optimum) {
                (None, _) => Some(format!("{at}: fewer than 3 sizes finished, no parabola")),
                (Some(_), None) => Some(format!(
                    "{at}: the losses do not curve upward (no minimum): no optimum"
                )),
                (Some(_), Some(o)) if !o.interior => Some(format!(
                    "{at}: the optimum N* = {:.0} lies outside the sizes trained ({lo}–{hi} \
                     active parameters), an extrapolation: add {} sizes; left out of the frontier",
                    o.params,
                    if o.params < lo as f64 {
                        "smaller"
                    } else {
                        "larger"
                    }
                )),
                _ => None,
            }
        })
        .collect()
}
