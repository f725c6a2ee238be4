//! Draws a [`Figure`] with plotters on any backend (PNG and SVG). Every axis is drawn linear in
//! its mapped coordinate (log10 of the value on a log axis, index + ½ on a categorical one), so
//! one chart type serves every figure and ticks fall between powers of ten too.

use std::collections::{BTreeMap, BTreeSet};

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{DrawResult, FONT, category_label, draw_legend, empty};
use crate::analysis::figure::{self, Axis, Corner, Dash, Figure, Mark, Panel, Scale, Shape, Slot};

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draw `fig` on `root`: its title on top, its panels side by side below.
pub fn draw<DB: DrawingBackend>(fig: &Figure, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    if let Some(why) = &fig.empty {
        return empty(root, &fig.title, why);
    }
    let (title, body) = root.split_vertically(40);
    // Shrink a long title to the width (DejaVu Sans is about half an em wide per character).
    let width = root.dim_in_pixel().0 as f64 - 32.0;
    let size = (width / (0.52 * fig.title.chars().count() as f64)).clamp(12.0, 22.0);
    title.draw(&Text::new(
        fig.title.clone(),
        (16, 10),
        (FONT, size).into_font(),
    ))?;
    let areas = body.split_evenly((1, fig.panels.len().max(1)));
    for (area, panel) in areas.iter().zip(&fig.panels) {
        draw_panel(panel, area)?;
    }
    Ok(())
}

/// An axis's map from data values to the drawn coordinate.
fn to(scale: &Scale, v: f64) -> f64 {
    match scale {
        Scale::Linear => v,
        Scale::Log => v.max(f64::MIN_POSITIVE).log10(),
        Scale::Categories(_) => v + 0.5,
    }
}

/// A tick's label at drawn coordinate `v`.
fn tick(scale: &Scale, v: f64) -> String {
    match scale {
        Scale::Linear => number(v),
        Scale::Log => match 10f64.powf(v) {
            x if (1e-2..1e4).contains(&x) => number(x),
            x => format!("{x:.1e}"),
        },
        Scale::Categories(names) => category_label(names, v),
    }
}

/// A number in at most four significant digits, in e-notation when large or small.
pub fn number(v: f64) -> String {
    let a = v.abs();
    // A tick at zero comes out of the axis arithmetic as ±1e-17 or so.
    if a < 1e-12 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}");
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 4) as usize;
    let s = format!("{v:.decimals$}");
    let s = match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.'),
        false => &s,
    };
    match s {
        "-0" => "0".into(),
        s => s.into(),
    }
}

fn draw_panel<DB: DrawingBackend>(p: &Panel, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    let (x0, x1) = extent(p, true);
    let (y0, y1) = extent(p, false);
    let mut builder = ChartBuilder::on(area);
    if let Some(t) = &p.title {
        builder.caption(t, (FONT, 18));
    }
    let mut chart = builder
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let x_tick = |v: &f64| tick(&p.x.scale, *v);
    let y_tick = |v: &f64| tick(&p.y.scale, *v);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(&p.x.title)
        .y_desc(&p.y.title)
        .label_style((FONT, 14))
        .x_label_formatter(&x_tick)
        .y_label_formatter(&y_tick)
        .x_labels((area.dim_in_pixel().0 / 110).max(3) as usize);
    if let Scale::Categories(names) = &p.x.scale {
        mesh.disable_x_mesh().x_labels(2 * names.len() + 1);
    }
    if let Scale::Categories(names) = &p.y.scale {
        mesh.disable_y_mesh().y_labels(2 * names.len() + 1);
    }
    mesh.draw()?;
    let mut stacks = BTreeMap::new();
    for mark in &p.marks {
        draw_mark(&mut chart, p, mark, &mut stacks)?;
    }
    legend(&mut chart, p)
}

