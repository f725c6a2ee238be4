//! The forecast's figure: each arm's curve through the fitted runs, extended past them to the
//! held-out budgets with its 95% prediction band, and the held-out runs drawn on it.

use super::stated::Forecast;
use crate::analysis::figure::{Axis, Dash, Figure, Mark, Panel, Point, Series, Shape};
use crate::analysis::load::RunData;

/// How to read the figure (its caption).
pub const CAPTION: &str = "Final validation loss against training FLOPs: the runs the forecast was fitted on (dots), each arm's fitted curve (solid where fitted, dashed past the largest fitted budget) with the 95% prediction band for a held-out seed mean, and the held-out runs (diamonds), which the fit never saw";

pub fn figure(f: &Forecast, runs: &[RunData], arms: &[String]) -> Figure {
    let title = "The forecast: curves fitted on the smaller sizes, the held-out size drawn on them";
    let mut p = Panel::new(
        Axis::log("training FLOPs"),
        Axis::linear("final validation loss"),
    );
    for a in &f.arms {
        let Some(curve) = &a.curve else { continue };
        let mine = runs
            .iter()
            .filter(|r| r.cell.arm == a.arm && r.summary.final_val_loss.is_some());
        let (fitted, held): (Vec<&RunData>, Vec<&RunData>) =
            mine.partition(|r| f.fitted_sizes.contains(&r.cell.size));
        let at = |r: &&RunData| Point::at(r.summary.train_flops, r.summary.final_val_loss.unwrap());
        let lo = fitted
            .iter()
            .map(|r| r.summary.train_flops)
            .fold(f64::MAX, f64::min);
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
        p.push(
            Mark::line(
                series(&format!("{} forecast", a.arm), false),
                line(&past),
                2.0,
            )
            .dashed(Dash::Dashed),
        );
        p.push(Mark::dots(
            series(&format!("{} fitted", a.arm), true),
            fitted.iter().map(at).collect(),
        ));
        let held_points = held.iter().map(at).collect();
        p.push(
            Mark::dots(series(&format!("{} held out", a.arm), true), held_points)
                .shaped(Shape::Diamond),
        );
    }
    Figure::new("forecast", title, vec![p])
        .captioned(CAPTION)
        .or_empty("no arm has a fitted curve")
}
