//! Expert-load heatmap (layer × expert) of the reference MoE arm at the largest size, last
//! evaluation, averaged over seeds. Uniform load is 1/K per cell.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotData;
use super::style::{DrawResult, FONT, empty};

pub struct RouterLoad<'a>(pub &'a PlotData<'a>);
super::style::figure!(RouterLoad);

/// White → Okabe–Ito blue, by share relative to twice uniform.
fn shade(v: f64) -> RGBColor {
    let t = v.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t) as u8;
    RGBColor(lerp(255.0, 0.0), lerp(255.0, 84.0), lerp(255.0, 147.0))
}

/// (layer, expert) → the load shares over seeds at each run's last evaluation, for `arm` at
/// `size`.
pub(crate) fn last_shares(
    d: &PlotData,
    size: &str,
    arm: &str,
) -> BTreeMap<(usize, usize), Vec<f64>> {
    let mut cells: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for r in d
        .runs
        .iter()
        .filter(|r| r.cell.size == size && r.cell.arm == arm)
    {
        let Some(last) = r.router.iter().map(|x| x.step).max() else {
            continue;
        };
        for x in r.router.iter().filter(|x| x.step == last) {
            cells
                .entry((x.layer, x.expert))
                .or_default()
                .push(x.load_share);
        }
    }
    cells
}

impl RouterLoad<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let d = self.0;
        let arm = &d.manifest.reference_arm;
        let size = d.manifest.sizes.iter().rev().find(|s| {
            d.runs
                .iter()
                .any(|r| &r.cell.size == *s && &r.cell.arm == arm && !r.router.is_empty())
        });
        let Some(size) = size else {
            return empty(root, "Expert load", "no MoE router statistics");
        };
        let cells = last_shares(d, size, arm);
        let layers: Vec<usize> = {
            let mut v: Vec<usize> = cells.keys().map(|k| k.0).collect();
            v.dedup();
            v
        };
        let experts = cells.keys().map(|k| k.1).max().unwrap_or(0) + 1;
        let uniform = 1.0 / experts as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Expert load share, {arm} at size {size} (uniform = {uniform:.3})"),
                (FONT, 24),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..experts as f64, 0f64..layers.len() as f64)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(experts * 2 + 1)
            .y_labels(layers.len() * 2 + 1)
            .x_label_formatter(&|x| {
                if (x.fract() - 0.5).abs() < 0.26 {
                    format!("{}", x.floor() as usize)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| {
                let i = y.floor() as usize;
                if (y.fract() - 0.5).abs() < 0.26 {
                    layers
                        .get(i)
                        .map(|l| format!("block {l}"))
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc("expert")
            .y_desc("layer")
            .label_style((FONT, 15))
            .draw()?;
        for (row, layer) in layers.iter().enumerate() {
            for e in 0..experts {
                let v = cells
                    .get(&(*layer, e))
                    .map_or(0.0, |s| s.iter().sum::<f64>() / s.len() as f64);
                let (x, y) = (e as f64, row as f64);
                chart.draw_series([Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    shade(v / (2.0 * uniform)).filled(),
                )])?;
                let ink = if v > 1.2 * uniform { WHITE } else { BLACK };
                chart.draw_series([Text::new(
                    format!("{v:.3}"),
                    (x + 0.3, y + 0.55),
                    (FONT, 15).into_font().color(&ink),
                )])?;
            }
        }
        Ok(())
    }
}
