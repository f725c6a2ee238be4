//! Router load imbalance over training: MaxVio (max load / mean load − 1, mean over MoE
//! layers) at each evaluation, one line per MoE run, coloured by arm.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotData;
use super::style::{DrawResult, FONT, arm_color, draw_legend, empty, legend_line, range};

pub struct RouterMaxVio<'a>(pub &'a PlotData<'a>);
super::style::figure!(RouterMaxVio);

impl RouterMaxVio<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let d = self.0;
        let series: Vec<(&str, Vec<(f64, f64)>)> = (d.runs.iter())
            .filter(|r| !r.router.is_empty())
            .map(|r| (r.cell.arm.as_str(), mean_over_layers(r)))
            .collect();
        if series.is_empty() {
            return empty(root, "MaxVio", "no MoE router statistics");
        }
        let (x0, x1) = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)), 0.02);
        let (_, y1) = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)), 0.1);
        let mut chart = ChartBuilder::on(root)
            .caption("Router load imbalance (MaxVio) over training", (FONT, 24))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1.max(x0 + 1.0), 0f64..y1.max(0.1))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("MaxVio = max load / mean load − 1")
            .label_style((FONT, 15))
            .draw()?;
        let mut labelled = Vec::new();
        for (arm, line) in series {
            let color = arm_color(&d.manifest.arms, arm);
            let s = chart.draw_series(LineSeries::new(line, color.stroke_width(2)))?;
            if !labelled.contains(&arm) {
                s.label(arm).legend(legend_line(color));
                labelled.push(arm);
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

/// A run's MaxVio at each evaluation, the mean over its MoE layers: `(step, MaxVio)`.
pub(crate) fn mean_over_layers(r: &crate::analysis::load::RunData) -> Vec<(f64, f64)> {
    let mut by_step: BTreeMap<usize, BTreeMap<usize, f64>> = BTreeMap::new();
    for x in &r.router {
        by_step
            .entry(x.step)
            .or_default()
            .insert(x.layer, x.max_vio);
    }
    let mean = |layers: &BTreeMap<usize, f64>| layers.values().sum::<f64>() / layers.len() as f64;
    by_step
        .iter()
        .map(|(s, layers)| (*s as f64, mean(layers)))
        .collect()
}
