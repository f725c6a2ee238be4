//! A figure described once: its panels, axes, marks, legend and title, built by a study from its
//! analysis (`analysis/<study>/figures.rs`). Two renderers draw the same description: `plot`
//! (plotters, PNG and SVG under `plots/`) and `page::chart` (Plotly, interactive, in
//! `report.html`). A legend or an axis is fixed once, in the description.
//!
//! Coordinates are data values: a log axis takes the values themselves, a categorical axis the
//! category's index. Each renderer maps them.

use serde::Serialize;

/// One figure: a file stem (`plots/<experiment>/<stem>.png`, the page's `chart-<stem>`), a
/// title, and one or more panels side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub stem: String,
    pub title: String,
    /// How to read it, in a sentence or two: under the figure in the report and on the page.
    pub caption: String,
    pub panels: Vec<Panel>,
    /// Why nothing is drawn (no runs yet, no router statistics), shown instead of panels.
    pub empty: Option<String>,
}

impl Figure {
    pub fn new(stem: &str, title: &str, panels: Vec<Panel>) -> Figure {
        Figure {
            stem: stem.into(),
            title: title.into(),
            caption: String::new(),
            panels,
            empty: None,
        }
    }

    /// A figure with nothing to draw yet, saying why.
    pub fn empty(stem: &str, title: &str, why: &str) -> Figure {
        Figure {
            stem: stem.into(),
            title: title.into(),
            caption: String::new(),
            panels: Vec::new(),
            empty: Some(why.into()),
        }
    }

    pub fn captioned(mut self, caption: &str) -> Figure {
        self.caption = caption.into();
        self
    }

    /// The figure itself when any panel has a mark, else the empty figure saying `why`.
    pub fn or_empty(self, why: &str) -> Figure {
        match self.panels.iter().any(|p| !p.marks.is_empty()) {
            true => self,
            false => Figure::empty(&self.stem, &self.title, why).captioned(&self.caption),
        }
    }
}

/// One plot: its axes, what is drawn on them, and where its legend sits.
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    /// A panel's own title, where a figure has several.
    pub title: Option<String>,
    pub x: Axis,
    pub y: Axis,
    pub marks: Vec<Mark>,
    pub legend: Corner,
}

impl Panel {
    pub fn new(x: Axis, y: Axis) -> Panel {
        Panel {
            title: None,
            x,
            y,
            marks: Vec::new(),
            legend: Corner::UpperRight,
        }
    }

    pub fn titled(mut self, title: &str) -> Panel {
        self.title = Some(title.into());
        self
    }

    pub fn legend_at(mut self, corner: Corner) -> Panel {
        self.legend = corner;
        self
    }

    pub fn push(&mut self, mark: Mark) {
        self.marks.push(mark);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Corner {
    UpperLeft,
    UpperRight,
}

#[derive(Debug, Clone, Serialize)]
pub struct Axis {
    pub title: String,
    pub scale: Scale,
    /// Where the axis is cut, when not at the data's extent (a loss axis that leaves out the
    /// first steps' losses, a count axis from zero).
    pub range: Option<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Scale {
    Linear,
    Log,
    /// Named categories; a mark's x (or y) is the category's index.
    Categories(Vec<String>),
}

impl Axis {
    pub fn linear(title: &str) -> Axis {
        Axis::with(title, Scale::Linear)
    }

    pub fn log(title: &str) -> Axis {
        Axis::with(title, Scale::Log)
    }

    pub fn categories(title: &str, names: Vec<String>) -> Axis {
        Axis::with(title, Scale::Categories(names))
    }

    fn with(title: &str, scale: Scale) -> Axis {
        Axis {
            title: title.into(),
            scale,
            range: None,
        }
    }

    pub fn cut(mut self, lo: f64, hi: f64) -> Axis {
        self.range = Some((lo, hi));
        self
    }
}

/// Red, green, blue and opacity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Color {
    pub rgb: (u8, u8, u8),
    pub alpha: f64,
}

pub const BLACK: Color = Color::rgb(0, 0, 0);

impl Color {
    pub const fn rgb(r: u8, g: u8, b: u8) -> Color {
        Color {
            rgb: (r, g, b),
            alpha: 1.0,
        }
    }

    pub fn alpha(self, alpha: f64) -> Color {
        Color { alpha, ..self }
    }

    /// One of `n` hues spread around the colour wheel (experts of one layer).
    pub fn hue(i: usize, n: usize) -> Color {
        let h = 6.0 * i as f64 / n.max(1) as f64;
        let (c, l) = (0.75 * (1.0 - (2.0 * 0.45f64 - 1.0).abs()), 0.45);
        let x = c * (1.0 - (h % 2.0 - 1.0).abs());
        let (r, g, b) = match h as usize {
            0 => (c, x, 0.0),
            1 => (x, c, 0.0),
            2 => (0.0, c, x),
            3 => (0.0, x, c),
            4 => (x, 0.0, c),
            _ => (c, 0.0, x),
        };
        let to = |v: f64| ((v + l - c / 2.0) * 255.0).round() as u8;
        Color::rgb(to(r), to(g), to(b))
    }
}

/// Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
pub const PALETTE: [Color; 7] = [
    Color::rgb(0, 114, 178),   // blue
    Color::rgb(213, 94, 0),    // vermillion
    Color::rgb(0, 158, 115),   // bluish green
    Color::rgb(204, 121, 167), // reddish purple
    Color::rgb(230, 159, 0),   // orange
    Color::rgb(86, 180, 233),  // sky blue
    Color::rgb(240, 228, 66),  // yellow
];

/// The colour of `arm` among the experiment's arms (sorted by name, as in the manifest): the
/// same in every figure.
pub fn arm_color(arms: &[String], arm: &str) -> Color {
    let i = arms.iter().position(|a| a == arm).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

/// What a mark is called and where it belongs in the legend.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Shown on hover, and in the legend where `legend`.
    pub name: String,
    /// The legend group (an arm): hiding the group hides every mark in it.
    pub group: String,
    pub color: Color,
    pub legend: bool,
}

impl Series {
    /// A mark of `arm`, in the arm's colour.
    pub fn arm(arms: &[String], name: &str, arm: &str, legend: bool) -> Series {
        Series {
            name: name.into(),
            group: arm.into(),
            color: arm_color(arms, arm),
            legend,
        }
    }

    pub fn colored(mut self, color: Color) -> Series {
        self.color = color;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
    DashDot,
    LongDash,
}

/// How a point is marked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Shape {
    Dot,
    Cross,
    Square,
    Diamond,
    Triangle,
    /// A ring around a point (an optimum).
    Ring,
    /// A faint ring (an optimum at the edge of what was trained).
    FaintRing,
}

/// A point with an optional interval (lo, hi) and hover label.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub interval: Option<(f64, f64)>,
}

impl Point {
    pub fn at(x: f64, y: f64) -> Point {
        Point {
            x,
            y,
            interval: None,
        }
    }

