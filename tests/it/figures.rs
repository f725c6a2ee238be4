//! Figures: each study's description says what its analysis says (the paired difference's
//! intervals and margin, the IsoFLOP multiplier where it is read: `isoflop.rs`), and both
//! renderers draw every description: Plotly with one trace per drawn mark and each legend name
//! once, plotters as PNG and SVG with ink on them.

use std::collections::BTreeSet;

use crate::common::synthetic::{manifest, run};
use moe_lab::analysis::figure::{Figure, Mark, Scale};
use moe_lab::analysis::load::RunData;
use moe_lab::analysis::scaling::figures::{Inputs, figures};
use moe_lab::analysis::scaling::{Analysis, analyze};
use moe_lab::page::chart::chart;
use moe_lab::run::Manifest;

/// Two sizes, moe and dense, 4 seeds: moe lower by about 0.05 nats.
fn sweep() -> (Manifest, Vec<RunData>) {
    let mut runs = Vec::new();
    for (size, base) in [("s", 2.4), ("m", 2.1)] {
        for seed in 1..=4u64 {
            let noise = [0.01, -0.02, 0.015, -0.005][seed as usize - 1];
            let mut moe = run(size, "moe", seed, base - 0.05 + noise);
            let mut dense = run(size, "dense", seed, base);
            let flops = if size == "s" { 1e10 } else { 4e10 };
            (moe.summary.train_flops, dense.summary.train_flops) = (flops, flops);
            // A peak of which the training state (16 kB) is a visible part.
            moe.summary.memory.peak_rss_bytes = Some(30_000);
            dense.summary.memory.peak_rss_bytes = Some(24_000);
            runs.extend([moe, dense]);
        }
    }
    let mut m = manifest(&runs, "moe", "dense", 0.02);
    m.sizes = vec!["s".into(), "m".into()];
    (m, runs)
}

fn find<'a>(figs: &'a [Figure], stem: &str) -> &'a Figure {
    figs.iter().find(|f| f.stem == stem).unwrap()
}

#[test]
fn the_paired_difference_shows_each_comparisons_interval_and_the_margin() {
    let (m, runs) = sweep();
    let a: Analysis = analyze(&m, &runs);
    let figs = figures(&Inputs {
        manifest: &m,
        runs: &runs,
        analysis: &a,
    });
    let fig = find(&figs, "paired_diff");
    let panel = &fig.panels[0];
    let Scale::Categories(names) = &panel.x.scale else {
        panic!("{:?}", panel.x.scale)
    };
    assert_eq!(names, &["s vs dense", "m vs dense", "pooled vs dense"]);
    let mut want: Vec<_> = a.comparisons.iter().map(|c| c.paired.unwrap()).collect();
    want.push(a.pooled["dense"]);
    let points = panel.marks.iter().find_map(|mk| match mk {
        Mark::Points { points, .. } => Some(points),
        _ => None,
    });
    let points = points.unwrap();
    assert_eq!(points.len(), 3);
    for (i, (p, w)) in points.iter().zip(&want).enumerate() {
        assert_eq!((p.x, p.y), (i as f64, w.mean));
        assert_eq!(p.interval, Some((w.ci_low, w.ci_high)), "{}", names[i]);
        assert!(w.ci_high < 0.0, "moe is lower: {w:?}");
    }
    let band = panel
        .marks
        .iter()
        .any(|mk| matches!(mk, Mark::HBand { lo, hi } if *lo == -0.02 && *hi == 0.02));
    assert!(band, "the equivalence band ±margin");
    // Plotly: the same intervals, as error bars about the means, on the named categories.
    let c = chart(fig);
    assert_eq!(c.data.len(), 1);
    let t = &c.data[0];
    assert_eq!(t["x"], serde_json::json!(names));
    for (i, w) in want.iter().enumerate() {
        let plus = t["error_y"]["array"][i].as_f64().unwrap();
        let minus = t["error_y"]["arrayminus"][i].as_f64().unwrap();
        assert!(
            (w.mean + plus - w.ci_high).abs() < 1e-12 && (w.mean - minus - w.ci_low).abs() < 1e-12
        );
    }
    assert_eq!(
        c.layout["shapes"].as_array().unwrap().len(),
        2,
        "band and zero line"
    );
}

