//! `report.html`: one self-contained page per experiment, written beside `report.md` by every
//! `lab analyze`, `lab plot`, `lab report` and sweep. Scripts, styles and data are inline (the
//! vendored plotly.js, [`assets`]), so the page opens from `file://`, can be mailed, and makes
//! no request: a Content-Security-Policy forbids any.
//!
//! It holds the verdict lines (`analysis.json`'s `verdicts`, the lines `report.md` states),
//! every figure of the study interactive ([`chart::Chart`]: the study's figure descriptions,
//! drawn by Plotly, the same ones the static figures are drawn from), a run browser ([`runs`]), and
//! `report.md` itself rendered ([`markdown`]).

mod assets;
pub mod chart;
mod markdown;
pub mod open;
pub mod runs;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::analysis::figure::arm_color;
use crate::analysis::load::RunData;
use crate::run::write_atomic;
use chart::Chart;

pub const FILE: &str = "report.html";

/// What the page shows.
pub struct Page<'a> {
    pub experiment: &'a str,
    pub verdicts: &'a [String],
    pub report_md: &'a str,
    pub charts: Vec<Chart>,
    pub runs: &'a [RunData],
    pub arms: &'a [String],
    /// The arm the comparisons pair runs with (the run browser's "difference to the paired
    /// run").
    pub baseline: Option<&'a str>,
    /// The static figures' folder, relative to the results folder (links to PNG/SVG).
    pub plots_rel: &'a str,
}

/// The data the page's script reads (one JSON object, inline).
#[derive(Serialize)]
struct PageData<'a> {
    experiment: &'a str,
    verdicts: &'a [String],
    arms: &'a [String],
    baseline: Option<&'a str>,
    /// Each arm's colour, the figures' (the run browser colours its curves with them).
    colors: std::collections::BTreeMap<&'a str, String>,
    charts: &'a [Chart],
    runs: Vec<runs::RunRow>,
    curves: std::collections::BTreeMap<String, runs::RunCurves>,
    plots: &'a str,
}

/// Write `results/report.html` (atomically: a reader never sees half a page).
pub fn write(results: &Path, page: &Page) -> Result<PathBuf> {
    let path = results.join(FILE);
    write_atomic(&path, render(page)?.as_bytes())?;
    Ok(path)
}

pub fn render(page: &Page) -> Result<String> {
    let data = PageData {
        experiment: page.experiment,
        verdicts: page.verdicts,
        arms: page.arms,
        baseline: page.baseline,
        colors: (page.arms.iter())
            .map(|a| (a.as_str(), chart::css(arm_color(page.arms, a))))
            .collect(),
        charts: &page.charts,
        runs: runs::rows(page.runs),
        curves: runs::curves(page.runs),
        plots: page.plots_rel,
    };
    let verdicts: String = (page.verdicts.iter())
        .map(|v| {
            let html = markdown::to_html(v);
            let inline = html
                .trim()
                .trim_start_matches("<p>")
                .trim_end_matches("</p>");
            format!("<li data-md=\"{}\">{inline}</li>\n", chart::html_escape(v))
        })
        .collect();
    let title = chart::html_escape(page.experiment);
    let style = assets::STYLE;
    let report = markdown::to_html(page.report_md);
    // JSON inside <script>: "</" escaped as "<\/" (the same string to JSON) so no text in the
    // data can end the element early. plotly.js has no "</script" (tests/it/page.rs checks).
    let data = serde_json::to_string(&data)?.replace("</", "<\\/");
    let values: [(&str, &str); 7] = [
        ("TITLE", &title),
        ("STYLE", style),
        ("VERDICTS", &verdicts),
        ("REPORT", &report),
        ("DATA", &data),
        ("PLOTLY", assets::PLOTLY),
        ("APP", assets::APP),
    ];
    Ok(fill(assets::TEMPLATE, &values))
}

/// The template with each `{{KEY}}` replaced by its value, in one pass (a value is never
/// scanned for placeholders: the data may contain anything).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        match values.iter().find(|(k, _)| *k == &after[..end]) {
            Some((_, v)) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}
