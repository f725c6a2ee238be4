//! Shared look of the figures as files: an embedded DejaVu Sans font (no system fonts needed),
//! sizes, the legend box and the empty figure. The arms' colours are the description's
//! (`analysis::figure::arm_color`), the same on the page.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 600;
pub const FONT: &str = "sans-serif";

pub fn register_fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A message in the middle of an empty figure (e.g. no MoE runs to draw).
pub fn empty<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    message: &str,
) -> DrawResult<DB> {
    let (w, h) = root.dim_in_pixel();
    root.draw(&Text::new(
        title.to_string(),
        (20, 20),
        (FONT, 24).into_font(),
    ))?;
    root.draw(&Text::new(
        message.to_string(),
        (w as i32 / 2 - 200, h as i32 / 2),
        (FONT, 18).into_font().color(&RGBColor(90, 90, 90)),
    ))
}

/// The legend box every line figure uses.
pub fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
}

/// Tick labels for a categorical x axis whose category i spans [i, i + 1): the name at the
/// middle tick, nothing elsewhere (use with `x_labels(2·n + 1)`).
pub fn category_label(names: &[String], x: f64) -> String {
    let i = x.floor() as usize;
    if (x - x.floor() - 0.5).abs() < 0.26 {
        names.get(i).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}
