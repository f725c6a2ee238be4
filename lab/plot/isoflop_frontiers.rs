//! The frontiers: compute-optimal size N* (left) and loss L* (right) against budget per arm,
//! each optimum with its 95% bootstrap interval; N*'s fitted log-log line over the budgets it
//! was fitted on, and L*'s measured optima joined (the multiplier is read along them). Edge optima are drawn hollow (not used by the lines). On the L*
//! panel, the answer: at each budget where the multiplier is read, a dashed arrow from the
//! reference's (C, L*) to the compute the baseline needs for that loss, marked "×m".

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::IsoflopPlotData;
use super::style::{
    DrawResult, FONT, arm_color, draw_legend, empty, error_bar, legend_line, range,
};
use crate::analysis::isoflop::{Ci, Profile};

pub struct IsoflopFrontiers<'a>(pub &'a IsoflopPlotData<'a>);
super::style::figure!(IsoflopFrontiers);

/// The L* panel alone, full size: the answer's figure (the page's twin of the same name).
pub struct IsoflopLossFrontier<'a>(pub &'a IsoflopPlotData<'a>);
super::style::figure!(IsoflopLossFrontier);

impl IsoflopLossFrontier<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        if self.0.analysis.profiles.iter().all(|p| p.optimum.is_none()) {
            return empty(
                root,
                "Compute-optimal loss L*",
                "no profile has an optimum yet",
            );
        }
        IsoflopFrontiers(self.0).panel(root, Quantity::Loss)
    }
}

/// Which frontier a panel draws.
#[derive(Clone, Copy)]
enum Quantity {
    Params,
    Loss,
}

impl Quantity {
    fn of(self, p: &Profile) -> Option<(f64, Ci)> {
        let o = p.optimum?;
        Some(match self {
            Quantity::Params => (o.params, p.params_ci),
            Quantity::Loss => (o.loss, p.loss_ci),
        })
    }
}

