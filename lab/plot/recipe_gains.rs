//! Each lever's gain over the baseline against the student's parameters: mean over seeds with
//! its 95% interval at each size, and the least-squares line through the seeds' gains (the
//! anti-scale test). Points above the zero line: the lever helps.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::RecipePlotData;
use super::style::{DrawResult, FONT, arm_color, draw_legend, empty, legend_line, range};

pub struct RecipeGains<'a>(pub &'a RecipePlotData<'a>);
super::style::figure!(RecipeGains);

impl RecipeGains<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let a = self.0.analysis;
        let points = a.levers.iter().flat_map(|l| &l.by_size);
        let gains = points.clone().filter_map(|at| at.gain.as_ref());
        if gains.clone().next().is_none() || a.sizes.is_empty() {
            return empty(root, "Gain of each lever", "no finished seed pairs yet");
        }
        // x is ln(parameters), labelled in parameters: a log axis would put its ticks at
        // powers of ten only, none of which falls between these sizes.
        let params = a.sizes.iter().map(|(_, p)| (*p as f64).ln());
        let (p0, p1) = params.fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p), hi.max(p)));
        let (x0, x1) = (p0 - 0.25, p1 + 0.25);
        let ys = gains.flat_map(|g| [g.ci_low, g.ci_high]).chain([0.0]);
        let (y0, y1) = range(ys, 0.08);
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Gain over the baseline against model size (bars: 95% CI)",
                (FONT, 24),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("student parameters (log scale)")
            .x_labels(6)
            .y_desc("gain: baseline loss − lever loss (nats/byte)")
            .x_label_formatter(&|v| format!("{:.0}k", v.exp() / 1e3))
            .label_style((FONT, 15))
            .draw()?;
        chart.draw_series(DashedLineSeries::new(
            [(x0, 0.0), (x1, 0.0)],
            4,
            4,
            BLACK.into(),
        ))?;
        let arms = &self.0.manifest.arms;
        for (i, l) in a.levers.iter().enumerate() {
            let color = arm_color(arms, &l.arm);
            // Levers side by side at each size, so their bars do not overlap.
            let nudge = 0.04 * (i as f64 - (a.levers.len() as f64 - 1.0) / 2.0);
            let at: Vec<(f64, &crate::analysis::stats::Paired)> = l
                .by_size
                .iter()
                .filter_map(|s| Some(((s.params as f64).ln() + nudge, s.gain.as_ref()?)))
                .collect();
            chart.draw_series(at.iter().map(|(x, g)| {
                PathElement::new(vec![(*x, g.ci_low), (*x, g.ci_high)], color.stroke_width(2))
            }))?;
            chart
                .draw_series(
                    at.iter()
                        .map(|(x, g)| Circle::new((*x, g.mean), 5, color.filled())),
                )?
                .label(l.arm.clone())
                .legend(legend_line(color));
            if let Some(sl) = &l.slope {
                let line = [p0, p1].map(|x| (x + nudge, sl.intercept + sl.slope * x));
                chart.draw_series(LineSeries::new(line, color.mix(0.6).stroke_width(2)))?;
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}
