//! Training loss at the largest size: every seed's raw curve faint behind, each arm's seed-mean
//! smoothed on top (so overlapping arms stay apart), loss spikes marked with crosses.

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
                format!(
                    "Training loss, size {size}: seed mean smoothed, raw seeds faint (× = spike)"
                ),
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
            let mine: Vec<_> = runs.iter().filter(|r| &r.cell.arm == arm).collect();
            for r in &mine {
                let line: Vec<(f64, f64)> = r
                    .metrics
                    .iter()
                    .filter(|m| finite(m.loss))
                    .map(|m| (m.step as f64, m.loss.clamp(y0, y1)))
                    .collect();
                chart.draw_series(LineSeries::new(line, color.mix(0.2).stroke_width(1)))?;
                chart.draw_series(r.metrics.iter().filter(|m| m.loss_spike == 1).map(|m| {
                    Cross::new(
                        (m.step as f64, m.loss.clamp(y0, y1)),
                        7,
                        color.stroke_width(3),
                    )
                }))?;
            }
            let mean = smoothed_mean(&mine.iter().map(|r| &r.metrics[..]).collect::<Vec<_>>());
            let line: Vec<(f64, f64)> = mean
                .into_iter()
                .map(|(x, y)| (x, y.clamp(y0, y1)))
                .collect();
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(3)))?
                .label(arm.as_str())
                .legend(legend_line(color));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

/// The mean over runs of the finite losses at each step, then a centred moving average over
/// `max(5, steps / 25)` steps (shorter at the ends): (step, smoothed loss).
pub(crate) fn smoothed_mean(runs: &[&[crate::run::MetricRow]]) -> Vec<(f64, f64)> {
    let mut by_step: std::collections::BTreeMap<usize, (f64, usize)> = Default::default();
    for m in runs
        .iter()
        .flat_map(|r| r.iter())
        .filter(|m| m.loss.is_finite())
    {
        let e = by_step.entry(m.step).or_default();
        (e.0, e.1) = (e.0 + m.loss, e.1 + 1);
    }
    let mean: Vec<(f64, f64)> = by_step
        .into_iter()
        .map(|(step, (sum, n))| (step as f64, sum / n as f64))
        .collect();
    let half = (mean.len() / 25).max(5) / 2;
    (0..mean.len())
        .map(|i| {
            let window = &mean[i.saturating_sub(half)..(i + half + 1).min(mean.len())];
            let y = window.iter().map(|p| p.1).sum::<f64>() / window.len() as f64;
            (mean[i].0, y)
        })
        .collect()
}
