//! Loss figures: validation loss against FLOPs, the paired difference, the fitted scaling
//! curves, and the training loss at the largest size.

use std::collections::BTreeMap;

use super::inputs::Inputs;
use crate::analysis::figure::{Axis, Figure, Mark, Panel, Point, Series, Shape};
use crate::analysis::load::thin;
use crate::analysis::stats::Paired;
use crate::run::{MetricRow, RunStatus};

/// How to read the figure (its caption).
pub const LOSS_VS_FLOPS: &str = "Validation loss against training FLOPs per arm and size: the line is the mean over seeds, the band the seeds' range. Look at whether two arms' bands separate at the same budget; overlapping bands are what the paired test above resolves";

/// How to read the figure (its caption).
pub const PAIRED_DIFF: &str = "The reference arm minus each other arm, paired by seed, per size and pooled (95% intervals); a bar wholly below 0 means the reference arm's loss is lower; inside the grey band, within the equivalence margin";

/// How to read the figure (its caption).
pub const TRAINING_LOSS: &str = "Training loss at the largest size: each arm's seed mean smoothed (thick), every seed raw (faint), loss spikes as ×. Look for crosses and for a thick line that turns upward: instability; the faint lines show how far seeds spread";

/// How to read the figure (its caption).
pub const SCALING: &str = "Final validation loss against compute, with the fitted L(C) = E + A·C^(−α) per arm (drawn only where an arm has a fit, within its budgets). Look at the vertical gap between curves at one C: the loss difference at matched compute; the horizontal gap at one loss is the compute multiplier";

/// Validation loss against training FLOPs per arm and size: the seeds' mean as a line, their
/// range as a band, coloured by arm.
pub fn loss_vs_flops(d: &Inputs) -> Figure {
    let title = "Validation loss vs training FLOPs (line: seed mean; band: seeds' range)";
    let arms = &d.manifest.arms;
    let mut p = Panel::new(
        Axis::log("training FLOPs"),
        Axis::linear("validation loss (nats/token)"),
    );
    for arm in arms {
        let mut first = true;
        for size in &d.manifest.sizes {
            let band = seed_band(d, arm, size);
            if band.is_empty() {
                continue;
            }
            let col = |f: fn(&(f64, f64, f64, f64)) -> f64| band.iter().map(f).collect::<Vec<_>>();
            let (x, mean) = (col(|p| p.0), col(|p| p.1));
            let name = if first {
                arm.clone()
            } else {
                format!("{arm} {size}")
            };
            let s = Series::arm(arms, &name, arm, first);
            let fill = s.clone().colored(s.color.alpha(0.2));
            p.push(Mark::Band {
                series: fill,
                x: x.clone(),
                lo: col(|p| p.2),
                hi: col(|p| p.3),
            });
            p.push(Mark::line_markers(s, x.into_iter().zip(mean).collect()));
            first = false;
        }
    }
    Figure::new("loss_vs_flops", title, vec![p]).or_empty("no evaluations yet")
}

/// Per evaluation step of `arm` at `size`: (FLOPs, mean, min, max) of the seeds' validation
/// losses.
fn seed_band(d: &Inputs, arm: &str, size: &str) -> Vec<(f64, f64, f64, f64)> {
    let mut by_step: BTreeMap<usize, (f64, Vec<f64>)> = BTreeMap::new();
    let runs = (d.runs.iter()).filter(|r| r.cell.arm == arm && r.cell.size == size);
    for e in runs.flat_map(|r| &r.evals) {
        let at = by_step.entry(e.step).or_insert((e.flops, vec![]));
        at.1.push(e.val_loss);
    }
    (by_step.into_values())
        .map(|(flops, v)| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (flops, mean, lo, hi)
        })
        .collect()
}

/// The primary comparison at a glance: the reference arm minus each other arm, paired by seed,
/// per size and pooled over sizes, with 95% intervals, the zero line and the equivalence band
/// ±margin. An interval wholly below zero: the reference arm is lower.
pub fn paired_diff(d: &Inputs) -> Figure {
    let a = d.analysis;
    let margin = a.equivalence_margin;
    let title = format!(
        "{} − other arm, final validation loss paired by seed (95% CI; grey: ±{margin} nats)",
        a.reference_arm
    );
    let per_size = (a.comparisons.iter()).filter_map(|c| {
        Some((
            format!("{} vs {}", c.size, c.baseline),
            &c.baseline,
            c.paired?,
        ))
    });
    let pooled = (a.pooled.iter()).map(|(b, p)| (format!("pooled vs {b}"), b, *p));
    let rows: Vec<(String, &String, Paired)> = per_size.chain(pooled).collect();
    if rows.is_empty() {
        return Figure::empty("paired_diff", &title, "fewer than 2 seed pairs anywhere");
    }
    let reach = (rows.iter())
        .map(|(_, _, p)| p.ci_low.abs().max(p.ci_high.abs()))
        .fold(margin, f64::max)
        * 1.15;
    let labels = rows.iter().map(|r| r.0.clone()).collect();
    let mut p = Panel::new(
        Axis::categories("comparison", labels),
        Axis::linear("final validation loss difference (nats)").cut(-reach, reach),
    );
    p.push(Mark::HBand {
        lo: -margin,
        hi: margin,
    });
    p.push(Mark::HLine {
        y: 0.0,
        dash: crate::analysis::figure::Dash::Solid,
        label: None,
    });
    let mut baselines: Vec<&String> = rows.iter().map(|r| r.1).collect();
    baselines.dedup();
    for base in baselines {
        let points = (rows.iter().enumerate())
            .filter(|(_, r)| r.1 == base)
            .map(|(i, (_, _, q))| Point::within(i as f64, q.mean, q.ci_low, q.ci_high))
            .collect();
        let s = Series::arm(&d.manifest.arms, &format!("vs {base}"), base, true);
        p.push(Mark::dots(s, points));
    }
    Figure::new("paired_diff", &title, vec![p])
}