/// The drawn extent of one axis: its cut where it has one, the categories, else the marks'
/// values padded.
fn extent(p: &Panel, x: bool) -> (f64, f64) {
    let axis: &Axis = if x { &p.x } else { &p.y };
    if let Scale::Categories(names) = &axis.scale {
        return (0.0, names.len().max(1) as f64);
    }
    if let Some((lo, hi)) = axis.range {
        return (to(&axis.scale, lo), to(&axis.scale, hi));
    }
    let values = p.marks.iter().flat_map(|m| values(m, x, &p.marks));
    let mapped: Vec<f64> = values
        .map(|v| to(&axis.scale, v))
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = mapped
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let span = (hi - lo).max(1e-9 * hi.abs().max(1.0));
    let pad = if x { 0.03 } else { 0.07 };
    // Bars stand on zero: no padding below it.
    let bars = !x && p.marks.iter().any(|m| matches!(m, Mark::Bars { .. }));
    let floor = if bars && lo >= 0.0 {
        lo
    } else {
        lo - pad * span
    };
    (floor, hi + pad * span)
}

/// The values a mark spans on one axis (stacked bars: their running totals).
fn values(m: &Mark, x: bool, all: &[Mark]) -> Vec<f64> {
    match (m, x) {
        (Mark::Line { points, .. }, _) => points.iter().map(|p| pick(*p, x)).collect(),
        (Mark::Band { x: xs, .. }, true) => xs.clone(),
        (Mark::Band { lo, hi, .. }, false) => lo.iter().chain(hi).copied().collect(),
        (Mark::Points { points, .. }, true) => points.iter().map(|p| p.x).collect(),
        (Mark::Points { points, .. }, false) => (points.iter())
            .flat_map(|p| [Some(p.y), p.interval.map(|i| i.0), p.interval.map(|i| i.1)])
            .flatten()
            .collect(),
        (Mark::Bars { y, .. }, false) => {
            let tops = stack_totals(all).into_values();
            y.iter().copied().chain(tops).chain([0.0]).collect()
        }
        (Mark::HLine { y, .. }, false) => vec![*y],
        (Mark::HBand { lo, hi }, false) => vec![*lo, *hi],
        _ => Vec::new(),
    }
}

fn pick(p: (f64, f64), x: bool) -> f64 {
    if x { p.0 } else { p.1 }
}

/// Each category's total over its stacked bars.
fn stack_totals(marks: &[Mark]) -> BTreeMap<i64, f64> {
    let mut totals = BTreeMap::new();
    for m in marks {
        if let Mark::Bars {
            x,
            y,
            slot: Slot::Stacked,
            ..
        } = m
        {
            for (c, v) in x.iter().zip(y) {
                *totals.entry(*c as i64).or_insert(0.0) += v;
            }
        }
    }
    totals
}

fn rgb(c: figure::Color) -> RGBAColor {
    RGBColor(c.rgb.0, c.rgb.1, c.rgb.2).mix(c.alpha)
}

/// A point mapped onto the panel, held inside its drawn extent (a loss spike above a cut axis
/// sits on its edge rather than over the labels).
fn place<DB: DrawingBackend>(chart: &Chart<DB>, p: &Panel, x: f64, y: f64) -> (f64, f64) {
    let (xr, yr) = (chart.x_range(), chart.y_range());
    let x = to(&p.x.scale, x).clamp(xr.start, xr.end);
    (x, to(&p.y.scale, y).clamp(yr.start, yr.end))
}

