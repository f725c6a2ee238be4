//! Final validation loss against compute (log x) per arm, with each arm's fitted
//! `L(C) = E + A·C^(−α)` drawn over the budgets it was fitted on (never extrapolated).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotData;
use super::style::{DrawResult, FONT, arm_color, draw_legend, empty, legend_line, range};
use crate::run::RunStatus;

pub struct Scaling<'a>(pub &'a PlotData<'a>);
super::style::figure!(Scaling);

impl Scaling<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let d = self.0;
        let pts: Vec<(&str, f64, f64)> = d
            .runs
            .iter()
            .filter(|r| r.summary.status == RunStatus::Complete)
            .filter_map(|r| {
                r.summary
                    .final_val_loss
                    .map(|l| (r.cell.arm.as_str(), r.summary.train_flops, l))
            })
            .collect();
        if pts.is_empty() {
            return empty(root, "Scaling", "no complete runs yet");
        }
        let (x0, x1) = range(pts.iter().map(|p| p.1), 0.0);
        let (y0, y1) = range(pts.iter().map(|p| p.2), 0.1);
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Final validation loss vs compute, with fitted L(C) = E + A·C^−α",
                (FONT, 24),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((x0 * 0.8..x1 * 1.25).log_scale(), y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("training FLOPs C (log scale)")
            .y_desc("final validation loss (nats/byte)")
            .x_labels(6)
            .x_label_formatter(&|v| format!("{v:.1e}"))
            .label_style((FONT, 15))
            .draw()?;
        let arms = &d.manifest.arms;
        for arm in arms {
            let color = arm_color(arms, arm);
            let mine: Vec<(f64, f64)> = pts
                .iter()
                .filter(|p| p.0 == arm)
                .map(|p| (p.1, p.2))
                .collect();
            if mine.is_empty() {
                continue;
            }
            chart
                .draw_series(mine.iter().map(|p| Circle::new(*p, 5, color.filled())))?
                .label(arm.as_str())
                .legend(legend_line(color));
            if let Some(Some(fit)) = d.analysis.fits.get(arm) {
                let n = 60;
                let curve: Vec<(f64, f64)> = (0..=n)
                    .map(|i| {
                        let c = fit.c_min * (fit.c_max / fit.c_min).powf(i as f64 / n as f64);
                        (c, fit.predict(c))
                    })
                    .collect();
                chart.draw_series(LineSeries::new(curve, color.stroke_width(2)))?;
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}
