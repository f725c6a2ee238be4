//! Router load imbalance over training: MaxVio (max load / mean load − 1, mean over MoE
//! layers) at each evaluation, one line per arm and size (the seeds' mean) with the seeds'
//! range as a band; each run is one click away in the page's run browser.

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
        let bands = seed_bands(d);
        if bands.is_empty() {
            return empty(root, "MaxVio", "no MoE router statistics");
        }
        let all = || bands.iter().flat_map(|b| b.points.iter());
        let (x0, x1) = range(all().map(|p| p.0), 0.02);
        let (_, y1) = range(all().map(|p| p.3), 0.1);
        let mut chart = ChartBuilder::on(root)
            .caption(CAPTION, (FONT, 22))
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
        for b in &bands {
            let color = arm_color(&d.manifest.arms, &b.arm);
            let upper = b.points.iter().map(|p| (p.0, p.3));
            let lower = b.points.iter().rev().map(|p| (p.0, p.2));
            chart.draw_series([Polygon::new(
                upper.chain(lower).collect::<Vec<_>>(),
                color.mix(0.15).filled(),
            )])?;
            let line: Vec<(f64, f64)> = b.points.iter().map(|p| (p.0, p.1)).collect();
            let width = 1 + b.size_rank;
            chart
                .draw_series(LineSeries::new(
                    line.clone(),
                    color.stroke_width(width as u32),
                ))?
                .label(b.label())
                .legend(legend_line(color));
            if let Some(end) = line.last() {
                chart.draw_series([Text::new(b.size.clone(), *end, (FONT, 13).into_font())])?;
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

pub const CAPTION: &str =
    "Router imbalance (MaxVio, mean over MoE layers): seed mean and range per arm and size";

/// One arm at one size: per evaluation step, the mean, least and largest MaxVio of its seeds.
pub(crate) struct SeedBand {
    pub arm: String,
    pub size: String,
    /// The size's place in the ladder (thicker lines for larger sizes).
    pub size_rank: usize,
    pub seeds: usize,
    /// `(step, mean, min, max)`.
    pub points: Vec<(f64, f64, f64, f64)>,
}

impl SeedBand {
    pub fn label(&self) -> String {
        format!("{} {} ({} seeds)", self.arm, self.size, self.seeds)
    }
}

/// Each (arm, size) with router statistics, in the manifest's order.
pub(crate) fn seed_bands(d: &PlotData) -> Vec<SeedBand> {
    let mut out = Vec::new();
    for arm in &d.manifest.arms {
        for (rank, size) in d.manifest.sizes.iter().enumerate() {
            let runs: Vec<_> = (d.runs.iter())
                .filter(|r| &r.cell.arm == arm && &r.cell.size == size && !r.router.is_empty())
                .collect();
            if runs.is_empty() {
                continue;
            }
            let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for r in &runs {
                for (step, v) in mean_over_layers(r) {
                    by_step.entry(step as u64).or_default().push(v);
                }
            }
            let points = (by_step.into_iter())
                .map(|(step, v)| {
                    let mean = v.iter().sum::<f64>() / v.len() as f64;
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (step as f64, mean, lo, hi)
                })
                .collect();
            out.push(SeedBand {
                arm: arm.clone(),
                size: size.clone(),
                size_rank: rank,
                seeds: runs.len(),
                points,
            });
        }
    }
    out
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
