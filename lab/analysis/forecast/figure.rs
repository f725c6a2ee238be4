//! The forecast's figure: each arm's curve through the fitted points, extended past them to
//! the held-out budgets with its 95% prediction band, and the held-out points drawn on it.
//! The points are runs' final losses, or for an IsoFLOP forecast each profile's L*.

use super::score::Scored;
use super::stated::{ArmForecast, Forecast};
use crate::analysis::figure::{Axis, Dash, Figure, Mark, Panel, Point, Series, Shape};
use crate::analysis::load::RunData;
use crate::run::Manifest;

/// How to read the figure (its caption).
pub const CAPTION: &str = "Final validation loss (IsoFLOP: each budget's compute-optimal loss L*) against training FLOPs: the points the forecast was fitted on (dots), each arm's fitted curve (solid where fitted, dashed past the largest fitted budget) with the 95% prediction band for a held-out seed mean (IsoFLOP: for one L*), and the held-out points (diamonds), which the fit never saw";

pub fn figure(f: &Forecast, s: &Scored, manifest: &Manifest, runs: &[RunData]) -> Figure {
    let title =
        "The forecast: curves fitted on the smaller budgets, the held-out ones drawn on them";
    let y = match f.optima {
        true => "compute-optimal loss L*",
        false => "final validation loss",
    };
    let mut p = Panel::new(Axis::log("training FLOPs"), Axis::linear(y));
    let points = points(f, s, runs);
    for a in &f.arms {
        let mine: Vec<(f64, f64, bool)> = (points.iter())
            .filter(|x| x.0 == a.arm)
            .map(|x| (x.1, x.2, x.3))
            .collect();
        arm_marks(&mut p, f, a, &mine, &manifest.arms);
    }
    Figure::new("forecast", title, vec![p])
        .captioned(CAPTION)
        .or_empty("no arm has a fitted curve")
}

/// `(arm, budget, value, held out)` of every point the figure draws.
fn points(f: &Forecast, s: &Scored, runs: &[RunData]) -> Vec<(String, f64, f64, bool)> {
    if f.optima {
        let held =
            |b: f64| (f.arms.iter().flat_map(|x| &x.at)).any(|p| (p.budget / b - 1.0).abs() < 1e-9);
        return (s.optima.iter())
            .map(|(arm, b, l)| (arm.clone(), *b, *l, held(*b)))
            .collect();
    }
    let fitted = |r: &RunData| f.fitted_sizes.contains(&r.cell.size);
    (runs.iter())
        .filter_map(|r| {
            let l = r.summary.final_val_loss?;
            Some((r.cell.arm.clone(), r.summary.train_flops, l, !fitted(r)))
        })
        .collect()
}

/// One arm's band, curve (solid, then dashed past the fit) and points.
fn arm_marks(
    p: &mut Panel,
    f: &Forecast,
    a: &ArmForecast,
    pts: &[(f64, f64, bool)],
    arms: &[String],
) {
    let Some(curve) = &a.curve else { return };
    let lo = pts.iter().map(|x| x.0).fold(f.fitted_up_to, f64::min);
    let hi = (a.at.iter().map(|p| p.budget)).fold(f.fitted_up_to, f64::max) * 1.2;
    let seeds = a.at.first().map_or(1, |p| p.seeds);
    let xs: Vec<f64> = (0..=60)
        .map(|i| lo * (hi / lo).powf(i as f64 / 60.0))
        .collect();
    let band: Vec<(f64, f64, f64)> = (xs.iter())
        .filter_map(|c| curve.interval(*c, seeds).map(|p| (*c, p.low, p.high)))
        .collect();
    let series = |name: &str, legend: bool| Series::arm(arms, name, &a.arm, legend);
    let fill = series(&format!("{} 95% prediction", a.arm), false);
    p.push(Mark::Band {
        series: fill.clone().colored(fill.color.alpha(0.18)),
        x: band.iter().map(|b| b.0).collect(),
        lo: band.iter().map(|b| b.1).collect(),
        hi: band.iter().map(|b| b.2).collect(),
    });
    let line = |range: &[f64]| range.iter().map(|c| (*c, curve.predict(*c))).collect();
    let (inside, past): (Vec<f64>, Vec<f64>) = xs.iter().partition(|c| **c <= f.fitted_up_to);
    p.push(Mark::line(
        series(&format!("{} fit", a.arm), false),
        line(&inside),
        2.0,
    ));
    let past: Vec<f64> = inside.last().into_iter().chain(&past).copied().collect();
    let dashed = Mark::line(
        series(&format!("{} forecast", a.arm), false),
        line(&past),
        2.0,
    );
    p.push(dashed.dashed(Dash::Dashed));
    let at = |held: bool| -> Vec<Point> {
        (pts.iter().filter(|x| x.2 == held))
            .map(|x| Point::at(x.0, x.1))
            .collect()
    };
    p.push(Mark::dots(
        series(&format!("{} fitted", a.arm), true),
        at(false),
    ));
    let held = Mark::dots(series(&format!("{} held out", a.arm), true), at(true));
    p.push(held.shaped(Shape::Diamond));
}
