//! One interactive figure of `report.html`: Plotly traces and a layout, under the file stem of
//! its PNG/SVG twin in `plots/`. The helpers here give every figure the same conventions: an
//! arm's traces share a legend group (clicking the arm in the legend hides all of them), the
//! arm's colour is the static figures' colour, and hover names the run or arm and the value.

use serde::Serialize;
use serde_json::{Value, json};

use crate::plot::style::arm_color;

#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// The file stem of the same figure in `plots/<experiment>/` (`scaling` → scaling.png).
    pub stem: String,
    pub title: String,
    pub data: Vec<Value>,
    pub layout: Value,
}

/// An axis: its title, and whether it is logarithmic (as in the static figure).
pub struct Axis<'a> {
    pub title: &'a str,
    pub log: bool,
}

pub const fn linear(title: &str) -> Axis<'_> {
    Axis { title, log: false }
}

pub const fn log(title: &str) -> Axis<'_> {
    Axis { title, log: true }
}

impl Axis<'_> {
    fn layout(&self) -> Value {
        let kind = if self.log { "log" } else { "linear" };
        json!({"title": {"text": self.title}, "type": kind, "exponentformat": "e",
               "zeroline": false, "automargin": true})
    }
}

impl Chart {
    pub fn new(stem: &str, title: &str, x: Axis, y: Axis) -> Chart {
        Chart {
            stem: stem.into(),
            title: title.into(),
            data: Vec::new(),
            layout: json!({
                "xaxis": x.layout(),
                "yaxis": y.layout(),
                "hovermode": "closest",
                "legend": {"groupclick": "togglegroup"},
                "margin": {"t": 30, "r": 20},
            }),
        }
    }

    /// A figure with nothing to draw yet, saying why (as the static figure does).
    pub fn empty(stem: &str, title: &str, why: &str) -> Chart {
        let mut c = Chart::new(stem, title, linear(""), linear(""));
        c.layout["annotations"] = json!([{"text": why, "showarrow": false,
                                           "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]);
        c.layout["xaxis"]["visible"] = json!(false);
        c.layout["yaxis"]["visible"] = json!(false);
        c
    }

    pub fn push(&mut self, trace: Value) -> &mut Chart {
        self.data.push(trace);
        self
    }

    /// A horizontal reference line across the plot at `y` (zero, ℓ0), not a trace.
    pub fn hline(&mut self, y: f64, dash: &str) {
        let shape = json!({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
                           "line": {"color": "black", "width": 1, "dash": dash}});
        match self.layout["shapes"].as_array_mut() {
            Some(shapes) => shapes.push(shape),
            None => self.layout["shapes"] = json!([shape]),
        }
    }

    /// Categories on x in the given order (bars, per-size comparisons).
    pub fn categories(&mut self, names: &[String]) {
        self.layout["xaxis"]["type"] = json!("category");
        self.layout["xaxis"]["categoryorder"] = json!("array");
        self.layout["xaxis"]["categoryarray"] = json!(names);
    }
}

/// `rgb(r, g, b)` (or with alpha) of `arm` among `arms`: the static figures' palette.
pub fn color(arms: &[String], arm: &str, alpha: f64) -> String {
    let c = arm_color(arms, arm);
    format!("rgba({}, {}, {}, {alpha})", c.0, c.1, c.2)
}

/// Where a trace belongs in the legend: its arm's group, shown once per group.
pub struct Series<'a> {
    pub name: &'a str,
    pub group: &'a str,
    pub color: String,
    pub legend: bool,
}

impl Series<'_> {
    fn base(&self, mode: &str) -> Value {
        json!({
            "type": "scatter", "mode": mode, "name": self.name, "legendgroup": self.group,
            "showlegend": self.legend,
            "hovertemplate": format!("<b>{}</b><br>%{{x:.4~g}}, %{{y:.4~g}}<extra></extra>",
                                     html_escape(self.name)),
        })
    }

    /// A line through `(x, y)`; `width` in pixels.
    pub fn line(&self, x: &[f64], y: &[f64], width: f64) -> Value {
        let mut t = self.base("lines");
        t["x"] = finite(x);
        t["y"] = finite(y);
        t["line"] = json!({"color": self.color, "width": width});
        t
    }

    /// A line with markers.
    pub fn line_markers(&self, x: &[f64], y: &[f64]) -> Value {
        let mut t = self.line(x, y, 2.0);
        t["mode"] = json!("lines+markers");
        t["marker"] = json!({"color": self.color, "size": 7});
        t
    }

    /// Markers, each with an asymmetric error bar to `lo` and `hi` where given.
    pub fn points(&self, x: &[f64], y: &[f64], lo: Option<&[f64]>, hi: Option<&[f64]>) -> Value {
        let mut t = self.base("markers");
        t["x"] = finite(x);
        t["y"] = finite(y);
        t["marker"] = json!({"color": self.color, "size": 9});
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let plus: Vec<f64> = hi.iter().zip(y).map(|(h, m)| h - m).collect();
            let minus: Vec<f64> = lo.iter().zip(y).map(|(l, m)| m - l).collect();
            t["error_y"] = json!({"type": "data", "symmetric": false, "array": finite(&plus),
                                  "arrayminus": finite(&minus), "color": self.color});
        }
        t
    }

    /// The band between `lo` and `hi` over `x` (seeds' range) filled with `fill`, drawn as one
    /// closed polygon so it hides with its arm and has no legend entry of its own.
    pub fn band(&self, x: &[f64], lo: &[f64], hi: &[f64], fill: String) -> Value {
        let xs: Vec<f64> = x.iter().chain(x.iter().rev()).copied().collect();
        let ys: Vec<f64> = hi.iter().chain(lo.iter().rev()).copied().collect();
        let mut t = self.base("lines");
        t["x"] = finite(&xs);
        t["y"] = finite(&ys);
        t["fill"] = json!("toself");
        t["fillcolor"] = json!(fill);
        t["line"] = json!({"width": 0});
        t["showlegend"] = json!(false);
        t["hoverinfo"] = json!("skip");
        t.as_object_mut().map(|o| o.remove("hovertemplate"));
        t
    }
}

/// Values as JSON numbers, non-finite ones as null (a gap, never a bogus point).
pub fn finite(v: &[f64]) -> Value {
    Value::Array(
        v.iter()
            .map(|x| match x.is_finite() {
                true => json!(x),
                false => Value::Null,
            })
            .collect(),
    )
}

/// Text safe inside HTML (names end up in hover labels).
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
