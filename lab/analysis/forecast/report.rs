//! A scored forecast in words: the verdict lines (did it hold, per held-out size), the report's
//! section (forecast, observed, error, coverage; the verdicts; exact match), and its figure.

use super::curve::{Form, Predicted};
use super::score::{PointScore, Scored};
use super::stated::Forecast;
use crate::analysis::markdown::{Doc, Table};
use crate::analysis::stats::Verdict;

/// One line per held-out size: the forecast, what was observed, and the score.
pub fn verdicts(f: &Forecast, s: &Scored) -> Vec<String> {
    let mut sizes: Vec<&str> = s.points.iter().map(|p| p.size.as_str()).collect();
    sizes.dedup();
    let when = match s.before_every_run {
        Some(true) => "stated before any of its runs started",
        Some(false) => "NOT a forecast: written after a held-out run had started",
        None => "its runs have not started",
    };
    (sizes.into_iter())
        .map(|size| {
            let each: Vec<String> = (s.points.iter())
                .filter(|p| p.size == size)
                .map(point_words)
                .collect();
            let diff = (s.differences.iter().find(|d| d.size == size))
                .map_or(String::new(), |d| format!("; {}", difference_words(f, d)));
            format!(
                "**Did the forecast for {size} hold?** ({when}; fitted on {}) {}{diff}{}.",
                f.fitted_sizes.join(", "),
                each.join("; "),
                exact_match_words(s, size)
            )
        })
        .collect()
}

/// How many exact-match forecasts at `size` the observed rates fell inside, each way.
fn exact_match_words(s: &Scored, size: &str) -> String {
    let count = |way: &str| {
        let scored: Vec<bool> = (s.exact_match.iter())
            .filter(|p| p.size == size && p.what.ends_with(&format!("({way})")))
            .filter_map(|p| p.covered)
            .collect();
        let inside = scored.iter().filter(|c| **c).count();
        let way = if way == "direct" {
            "fitted directly"
        } else {
            "in two steps"
        };
        (!scored.is_empty()).then(|| format!("{inside} of {} {way}", scored.len()))
    };
    let each: Vec<String> = ["two steps", "direct"]
        .into_iter()
        .filter_map(count)
        .collect();
    match each.is_empty() {
        true => String::new(),
        false => format!(
            "; exact match inside its interval for {} of the (arm, stream) forecasts",
            each.join(" and ")
        ),
    }
}

fn interval(p: &Predicted) -> String {
    format!("{:.4} [{:.4}, {:.4}]", p.mean, p.low, p.high)
}

/// A loss's error in nats and %, an exact-match rate's in percentage points.
fn error_text(p: &PointScore) -> String {
    match (p.error, p.error_pct) {
        (Some(e), Some(pct)) => format!("{e:+.4} ({pct:+.1}%)"),
        (Some(e), None) => format!("{:+.1} points", 100.0 * e),
        _ => "–".into(),
    }
}

fn point_words(p: &PointScore) -> String {
    let head = format!(
        "{}: predicted {} ({:.1}× past the largest fitted budget)",
        p.what,
        interval(&p.predicted),
        p.reach
    );
    match (p.observed, p.error, p.error_pct, p.covered) {
        (Some(o), Some(e), Some(pct), Some(c)) => format!(
            "{head}, observed {o:.4} over {} seeds: error {e:+.4} nats ({pct:+.1}%), {}",
            p.seeds,
            if c {
                "inside the interval"
            } else {
                "OUTSIDE the interval"
            }
        ),
        _ => format!("{head}, not observed yet"),
    }
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Lower => "lower",
        Verdict::Higher => "higher",
        Verdict::Equivalent => "equivalent",
        Verdict::Inconclusive => "inconclusive",
    }
}

fn difference_words(f: &Forecast, d: &super::score::DifferenceScore) -> String {
    let base = f.baseline_arm.as_deref().unwrap_or("baseline");
    let head = format!(
        "{} − {base} predicted {:+.4} [{:+.4}, {:+.4}] ({})",
        f.reference_arm,
        d.predicted.mean,
        d.predicted.low,
        d.predicted.high,
        verdict_name(d.forecast)
    );
    match (&d.observed, d.verdict, d.matches) {
        (Some(p), Some(v), Some(m)) => format!(
            "{head}, observed {:+.4} [{:+.4}, {:+.4}] over {} paired seeds ({}): the verdict {}",
            p.mean,
            p.ci_low,
            p.ci_high,
            p.n,
            verdict_name(v),
            if m { "matches" } else { "differs" }
        ),
        _ => format!("{head}, not observed yet"),
    }
}

/// How the intervals were made, in words.
fn method(optima: bool) -> &'static str {
    match optima {
        false => {
            "Each interval is a 95% prediction interval for the held-out seeds' mean: the fit's \
             uncertainty at that budget (delta method) and the runs' own spread, on the fit's \
             residual degrees of freedom. Exact match is forecast in two steps (compute → answer \
             loss per arm, then one sigmoid of answer loss → exact match over every fitted run), \
             and directly (a log–log line of exact match on compute per arm) beside it."
        }
        true => {
            "Each interval is a 95% prediction interval for one new L*: the fit's uncertainty \
             at that budget (delta method) and the spread of the fitted budgets' L* about the \
             curve, on its residual degrees of freedom; the observed value is the held-out \
             profile's own optimum (its parabola's vertex, inside its sizes)."
        }
    }
}

/// `## Forecast, scored`: the method, one row per prediction, and the figure.
pub fn section(f: &Forecast, s: &Scored, plots_rel: &str) -> String {
    let mut doc = Doc::default();
    doc.heading("Forecast, scored");
    for v in verdicts(f, s) {
        doc.item(&v);
    }
    doc.line("");
    doc.para(&format!(
        "Fitted on {} ({}), the forecast was written at commit {} before the held-out cells \
         were trained (`forecast.json`, never rewritten). {}",
        f.fitted_sizes.join(", "),
        match (f.form, f.optima) {
            (Form::Floor, false) => "L = E + A·C^(−α)",
            (Form::Power, false) => "L = A·C^(−α)",
            (Form::Floor, true) => "each profile's L*, L* = E + A·C^(−α)",
            (Form::Power, true) => "each profile's L*, L* = A·C^(−α)",
        },
        s.commit,
        method(f.optima)
    ));
    let mut t = Table::new(&[
        "size",
        "what",
        "predicted [95% PI]",
        "observed",
        "error",
        "inside",
    ]);
    for p in s.points.iter().chain(&s.exact_match) {
        t.row(&[
            p.size.clone(),
            p.what.clone(),
            interval(&p.predicted),
            p.observed
                .map_or("–".into(), |o| format!("{o:.4} ({} seeds)", p.seeds)),
            error_text(p),
            p.covered
                .map_or("–".into(), |c| if c { "yes" } else { "no" }.into()),
        ]);
    }
    doc.table(t);
    for n in &f.notes {
        doc.item(n);
    }
    doc.figure(plots_rel, "forecast", super::figure::CAPTION);
    doc.finish()
}
