//! The data-mix study's figures: each arm's held-out predictions against the observed losses,
//! and the optimum's weights against the base and uniform mixtures.

use super::{MixAnalysis, Trusted, rows};
use crate::analysis::figure::{Axis, BLACK, Dash, Figure, Mark, Panel, Point, Series, Shape};
use crate::analysis::stats::mean_ci;
use crate::sweep::mix_check::OPTIMUM as OPTIMUM_MIX;

/// How to read the fit figure (its caption).
pub const FIT: &str = "Each run's target loss (x) against what the trusted law predicts for its mixture when fitted without that mixture (y; the mixing law where no law is trusted). Points on the diagonal: the law predicts mixtures it never saw";
/// How to read the optimum figure (its caption).
pub const OPTIMUM: &str = "The weight each arm's optimum gives each domain, with its 95% bootstrap interval over mixtures and seeds; diamonds: the base mix; dashed: uniform";

/// How to read the slices figure (its caption).
pub const SLICES: &str = "The trusted law's target as one domain's weight moves from its floor to its largest, the other domains keeping their shares of the rest as at the optimum; the minimum of each curve is where that domain's weight is best with the others held so";

pub fn figures(a: &MixAnalysis, arms: &[String]) -> Vec<Figure> {
    vec![
        fit(a, arms).captioned(FIT),
        optimum(a, arms).captioned(OPTIMUM),
        slices(a, arms).captioned(SLICES),
        ranks(a, arms).captioned(RANKS),
        check(a, arms).captioned(CHECK),
    ]
}

/// How to read the check figure (its caption).
pub const CHECK: &str = "At the larger size, each arm's predicted optimum beside the base mix and uniform, trained on the same seeds: the target loss's seed mean with its 95% interval (t over seeds; the verdicts pair the seeds, which is tighter)";

/// A panel per arm that trained its optimum at the larger size: the three mixtures' targets.
fn check(a: &MixAnalysis, arms: &[String]) -> Figure {
    let title = "The predicted optimum checked at the larger size, beside the base mix and uniform";
    let names = [OPTIMUM_MIX, "base", "uniform"];
    let checked = (a.arms.iter()).filter(|m| m.points.iter().any(|p| p.name == OPTIMUM_MIX));
    let panels = checked.map(|m| {
        let mut p = Panel::new(
            Axis::categories("mixture", names.map(String::from).to_vec()),
            Axis::linear(&format!("target loss at {}", m.size)),
        )
        .titled(&format!("{} at {}", m.arm, m.size));
        let points = (names.iter().enumerate())
            .filter_map(|(j, n)| {
                let q = m.points.iter().find(|q| &q.name == n)?;
                let c = mean_ci(&q.losses.iter().map(|l| l.1).collect::<Vec<_>>());
                let hw = if c.half_width.is_finite() {
                    c.half_width
                } else {
                    0.0
                };
                Some(Point::within(j as f64, c.mean, c.mean - hw, c.mean + hw))
            })
            .collect();
        p.push(Mark::dots(Series::arm(arms, &m.arm, &m.arm, true), points));
        p
    });
    Figure::new("mix_check", title, panels.collect())
        .or_empty("no arm's optimum trained at a larger size (`[mixtures] check_size`)")
}

/// How to read the rank figure (its caption).
pub const RANKS: &str = "Each mixture both sizes trained: its target loss at the small size (x) and at the larger one (y), seed means, per arm. Points rising left to right: the larger model ranks the mixtures as the small runs do";

/// The small size's target against the larger size's, over the mixtures both trained.
fn ranks(a: &MixAnalysis, arms: &[String]) -> Figure {
    let title = "Rank invariance: each shared mixture's loss at the small and the larger size";
    let (small, large) = match a.rank_checks.first() {
        Some(c) => (c.small.clone(), c.large.clone()),
        None => (String::new(), String::new()),
    };
    let mut p = Panel::new(
        Axis::linear(&format!("target loss at {small}")),
        Axis::linear(&format!("target loss at {large}")),
    );
    for c in &a.rank_checks {
        let at = |size: &str| a.arms.iter().find(|m| m.arm == c.arm && m.size == size);
        let (Some(s), Some(l)) = (at(&c.small), at(&c.large)) else {
            continue;
        };
        let points: Vec<Point> = (c.mixtures.iter())
            .filter_map(|name| {
                let x = s.points.iter().find(|q| &q.name == name)?.mean();
                let y = l.points.iter().find(|q| &q.name == name)?.mean();
                Some(Point::at(x, y))
            })
            .collect();
        let name = format!("{} (ρ = {:.2})", c.arm, c.rho);
        p.push(Mark::Points {
            series: Series::arm(arms, &name, &c.arm, true),
            points,
            shape: Shape::Dot,
            labels: c.mixtures.clone(),
        });
    }
    Figure::new("mix_ranks", title, vec![p])
        .or_empty("no larger size trained (`[mixtures] check_size`)")
}

