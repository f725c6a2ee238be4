//! IsoFLOP forecasts: each arm's compute-optimal loss L* at a held-out budget, from the law
//! through the fitted budgets' L* (the frontier the IsoFLOP study draws), scored against the
//! optimum of the held-out budget's own profile. L* is one estimate per budget, so its
//! interval is for one new point: the line's residual spread holds the estimates' noise.

use super::curve::{self, Form};
use super::stated::{ArmForecast, Forecast, HeldOut, PointForecast, budget_name};
use crate::analysis::isoflop::{self, IsoflopAnalysis};
use crate::analysis::load::RunData;
use crate::run::Manifest;

pub fn make(manifest: &Manifest, runs: &[RunData], held: &[HeldOut], form: Form) -> Forecast {
    let a = isoflop::analyze(manifest, runs);
    let mut notes = Vec::new();
    let arms = (manifest.arms.iter())
        .map(|arm| {
            let (budgets, losses): (Vec<f64>, Vec<f64>) = optima(&a, arm).into_iter().unzip();
            let curve = curve::fit(form, &budgets, &losses)
                .map_err(|e| notes.push(format!("{arm}: no L*(C) curve: {e}")))
                .ok();
            let at = (held.iter().filter(|h| &h.arm == arm))
                .filter_map(|h| {
                    Some(PointForecast {
                        size: h.size.clone(),
                        budget: h.budget,
                        seeds: 1,
                        predicted: curve.as_ref()?.interval(h.budget, 1)?,
                    })
                })
                .collect();
            ArmForecast {
                arm: arm.clone(),
                curve,
                at,
            }
        })
        .collect();
    Forecast {
        form,
        fitted_sizes: a.budgets.iter().map(|b| budget_name(*b)).collect(),
        fitted_up_to: a.budgets.iter().cloned().fold(0.0, f64::max),
        margin: manifest.equivalence_margin,
        reference_arm: manifest.reference_arm.clone(),
        baseline_arm: manifest.baseline_arm.clone(),
        arms,
        differences: Vec::new(),
        downstream: Vec::new(),
        notes,
        optima: true,
    }
}

/// `(budget, L*)` of `arm`'s profiles whose optimum lies inside their sizes.
pub fn optima(a: &IsoflopAnalysis, arm: &str) -> Vec<(f64, f64)> {
    (a.profiles.iter().filter(|p| p.arm == arm))
        .filter_map(|p| {
            p.optimum
                .as_ref()
                .filter(|o| o.interior)
                .map(|o| (p.budget, o.loss))
        })
        .collect()
}

/// The held-out profile's L* of `arm` at `budget`, with its seeds; `None` without an interior
/// optimum there.
pub fn observed(a: &IsoflopAnalysis, arm: &str, budget: f64) -> Option<(f64, usize)> {
    let p = (a.profiles.iter()).find(|p| p.arm == arm && (p.budget / budget - 1.0).abs() < 1e-9)?;
    let o = p.optimum.as_ref().filter(|o| o.interior)?;
    let seeds = p.points.iter().map(|s| s.losses.len()).max().unwrap_or(0);
    Some((o.loss, seeds))
}
