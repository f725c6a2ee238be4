//! Final loss against learning rate per arm (and size): the mean over seeds as a line, the
//! seeds' range as a band, the loss at initialisation as a dotted line. A flat, wide bowl is a
//! stable arm; a narrow one is sensitive to the learning rate.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::LrPlotData;
use super::style::{DrawResult, FONT, arm_color, draw_legend, empty, legend_line, range};

pub struct LrSensitivity<'a>(pub &'a LrPlotData<'a>);
super::style::figure!(LrSensitivity);

impl LrSensitivity<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let a = self.0.analysis;
        let points = a.curves.iter().flat_map(|c| &c.points);
        if points.clone().next().is_none() {
            return empty(root, "Loss against learning rate", "no finished runs yet");
        }
        let lrs = &a.learning_rates;
        let (x0, x1) = (lrs[0] / 1.5, lrs[lrs.len() - 1] * 1.5);
        let l0 = a.curves.iter().map(|c| c.loss_at_init).fold(0.0, f64::max);
        let ys = points.flat_map(|p| [p.min_loss, p.max_loss]).chain([l0]);
        let (y0, y1) = range(ys, 0.05);
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Final validation loss against learning rate (band: seeds' range)",
                (FONT, 24),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("peak learning rate (log scale)")
            .y_desc("final validation loss, capped at ℓ0 (nats/byte)")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .label_style((FONT, 15))
            .draw()?;
        let l0_line = DashedLineSeries::new([(x0, l0), (x1, l0)], 4, 4, BLACK.into());
        chart
            .draw_series(l0_line)?
            .label("ℓ0 (loss at initialisation)")
            .legend(legend_line(BLACK));
        let arms = &self.0.manifest.arms;
        for c in &a.curves {
            let color = arm_color(arms, &c.arm);
            let upper = c.points.iter().map(|p| (p.lr, p.max_loss));
            let lower = c.points.iter().rev().map(|p| (p.lr, p.min_loss));
            chart.draw_series([Polygon::new(
                upper.chain(lower).collect::<Vec<_>>(),
                color.mix(0.18).filled(),
            )])?;
            let mean: Vec<(f64, f64)> = c.points.iter().map(|p| (p.lr, p.mean_loss)).collect();
            let label = self.0.label(c);
            chart
                .draw_series(LineSeries::new(mean.clone(), color.stroke_width(3)))?
                .label(label)
                .legend(legend_line(color));
            chart.draw_series(mean.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}