/// One panel per domain: the target along that domain's weight, the rest as at the optimum.
fn slices(a: &MixAnalysis, arms: &[String]) -> Figure {
    let title =
        "The target as each domain's weight moves (the others in the optimum's proportions)";
    let k = a.domains.len();
    let panels = (a.domains.iter().enumerate()).map(|(j, d)| {
        let mut p = Panel::new(
            Axis::linear(&format!("{d} weight")),
            Axis::linear("predicted target"),
        )
        .titled(d);
        for m in a.arms.iter().filter(|m| m.optimum.is_some()) {
            let o = m.optimum.as_ref().expect("filtered");
            let rest: f64 = 1.0 - o.weights[j];
            let (lo, hi) = (a.floor, 1.0 - a.floor * (k - 1) as f64);
            let line = (0..=40)
                .map(|i| lo + (hi - lo) * i as f64 / 40.0)
                .filter_map(|x| {
                    let r: Vec<f64> = (0..k)
                        .map(|i| match i == j {
                            true => x,
                            false => o.weights[i] / rest.max(1e-12) * (1.0 - x),
                        })
                        .collect();
                    Some((x, m.predict(&r)?))
                })
                .collect();
            let name = format!("{} {}", m.arm, m.size);
            p.push(Mark::line(
                Series::arm(arms, &name, &m.arm, true),
                line,
                2.0,
            ));
        }
        p
    });
    Figure::new("mix_slices", title, panels.collect()).or_empty("no arm has a trusted law")
}

fn fit(a: &MixAnalysis, arms: &[String]) -> Figure {
    let title = "Held-out prediction against observed loss, per arm (leave one mixture out)";
    let mut p = Panel::new(
        Axis::linear("observed target loss (nats/token)"),
        Axis::linear("predicted without that mixture"),
    );
    let mut all = Vec::new();
    for m in &a.arms {
        let loo = match m.trusted {
            Some(Trusted::Linear) => &m.loo_linear,
            _ => &m.loo_law,
        };
        let y = rows(&m.points).targets;
        if loo.failed > 0 || loo.errors.len() != y.len() {
            continue;
        }
        let points: Vec<Point> = (y.iter().zip(&loo.errors))
            .map(|(obs, e)| Point::at(*obs, obs + e))
            .collect();
        all.extend(y.iter().copied());
        let name = format!("{} {}", m.arm, m.size);
        p.push(Mark::dots(Series::arm(arms, &name, &m.arm, true), points));
    }
    if let (Some(lo), Some(hi)) = (
        all.iter().copied().reduce(f64::min),
        all.iter().copied().reduce(f64::max),
    ) {
        let diagonal = Series {
            name: "y = x".into(),
            group: "y = x".into(),
            color: BLACK,
            legend: false,
        };
        p.push(Mark::line(diagonal, vec![(lo, lo), (hi, hi)], 1.0).dashed(Dash::Dashed));
    }
    Figure::new("mix_fit", title, vec![p]).or_empty("no arm's fit predicts every held-out mixture")
}

fn optimum(a: &MixAnalysis, arms: &[String]) -> Figure {
    let title = "The optimal mixture per arm (bars: 95% bootstrap), the base mix and uniform";
    let mut p = Panel::new(
        Axis::categories("domain", a.domains.clone()),
        Axis::linear("weight").cut(0.0, 1.0),
    );
    let k = a.domains.len();
    for m in a.arms.iter().filter(|m| m.optimum.is_some()) {
        let o = m.optimum.as_ref().expect("filtered");
        let points = (o.weights.iter().zip(&o.intervals).enumerate())
            .map(|(j, (w, (lo, hi)))| Point::within(j as f64, *w, *lo, *hi))
            .collect();
        let name = format!("{} {} optimum", m.arm, m.size);
        p.push(Mark::dots(Series::arm(arms, &name, &m.arm, true), points));
    }
    let base = a
        .arms
        .iter()
        .flat_map(|m| &m.points)
        .find(|q| q.name == "base");
    if let Some(b) = base {
        let s = Series {
            name: "base mix".into(),
            group: "base".into(),
            color: BLACK,
            legend: true,
        };
        let points = b
            .weights
            .iter()
            .enumerate()
            .map(|(j, w)| Point::at(j as f64, *w))
            .collect();
        p.push(Mark::dots(s, points).shaped(Shape::Diamond));
    }
    p.push(Mark::HLine {
        y: 1.0 / k.max(1) as f64,
        dash: Dash::Dashed,
        label: Some("uniform".into()),
    });
    let fig = Figure::new("mix_optimum", title, vec![p]);
    match a.arms.iter().any(|m| m.optimum.is_some()) {
        true => fig,
        false => Figure::empty("mix_optimum", title, "no arm has a trusted law"),
    }
}
