//! The instability proxies against learning rate, log-log: the largest attention logit each
//! run reached (left) and the largest router logit (right), mean over seeds per arm.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::LrPlotData;
use super::style::{DrawResult, FONT, arm_color, draw_legend, legend_line, range};
use crate::analysis::lr::LrPoint;

pub struct LrProxies<'a>(pub &'a LrPlotData<'a>);
super::style::figure!(LrProxies);

impl LrProxies<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let panels = root.split_evenly((1, 2));
        self.panel(&panels[0], "Peak attention logit", |p| p.attn_logit_peak)?;
        self.panel(&panels[1], "Peak router logit (MoE arms)", |p| {
            p.router_logit_peak
        })
    }

    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        title: &str,
        value: fn(&LrPoint) -> Option<f64>,
    ) -> DrawResult<DB> {
        let a = self.0.analysis;
        let lrs = &a.learning_rates;
        let (x0, x1) = (lrs[0] / 1.5, lrs[lrs.len() - 1] * 1.5);
        let values = a
            .curves
            .iter()
            .flat_map(|c| c.points.iter().filter_map(value));
        let (lo, hi) = range(values.map(|v| v.max(1e-3).log10()), 0.05);
        let mut chart = ChartBuilder::on(area)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (x0..x1).log_scale(),
                (10f64.powf(lo)..10f64.powf(hi)).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("peak learning rate")
            .y_desc("logit (log scale)")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .label_style((FONT, 13))
            .draw()?;
        let arms = &self.0.manifest.arms;
        for c in &a.curves {
            let line: Vec<(f64, f64)> = c
                .points
                .iter()
                .filter_map(|p| Some((p.lr, value(p)?.max(1e-3))))
                .collect();
            if line.is_empty() {
                continue;
            }
            let color = arm_color(arms, &c.arm);
            let label = self.0.label(c);
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(3)))?
                .label(label)
                .legend(legend_line(color));
            chart.draw_series(line.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}
