//! Memory per (size, arm): stacked bars of parameters, gradients, optimizer state and the rest
//! of the measured peak (activations, workspace, and on CPU the whole process).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotData;
use super::style::{DrawResult, FONT, category_label, empty};

pub struct Memory<'a>(pub &'a PlotData<'a>);
super::style::figure!(Memory);

/// Component colours (grey ramp plus one accent, distinct from the arm palette's use).
pub(crate) const PARTS: [(&str, RGBColor); 4] = [
    ("parameters", RGBColor(0, 114, 178)),
    ("gradients", RGBColor(86, 180, 233)),
    ("AdamW state", RGBColor(230, 159, 0)),
    ("rest of measured peak", RGBColor(190, 190, 190)),
];

impl Memory<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let rows = &self.0.analysis.memory;
        if rows.is_empty() {
            return empty(root, "Memory", "no runs yet");
        }
        let top = rows
            .iter()
            .map(|m| stack(m).iter().sum::<f64>())
            .fold(0.0, f64::max)
            * 1.15;
        let n = rows.len();
        let kind = &rows[0].measured_kind;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Memory per arm and size (measured peak: {kind})"),
                (FONT, 24),
            )
            .margin(16)
            .x_label_area_size(70)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n as f64, 0f64..top.max(1e-3))?;
        let labels: Vec<String> = rows
            .iter()
            .map(|m| format!("{}/{}", m.size, m.arm))
            .collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| category_label(&labels, *x))
            .x_desc("size / arm")
            .y_desc("MiB")
            .label_style((FONT, 13))
            .draw()?;
        for (pi, (name, color)) in PARTS.iter().enumerate() {
            let bars: Vec<Rectangle<(f64, f64)>> = rows
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let s = stack(m);
                    let base: f64 = s[..pi].iter().sum();
                    Rectangle::new(
                        [(i as f64 + 0.2, base), (i as f64 + 0.8, base + s[pi])],
                        color.filled(),
                    )
                })
                .collect();
            chart.draw_series(bars)?.label(*name).legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
            });
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
    }
}

/// A row's memory in MiB, split as [`PARTS`]: parameters, gradients, AdamW state, and the rest
/// of the measured peak (never negative).
pub(crate) fn stack(m: &crate::analysis::scaling::MemoryRow) -> [f64; 4] {
    let mib = |b: f64| b / (1024.0 * 1024.0);
    let (p, g, o) = (
        m.params_bytes as f64,
        m.grads_bytes as f64,
        m.optimizer_bytes as f64,
    );
    let rest = (m.measured_peak_bytes - p - g - o).max(0.0);
    [mib(p), mib(g), mib(o), mib(rest)]
}
