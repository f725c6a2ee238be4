//! The forecast from the runs a sweep may see (every run in its manifest before the held-out
//! cells are added): each arm's curve, its prediction at each held-out size, the difference
//! between the arms, and exact match on the question streams in two steps.

use super::curve::{self, Form, Predicted, t975};
use super::sigmoid::{Answered, Sigmoid, fit_sigmoid, logistic};
use super::stated::{
    ArmForecast, DifferenceForecast, DownstreamArm, DownstreamForecast, Forecast, HeldOut,
    PointForecast, complete,
};
use crate::analysis::load::RunData;
use crate::analysis::scaling::pair_diffs;
use crate::analysis::stats::Verdict;
use crate::run::Manifest;

pub fn make(manifest: &Manifest, all: &[RunData], held: &[HeldOut], form: Form) -> Forecast {
    if crate::analysis::isoflop::is_isoflop(manifest) {
        return super::optima::make(manifest, all, held, form);
    }
    let runs: Vec<&RunData> = all.iter().filter(|r| complete(r)).collect();
    let mut notes = Vec::new();
    let loss = |r: &RunData| r.summary.final_val_loss;
    let arms: Vec<ArmForecast> = (manifest.arms.iter())
        .map(|arm| arm_forecast(arm, &runs, held, form, loss, &mut notes))
        .collect();
    let mut fitted_sizes: Vec<String> = runs.iter().map(|r| r.cell.size.clone()).collect();
    fitted_sizes.sort_by_key(|s| manifest.sizes.iter().position(|x| x == s));
    fitted_sizes.dedup();
    let fitted_up_to = runs
        .iter()
        .map(|r| r.summary.train_flops)
        .fold(0.0, f64::max);
    let margin = manifest.equivalence_margin;
    let differences = match &manifest.baseline_arm {
        Some(b) => {
            let pair = (manifest.reference_arm.as_str(), b.as_str());
            differences(pair, &arms, (all, &fitted_sizes), held, margin)
        }
        None => Vec::new(),
    };
    Forecast {
        form,
        fitted_sizes,
        fitted_up_to,
        margin,
        reference_arm: manifest.reference_arm.clone(),
        baseline_arm: manifest.baseline_arm.clone(),
        downstream: downstream(&manifest.arms, &runs, held, form, &mut notes),
        arms,
        differences,
        notes,
        optima: false,
    }
}

/// One arm's curve of `value` (a final loss) on training FLOPs, and its predictions.
fn arm_forecast(
    arm: &str,
    runs: &[&RunData],
    held: &[HeldOut],
    form: Form,
    value: impl Fn(&RunData) -> Option<f64>,
    notes: &mut Vec<String>,
) -> ArmForecast {
    let points: Vec<(f64, f64)> = (runs.iter().filter(|r| r.cell.arm == arm))
        .filter_map(|r| Some((r.summary.train_flops, value(r)?)))
        .collect();
    let (budgets, losses): (Vec<f64>, Vec<f64>) = points.into_iter().unzip();
    let curve = match curve::fit(form, &budgets, &losses) {
        Ok(c) => Some(c),
        Err(e) => {
            notes.push(format!("{arm}: no curve: {e}"));
            None
        }
    };
    let at = (held.iter().filter(|h| h.arm == arm))
        .filter_map(|h| {
            let predicted = curve.as_ref()?.interval(h.budget, h.seeds)?;
            Some(PointForecast {
                size: h.size.clone(),
                budget: h.budget,
                seeds: h.seeds,
                predicted,
            })
        })
        .collect();
    ArmForecast {
        arm: arm.into(),
        curve,
        at,
    }
}

/// Reference − baseline at each held-out size: both curves' uncertainty, and the spread of a
/// seed's paired difference (pooled within the fitted sizes) over the seeds averaged.
fn differences(
    (reference, baseline): (&str, &str),
    arms: &[ArmForecast],
    (runs, sizes): (&[RunData], &[String]),
    held: &[HeldOut],
    margin: f64,
) -> Vec<DifferenceForecast> {
    let curve = |a: &str| arms.iter().find(|x| x.arm == a)?.curve.clone();
    let (Some(r), Some(b)) = (curve(reference), curve(baseline)) else {
        return Vec::new();
    };
    let spread = paired_spread(runs, sizes, (reference, baseline));
    let sizes = held.iter().filter(|h| h.arm == reference);
    sizes
        .filter_map(|h| {
            let cb = held
                .iter()
                .find(|x| x.arm == baseline && x.size == h.size)?;
            let ((fr, sr, dr), (fb, sb, db)) = (r.variance(h.budget)?, b.variance(cb.budget)?);
            // Unpaired when a size has one seed: the two runs' spreads add.
            let (s2, ds) = spread.unwrap_or((sr + sb, dr.min(db)));
            let m = h.seeds.max(1) as f64;
            let half = t975(dr.min(db).min(ds))? * (fr + fb + s2 / m).sqrt();
            let mean = r.predict(h.budget) - b.predict(cb.budget);
            let predicted = Predicted {
                mean,
                low: mean - half,
                high: mean + half,
            };
            Some(DifferenceForecast {
                size: h.size.clone(),
                verdict: verdict_of(&predicted, margin),
                predicted,
            })
        })
        .collect()
}

