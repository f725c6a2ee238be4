//! Loss and grad-norm spikes per 1k steps, one pair of bars per arm (solid: loss, lighter:
//! grad norm), each labelled by what it counts, "none" where an arm had no spike of a kind.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotData;
use super::style::{DrawResult, FONT, arm_color, category_label, draw_legend, empty};

pub struct SpikeRate<'a>(pub &'a PlotData<'a>);
super::style::figure!(SpikeRate);

impl SpikeRate<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let d = self.0;
        let st = &d.analysis.stability;
        if st.is_empty() {
            return empty(root, "Spike rate", "no runs yet");
        }
        let top = st
            .iter()
            .map(|s| s.loss_spikes_per_1k.max(s.grad_spikes_per_1k))
            .fold(0.0, f64::max)
            .max(1.0)
            * 1.25;
        let n = st.len();
        let mut chart = ChartBuilder::on(root)
            .caption(CAPTION, (FONT, 22))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
        let labels: Vec<String> = st.iter().map(|s| s.arm.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| category_label(&labels, *x))
            .y_desc("spikes per 1000 steps")
            .x_desc("arm")
            .label_style((FONT, 15))
            .draw()?;
        for (i, s) in st.iter().enumerate() {
            let color = arm_color(&d.manifest.arms, &s.arm);
            for (j, (what, v, alpha)) in bars(s).into_iter().enumerate() {
                let x = i as f64 + 0.15 + 0.37 * j as f64;
                let bar = [(x, 0.0), (x + 0.33, v)];
                let r = chart.draw_series([
                    Rectangle::new(bar, color.mix(alpha).filled()),
                    Rectangle::new(bar, color.stroke_width(1)),
                ])?;
                if i == 0 {
                    let c = color.mix(alpha);
                    r.label(what.to_string()).legend(move |(x, y)| {
                        Rectangle::new([(x, y - 6), (x + 16, y + 6)], c.filled())
                    });
                }
                let text = format!("{}: {}", short(what), value_label(v));
                chart.draw_series([Text::new(
                    text,
                    (x, v + top * 0.03),
                    (FONT, 13).into_font(),
                )])?;
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

pub const CAPTION: &str =
    "Spikes per 1k steps by arm: loss spikes (solid), grad-norm spikes (light)";

/// An arm's two bars, each named by what it counts: (name, per 1k steps, opacity).
pub(crate) fn bars(s: &crate::analysis::scaling::Stability) -> [(&'static str, f64, f64); 2] {
    [
        ("loss spikes", s.loss_spikes_per_1k, 1.0),
        ("grad-norm spikes", s.grad_spikes_per_1k, 0.45),
    ]
}

/// A bar's value, "none" when the arm had no spike of that kind (a bar of height 0 is
/// otherwise invisible, and a legend entry beside it would name nothing drawn).
pub(crate) fn value_label(v: f64) -> String {
    match v == 0.0 {
        true => "none".into(),
        false => format!("{v:.2}"),
    }
}

fn short(what: &str) -> &str {
    what.split(' ').next().unwrap_or(what)
}
