//! The interactive figures of the learning-rate, recipe and IsoFLOP studies (the scaling
//! study's are in [`super::scaling`]): the same data as `plot::draw_lr`, `draw_recipe` and
//! `draw_isoflop`, drawn by Plotly.

use serde_json::json;

use super::chart::{Chart, Series, color, linear, log};
use crate::analysis::isoflop::profile::Optimum;
use crate::analysis::isoflop::{Ci, IsoflopAnalysis, Profile};
use crate::analysis::lr::LrPoint;
use crate::plot::{IsoflopPlotData, LrPlotData, RecipePlotData};

fn series<'a>(arms: &[String], name: &'a str, arm: &'a str, legend: bool) -> Series<'a> {
    Series {
        name,
        group: arm,
        color: color(arms, arm, 1.0),
        legend,
    }
}

pub fn lr(d: &LrPlotData) -> Vec<Chart> {
    let (a, arms) = (d.analysis, &d.manifest.arms);
    let title = "Final validation loss against learning rate (band: seeds' range; dotted: ℓ0)";
    let mut c = Chart::new(
        "lr_sensitivity",
        title,
        log("peak learning rate"),
        linear("final validation loss, capped at ℓ0"),
    );
    for curve in &a.curves {
        let label = d.label(curve);
        let s = series(arms, &label, &curve.arm, true);
        let col = |f: fn(&LrPoint) -> f64| curve.points.iter().map(f).collect::<Vec<_>>();
        let x = col(|p| p.lr);
        let fill = color(arms, &curve.arm, 0.18);
        c.push(s.band(&x, &col(|p| p.min_loss), &col(|p| p.max_loss), fill));
        c.push(s.line_markers(&x, &col(|p| p.mean_loss)));
    }
    if let Some(l0) = a.curves.iter().map(|c| c.loss_at_init).reduce(f64::max) {
        c.hline(l0, "dot");
    }
    let mut charts = vec![c];
    type Proxy = (&'static str, fn(&LrPoint) -> Option<f64>);
    let proxies: [Proxy; 2] = [
        ("attention logit", |p| p.attn_logit_peak),
        ("router logit", |p| p.router_logit_peak),
    ];
    let mut p = Chart::new(
        "lr_proxies",
        "Instability proxies against learning rate (solid: attention logit; dashed: router logit)",
        log("peak learning rate"),
        log("peak logit"),
    );
    for (what, value) in proxies {
        for curve in &a.curves {
            let pts: Vec<(f64, f64)> = (curve.points.iter())
                .filter_map(|p| Some((p.lr, value(p)?.max(1e-3))))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let name = format!("{} {what}", d.label(curve));
            let (x, y): (Vec<f64>, Vec<f64>) = pts.into_iter().unzip();
            let mut t = series(arms, &name, &curve.arm, true).line_markers(&x, &y);
            if what.contains("router") {
                t["line"]["dash"] = json!("dash");
            }
            p.push(t);
        }
    }
    charts.push(p);
    charts
}

pub fn recipe(d: &RecipePlotData) -> Vec<Chart> {
    let (a, arms) = (d.analysis, &d.manifest.arms);
    let title = "Gain over the baseline against model size (bars: 95% CI; line: anti-scale fit)";
    let mut c = Chart::new(
        "recipe_gains",
        title,
        log("student parameters"),
        linear("gain: baseline loss − lever loss (nats)"),
    );
    for l in &a.levers {
        let at: Vec<_> = (l.by_size.iter())
            .filter_map(|s| Some((s.params as f64, s.gain.as_ref()?)))
            .collect();
        let x: Vec<f64> = at.iter().map(|p| p.0).collect();
        let pick = |f: fn(&crate::analysis::stats::Paired) -> f64| {
            at.iter().map(|p| f(p.1)).collect::<Vec<_>>()
        };
        let s = series(arms, &l.arm, &l.arm, true);
        let (lo, hi) = (pick(|g| g.ci_low), pick(|g| g.ci_high));
        c.push(s.points(&x, &pick(|g| g.mean), Some(&lo), Some(&hi)));
        if let (Some(sl), Some(x0), Some(x1)) = (&l.slope, x.first(), x.last()) {
            let line = [*x0, *x1];
            let y = line.map(|x| sl.intercept + sl.slope * x.ln());
            let name = format!("{} fit", l.arm);
            c.push(series(arms, &name, &l.arm, false).line(&line, &y, 2.0));
        }
    }
    c.hline(0.0, "dash");
    vec![c]
}

pub fn isoflop(d: &IsoflopPlotData) -> Vec<Chart> {
    let (a, arms) = (d.analysis, &d.manifest.arms);
    vec![
        profiles(a, arms),
        frontiers(a, arms),
        loss_frontier(a, arms),
    ]
}

/// Marker symbols and line dashes that tell an arm's budgets apart in one plot.
const BUDGET_SYMBOLS: [&str; 5] = ["circle", "square", "diamond", "triangle-up", "x"];
const BUDGET_DASHES: [&str; 5] = ["solid", "dash", "dot", "dashdot", "longdash"];

/// L* against budget per arm (the answer's axis), with the intervals, each arm's measured
/// optima joined (the baseline's is what the multiplier is read along), and the multiplier
/// marked where it is read: a dashed arrow from the reference's (C, L*) to the baseline's
/// compute for that loss.
fn loss_frontier(a: &IsoflopAnalysis, arms: &[String]) -> Chart {
    let title = "Compute-optimal loss L* against budget; dashed: the multiplier where it is read";
    let mut c = Chart::new(
        "isoflop_loss_frontier",
        title,
        log("training FLOPs C"),
        linear("L* (final validation loss)"),
    );
    for f in &a.frontiers {
        let [x, y, lo, hi] = optima(a, &f.arm, |o| o.loss, |p| p.loss_ci);
        c.push(series(arms, &f.arm, &f.arm, true).points(&x, &y, Some(&lo), Some(&hi)));
        if let Some(fr) = &f.frontier {
            let name = format!("{} optima", f.arm);
            c.push(series(arms, &name, &f.arm, false).line(&fr.budgets, &fr.losses, 2.0));
        }
    }
    for m in crate::plot::isoflop_frontiers::multiplier_marks(a) {
        let name = format!("×{:.2} at C = {:.2e}", m.multiplier, m.budget);
        c.push(json!({"type": "scatter", "mode": "lines+markers+text", "name": name,
            "x": [m.budget, m.needed], "y": [m.loss, m.loss],
            "text": [format!("×{:.2}", m.multiplier), ""], "textposition": "top center",
            "line": {"color": "black", "dash": "dash", "width": 2},
            "marker": {"color": "black", "size": 7, "symbol": ["circle", "arrow-right"]},
            "hovertemplate": format!("<b>{}</b><br>baseline needs %{{x:.3e}} FLOPs for L* = {:.4}<extra></extra>", html_name(&name), m.loss)}));
    }
    c
}

/// `arm`'s optima across budgets: budgets, a quantity of each optimum, and its interval's ends
/// (the value itself where an end is missing).
fn optima(
    a: &IsoflopAnalysis,
    arm: &str,
    value: fn(&Optimum) -> f64,
    ci: fn(&Profile) -> Ci,
) -> [Vec<f64>; 4] {
    let mine: Vec<_> = (a.profiles.iter())
        .filter(|p| p.arm == arm)
        .filter_map(|p| Some((p, p.optimum?)))
        .collect();
    let col = |f: &dyn Fn(&Profile, f64) -> f64| -> Vec<f64> {
        mine.iter().map(|(p, o)| f(p, value(o))).collect()
    };
    [
        col(&|p, _| p.budget),
        col(&|_, v| v),
        col(&|p, v| ci(p).low.unwrap_or(v)),
        col(&|p, v| ci(p).high.unwrap_or(v)),
    ]
}

fn html_name(name: &str) -> String {
    name.replace('<', "&lt;").replace('>', "&gt;")
}

/// All budgets in one plot: each budget's profile per arm (mean over seeds with the seeds'
/// range, the fitted parabola) and its optimum as a ring.
fn profiles(a: &IsoflopAnalysis, arms: &[String]) -> Chart {
    let title = "IsoFLOP profiles: final loss against size at each budget (one marker and dash per budget; ring: optimum)";
    let mut c = Chart::new(
        "isoflop_profiles",
        title,
        log("active parameters N"),
        linear("final validation loss"),
    );
    for p in a.profiles.iter().filter(|p| !p.points.is_empty()) {
        let name = format!("{} C={:.0e}", p.arm, p.budget);
        let b = a.budgets.iter().position(|x| *x == p.budget).unwrap_or(0);
        let (symbol, dash) = (
            BUDGET_SYMBOLS[b % BUDGET_SYMBOLS.len()],
            BUDGET_DASHES[b % BUDGET_DASHES.len()],
        );
        let s = series(arms, &name, &p.arm, true);
        let x: Vec<f64> = p.points.iter().map(|s| s.params as f64).collect();
        let lo: Vec<f64> = (p.points.iter())
            .map(|s| s.losses.iter().map(|l| l.1).fold(f64::MAX, f64::min))
            .collect();
        let hi: Vec<f64> = (p.points.iter())
            .map(|s| s.losses.iter().map(|l| l.1).fold(f64::MIN, f64::max))
            .collect();
        let mean: Vec<f64> = p.points.iter().map(|s| s.mean_loss()).collect();
        let mut points = s.points(&x, &mean, Some(&lo), Some(&hi));
        points["marker"]["symbol"] = json!(symbol);
        c.push(points);
        if let (Some(fit), Some(x0), Some(x1)) = (&p.parabola, x.first(), x.last()) {
            let (l0, l1) = ((x0 / 1.2).ln(), (x1 * 1.2).ln());
            let xs: Vec<f64> = (0..=40)
                .map(|i| (l0 + (l1 - l0) * i as f64 / 40.0).exp())
                .collect();
            let ys: Vec<f64> = xs.iter().map(|x| fit.at(x.ln())).collect();
            let mut curve = series(arms, &name, &p.arm, false).line(&xs, &ys, 2.0);
            curve["line"]["dash"] = json!(dash);
            c.push(curve);
        }
        if let Some(o) = p.optimum {
            let mut t =
                series(arms, &name, &p.arm, false).points(&[o.params], &[o.loss], None, None);
            let symbol = if o.interior {
                "circle-open"
            } else {
                "circle-open-dot"
            };
            t["marker"] = json!({"symbol": symbol, "size": 16, "color": color(arms, &p.arm, 1.0)});
            c.push(t);
        }
    }
    c
}

/// N* against budget per arm, with the bootstrap intervals and the fitted line (L*'s frontier
/// is in the report's table and the static figure).
fn frontiers(a: &IsoflopAnalysis, arms: &[String]) -> Chart {
    let title = "Compute-optimal size N* against budget (bars: 95% bootstrap; line: fit)";
    let mut c = Chart::new(
        "isoflop_frontiers",
        title,
        log("training FLOPs C"),
        log("N* (active parameters)"),
    );
    for f in &a.frontiers {
        let [x, y, lo, hi] = optima(a, &f.arm, |o| o.params, |p| p.params_ci);
        c.push(series(arms, &f.arm, &f.arm, true).points(&x, &y, Some(&lo), Some(&hi)));
        if let Some(fr) = &f.frontier {
            let (b0, b1) = (fr.budgets[0], fr.budgets[fr.budgets.len() - 1]);
            let xs: Vec<f64> = (0..=20)
                .map(|i| b0 * (b1 / b0).powf(i as f64 / 20.0))
                .collect();
            let ys: Vec<f64> = xs.iter().map(|c| fr.params.at(*c)).collect();
            let name = format!("{} fit", f.arm);
            c.push(series(arms, &name, &f.arm, false).line(&xs, &ys, 2.0));
        }
    }
    c
}
