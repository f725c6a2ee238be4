//! IsoFLOP profiles, one panel per budget: final loss against active parameters (log x) for
//! each arm, the seeds' mean with their range, the fitted parabola over the sizes trained, and
//! its vertex (N*, L*) as a ring (hollow where it lies outside the sizes: an edge optimum).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::IsoflopPlotData;
use super::style::{
    DrawResult, FONT, arm_color, draw_legend, empty, error_bar, legend_line, range,
};
use crate::analysis::isoflop::Profile;

pub struct IsoflopProfiles<'a>(pub &'a IsoflopPlotData<'a>);
super::style::figure!(IsoflopProfiles);

impl IsoflopProfiles<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let a = self.0.analysis;
        if a.profiles.iter().all(|p| p.points.is_empty()) {
            return empty(root, "IsoFLOP profiles", "no finished runs yet");
        }
        let (title, body) = root.split_vertically(40);
        title.draw(&Text::new(
            "IsoFLOP profiles: final loss against size at each budget",
            (16, 8),
            (FONT, 24).into_font(),
        ))?;
        let panels = body.split_evenly((1, a.budgets.len().max(1)));
        for (panel, &budget) in panels.iter().zip(&a.budgets) {
            let mine: Vec<&Profile> = a.profiles.iter().filter(|p| p.budget == budget).collect();
            self.panel(panel, budget, &mine)?;
        }
        Ok(())
    }

    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        budget: f64,
        profiles: &[&Profile],
    ) -> DrawResult<DB> {
        let points = profiles.iter().flat_map(|p| &p.points);
        let xs = points.clone().map(|p| p.params as f64);
        let (x0, x1) = (xs.clone().fold(f64::MAX, f64::min), xs.fold(0.0, f64::max));
        if x0 > x1 {
            return Ok(());
        }
        let ys = points.flat_map(|p| p.losses.iter().map(|l| l.1));
        let (y0, y1) = range(ys, 0.08);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("C = {budget:.2e} FLOPs"), (FONT, 18))
            .margin(8)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((x0 / 1.3..x1 * 1.3).log_scale(), y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("active parameters N (log)")
            .y_desc("final validation loss")
            .x_labels(8)
            .x_label_formatter(&|v| format!("{v:.1e}"))
            .label_style((FONT, 13))
            .draw()?;
        let arms = &self.0.manifest.arms;
        for p in profiles {
            let color = arm_color(arms, &p.arm);
            let bars: Vec<(f64, f64, f64, f64)> = (p.points.iter())
                .map(|s| {
                    let ls = s.losses.iter().map(|l| l.1);
                    let (lo, hi) = (
                        ls.clone().fold(f64::MAX, f64::min),
                        ls.fold(f64::MIN, f64::max),
                    );
                    (s.params as f64, lo, s.mean_loss(), hi)
                })
                .collect();
            chart.draw_series(bars.iter().map(|b| error_bar(*b, color)))?;
            chart
                .draw_series(
                    bars.iter()
                        .map(|b| Circle::new((b.0, b.2), 4, color.filled())),
                )?
                .label(p.arm.as_str())
                .legend(legend_line(color));
            if let Some(fit) = &p.parabola {
                let (lo, hi) = ((x0 / 1.2).ln(), (x1 * 1.2).ln());
                let curve = (0..=60).map(|i| {
                    let x = lo + (hi - lo) * i as f64 / 60.0;
                    (x.exp(), fit.at(x))
                });
                let inside = curve.filter(|p| p.1 >= y0 && p.1 <= y1);
                chart.draw_series(LineSeries::new(inside, color.stroke_width(2)))?;
            }
            if let Some(o) = p
                .optimum
                .filter(|o| o.params > x0 / 1.3 && o.params < x1 * 1.3)
            {
                let style = match o.interior {
                    true => color.stroke_width(3),
                    false => color.mix(0.5).stroke_width(1),
                };
                chart.draw_series([Circle::new((o.params, o.loss), 9, style)])?;
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}