    pub fn within(x: f64, y: f64, lo: f64, hi: f64) -> Point {
        Point {
            x,
            y,
            interval: Some((lo, hi)),
        }
    }
}

/// Bars side by side in a category, or stacked on the ones before.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Slot {
    Beside { index: usize, of: usize },
    Stacked,
}

#[derive(Debug, Clone, Serialize)]
pub enum Mark {
    Line {
        series: Series,
        points: Vec<(f64, f64)>,
        width: f64,
        dash: Dash,
        markers: bool,
    },
    /// The region between `lo` and `hi` over `x` (seeds' range), in the series' colour.
    Band {
        series: Series,
        x: Vec<f64>,
        lo: Vec<f64>,
        hi: Vec<f64>,
    },
    Points {
        series: Series,
        points: Vec<Point>,
        shape: Shape,
        /// A name per point for hover (run names), where given.
        labels: Vec<String>,
    },
    /// One bar per category index in `x`, labelled with `text` where given.
    Bars {
        series: Series,
        x: Vec<f64>,
        y: Vec<f64>,
        text: Vec<String>,
        slot: Slot,
    },
    /// A grid of values, `z[row][column]`, shaded from 0 to `zmax` and written in each cell.
    Heatmap {
        columns: Vec<String>,
        rows: Vec<String>,
        z: Vec<Vec<f64>>,
        zmax: f64,
        value: String,
    },
    /// A reference line across the panel at `y`, in the legend where `label` is given.
    HLine {
        y: f64,
        dash: Dash,
        label: Option<String>,
    },
    /// A shaded band across the panel from `lo` to `hi` (an equivalence margin).
    HBand {
        lo: f64,
        hi: f64,
    },
    Text {
        x: f64,
        y: f64,
        text: String,
    },
}

impl Mark {
    /// A solid line of `width` pixels.
    pub fn line(series: Series, points: Vec<(f64, f64)>, width: f64) -> Mark {
        Mark::Line {
            series,
            points,
            width,
            dash: Dash::Solid,
            markers: false,
        }
    }

    /// A line with a marker at each point.
    pub fn line_markers(series: Series, points: Vec<(f64, f64)>) -> Mark {
        Mark::Line {
            series,
            points,
            width: 2.0,
            dash: Dash::Solid,
            markers: true,
        }
    }

    pub fn dots(series: Series, points: Vec<Point>) -> Mark {
        Mark::Points {
            series,
            points,
            shape: Shape::Dot,
            labels: Vec::new(),
        }
    }

    /// The same line, dashed.
    pub fn dashed(mut self, new: Dash) -> Mark {
        if let Mark::Line { dash, .. } = &mut self {
            *dash = new;
        }
        self
    }

    /// The same points, marked otherwise.
    pub fn shaped(mut self, new: Shape) -> Mark {
        if let Mark::Points { shape, .. } = &mut self {
            *shape = new;
        }
        self
    }

    /// The mark's series, where it has one.
    pub fn series(&self) -> Option<&Series> {
        match self {
            Mark::Line { series, .. }
            | Mark::Band { series, .. }
            | Mark::Points { series, .. }
            | Mark::Bars { series, .. } => Some(series),
            _ => None,
        }
    }
}

/// Where `value` falls between 0 and `zmax`, from 0 to 1 (clamped): a heatmap cell's shade.
pub fn share_of(value: f64, zmax: f64) -> f64 {
    (value / zmax.max(f64::MIN_POSITIVE)).clamp(0.0, 1.0)
}