fn draw_mark<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    p: &Panel,
    mark: &Mark,
    stacks: &mut BTreeMap<i64, f64>,
) -> DrawResult<DB> {
    match mark {
        Mark::Line {
            series,
            points,
            width,
            dash,
            markers,
        } => {
            let pts: Vec<(f64, f64)> = (points.iter())
                .filter(|q| q.0.is_finite() && q.1.is_finite())
                .map(|q| place(chart, p, q.0, q.1))
                .collect();
            let style = rgb(series.color).stroke_width(*width as u32);
            line(chart, pts.clone(), *dash, style)?;
            if *markers {
                let dot = rgb(series.color).filled();
                chart.draw_series(pts.iter().map(|q| Circle::new(*q, 4, dot)))?;
            }
            Ok(())
        }
        Mark::Band { series, x, lo, hi } => {
            let upper = x.iter().zip(hi).map(|(a, b)| place(chart, p, *a, *b));
            let mut poly: Vec<(f64, f64)> = upper.collect();
            poly.extend(x.iter().zip(lo).rev().map(|(a, b)| place(chart, p, *a, *b)));
            chart.draw_series([Polygon::new(poly, rgb(series.color).filled())])?;
            Ok(())
        }
        Mark::Points {
            series,
            points,
            shape,
            ..
        } => points_mark(chart, p, points, *shape, rgb(series.color)),
        Mark::Bars {
            series,
            x,
            y,
            text,
            slot,
        } => bars(chart, (x, y, text), *slot, rgb(series.color), stacks),
        Mark::Heatmap { .. } => heatmap(chart, mark),
        Mark::HLine { y, dash, .. } => {
            let xr = chart.x_range();
            let y = to(&p.y.scale, *y);
            line(
                chart,
                vec![(xr.start, y), (xr.end, y)],
                *dash,
                BLACK.stroke_width(1),
            )
        }
        Mark::HBand { lo, hi } => {
            let xr = chart.x_range();
            let (a, b) = (to(&p.y.scale, *lo), to(&p.y.scale, *hi));
            let grey = RGBColor(220, 220, 220).mix(0.6).filled();
            chart.draw_series([Rectangle::new([(xr.start, a), (xr.end, b)], grey)])?;
            Ok(())
        }
        Mark::Text { x, y, text } => {
            let font =
                TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
            let at = place(chart, p, *x, *y);
            chart.draw_series([Text::new(text.clone(), at, font)])?;
            Ok(())
        }
    }
}

/// Each point's interval as a whisker, and its marker.
fn points_mark<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    p: &Panel,
    points: &[figure::Point],
    shape: Shape,
    color: RGBAColor,
) -> DrawResult<DB> {
    for q in points {
        if let Some((lo, hi)) = q.interval {
            let (a, b) = (place(chart, p, q.x, lo), place(chart, p, q.x, hi));
            whisker(chart, a, b, color)?;
        }
        marker(chart, place(chart, p, q.x, q.y), shape, color)?;
    }
    Ok(())
}

fn line<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    pts: Vec<(f64, f64)>,
    dash: Dash,
    style: ShapeStyle,
) -> DrawResult<DB> {
    let (on, off) = match dash {
        Dash::Solid => {
            chart.draw_series(LineSeries::new(pts, style))?;
            return Ok(());
        }
        Dash::Dashed => (6, 4),
        Dash::Dotted => (2, 4),
        Dash::DashDot => (8, 3),
        Dash::LongDash => (12, 4),
    };
    chart.draw_series(DashedLineSeries::new(pts, on, off, style))?;
    Ok(())
}

/// An interval's bar from `a` to `b`, with short caps.
fn whisker<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    a: (f64, f64),
    b: (f64, f64),
    color: RGBAColor,
) -> DrawResult<DB> {
    let cap = |at: (f64, f64)| {
        EmptyElement::at(at) + PathElement::new(vec![(-5, 0), (5, 0)], color.stroke_width(2))
    };
    chart.draw_series([PathElement::new(vec![a, b], color.stroke_width(2))])?;
    chart.draw_series([cap(a), cap(b)])?;
    Ok(())
}

fn marker<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    at: (f64, f64),
    shape: Shape,
    color: RGBAColor,
) -> DrawResult<DB> {
    let fill = color.filled();
    let outline: Vec<(i32, i32)> = match shape {
        Shape::Dot => {
            chart.draw_series([Circle::new(at, 5, fill)])?;
            return Ok(());
        }
        Shape::Cross => {
            chart.draw_series([Cross::new(at, 7, color.stroke_width(3))])?;
            return Ok(());
        }
        Shape::Ring | Shape::FaintRing => {
            let ring = match shape {
                Shape::Ring => color.stroke_width(3),
                _ => color.mix(0.5).stroke_width(1),
            };
            chart.draw_series([Circle::new(at, 9, ring)])?;
            return Ok(());
        }
        Shape::Square => vec![(-5, -5), (5, -5), (5, 5), (-5, 5)],
        Shape::Diamond => vec![(0, -7), (7, 0), (0, 7), (-7, 0)],
        Shape::Triangle => vec![(0, -7), (6, 5), (-6, 5)],
    };
    chart.draw_series([EmptyElement::at(at) + Polygon::new(outline, fill)])?;
    Ok(())
}

