//! Validation loss against training FLOPs per arm and size: the mean over seeds as a line,
//! the seeds' range as a band, coloured by arm.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotData;
use super::style::{DrawResult, FONT, arm_color, draw_legend, empty, legend_line, range};

pub struct LossVsFlops<'a>(pub &'a PlotData<'a>);
super::style::figure!(LossVsFlops);

impl LossVsFlops<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let d = self.0;
        let points: Vec<(f64, f64)> = d
            .runs
            .iter()
            .flat_map(|r| r.evals.iter().map(|e| (e.flops, e.val_loss)))
            .collect();
        if points.is_empty() {
            return empty(
                root,
                "Validation loss vs training FLOPs",
                "no evaluations yet",
            );
        }
        let (x0, x1) = range(points.iter().map(|p| p.0), 0.0);
        let (y0, y1) = range(points.iter().map(|p| p.1), 0.05);
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Validation loss vs training FLOPs (line: seed mean; band: seeds' range)",
                (FONT, 24),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((x0 * 0.9..x1 * 1.1).log_scale(), y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("training FLOPs (log scale)")
            .y_desc("validation loss (nats/byte)")
            .x_labels(6)
            .x_label_formatter(&|v| format!("{v:.1e}"))
            .label_style((FONT, 15))
            .draw()?;
        let arms = &d.manifest.arms;
        for arm in arms {
            let color = arm_color(arms, arm);
            let mut first = true;
            for size in &d.manifest.sizes {
                let band = seed_band(d, arm, size);
                if band.is_empty() {
                    continue;
                }
                let upper = band.iter().map(|p| (p.0, p.3));
                let lower = band.iter().rev().map(|p| (p.0, p.2));
                chart.draw_series([Polygon::new(
                    upper.chain(lower).collect::<Vec<_>>(),
                    color.mix(0.2).filled(),
                )])?;
                let line: Vec<(f64, f64)> = band.iter().map(|p| (p.0, p.1)).collect();
                let s = chart.draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?;
                if first {
                    s.label(arm.as_str()).legend(legend_line(color));
                    first = false;
                }
                chart.draw_series(line.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

/// Per evaluation step of `arm` at `size`: (FLOPs, mean, min, max) of the seeds' validation
/// losses.
pub(crate) fn seed_band(d: &PlotData, arm: &str, size: &str) -> Vec<(f64, f64, f64, f64)> {
    let mut by_step: std::collections::BTreeMap<usize, (f64, Vec<f64>)> = Default::default();
    let runs = d
        .runs
        .iter()
        .filter(|r| r.cell.arm == arm && r.cell.size == size);
    for e in runs.flat_map(|r| &r.evals) {
        by_step
            .entry(e.step)
            .or_insert((e.flops, vec![]))
            .1
            .push(e.val_loss);
    }
    by_step
        .into_values()
        .map(|(flops, v)| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (flops, mean, lo, hi)
        })
        .collect()
}
