//! The learning-rate study's figures: loss against learning rate, and the instability proxies.

use super::{LrAnalysis, LrCurve, LrPoint};
use crate::analysis::figure::{Axis, Corner, Dash, Figure, Mark, Panel, Series};

pub fn figures(a: &LrAnalysis, arms: &[String]) -> Vec<Figure> {
    vec![
        sensitivity(a, arms).captioned(LR_SENSITIVITY),
        proxies(a, arms).captioned(LR_PROXIES),
    ]
}

/// How to read the figure (its caption).
pub const LR_PROXIES: &str = "Instability proxies against learning rate (mean over seeds, log scale): the largest attention logit reached in the run (left) and the largest router logit (right). Look for the rate where a curve leaves its low plateau: Wortsman et al. find attention-logit growth precedes divergence";

/// How to read the figure (its caption).
pub const LR_SENSITIVITY: &str = "Final validation loss against learning rate, per arm: the line is the mean over seeds, the band spans the seeds, the dotted line is the loss at initialisation (ℓ0, where losses are capped). Look at how fast each curve rises to the right of its minimum: a flatter bowl is a less sensitive, more stable arm";

/// A curve's legend: its arm, and its size when the sweep has several.
fn label(a: &LrAnalysis, c: &LrCurve) -> String {
    match a.curves.iter().any(|o| o.size != c.size) {
        true => format!("{} ({})", c.arm, c.size),
        false => c.arm.clone(),
    }
}

/// Final loss against learning rate per arm (and size): the mean over seeds as a line, the
/// seeds' range as a band, the loss at initialisation ℓ0 as a dotted line. A flat, wide bowl
/// is a stable arm; a narrow one is sensitive to the learning rate.
fn sensitivity(a: &LrAnalysis, arms: &[String]) -> Figure {
    let title = "Final validation loss against learning rate (band: seeds' range; dotted: ℓ0)";
    let mut p = Panel::new(
        Axis::log("peak learning rate"),
        Axis::linear("final validation loss, capped at ℓ0 (nats/token)"),
    )
    .legend_at(Corner::UpperLeft);
    for curve in a.curves.iter().filter(|c| !c.points.is_empty()) {
        let s = Series::arm(arms, &label(a, curve), &curve.arm, true);
        let col = |f: fn(&LrPoint) -> f64| curve.points.iter().map(f).collect::<Vec<_>>();
        let fill = s.clone().colored(s.color.alpha(0.18));
        p.push(Mark::Band {
            series: fill,
            x: col(|p| p.lr),
            lo: col(|p| p.min_loss),
            hi: col(|p| p.max_loss),
        });
        let mean = col(|p| p.lr)
            .into_iter()
            .zip(col(|p| p.mean_loss))
            .collect();
        p.push(Mark::line_markers(s, mean));
    }
    if let Some(l0) = (!p.marks.is_empty())
        .then(|| a.curves.iter().map(|c| c.loss_at_init).reduce(f64::max))
        .flatten()
    {
        p.push(Mark::HLine {
            y: l0,
            dash: Dash::Dotted,
            label: Some("ℓ0 (loss at initialisation)".into()),
        });
    }
    Figure::new("lr_sensitivity", title, vec![p]).or_empty("no finished runs yet")
}

type Proxy = fn(&LrPoint) -> Option<f64>;

/// The instability proxies against learning rate, log-log: the largest attention logit each
/// run reached (left) and the largest router logit (right), mean over seeds per arm.
fn proxies(a: &LrAnalysis, arms: &[String]) -> Figure {
    let title = "Instability proxies against learning rate: peak attention and router logits";
    let panels: [(&str, Proxy); 2] = [
        ("Peak attention logit", |p| p.attn_logit_peak),
        ("Peak router logit (MoE arms)", |p| p.router_logit_peak),
    ];
    let panels = panels.map(|(name, value)| {
        let mut p = Panel::new(Axis::log("peak learning rate"), Axis::log("logit"))
            .titled(name)
            .legend_at(Corner::UpperLeft);
        for curve in &a.curves {
            let line: Vec<(f64, f64)> = (curve.points.iter())
                .filter_map(|p| Some((p.lr, value(p)?.max(1e-3))))
                .collect();
            if !line.is_empty() {
                let s = Series::arm(arms, &label(a, curve), &curve.arm, true);
                p.push(Mark::line_markers(s, line));
            }
        }
        p
    });
    Figure::new("lr_proxies", title, panels.into()).or_empty("no finished runs yet")
}
