//! Turn a sweep's results directory into `analysis.json`, `report.md` and the figures. Reads
//! files only, so it runs anywhere the results are (`lab analyze`, `lab plot`, end of a sweep).
//!
//! What is analysed is a [`study::Study`], chosen by the sweep's manifest; every study is
//! written the same way here. A report may cite another sweep's answer (the flagship's
//! stability claim cites a learning-rate sweep: `[analysis] stability_from`), so publishing a
//! learning-rate sweep re-publishes the sweeps beside it that cite it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::analysis;
use crate::analysis::decisive::report as decisive_report;
use crate::analysis::forecast;
use crate::analysis::load;
use crate::analysis::stats::Paired;
use crate::analysis::study::{self, Sweep};
use crate::run::{MANIFEST, Manifest, write_atomic};
use crate::{page, plot};

pub struct Published {
    /// The answers, one line each, as the report states them.
    pub verdicts: Vec<String>,
    /// The primary comparisons, named ([`study::Study::primary`]).
    pub primary: Vec<(String, Paired)>,
    pub report: PathBuf,
    /// `report.html`: the report as one self-contained page ([`page`]).
    pub page: PathBuf,
    pub plots: Vec<PathBuf>,
}

/// `results` is `results/<experiment>`; figures go to `plots_root/<experiment>/`.
pub fn publish(results: &Path, plots_root: &Path, draw: bool) -> Result<Published> {
    let load::Loaded {
        manifest,
        runs,
        skipped,
    } = load::load(results)?;
    for s in &skipped {
        crate::say!("warning: run left out of the analysis: {s}");
    }
    let plots_dir = plots_root.join(dir_name(results));
    let study = analysis::for_manifest(&Sweep {
        manifest: &manifest,
        runs: &runs,
        results,
    })?;
    let record = study::decisive_record(&manifest, results)?;
    let forecast = forecast::read_scored(results, &manifest, &runs)?;
    let mut verdicts = study.verdicts();
    if let Some(r) = &record {
        verdicts.push(decisive_report::verdict(r));
    }
    if let Some((f, s)) = &forecast {
        verdicts.extend(forecast::report::verdicts(f, s));
        let json = serde_json::to_string_pretty(s)?;
        write_atomic(&results.join(forecast::SCORE), json.as_bytes())?;
    }
    write_atomic(
        &results.join("analysis.json"),
        study.analysis_json(&verdicts)?.as_bytes(),
    )?;
    let report = results.join("report.md");
    let sequential = record
        .as_ref()
        .map_or(String::new(), decisive_report::section);
    let plots_rel = relative(results, &plots_dir);
    let scored = (forecast.as_ref()).map_or(String::new(), |(f, s)| {
        forecast::report::section(f, s, &plots_rel)
    });
    let text = study.report(&plots_rel) + &sequential + &scored + &skipped_section(&skipped);
    write_atomic(&report, text.as_bytes())?;
    let mut figures = study.figures();
    if let Some((f, s)) = &forecast {
        figures.push(forecast::figure::figure(f, s, &manifest, &runs));
    }
    let plots = match draw {
        true => plot::save_all(&figures, &plots_dir)?,
        false => Vec::new(),
    };
    let page = page::write(
        results,
        &page::Page {
            experiment: &manifest.experiment,
            verdicts: &verdicts,
            report_md: &text,
            charts: figures.iter().map(page::chart::chart).collect(),
            runs: &runs,
            arms: &manifest.arms,
            baseline: manifest.baseline_arm.as_deref(),
            plots_rel: &plots_rel,
        },
    )?;
    let published = Published {
        verdicts,
        primary: study.primary(),
        report,
        page,
        plots: (plots.iter())
            .map(|stem| plots_dir.join(format!("{stem}.png")))
            .collect(),
    };
    if !manifest.learning_rates.is_empty() {
        refresh_citing(results, plots_root, draw);
    }
    Ok(published)
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// The report's list of runs whose files did not parse (empty when there are none).
fn skipped_section(skipped: &[String]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = skipped.iter().map(|s| format!("- {s}")).collect();
    format!(
        "\n## Runs left out\n\nTheir files do not parse (cut short or overwritten?); `lab sweep` \
         reruns them:\n\n{}\n",
        lines.join("\n")
    )
}

/// After a learning-rate sweep: re-publish each sweep beside it whose stability claim cites
/// it (`stability_from`), so their claims tables carry the new answer. A failure there is
/// reported, not fatal.
fn refresh_citing(results: &Path, plots_root: &Path, draw: bool) {
    let name = dir_name(results);
    let Some(Ok(siblings)) = results.parent().map(std::fs::read_dir) else {
        return;
    };
    for dir in siblings.flatten().map(|e| e.path()) {
        let cites = dir.join(MANIFEST).exists()
            && Manifest::read(&dir).is_ok_and(|m| m.stability_from.as_ref() == Some(&name));
        if !cites {
            continue;
        }
        match publish(&dir, plots_root, draw) {
            Ok(p) => crate::say!("{}: claims table updated", p.report.display()),
            Err(e) => crate::say!("{}: not updated: {e:#}", dir.display()),
        }
    }
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
