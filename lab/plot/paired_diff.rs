//! The primary comparison at a glance: the reference arm minus each other arm, paired by seed,
//! per size and pooled over sizes, with 95% interval bars, the zero line, and the equivalence
//! band ±margin. A bar wholly below zero: the reference arm is lower.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotData;
use super::style::{DrawResult, FONT, arm_color, category_label, empty};
use crate::analysis::stats::Paired;

pub struct PairedDiff<'a>(pub &'a PlotData<'a>);
super::style::figure!(PairedDiff);

impl PairedDiff<'_> {
    /// (label, baseline arm, test) for every size and the pooled rows.
    fn rows(&self) -> Vec<(String, String, Paired)> {
        let a = self.0.analysis;
        let per_size = a.comparisons.iter().filter_map(|c| {
            let label = format!("{} vs {}", c.size, c.baseline);
            Some((label, c.baseline.clone(), c.paired?))
        });
        let pooled = a
            .pooled
            .iter()
            .map(|(b, p)| (format!("pooled vs {b}"), b.clone(), *p));
        per_size.chain(pooled).collect()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (d, rows) = (self.0, self.rows());
        if rows.is_empty() {
            return empty(
                root,
                "Paired differences",
                "fewer than 2 seed pairs anywhere",
            );
        }
        let margin = d.analysis.equivalence_margin;
        let reach = rows
            .iter()
            .map(|(_, _, p)| p.ci_low.abs().max(p.ci_high.abs()))
            .fold(margin, f64::max)
            * 1.15;
        let n = rows.len();
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{} − other arm, paired by seed (95% CI; band ±{margin} nats)",
                    d.analysis.reference_arm
                ),
                (FONT, 24),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..n as f64, -reach..reach)?;
        let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| category_label(&labels, *x))
            .y_desc("final validation loss difference (nats)")
            .label_style((FONT, 15))
            .draw()?;
        let band = [(0.0, -margin), (n as f64, margin)];
        chart.draw_series([Rectangle::new(
            band,
            RGBColor(220, 220, 220).mix(0.6).filled(),
        )])?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (n as f64, 0.0)], BLACK))?;
        for (i, (_, base, p)) in rows.iter().enumerate() {
            let color = arm_color(&d.manifest.arms, base);
            let x = i as f64 + 0.5;
            chart.draw_series([
                PathElement::new(vec![(x, p.ci_low), (x, p.ci_high)], color.stroke_width(3)),
                PathElement::new(vec![(x - 0.1, p.ci_low), (x + 0.1, p.ci_low)], color),
                PathElement::new(vec![(x - 0.1, p.ci_high), (x + 0.1, p.ci_high)], color),
            ])?;
            chart.draw_series([Circle::new((x, p.mean), 6, color.filled())])?;
        }
        Ok(())
    }
}
