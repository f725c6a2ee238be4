//! Loss and grad-norm spikes per 1k steps, one pair of bars per arm (solid: loss, hatched
//! lighter: grad norm).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotData;
use super::style::{DrawResult, FONT, arm_color, category_label, empty};

pub struct SpikeRate<'a>(pub &'a PlotData<'a>);
super::style::figure!(SpikeRate);

impl SpikeRate<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let d = self.0;
        let st = &d.analysis.stability;
        if st.is_empty() {
            return empty(root, "Spike rate", "no runs yet");
        }
        let top = st
            .iter()
            .map(|s| s.loss_spikes_per_1k.max(s.grad_spikes_per_1k))
            .fold(0.0, f64::max)
            .max(1.0)
            * 1.2;
        let n = st.len();
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Spikes per 1k steps by arm (left: loss, right: grad norm)",
                (FONT, 24),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
        let labels: Vec<String> = st.iter().map(|s| s.arm.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| category_label(&labels, *x))
            .y_desc("spikes per 1000 steps")
            .x_desc("arm")
            .label_style((FONT, 15))
            .draw()?;
        for (i, s) in st.iter().enumerate() {
            let color = arm_color(&d.manifest.arms, &s.arm);
            let x = i as f64;
            chart.draw_series([
                Rectangle::new(
                    [(x + 0.15, 0.0), (x + 0.48, s.loss_spikes_per_1k)],
                    color.filled(),
                ),
                Rectangle::new(
                    [(x + 0.52, 0.0), (x + 0.85, s.grad_spikes_per_1k)],
                    color.mix(0.45).filled(),
                ),
                Rectangle::new(
                    [(x + 0.52, 0.0), (x + 0.85, s.grad_spikes_per_1k)],
                    color.stroke_width(2),
                ),
            ])?;
            chart.draw_series([
                Text::new(
                    format!("{:.2}", s.loss_spikes_per_1k),
                    (x + 0.2, s.loss_spikes_per_1k + top * 0.03),
                    (FONT, 14).into_font(),
                ),
                Text::new(
                    format!("{:.2}", s.grad_spikes_per_1k),
                    (x + 0.57, s.grad_spikes_per_1k + top * 0.03),
                    (FONT, 14).into_font(),
                ),
            ])?;
        }
        Ok(())
    }
}
