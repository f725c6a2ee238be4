//! Draws a [`Figure`] as Plotly traces and a layout for `report.html`, under the file stem of
//! its PNG/SVG twin in `plots/`. Conventions every figure gets: a series' traces share its legend
//! group (clicking an arm in the legend hides all of them), a name is in the legend once, and
//! hover names the run or arm and the value.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::analysis::figure::{
    Axis, Color, Dash, Figure, Mark, Panel, Point, Scale, Series, Shape, Slot,
};

#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// The file stem of the same figure in `plots/<experiment>/` (`scaling` → scaling.png).
    pub stem: String,
    pub title: String,
    /// How to read it (the report's caption).
    pub caption: String,
    pub data: Vec<Value>,
    pub layout: Value,
}

/// The figure's Plotly traces and layout: panels side by side, as in the static figure.
pub fn chart(fig: &Figure) -> Chart {
    let mut layout = json!({
        "hovermode": "closest",
        "legend": {"groupclick": "togglegroup"},
        "margin": {"t": 30, "r": 20},
    });
    let mut c = Chart {
        stem: fig.stem.clone(),
        title: fig.title.clone(),
        caption: fig.caption.clone(),
        data: Vec::new(),
        layout: Value::Null,
    };
    if let Some(why) = &fig.empty {
        layout["annotations"] = json!([{"text": why, "showarrow": false,
                                        "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]);
        layout["xaxis"] = json!({"visible": false});
        layout["yaxis"] = json!({"visible": false});
        c.layout = layout;
        return c;
    }
    if fig.panels.len() > 1 {
        layout["grid"] = json!({"rows": 1, "columns": fig.panels.len(), "pattern": "independent"});
    }
    let mut legend = BTreeSet::new();
    for (i, panel) in fig.panels.iter().enumerate() {
        let k = if i == 0 {
            String::new()
        } else {
            (i + 1).to_string()
        };
        layout[format!("xaxis{k}")] = axis(&panel.x);
        layout[format!("yaxis{k}")] = axis(&panel.y);
        if let Some(t) = &panel.title {
            annotate(
                &mut layout,
                json!({"text": t, "showarrow": false, "xref": format!("x{k} domain"),
                "yref": format!("y{k} domain"), "x": 0.5, "y": 1.0, "yanchor": "bottom"}),
            );
        }
        for mark in &panel.marks {
            match trace(panel, mark, &mut legend) {
                Some(mut t) => {
                    t["xaxis"] = json!(format!("x{k}"));
                    t["yaxis"] = json!(format!("y{k}"));
                    c.data.push(t);
                }
                None => shape(&mut layout, &k, mark),
            }
        }
    }
    let mut slots = fig
        .panels
        .iter()
        .flat_map(|p| &p.marks)
        .filter_map(|m| match m {
            Mark::Bars { slot, .. } => Some(*slot),
            _ => None,
        });
    if let Some(slot) = slots.next_back() {
        layout["barmode"] = json!(if slot == Slot::Stacked {
            "stack"
        } else {
            "group"
        });
    }
    c.layout = layout;
    c
}

fn annotate(layout: &mut Value, note: Value) {
    match layout["annotations"].as_array_mut() {
        Some(notes) => notes.push(note),
        None => layout["annotations"] = json!([note]),
    }
}

fn axis(a: &Axis) -> Value {
    let mut v = json!({"title": {"text": a.title}, "exponentformat": "e", "zeroline": false,
                       "automargin": true});
    match &a.scale {
        Scale::Linear => v["type"] = json!("linear"),
        Scale::Log => v["type"] = json!("log"),
        Scale::Categories(names) => {
            v["type"] = json!("category");
            v["categoryorder"] = json!("array");
            v["categoryarray"] = json!(names);
        }
    }
    if let Some((lo, hi)) = a.range {
        v["range"] = match a.scale {
            Scale::Log => json!([lo.log10(), hi.log10()]),
            _ => json!([lo, hi]),
        };
    }
    v
}

/// Values on an axis: category names for a categorical one, numbers (non-finite as gaps)
/// otherwise.
fn on(axis: &Axis, v: &[f64]) -> Value {
    match &axis.scale {
        Scale::Categories(names) => json!(
            v.iter()
                .map(|i| names.get(*i as usize).cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        ),
        _ => finite(v),
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

pub fn css(c: Color) -> String {
    format!("rgba({}, {}, {}, {})", c.rgb.0, c.rgb.1, c.rgb.2, c.alpha)
}

/// The trace's name, group and legend entry (a name shown once per figure), and its hover.
fn base(s: &Series, kind: &str, mode: &str, legend: &mut BTreeSet<String>) -> Value {
    let show = s.legend && legend.insert(s.name.clone());
    json!({
        "type": kind, "mode": mode, "name": s.name, "legendgroup": s.group, "showlegend": show,
        "hovertemplate": format!("<b>{}</b><br>%{{x:.4~g}}, %{{y:.4~g}}<extra></extra>",
                                 html_escape(&s.name)),
    })
}

/// A mark as a trace, or None for marks drawn as layout shapes.
fn trace(p: &Panel, mark: &Mark, legend: &mut BTreeSet<String>) -> Option<Value> {
    Some(match mark {
        Mark::Line {
            series,
            points,
            width,
            dash,
            markers,
        } => {
            let mode = if *markers { "lines+markers" } else { "lines" };
            let mut t = base(series, "scatter", mode, legend);
            let (x, y): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
            (t["x"], t["y"]) = (on(&p.x, &x), on(&p.y, &y));
            t["line"] =
                json!({"color": css(series.color), "width": width, "dash": dash_name(*dash)});
            t["marker"] = json!({"color": css(series.color), "size": 7});
            t
        }
        Mark::Band { series, x, lo, hi } => band(p, series, x, lo, hi),
        Mark::Points {
            series,
            points,
            shape,
            labels,
        } => points_trace(p, series, points, *shape, labels, legend),
        Mark::Bars {
            series,
            x,
            y,
            text,
            slot,
        } => {
            let mut t = base(series, "bar", "", legend);
            t.as_object_mut().map(|o| o.remove("mode"));
            (t["x"], t["y"]) = (on(&p.x, x), finite(y));
            t["marker"] = json!({"color": css(series.color)});
            t["hovertemplate"] = json!(format!(
                "<b>{}</b><br>%{{x}}: %{{y:.4~g}}<extra></extra>",
                html_escape(&series.name)
            ));
            if !text.is_empty() {
                (t["text"], t["textposition"]) = (json!(text), json!("outside"));
            }
            if let Slot::Beside { index, .. } = slot {
                t["offsetgroup"] = json!(index);
            }
            t
        }
        Mark::Heatmap {
            columns,
            rows,
            z,
            zmax,
            value,
        } => json!({"type": "heatmap", "z": z, "x": columns, "y": rows, "zmin": 0, "zmax": zmax,
            "colorscale": [[0, "rgb(255,255,255)"], [1, "rgb(0,84,147)"]],
            "texttemplate": "%{z:.3f}", "showlegend": false,
            "hovertemplate": format!("%{{x}}, %{{y}}<br>{} %{{z:.3f}}<extra></extra>", html_escape(value))}),
        Mark::Text { x, y, text } => {
            json!({"type": "scatter", "mode": "text", "x": on(&p.x, &[*x]),
            "y": on(&p.y, &[*y]), "text": [text], "textposition": "top center", "showlegend": false,
            "hoverinfo": "skip"})
        }
        Mark::HLine { .. } | Mark::HBand { .. } => return None,
    })
}

/// The band as one closed polygon, so it hides with its group and has no legend entry.
fn band(p: &Panel, s: &Series, x: &[f64], lo: &[f64], hi: &[f64]) -> Value {
    let xs: Vec<f64> = x.iter().chain(x.iter().rev()).copied().collect();
    let ys: Vec<f64> = hi.iter().chain(lo.iter().rev()).copied().collect();
    json!({"type": "scatter", "mode": "lines", "name": s.name, "legendgroup": s.group,
           "showlegend": false, "hoverinfo": "skip", "x": on(&p.x, &xs), "y": on(&p.y, &ys),
           "fill": "toself", "fillcolor": css(s.color), "line": {"width": 0}})
}

fn points_trace(
    p: &Panel,
    s: &Series,
    points: &[Point],
    shape: Shape,
    labels: &[String],
    legend: &mut BTreeSet<String>,
) -> Value {
    let mut t = base(s, "scatter", "markers", legend);
    let (x, y): (Vec<f64>, Vec<f64>) = points.iter().map(|q| (q.x, q.y)).unzip();
    (t["x"], t["y"]) = (on(&p.x, &x), on(&p.y, &y));
    let (symbol, size) = match shape {
        Shape::Dot => ("circle", 9),
        Shape::Cross => ("x", 9),
        Shape::Square => ("square", 9),
        Shape::Diamond => ("diamond", 10),
        Shape::Triangle => ("triangle-up", 10),
        Shape::Ring => ("circle-open", 16),
        Shape::FaintRing => ("circle-open-dot", 16),
    };
    t["marker"] = json!({"color": css(s.color), "size": size, "symbol": symbol});
    if points.iter().any(|q| q.interval.is_some()) {
        let ends = |f: fn(&Point) -> f64| points.iter().map(f).collect::<Vec<_>>();
        let plus = ends(|q| q.interval.map_or(0.0, |i| i.1 - q.y));
        let minus = ends(|q| q.interval.map_or(0.0, |i| q.y - i.0));
        t["error_y"] = json!({"type": "data", "symmetric": false, "array": finite(&plus),
                              "arrayminus": finite(&minus), "color": css(s.color)});
    }
    if !labels.is_empty() {
        t["text"] = json!(labels);
        t["hovertemplate"] = json!("<b>%{text}</b><br>%{x:.4~g}, %{y:.4~g}<extra></extra>");
    }
    t
}

/// A reference line or band across the panel, as a layout shape (not a trace).
fn shape(layout: &mut Value, k: &str, mark: &Mark) {
    let mut s = Map::new();
    s.insert("xref".into(), json!(format!("x{k} domain")));
    s.insert("yref".into(), json!(format!("y{k}")));
    s.insert("x0".into(), json!(0));
    s.insert("x1".into(), json!(1));
    match mark {
        Mark::HLine { y, dash, label } => {
            s.insert("type".into(), json!("line"));
            s.insert("y0".into(), json!(y));
            s.insert("y1".into(), json!(y));
            s.insert(
                "line".into(),
                json!({"color": "black", "width": 1, "dash": dash_name(*dash)}),
            );
            if let Some(l) = label {
                annotate(
                    layout,
                    json!({"text": l, "showarrow": false, "xref": format!("x{k} domain"),
                    "yref": format!("y{k}"), "x": 1, "y": y, "xanchor": "right", "yanchor": "bottom"}),
                );
            }
        }
        Mark::HBand { lo, hi } => {
            s.insert("type".into(), json!("rect"));
            s.insert("y0".into(), json!(lo));
            s.insert("y1".into(), json!(hi));
            s.insert("fillcolor".into(), json!("rgba(200,200,200,0.4)"));
            s.insert("line".into(), json!({"width": 0}));
            s.insert("layer".into(), json!("below"));
        }
        _ => return,
    }
    match layout["shapes"].as_array_mut() {
        Some(shapes) => shapes.push(Value::Object(s)),
        None => layout["shapes"] = json!([Value::Object(s)]),
    }
}

fn dash_name(d: Dash) -> &'static str {
    match d {
        Dash::Solid => "solid",
        Dash::Dashed => "dash",
        Dash::Dotted => "dot",
        Dash::DashDot => "dashdot",
        Dash::LongDash => "longdash",
    }
}

/// Text safe inside HTML (names end up in hover labels).
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
