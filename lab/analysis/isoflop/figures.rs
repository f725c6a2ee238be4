//! The IsoFLOP study's figures: the profiles (one panel per budget), the frontiers N* and L*,
//! and L* alone with the multiplier marked where it is read (the answer's figure).

use super::{Ci, IsoflopAnalysis, Profile};
use crate::analysis::figure::{self, Axis, Dash, Figure, Mark, Panel, Point, Series, Shape};

pub fn figures(a: &IsoflopAnalysis, arms: &[String]) -> Vec<Figure> {
    vec![
        profiles(a, arms).captioned(PROFILES),
        frontiers(a, arms).captioned(FRONTIERS),
        loss_frontier(a, arms).captioned(LOSS_FRONTIER),
    ]
}

/// How to read the figure (its caption).
pub const LOSS_FRONTIER: &str = "The answer: compute-optimal loss L* against budget per arm; at each budget where the multiplier is read, a dashed line from the reference's L* to the compute the baseline needs for it, marked ×multiplier";

/// How to read the figure (its caption).
pub const FRONTIERS: &str = "Frontiers: the compute-optimal size N* and loss L* against budget per arm, with 95% bootstrap intervals and the fitted log-log lines (drawn over the budgets fitted only)";

/// How to read the figure (its caption).
pub const PROFILES: &str = "IsoFLOP profiles: final loss against active parameters at each budget, one colour per arm; points are seed means with their range, curves the fitted parabolas, rings their vertices (N*, L*)";

/// One panel per budget: final loss against active parameters for each arm (the seeds' mean
/// with their range), the fitted parabola, and its vertex (N*, L*) as a ring (faint where it
/// lies outside the sizes trained: an edge optimum).
fn profiles(a: &IsoflopAnalysis, arms: &[String]) -> Figure {
    let title = "IsoFLOP profiles: final loss against size at each budget (ring: optimum)";
    let panels = (a.budgets.iter()).map(|&budget| {
        let mut p = Panel::new(
            Axis::log("active parameters N"),
            Axis::linear("final validation loss"),
        )
        .titled(&format!("C = {budget:.2e} FLOPs"));
        let mine = (a.profiles.iter()).filter(|q| q.budget == budget && !q.points.is_empty());
        for q in mine {
            profile_marks(&mut p, q, arms);
        }
        p
    });
    Figure::new("isoflop_profiles", title, panels.collect()).or_empty("no finished runs yet")
}

/// An arm's profile at one budget: its points, parabola and optimum.
fn profile_marks(p: &mut Panel, q: &Profile, arms: &[String]) {
    let range = |s: &super::profile::SizePoint| {
        let ls = s.losses.iter().map(|l| l.1);
        let lo = ls.clone().fold(f64::MAX, f64::min);
        (lo, ls.fold(f64::MIN, f64::max))
    };
    let points: Vec<Point> = (q.points.iter())
        .map(|s| (s, range(s)))
        .map(|(s, (lo, hi))| Point::within(s.params as f64, s.mean_loss(), lo, hi))
        .collect();
    let (x0, x1) = (points[0].x, points[points.len() - 1].x);
    let (y0, y1) = (points.iter()).fold((f64::MAX, f64::MIN), |(a, b), q| {
        let (lo, hi) = q.interval.unwrap_or((q.y, q.y));
        (a.min(lo), b.max(hi))
    });
    let s = Series::arm(arms, &q.arm, &q.arm, true);
    p.push(Mark::dots(s.clone(), points));
    let fit_name = format!("{} C={:.0e} fit", q.arm, q.budget);
    if let Some(fit) = &q.parabola {
        // Over the sizes trained and a little beyond, where it stays near the measured losses.
        let (l0, l1) = ((x0 / 1.2).ln(), (x1 * 1.2).ln());
        let slack = 0.25 * (y1 - y0).max(1e-3);
        let curve = (0..=60)
            .map(|i| l0 + (l1 - l0) * i as f64 / 60.0)
            .map(|x| (x.exp(), fit.at(x)))
            .filter(|c| c.1 >= y0 - slack && c.1 <= y1 + slack)
            .collect();
        let line = Series::arm(arms, &fit_name, &q.arm, false);
        p.push(Mark::line(line, curve, 2.0));
    }
    if let Some(o) = q
        .optimum
        .filter(|o| o.params > x0 / 1.3 && o.params < x1 * 1.3)
    {
        let shape = if o.interior {
            Shape::Ring
        } else {
            Shape::FaintRing
        };
        let ring = Series::arm(arms, &format!("{} optimum", q.arm), &q.arm, false);
        p.push(Mark::dots(ring, vec![Point::at(o.params, o.loss)]).shaped(shape));
    }
}

/// Which frontier a panel draws.
#[derive(Clone, Copy, PartialEq)]
enum Quantity {
    Params,
    Loss,
}

