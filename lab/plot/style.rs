//! Shared look: the Okabe–Ito colour-blind-safe palette (one colour per arm, the same in every
//! figure), an embedded DejaVu Sans font (no system fonts needed), sizes, and the PNG + SVG
//! writer.

use std::path::Path;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 600;
pub const FONT: &str = "sans-serif";

/// Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(240, 228, 66),  // yellow
];

/// The colour of `arm` among the experiment's arms (sorted by name, as in the manifest).
pub fn arm_color(arms: &[String], arm: &str) -> RGBColor {
    let i = arms.iter().position(|a| a == arm).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

pub fn register_fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A figure that can draw itself on any backend.
pub trait Figure {
    fn draw_png(&self, root: &DrawingArea<BitMapBackend, Shift>) -> DrawResult<BitMapBackend<'_>>;
    fn draw_svg(&self, root: &DrawingArea<SVGBackend, Shift>) -> DrawResult<SVGBackend<'_>>;
}

/// Implement [`Figure`] for a type with a generic `fn draw<DB: DrawingBackend>`.
macro_rules! figure {
    ($t:ident) => {
        impl $crate::plot::style::Figure for $t<'_> {
            fn draw_png(
                &self,
                root: &plotters::prelude::DrawingArea<
                    plotters::prelude::BitMapBackend,
                    plotters::coord::Shift,
                >,
            ) -> $crate::plot::style::DrawResult<plotters::prelude::BitMapBackend<'_>> {
                self.draw(root)
            }
            fn draw_svg(
                &self,
                root: &plotters::prelude::DrawingArea<
                    plotters::prelude::SVGBackend,
                    plotters::coord::Shift,
                >,
            ) -> $crate::plot::style::DrawResult<plotters::prelude::SVGBackend<'_>> {
                self.draw(root)
            }
        }
    };
}
pub(crate) use figure;

/// Write `<dir>/<stem>.png` and `.svg` (each through a temporary name, then renamed).
pub fn save(fig: &dyn Figure, dir: &Path, stem: &str) -> Result<()> {
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    let png_tmp = dir.join(format!(".{stem}.tmp.png"));
    let svg_tmp = dir.join(format!(".{stem}.tmp.svg"));
    {
        let root = BitMapBackend::new(&png_tmp, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| anyhow::anyhow!("{stem}.png: {e}"))?;
        fig.draw_png(&root)
            .map_err(|e| anyhow::anyhow!("{stem}.png: {e}"))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("{stem}.png: {e}"))?;
    }
    {
        let root = SVGBackend::new(&svg_tmp, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| anyhow::anyhow!("{stem}.svg: {e}"))?;
        fig.draw_svg(&root)
            .map_err(|e| anyhow::anyhow!("{stem}.svg: {e}"))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("{stem}.svg: {e}"))?;
    }
    std::fs::rename(&png_tmp, &png)?;
    std::fs::rename(&svg_tmp, &svg)?;
    Ok(())
}

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

/// Padded [lo, hi] of values.
pub fn range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let span = (hi - lo).max(1e-9);
    (lo - pad * span, hi + pad * span)
}

/// Legend entry for a coloured line.
pub fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
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

/// A vertical bar from `lo` to `hi` at `x` (the point `mid` drawn separately): `(x, lo, mid,
/// hi)`, as the interval of a point.
pub fn error_bar(
    (x, lo, _mid, hi): (f64, f64, f64, f64),
    color: RGBColor,
) -> PathElement<(f64, f64)> {
    PathElement::new(vec![(x, lo), (x, hi)], color.stroke_width(2))
}
