//! A frozen forecast against the held-out runs: per arm the error in nats and in % and whether
//! the observed seed mean lies inside the prediction interval, whether the observed verdict at
//! the held-out size is the forecast one, the same for exact match, and whether the forecast
//! was written before every held-out run started (a forecast made after is not one).

use serde::{Deserialize, Serialize};

use super::curve::Predicted;
use super::make::verdict_of;
use super::stated::{Forecast, complete};
use crate::analysis::load::RunData;
use crate::analysis::scaling::pair_diffs;
use crate::analysis::stats::{Paired, Verdict, paired};
use crate::run::Manifest;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scored {
    /// Whether the forecast was written before every held-out run started (`None`: no
    /// held-out run has started).
    pub before_every_run: Option<bool>,
    pub written_unix_s: f64,
    pub commit: String,
    pub points: Vec<PointScore>,
    pub differences: Vec<DifferenceScore>,
    pub exact_match: Vec<PointScore>,
    /// IsoFLOP: each arm's interior L* by budget, `(arm, budget, L*)` (what the figure draws).
    #[serde(default)]
    pub optima: Vec<(String, f64, f64)>,
}

/// A predicted seed mean against the observed one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointScore {
    /// The arm, or `arm stream` for exact match.
    pub what: String,
    pub size: String,
    pub predicted: Predicted,
    /// How far past the largest fitted budget: the held-out budget over it.
    pub reach: f64,
    pub observed: Option<f64>,
    pub seeds: usize,
    /// observed − predicted, and that as a share of observed (%; not for exact match, whose
    /// error is a difference of rates).
    pub error: Option<f64>,
    pub error_pct: Option<f64>,
    pub covered: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DifferenceScore {
    pub size: String,
    pub predicted: Predicted,
    pub forecast: Verdict,
    pub observed: Option<Paired>,
    pub verdict: Option<Verdict>,
    pub matches: Option<bool>,
}

/// Score `f` (written at `written`, from `commit`) against `runs` of the sweep `manifest`
/// describes, which hold the held-out ones.
pub fn score(
    f: &Forecast,
    (written, commit): (f64, &str),
    manifest: &Manifest,
    runs: &[RunData],
) -> Scored {
    let held: Vec<&RunData> = runs.iter().filter(|r| is_held(f, r)).collect();
    let starts: Vec<f64> = held
        .iter()
        .filter_map(|r| r.summary.started_unix_s)
        .collect();
    let before_every_run = (!held.is_empty())
        .then(|| starts.len() == held.len() && starts.iter().all(|s| *s > written));
    // The IsoFLOP analysis (with its bootstrap) once, for the score and the figure.
    let iso = f
        .optima
        .then(|| crate::analysis::isoflop::analyze(manifest, runs));
    let optima = (iso.iter())
        .flat_map(|a| {
            let each = manifest
                .arms
                .iter()
                .map(|arm| (arm, super::optima::optima(a, arm)));
            each.flat_map(|(arm, o)| o.into_iter().map(|(b, l)| (arm.clone(), b, l)))
        })
        .collect();
    Scored {
        before_every_run,
        written_unix_s: written,
        commit: commit.into(),
        points: match &iso {
            Some(a) => optima_points(f, a),
            None => loss_points(f, &held),
        },
        differences: differences(f, runs),
        exact_match: exact_match(f, &held),
        optima,
    }
}

/// Whether `r` is one of the cells the forecast is for.
fn is_held(f: &Forecast, r: &RunData) -> bool {
    let at_budget = |b: f64| r.cell.budget.is_some_and(|c| (c / b - 1.0).abs() < 1e-9);
    (f.arms.iter().flat_map(|a| &a.at)).any(|p| match f.optima {
        true => at_budget(p.budget),
        false => p.size == r.cell.size,
    })
}

/// Each arm's held-out seed mean of the final loss against its forecast.
fn loss_points(f: &Forecast, held: &[&RunData]) -> Vec<PointScore> {
    let mut points = Vec::new();
    for a in &f.arms {
        for p in &a.at {
            let losses: Vec<f64> = (held.iter())
                .filter(|r| r.cell.arm == a.arm && r.cell.size == p.size && complete(r))
                .filter_map(|r| r.summary.final_val_loss)
                .collect();
            let reach = p.budget / f.fitted_up_to;
            points.push(point(&a.arm, &p.size, p.predicted, reach, &losses));
        }
    }
    points
}

/// Each arm's L* of the held-out budget's profile against its forecast (its seeds are the
/// profile's; L* is one value).
fn optima_points(f: &Forecast, a: &crate::analysis::isoflop::IsoflopAnalysis) -> Vec<PointScore> {
    let mut points = Vec::new();
    for arm in &f.arms {
        for p in &arm.at {
            let seen = super::optima::observed(a, &arm.arm, p.budget);
            let reach = p.budget / f.fitted_up_to;
            let observed: Vec<f64> = seen.iter().map(|s| s.0).collect();
            let mut scored = point(&arm.arm, &p.size, p.predicted, reach, &observed);
            scored.seeds = seen.map_or(0, |s| s.1);
            points.push(scored);
        }
    }
    points
}

fn point(what: &str, size: &str, predicted: Predicted, reach: f64, obs: &[f64]) -> PointScore {
    let observed = (!obs.is_empty()).then(|| obs.iter().sum::<f64>() / obs.len() as f64);
    PointScore {
        what: what.into(),
        size: size.into(),
        predicted,
        reach,
        observed,
        seeds: obs.len(),
        error: observed.map(|o| o - predicted.mean),
        error_pct: observed.map(|o| 100.0 * (o - predicted.mean) / o),
        covered: observed.map(|o| predicted.low <= o && o <= predicted.high),
    }
}

fn differences(f: &Forecast, runs: &[RunData]) -> Vec<DifferenceScore> {
    let Some(baseline) = &f.baseline_arm else {
        return Vec::new();
    };
    (f.differences.iter())
        .map(|d| {
            let diffs = pair_diffs(runs, &d.size, &f.reference_arm, baseline);
            let observed = paired(&[diffs], f.margin);
            let verdict = observed.map(|p| p.practical_verdict());
            DifferenceScore {
                size: d.size.clone(),
                predicted: d.predicted,
                forecast: verdict_of(&d.predicted, f.margin),
                observed,
                verdict,
                matches: verdict.map(|v| v == d.verdict),
            }
        })
        .collect()
}

fn exact_match(f: &Forecast, held: &[&RunData]) -> Vec<PointScore> {
    let mut out = Vec::new();
    for d in &f.downstream {
        for a in &d.arms {
            let rates: Vec<f64> = (held.iter())
                .filter(|r| r.cell.arm == a.arm && r.cell.size == a.size && complete(r))
                .filter_map(|r| r.summary.final_exact_match_by_stream.get(&d.stream))
                .map(|e| e.rate)
                .collect();
            let budget = (f.arms.iter().find(|x| x.arm == a.arm))
                .and_then(|x| x.at.iter().find(|p| p.size == a.size))
                .map_or(f64::NAN, |p| p.budget);
            let ways = [("two steps", Some(a.exact_match)), ("direct", a.direct)];
            for (way, predicted) in ways {
                let Some(predicted) = predicted else { continue };
                let what = format!("{} {} ({way})", a.arm, d.stream);
                let mut p = point(&what, &a.size, predicted, budget / f.fitted_up_to, &rates);
                // A rate's error is read in points, not as a share of a rate near 0.
                p.error_pct = None;
                out.push(p);
            }
        }
    }
    out
}