/// N* (left) and L* (right) against budget per arm.
fn frontiers(a: &IsoflopAnalysis, arms: &[String]) -> Figure {
    let title = "Compute-optimal size N* and loss L* against budget (bars: 95% bootstrap)";
    let panels = vec![
        panel(a, arms, Quantity::Params),
        panel(a, arms, Quantity::Loss),
    ];
    Figure::new("isoflop_frontiers", title, panels).or_empty("no profile has an optimum yet")
}

/// L* alone, with the multiplier where it is read: the answer's figure.
fn loss_frontier(a: &IsoflopAnalysis, arms: &[String]) -> Figure {
    let title = "Compute-optimal loss L* against budget; dashed: the multiplier where it is read";
    let panels = vec![panel(a, arms, Quantity::Loss)];
    Figure::new("isoflop_loss_frontier", title, panels).or_empty("no profile has an optimum yet")
}

/// Each arm's optima with their bootstrap intervals (edge optima ringed faintly: no line uses
/// them); N*'s fitted log-log line over the budgets it was fitted on, or L*'s measured optima
/// joined (L*(C) bends toward the corpus' floor, so a power law would misdraw it, and the
/// multiplier is read along the joined optima), with the multiplier marks.
fn panel(a: &IsoflopAnalysis, arms: &[String], q: Quantity) -> Panel {
    let (name, y) = match q {
        Quantity::Params => (
            "Compute-optimal size N*",
            Axis::log("N* (active parameters)"),
        ),
        Quantity::Loss => (
            "Compute-optimal loss L*",
            Axis::linear("L* (final validation loss)"),
        ),
    };
    let mut p = Panel::new(Axis::log("training FLOPs C"), y).titled(name);
    for f in &a.frontiers {
        let mine: Vec<(&Profile, f64, Ci, bool)> = (a.profiles.iter())
            .filter(|pr| pr.arm == f.arm)
            .filter_map(|pr| {
                let o = pr.optimum?;
                Some(match q {
                    Quantity::Params => (pr, o.params, pr.params_ci, o.interior),
                    Quantity::Loss => (pr, o.loss, pr.loss_ci, o.interior),
                })
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        let within = |(pr, v, ci, _): &(&Profile, f64, Ci, bool)| {
            Point::within(pr.budget, *v, ci.low.unwrap_or(*v), ci.high.unwrap_or(*v))
        };
        p.push(Mark::dots(
            Series::arm(arms, &f.arm, &f.arm, true),
            mine.iter().map(within).collect(),
        ));
        let edges: Vec<Point> = (mine.iter())
            .filter(|m| !m.3)
            .map(|m| Point::at(m.0.budget, m.1))
            .collect();
        if !edges.is_empty() {
            let s = Series::arm(arms, &format!("{} edge optima", f.arm), &f.arm, false);
            p.push(Mark::dots(s, edges).shaped(Shape::FaintRing));
        }
        if let Some(fr) = &f.frontier {
            let (b0, b1) = (fr.budgets[0], fr.budgets[fr.budgets.len() - 1]);
            let line = match q {
                Quantity::Params => (0..=20)
                    .map(|i| b0 * (b1 / b0).powf(i as f64 / 20.0))
                    .map(|c| (c, fr.params.at(c)))
                    .collect(),
                Quantity::Loss => fr
                    .budgets
                    .iter()
                    .copied()
                    .zip(fr.losses.iter().copied())
                    .collect(),
            };
            let s = Series::arm(arms, &format!("{} frontier", f.arm), &f.arm, false);
            p.push(Mark::line(s, line, 2.0));
        }
    }
    if q == Quantity::Loss {
        multiplier_marks(&mut p, a);
    }
    p
}

/// Where the answer is read: at each budget where the reference reaches L*, a dashed line to
/// the compute the baseline needs for that loss along its frontier, marked "×m" (none where
/// the multiplier is only bounded).
fn multiplier_marks(p: &mut Panel, a: &IsoflopAnalysis) {
    for m in &a.multipliers {
        let Some(x) = m.multiplier else { continue };
        let needed = x * m.budget;
        let s = Series {
            name: format!("×{x:.2} at C = {:.2e}", m.budget),
            group: "multiplier".into(),
            color: figure::BLACK,
            legend: false,
        };
        let ends = vec![(m.budget, m.target_loss), (needed, m.target_loss)];
        p.push(Mark::line(s.clone(), ends.clone(), 2.0).dashed(Dash::Dashed));
        p.push(Mark::dots(
            s,
            ends.iter().map(|e| Point::at(e.0, e.1)).collect(),
        ));
        p.push(Mark::Text {
            x: (m.budget * needed).sqrt(),
            y: m.target_loss,
            text: format!("×{x:.2}"),
        });
    }
}
