//! Training loss curves at the largest size (every seed), loss spikes marked with crosses.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotData;
use super::style::{DrawResult, FONT, arm_color, draw_legend, empty, legend_line, range};

pub struct TrainingLoss<'a>(pub &'a PlotData<'a>);
super::style::figure!(TrainingLoss);

impl TrainingLoss<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let d = self.0;
        let size = d.manifest.sizes.iter().rev().find(|s| {
            d.runs
                .iter()
                .any(|r| &r.cell.size == *s && !r.metrics.is_empty())
        });
        let Some(size) = size else {
            return empty(root, "Training loss", "no training metrics yet");
        };
        let runs: Vec<_> = d.runs.iter().filter(|r| &r.cell.size == size).collect();
        let finite = |v: f64| v.is_finite();
        let (x0, x1) = range(
            runs.iter()
                .flat_map(|r| r.metrics.iter().map(|m| m.step as f64)),
            0.0,
        );
        // Skip the first steps (near ln 256) so the interesting range is readable.
        let skip = |r: &&crate::analysis::load::RunData| r.metrics.len() / 20;
        let (y0, y1) = range(
            runs.iter()
                .flat_map(|r| r.metrics.iter().skip(skip(r)).map(|m| m.loss))
                .filter(|v| finite(*v)),
            0.05,
        );
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Training loss, size {size} (× = loss spike)"),
                (FONT, 24),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1.max(x0 + 1.0), y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("training loss (nats/byte)")
            .label_style((FONT, 15))
            .draw()?;
        let arms = &d.manifest.arms;
        for arm in arms {
            let color = arm_color(arms, arm);
            let mut first = true;
            for r in runs.iter().filter(|r| &r.cell.arm == arm) {
                let line: Vec<(f64, f64)> = r
                    .metrics
                    .iter()
                    .filter(|m| finite(m.loss))
                    .map(|m| (m.step as f64, m.loss.clamp(y0, y1)))
                    .collect();
                let s =
                    chart.draw_series(LineSeries::new(line, color.mix(0.55).stroke_width(1)))?;
                if first {
                    s.label(arm.as_str()).legend(legend_line(color));
                    first = false;
                }
                chart.draw_series(r.metrics.iter().filter(|m| m.loss_spike == 1).map(|m| {
                    Cross::new(
                        (m.step as f64, m.loss.clamp(y0, y1)),
                        7,
                        color.stroke_width(3),
                    )
                }))?;
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}