/// The pixels of a PNG that are not white.
fn ink(png: &std::path::Path) -> usize {
    let img = image::open(png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    img.to_rgb8()
        .pixels()
        .filter(|p| p.0 != [255, 255, 255])
        .count()
}

/// The mark with nothing to draw, its legend entry kept.
fn emptied(m: &mut Mark) {
    match m {
        Mark::Line { points, .. } => points.clear(),
        Mark::Band { x, lo, hi, .. } => {
            x.clear();
            lo.clear();
            hi.clear();
        }
        Mark::Points { points, .. } => points.clear(),
        Mark::Bars { x, y, text, .. } => {
            x.clear();
            y.clear();
            text.clear();
        }
        Mark::Heatmap { z, .. } => z.clear(),
        Mark::Text { text, .. } => text.clear(),
        Mark::HLine { .. } | Mark::HBand { .. } => {}
    }
}

/// The pixels of a PNG in a colour (not white, grey or black).
fn colour(png: &std::path::Path) -> usize {
    let img = image::open(png).unwrap().to_rgb8();
    let chroma = |p: &image::Rgb<u8>| p.0.iter().max().unwrap() - p.0.iter().min().unwrap();
    img.pixels().filter(|p| chroma(p) > 40).count()
}

/// Marks drawn as Plotly traces (the others are layout shapes).
fn traces(fig: &Figure) -> usize {
    let shapes = |m: &&Mark| !matches!(m, Mark::HLine { .. } | Mark::HBand { .. });
    fig.panels
        .iter()
        .flat_map(|p| p.marks.iter().filter(shapes))
        .count()
}

#[test]
fn every_figure_is_drawn_by_both_renderers() {
    let (m, runs) = sweep();
    let a = analyze(&m, &runs);
    let figs = figures(&Inputs {
        manifest: &m,
        runs: &runs,
        analysis: &a,
    });
    let tmp = tempfile::tempdir().unwrap();
    let written = moe_lab::plot::save_all(&figs, tmp.path()).unwrap();
    assert_eq!(written.len(), figs.len());
    for fig in &figs {
        let c = chart(fig);
        assert_eq!(c.stem, fig.stem);
        assert_eq!(
            c.data.len(),
            traces(fig),
            "{}: one trace per mark",
            fig.stem
        );
        // A legend name is shown once, however many marks carry it.
        let shown: Vec<&str> = (c.data.iter())
            .filter(|t| t["showlegend"] == true)
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        let distinct: BTreeSet<&str> = shown.iter().copied().collect();
        assert_eq!(shown.len(), distinct.len(), "{}: {shown:?}", fig.stem);
        let wanted: BTreeSet<&str> = (fig.panels.iter().flat_map(|p| &p.marks))
            .filter(|mk| !matches!(mk, Mark::Band { .. }))
            .filter_map(|mk| mk.series().filter(|s| s.legend).map(|s| s.name.as_str()))
            .collect();
        assert_eq!(distinct, wanted, "{}", fig.stem);
        for (i, p) in fig.panels.iter().enumerate() {
            let key = if i == 0 {
                "xaxis".to_string()
            } else {
                format!("xaxis{}", i + 1)
            };
            let kind = match p.x.scale {
                Scale::Linear => "linear",
                Scale::Log => "log",
                Scale::Categories(_) => "category",
            };
            assert_eq!(c.layout[&key]["type"], kind, "{} {key}", fig.stem);
        }
        if let Some(why) = &fig.empty {
            assert_eq!(c.layout["annotations"][0]["text"], why.as_str());
        }
        let ink = ink(&tmp.path().join(format!("{}.png", fig.stem)));
        assert!(ink > 1000, "{}.png has {ink} inked pixels", fig.stem);
        let svg = std::fs::read_to_string(tmp.path().join(format!("{}.svg", fig.stem))).unwrap();
        let head: String = fig.title.chars().take(12).collect();
        assert!(
            svg.contains(&head),
            "{}.svg has no title {head:?}",
            fig.stem
        );
    }
    // plotters draws every mark: the same figures with each mark emptied of its data (the
    // legend still drawn) have far fewer coloured pixels.
    let bare: Vec<Figure> = (figs.iter().cloned())
        .map(|mut f| {
            f.panels
                .iter_mut()
                .for_each(|p| p.marks.iter_mut().for_each(emptied));
            f
        })
        .collect();
    let axes_only = tempfile::tempdir().unwrap();
    moe_lab::plot::save_all(&bare, axes_only.path()).unwrap();
    for fig in figs.iter().filter(|f| f.empty.is_none()) {
        let png = format!("{}.png", fig.stem);
        let (full, axes) = (
            colour(&tmp.path().join(&png)),
            colour(&axes_only.path().join(&png)),
        );
        assert!(
            full > axes + 500,
            "{png}: {full} coloured pixels, {axes} without its marks"
        );
    }
    // No router statistics in these runs: those figures say so instead of drawing axes.
    assert_eq!(
        find(&figs, "router_load").empty.as_deref(),
        Some("no MoE router statistics")
    );
}

/// A name in two panels (the same arm on both) is one legend entry on the page, and hiding it
/// hides both: one legend group.
#[test]
fn a_series_in_two_panels_is_one_legend_entry() {
    use moe_lab::analysis::figure::{Axis, Panel, Series};
    let arms = ["dense".to_string()];
    let panel = |title: &str| {
        let mut p = Panel::new(Axis::log("lr"), Axis::linear("loss")).titled(title);
        let s = Series::arm(&arms, "dense", "dense", true);
        p.push(Mark::line_markers(s, vec![(1e-3, 2.0), (1e-2, 1.5)]));
        p
    };
    let fig = Figure::new("two", "Two panels", vec![panel("left"), panel("right")]);
    let c = chart(&fig);
    let shown: Vec<bool> = c.data.iter().map(|t| t["showlegend"] == true).collect();
    assert_eq!(shown, [true, false]);
    assert!(c.data.iter().all(|t| t["legendgroup"] == "dense"));
    assert_eq!(
        (c.data[1]["xaxis"].as_str(), c.data[1]["yaxis"].as_str()),
        (Some("x2"), Some("y2"))
    );
    assert_eq!(c.layout["xaxis2"]["type"], "log");
    assert_eq!(c.layout["grid"]["columns"], 2);
}