impl IsoflopFrontiers<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let a = self.0.analysis;
        if a.profiles.iter().all(|p| p.optimum.is_none()) {
            return empty(root, "Frontiers", "no profile has an optimum yet");
        }
        let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 2);
        self.panel(&left, Quantity::Params)?;
        self.panel(&right, Quantity::Loss)
    }

    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        q: Quantity,
    ) -> DrawResult<DB> {
        let a = self.0.analysis;
        let pts: Vec<(&Profile, f64, Ci)> = (a.profiles.iter())
            .filter_map(|p| q.of(p).map(|(v, ci)| (p, v, ci)))
            .collect();
        let budgets = a.budgets.iter().copied();
        let (c0, c1) = (
            budgets.clone().fold(f64::MAX, f64::min),
            budgets.fold(0.0, f64::max),
        );
        let ys = pts
            .iter()
            .flat_map(|(_, v, ci)| [Some(*v), ci.low, ci.high])
            .flatten();
        let (caption, y_desc) = match q {
            Quantity::Params => ("Compute-optimal size N*", "N* (active parameters, log)"),
            Quantity::Loss => ("Compute-optimal loss L*", "L* (final validation loss)"),
        };
        let mut builder = ChartBuilder::on(area);
        let chart = builder
            .caption(caption, (FONT, 20))
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(64);
        let x = (c0 / 1.5..c1 * 1.5).log_scale();
        match q {
            Quantity::Params => {
                let (lo, hi) = ys.fold((f64::MAX, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
                let mut c = chart.build_cartesian_2d(x, (lo / 1.3..hi * 1.3).log_scale())?;
                self.series(&mut c, &pts, q, y_desc)
            }
            Quantity::Loss => {
                let (lo, hi) = range(ys, 0.1);
                let mut c = chart.build_cartesian_2d(x, lo..hi)?;
                self.series(&mut c, &pts, q, y_desc)
            }
        }
    }

    fn series<'b, DB: DrawingBackend + 'b, Y>(
        &self,
        chart: &mut ChartContext<'b, DB, Cartesian2d<LogCoord<f64>, Y>>,
        pts: &[(&Profile, f64, Ci)],
        q: Quantity,
        y_desc: &str,
    ) -> DrawResult<DB>
    where
        Y: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        chart
            .configure_mesh()
            .x_desc("training FLOPs C (log)")
            .y_desc(y_desc)
            .x_labels(8)
            .x_label_formatter(&|v| format!("{v:.1e}"))
            .label_style((FONT, 13))
            .draw()?;
        let arms = &self.0.manifest.arms;
        for f in &self.0.analysis.frontiers {
            let color = arm_color(arms, &f.arm);
            let mine = pts.iter().filter(|(p, ..)| p.arm == f.arm);
            let bars: Vec<(f64, f64, f64, f64)> = (mine.clone())
                .map(|(p, v, ci)| (p.budget, ci.low.unwrap_or(*v), *v, ci.high.unwrap_or(*v)))
                .collect();
            chart.draw_series(bars.iter().map(|b| error_bar(*b, color)))?;
            chart
                .draw_series(
                    bars.iter()
                        .map(|b| Circle::new((b.0, b.2), 5, color.filled())),
                )?
                .label(f.arm.as_str())
                .legend(legend_line(color));
            let hollow = mine.filter(|(p, ..)| p.optimum.is_some_and(|o| !o.interior));
            chart.draw_series(
                hollow.map(|(p, v, _)| Circle::new((p.budget, *v), 8, color.stroke_width(1))),
            )?;
            match (&f.frontier, q) {
                (Some(fr), Quantity::Params) => {
                    let (b0, b1) = (fr.budgets[0], fr.budgets[fr.budgets.len() - 1]);
                    let xs = (0..=20).map(|i| b0 * (b1 / b0).powf(i as f64 / 20.0));
                    chart.draw_series(LineSeries::new(
                        xs.map(|c| (c, fr.params.at(c))),
                        color.stroke_width(2),
                    ))?;
                }
                // L*(C) bends toward the corpus' floor, so a power law misdraws it: the
                // measured optima joined, which the multiplier is read along.
                (Some(fr), Quantity::Loss) => {
                    let joined = fr.budgets.iter().zip(&fr.losses).map(|(c, l)| (*c, *l));
                    chart.draw_series(LineSeries::new(joined, color.stroke_width(2)))?;
                }
                (None, _) => {}
            }
        }
        if let Quantity::Loss = q {
            for m in multiplier_marks(self.0.analysis) {
                let ink = BLACK.stroke_width(2);
                let dashes =
                    DashedLineSeries::new([(m.budget, m.loss), (m.needed, m.loss)], 6, 4, ink);
                chart.draw_series(dashes)?;
                chart.draw_series([
                    Circle::new((m.needed, m.loss), 4, BLACK.filled()),
                    Circle::new((m.budget, m.loss), 4, BLACK.filled()),
                ])?;
                let label = format!("×{:.2}", m.multiplier);
                let at = ((m.budget * m.needed).sqrt(), m.loss);
                let font = TextStyle::from((FONT, 15).into_font())
                    .pos(Pos::new(HPos::Center, VPos::Bottom));
                chart.draw_series([Text::new(label, at, font)])?;
            }
        }
        draw_legend(chart, SeriesLabelPosition::UpperRight)
    }
}

/// Where the answer is read: at `budget` the reference reaches `loss`; the baseline needs
/// `needed` = `multiplier` × `budget` for it along its frontier.
pub(crate) struct MultiplierMark {
    pub budget: f64,
    pub loss: f64,
    pub needed: f64,
    pub multiplier: f64,
}

/// Every multiplier read between the baseline's optima (none where it is only bounded).
pub(crate) fn multiplier_marks(
    a: &crate::analysis::isoflop::IsoflopAnalysis,
) -> Vec<MultiplierMark> {
    (a.multipliers.iter())
        .filter_map(|m| {
            let x = m.multiplier?;
            Some(MultiplierMark {
                budget: m.budget,
                loss: m.target_loss,
                needed: x * m.budget,
                multiplier: x,
            })
        })
        .collect()
}
