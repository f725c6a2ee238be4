//! The recipe study's figure: each lever's gain over the baseline against model size.

use super::RecipeAnalysis;
use crate::analysis::figure::{Axis, Dash, Figure, Mark, Panel, Point, Series};

pub fn figures(a: &RecipeAnalysis, arms: &[String]) -> Vec<Figure> {
    vec![gains(a, arms).captioned(RECIPE_GAINS)]
}

/// How to read the figure (its caption).
pub const RECIPE_GAINS: &str = "Each lever's gain over the baseline (baseline loss − lever loss, nats/token; above 0 the lever helps) against the student's parameters (log scale): mean over seeds with its 95% interval, and the least-squares line through the seeds' gains. The anti-scale conjecture predicts lines falling to the right";

/// Each lever's gain over the baseline against the student's parameters: the mean over seeds
/// with its 95% interval at each size, and the least-squares line through the seeds' gains
/// (the anti-scale test). Points above the zero line: the lever helps.
fn gains(a: &RecipeAnalysis, arms: &[String]) -> Figure {
    let title = "Gain over the baseline against model size (bars: 95% CI; line: anti-scale fit)";
    let mut p = Panel::new(
        Axis::log("student parameters"),
        Axis::linear("gain: baseline loss − lever loss (nats/token)"),
    );
    p.push(Mark::HLine {
        y: 0.0,
        dash: Dash::Dashed,
        label: None,
    });
    let n = a.levers.len() as f64;
    for (i, l) in a.levers.iter().enumerate() {
        // Levers side by side at each size (×e^±0.04), so their intervals do not overlap.
        let nudge = (0.04 * (i as f64 - (n - 1.0) / 2.0)).exp();
        let points: Vec<Point> = (l.by_size.iter())
            .filter_map(|s| Some((s.params as f64 * nudge, s.gain.as_ref()?)))
            .map(|(x, g)| Point::within(x, g.mean, g.ci_low, g.ci_high))
            .collect();
        if points.is_empty() {
            continue;
        }
        let ends = [points[0].x, points[points.len() - 1].x];
        p.push(Mark::dots(Series::arm(arms, &l.arm, &l.arm, true), points));
        if let Some(sl) = &l.slope {
            let line = ends.map(|x| (x, sl.intercept + sl.slope * (x / nudge).ln()));
            let s = Series::arm(arms, &format!("{} fit", l.arm), &l.arm, false);
            p.push(Mark::line(
                s.clone().colored(s.color.alpha(0.6)),
                line.into(),
                2.0,
            ));
        }
    }
    let figure = Figure::new("recipe_gains", title, vec![p]);
    match figure.panels[0].marks.len() > 1 {
        true => figure,
        false => Figure::empty("recipe_gains", title, "no finished seed pairs yet"),
    }
}
