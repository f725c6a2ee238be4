//! Turn a sweep's results directory into `analysis.json`, `report.md` and the figures. Reads
//! files only, so it runs anywhere the results are (`lab analyze`, `lab plot`, end of a sweep).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::analysis::{self, Analysis, load};
use crate::plot::{self, PlotData};
use crate::run::write_atomic;

pub struct Published {
    pub analysis: Analysis,
    pub report: PathBuf,
    pub plots: Vec<PathBuf>,
}

/// `results` is `results/<experiment>`; figures go to `plots_root/<experiment>/`.
pub fn publish(results: &Path, plots_root: &Path, draw: bool) -> Result<Published> {
    let (manifest, runs) = load::load(results)?;
    let analysis = analysis::analyze(&manifest, &runs);
    let name = results
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let plots_dir = plots_root.join(&name);
    write_atomic(
        &results.join("analysis.json"),
        serde_json::to_string_pretty(&analysis)?.as_bytes(),
    )?;
    let rel = relative(results, &plots_dir);
    let report = results.join("report.md");
    write_atomic(
        &report,
        analysis::report::render(&analysis, &manifest, &runs, &rel).as_bytes(),
    )?;
    let mut plots = Vec::new();
    if draw {
        let data = PlotData {
            manifest: &manifest,
            runs: &runs,
            analysis: &analysis,
        };
        for stem in plot::draw_all(&data, &plots_dir)? {
            plots.push(plots_dir.join(format!("{stem}.png")));
        }
    }
    Ok(Published {
        analysis,
        report,
        plots,
    })
}

/// `to` relative to `from` (both as given, joined from the current directory).
fn relative(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, to) = (abs(from), abs(to));
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); f.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().to_string()),
    );
    parts.join("/")
}
