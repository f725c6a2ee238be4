//! Router state over training, for routers that keep one (loss-free balancing's per-expert
//! selection bias): one line per expert of the first MoE layer, for one run of each arm that has
//! state (its largest size, first seed); the arms side by side.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotData;
use super::style::{DrawResult, FONT, draw_legend, empty, range};
use crate::analysis::load::RunData;
use crate::run::RouterStateRow;

pub struct RouterState<'a>(pub &'a PlotData<'a>);
super::style::figure!(RouterState);

impl RouterState<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let shown = shown_runs(self.0);
        if shown.is_empty() {
            return empty(
                root,
                "Router state",
                "no run keeps router state (e.g. loss-free balancing's bias)",
            );
        }
        let panels = root.split_evenly((1, shown.len()));
        for (panel, run) in panels.iter().zip(shown) {
            let (layer, rows) = first_layer(run);
            let quantity = rows.first().map_or("", |x| x.quantity.as_str());
            let experts = rows.iter().map(|x| x.expert).max().unwrap_or(0) + 1;
            let (x0, x1) = range(rows.iter().map(|x| x.step as f64), 0.02);
            let (y0, y1) = range(rows.iter().map(|x| x.value), 0.1);
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!("{}: {quantity}, layer {layer}", run.cell.name),
                    (FONT, 20),
                )
                .margin(16)
                .x_label_area_size(50)
                .y_label_area_size(80)
                .build_cartesian_2d(x0..x1.max(x0 + 1.0), y0..y1.max(y0 + 1e-9))?;
            chart
                .configure_mesh()
                .x_desc("step")
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_desc(format!("{quantity} per expert"))
                .label_style((FONT, 15))
                .draw()?;
            for e in 0..experts {
                let line: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|x| x.expert == e)
                    .map(|x| (x.step as f64, x.value))
                    .collect();
                // One hue per expert, spread around the colour wheel.
                let color = HSLColor(e as f64 / experts as f64, 0.75, 0.45);
                chart
                    .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                    .label(format!("expert {e}"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                    });
            }
            draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }
}

/// The run shown for each arm with router state: its largest size's seed 0 (runs are in plan
/// order, sizes ascending), else its last run with state.
pub(crate) fn shown_runs<'a>(d: &'a PlotData) -> Vec<&'a RunData> {
    let mut shown = Vec::new();
    for arm in &d.manifest.arms {
        let mut with_state =
            (d.runs.iter()).filter(|r| &r.cell.arm == arm && !r.router_state.is_empty());
        if let Some(r) = with_state.clone().rfind(|r| r.cell.seed == 0) {
            shown.push(r);
        } else if let Some(r) = with_state.next_back() {
            shown.push(r);
        }
    }
    shown
}

/// A run's first MoE layer with state, and that layer's rows.
pub(crate) fn first_layer(run: &RunData) -> (usize, Vec<&RouterStateRow>) {
    let layer = run.router_state.iter().map(|x| x.layer).min().unwrap_or(0);
    let rows = run
        .router_state
        .iter()
        .filter(|x| x.layer == layer)
        .collect();
    (layer, rows)
}