/// Bars at their categories: side by side within a category, or on top of the ones before.
fn bars<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    (x, y, text): (&[f64], &[f64], &[String]),
    slot: Slot,
    color: RGBAColor,
    stacks: &mut BTreeMap<i64, f64>,
) -> DrawResult<DB> {
    let top = chart.y_range().end;
    for (i, (c, v)) in x.iter().zip(y).enumerate() {
        let (left, right, base) = match slot {
            Slot::Beside { index, of } => {
                let w = 0.74 / of.max(1) as f64;
                let left = c + 0.13 + w * index as f64;
                (left, left + w * 0.9, 0.0)
            }
            Slot::Stacked => {
                let base = stacks.entry(*c as i64).or_insert(0.0);
                let b = *base;
                *base += v;
                (c + 0.2, c + 0.8, b)
            }
        };
        let bar = [(left, base), (right, base + v)];
        chart.draw_series([
            Rectangle::new(bar, color.filled()),
            Rectangle::new(bar, color.stroke_width(1)),
        ])?;
        if let Some(t) = text.get(i).filter(|t| !t.is_empty()) {
            let font =
                TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
            let at = ((left + right) / 2.0, base + v + 0.01 * top);
            chart.draw_series([Text::new(t.clone(), at, font)])?;
        }
    }
    Ok(())
}

/// Shaded cells, each with its value written in ink that reads on its shade.
fn heatmap<DB: DrawingBackend>(chart: &mut Chart<DB>, mark: &Mark) -> DrawResult<DB> {
    let Mark::Heatmap { z, zmax, .. } = mark else {
        return Ok(());
    };
    for (row, values) in z.iter().enumerate() {
        for (col, v) in values.iter().enumerate() {
            let t = figure::share_of(*v, *zmax);
            let lerp = |a: f64, b: f64| (a + (b - a) * t) as u8;
            let shade = RGBColor(lerp(255.0, 0.0), lerp(255.0, 84.0), lerp(255.0, 147.0));
            let (x, y) = (col as f64, row as f64);
            chart.draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], shade.filled())])?;
            let ink = if t > 0.6 { WHITE } else { BLACK };
            let font = (FONT, 15)
                .into_font()
                .color(&ink)
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart.draw_series([Text::new(format!("{v:.3}"), (x + 0.5, y + 0.5), font)])?;
        }
    }
    Ok(())
}

/// The panel's legend: one entry per name among the marks that ask for one.
fn legend<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>, p: &Panel) -> DrawResult<DB> {
    let mut seen = BTreeSet::new();
    for m in &p.marks {
        let (name, color, swatch) = match m {
            Mark::HLine { label: Some(l), .. } => (l.clone(), BLACK.mix(1.0), false),
            // A band goes with its line, which carries the legend entry.
            Mark::Band { .. } => continue,
            _ => match m.series() {
                Some(s) if s.legend => {
                    (s.name.clone(), rgb(s.color), matches!(m, Mark::Bars { .. }))
                }
                _ => continue,
            },
        };
        if !seen.insert(name.clone()) {
            continue;
        }
        let anno = chart.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?;
        let anno = anno.label(name);
        match swatch {
            true => anno.legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled())
            }),
            false => anno.legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            }),
        };
    }
    if seen.is_empty() {
        return Ok(());
    }
    let corner = match p.legend {
        Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
        Corner::UpperRight => SeriesLabelPosition::UpperRight,
    };
    draw_legend(chart, corner)
}