/// The verdict an interval of a difference implies.
pub fn verdict_of(p: &Predicted, margin: f64) -> Verdict {
    if p.high < 0.0 {
        Verdict::Lower
    } else if p.low > 0.0 {
        Verdict::Higher
    } else if p.low > -margin && p.high < margin {
        Verdict::Equivalent
    } else {
        Verdict::Inconclusive
    }
}

/// The pooled within-size variance of per-seed reference − baseline differences over
/// `sizes`, and its degrees of freedom; `None` without a size of two paired seeds.
fn paired_spread(runs: &[RunData], sizes: &[String], pair: (&str, &str)) -> Option<(f64, f64)> {
    let (mut ss, mut df) = (0.0, 0.0);
    for size in sizes {
        let d = pair_diffs(runs, size, pair.0, pair.1);
        if d.len() > 1 {
            let m = d.iter().sum::<f64>() / d.len() as f64;
            ss += d.iter().map(|x| (x - m).powi(2)).sum::<f64>();
            df += (d.len() - 1) as f64;
        }
    }
    (df > 0.0).then(|| (ss / df, df))
}

/// Exact match at each held-out size, per question stream: each arm's answer-loss curve, then
/// the sigmoid fitted on every fitted run's (answer loss, exact match).
fn downstream(
    arms: &[String],
    runs: &[&RunData],
    held: &[HeldOut],
    form: Form,
    notes: &mut Vec<String>,
) -> Vec<DownstreamForecast> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let streams = first.summary.final_exact_match_by_stream.keys();
    let mut out = Vec::new();
    for stream in streams {
        let all: Vec<Answered> = (runs.iter()).filter_map(|r| answered(r, stream)).collect();
        let Some(sigmoid) = fit_sigmoid(&all) else {
            notes.push(format!(
                "{stream}: no exact-match sigmoid (every answer right, or every one wrong, in \
                 the fitted runs)"
            ));
            continue;
        };
        let nll = |r: &RunData| r.summary.final_answer_loss_by_stream.get(stream).copied();
        let mut each = Vec::new();
        let rate = |r: &RunData| {
            let e = r.summary.final_exact_match_by_stream.get(stream)?;
            (e.rate > 0.0).then_some(e.rate)
        };
        for arm in arms {
            let f = arm_forecast(arm, runs, held, form, nll, notes);
            // Every fitted run must have an exact answer: dropping the zeros would bias it up.
            let mine = runs.iter().filter(|r| &r.cell.arm == arm);
            let direct = (mine.clone().all(|r| rate(r).is_some()))
                .then(|| arm_forecast(arm, runs, held, Form::Power, rate, &mut Vec::new()));
            if direct.is_none() {
                notes.push(format!(
                    "{arm} {stream}: no direct exact-match fit (a fitted run has no exact \
                     answer, and its log is −∞)"
                ));
            }
            let answers = runs
                .iter()
                .find(|r| &r.cell.arm == arm)
                .and_then(|r| answered(r, stream));
            for p in &f.at {
                let n = answers.map_or(0, |a| a.answers) * p.seeds;
                each.push(DownstreamArm {
                    arm: arm.clone(),
                    size: p.size.clone(),
                    answer_loss: p.predicted,
                    exact_match: exact_match(&sigmoid, &p.predicted, n),
                    direct: (direct.iter().flat_map(|d| &d.at))
                        .find(|d| d.size == p.size)
                        .map(|d| d.predicted),
                });
            }
        }
        out.push(DownstreamForecast {
            stream: stream.clone(),
            sigmoid,
            arms: each,
        });
    }
    out
}

fn answered(r: &RunData, stream: &str) -> Option<Answered> {
    let e = r.summary.final_exact_match_by_stream.get(stream)?;
    Some(Answered {
        nll: *r.summary.final_answer_loss_by_stream.get(stream)?,
        exact: e.exact,
        answers: e.answers,
    })
}

/// Exact match at a predicted answer loss, with a 95% interval on the logit scale from the
/// sigmoid's own uncertainty, the answer loss's (through the slope), and the binomial noise of
/// `answers` judged answers (all seeds), by the delta method.
fn exact_match(s: &Sigmoid, nll: &Predicted, answers: usize) -> Predicted {
    let u = s.a + s.b * nll.mean;
    let x = [1.0, nll.mean];
    let fit: f64 = (0..2)
        .map(|i| (0..2).map(|j| x[i] * s.cov[i][j] * x[j]).sum::<f64>())
        .sum();
    let sd_nll = (nll.high - nll.low) / (2.0 * 1.959964);
    let p = logistic(u);
    let binomial = match answers {
        0 => 0.0,
        n => 1.0 / (n as f64 * (p * (1.0 - p)).max(1e-9)),
    };
    let half = 1.959964 * (fit + s.b * s.b * sd_nll * sd_nll + binomial).sqrt();
    Predicted {
        mean: p,
        low: logistic(u - half),
        high: logistic(u + half),
    }
}