/// Final validation loss against compute per arm, with each arm's fitted `L(C) = E + A·C^(−α)`
/// drawn over the budgets it was fitted on (never extrapolated).
pub fn scaling(d: &Inputs) -> Figure {
    let title = "Final validation loss vs compute, with fitted L(C) = E + A·C^−α";
    let arms = &d.manifest.arms;
    let mut p = Panel::new(
        Axis::log("training FLOPs C"),
        Axis::linear("final validation loss (nats/token)"),
    );
    for arm in arms {
        let runs: Vec<_> = (d.runs.iter())
            .filter(|r| &r.cell.arm == arm && r.summary.status == RunStatus::Complete)
            .filter_map(|r| Some((r, r.summary.final_val_loss?)))
            .collect();
        if runs.is_empty() {
            continue;
        }
        p.push(Mark::Points {
            series: Series::arm(arms, arm, arm, true),
            points: (runs.iter())
                .map(|(r, l)| Point::at(r.summary.train_flops, *l))
                .collect(),
            shape: Shape::Dot,
            labels: runs.iter().map(|r| r.0.cell.name.clone()).collect(),
        });
        if let Some(Some(fit)) = d.analysis.fits.get(arm) {
            let curve = (0..=60)
                .map(|i| fit.c_min * (fit.c_max / fit.c_min).powf(i as f64 / 60.0))
                .map(|c| (c, fit.predict(c)))
                .collect();
            p.push(Mark::line(
                Series::arm(arms, &format!("{arm} fit"), arm, false),
                curve,
                2.0,
            ));
        }
    }
    Figure::new("scaling", title, vec![p]).or_empty("no complete runs yet")
}

/// Training loss at the largest size: every seed's raw curve faint behind, each arm's seed
/// mean smoothed on top (so overlapping arms stay apart), loss spikes marked with crosses.
pub fn training_loss(d: &Inputs) -> Figure {
    let size = (d.manifest.sizes.iter().rev())
        .find(|s| (d.runs.iter()).any(|r| &r.cell.size == *s && !r.metrics.is_empty()));
    let Some(size) = size else {
        return Figure::empty("training_loss", "Training loss", "no training metrics yet");
    };
    let title =
        format!("Training loss, size {size}: seed mean smoothed, raw seeds faint (× = spike)");
    let runs: Vec<_> = d.runs.iter().filter(|r| &r.cell.size == size).collect();
    // The first steps (near ln of the vocabulary) are left above the axis, so the range that
    // tells arms apart is readable.
    let later = (runs.iter())
        .flat_map(|r| r.metrics.iter().skip(r.metrics.len() / 20).map(|m| m.loss))
        .filter(|v| v.is_finite());
    let (lo, hi) = later.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let pad = 0.05 * (hi - lo).max(1e-6);
    let mut p = Panel::new(
        Axis::linear("step"),
        Axis::linear("training loss (nats/token)").cut(lo - pad, hi + pad),
    );
    let arms = &d.manifest.arms;
    for arm in arms {
        let mine: Vec<_> = runs.iter().filter(|r| &r.cell.arm == arm).collect();
        for r in &mine {
            let faint = Series::arm(arms, &r.cell.name, arm, false);
            let (x, y) = thin(&r.metrics, |m| m.loss);
            let color = faint.color.alpha(0.25);
            p.push(Mark::line(
                faint.clone().colored(color),
                x.into_iter().zip(y).collect(),
                1.0,
            ));
            let spikes = r.metrics.iter().filter(|m| m.loss_spike == 1);
            let points: Vec<Point> = spikes.map(|m| Point::at(m.step as f64, m.loss)).collect();
            if !points.is_empty() {
                let s = Series::arm(arms, &format!("{} spikes", r.cell.name), arm, false);
                p.push(Mark::dots(s, points).shaped(Shape::Cross));
            }
        }
        if mine.is_empty() {
            continue;
        }
        let mean = smoothed_mean(&mine.iter().map(|r| &r.metrics[..]).collect::<Vec<_>>());
        p.push(Mark::line(Series::arm(arms, arm, arm, true), mean, 3.0));
    }
    Figure::new("training_loss", &title, vec![p])
}

/// The mean over runs of the finite losses at each step, then a centred moving average over
/// `max(5, steps / 25)` steps (shorter at the ends): (step, smoothed loss).
fn smoothed_mean(runs: &[&[MetricRow]]) -> Vec<(f64, f64)> {
    let mut by_step: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
    let rows = runs.iter().flat_map(|r| r.iter());
    for m in rows.filter(|m| m.loss.is_finite()) {
        let e = by_step.entry(m.step).or_default();
        (e.0, e.1) = (e.0 + m.loss, e.1 + 1);
    }
    let mean: Vec<(f64, f64)> = (by_step.into_iter())
        .map(|(step, (sum, n))| (step as f64, sum / n as f64))
        .collect();
    let half = (mean.len() / 25).max(5) / 2;
    (0..mean.len())
        .map(|i| {
            let window = &mean[i.saturating_sub(half)..(i + half + 1).min(mean.len())];
            let y = window.iter().map(|p| p.1).sum::<f64>() / window.len() as f64;
            (mean[i].0, y)
        })
        .collect()
}
