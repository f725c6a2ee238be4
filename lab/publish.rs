//! Turn a sweep's results directory into `analysis.json`, `report.md` and the figures. Reads
//! files only, so it runs anywhere the results are (`lab analyze`, `lab plot`, end of a sweep).
//!
//! A sweep with a learning-rate axis gets the stability analysis ([`analysis::lr`]); any other
//! the scaling analysis. The flagship report's stability claim cites the learning-rate sweep
//! beside it, so publishing that sweep re-publishes the flagship when its results exist.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::analysis::lr::{self as lr_analysis, LrAnalysis};
use crate::analysis::{self, load, lr_report};
use crate::plot::{self, LrPlotData, PlotData, RecipePlotData};
use crate::run::write_atomic;
use crate::sweep::runner::MANIFEST;

/// The results directory (beside the flagship's) whose analysis answers claim (b).
pub const STABILITY_SWEEP: &str = "lr-stability";
/// The results directory of the flagship comparison, whose report cites [`STABILITY_SWEEP`].
pub const FLAGSHIP_SWEEP: &str = "dense-vs-moe";

pub struct Published {
    /// The answers, one line each, as the report states them.
    pub verdicts: Vec<String>,
    pub report: PathBuf,
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
        eprintln!("warning: run left out of the analysis: {s}");
    }
    let name = results
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let plots_dir = plots_root.join(&name);
    let rel = relative(results, &plots_dir);
    let report = results.join("report.md");
    if !manifest.learning_rates.is_empty() {
        let a = lr_analysis::analyze(&manifest, &runs);
        write_atomic(
            &results.join("analysis.json"),
            serde_json::to_string_pretty(&a)?.as_bytes(),
        )?;
        let text = lr_report::render(&a, &manifest, &runs, &rel) + &skipped_section(&skipped);
        write_atomic(&report, text.as_bytes())?;
        let plots = match draw {
            true => plot::draw_lr(
                &LrPlotData {
                    manifest: &manifest,
                    analysis: &a,
                },
                &plots_dir,
            )?,
            false => Vec::new(),
        };
        refresh_flagship(results, plots_root, draw);
        return Ok(Published {
            verdicts: lr_report::verdicts(&a),
            report,
            plots: plots
                .iter()
                .map(|s| plots_dir.join(format!("{s}.png")))
                .collect(),
        });
    }
    if manifest.teacher.is_some() {
        return publish_recipe(&manifest, &runs, &skipped, results, &plots_dir, &rel, draw);
    }
    let mut analysis = analysis::analyze(&manifest, &runs);
    analysis.stability_claim = stability_claim(results);
    write_atomic(
        &results.join("analysis.json"),
        serde_json::to_string_pretty(&analysis)?.as_bytes(),
    )?;
    write_atomic(
        &report,
        (analysis::report::render(&analysis, &manifest, &runs, &rel) + &skipped_section(&skipped))
            .as_bytes(),
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
        verdicts: analysis::report::verdicts(&analysis),
        report,
        plots,
    })
}

/// A recipe experiment (one with a `[teacher]`): [`analysis::recipe`]'s gains and slopes.
fn publish_recipe(
    manifest: &crate::sweep::runner::Manifest,
    runs: &[load::RunData],
    skipped: &[String],
    results: &Path,
    plots_dir: &Path,
    rel: &str,
    draw: bool,
) -> Result<Published> {
    let a = analysis::recipe::analyze(manifest, runs);
    write_atomic(
        &results.join("analysis.json"),
        serde_json::to_string_pretty(&a)?.as_bytes(),
    )?;
    let report = results.join("report.md");
    let text = analysis::recipe_report::render(&a, manifest, rel) + &skipped_section(skipped);
    write_atomic(&report, text.as_bytes())?;
    let plots = match draw {
        true => plot::draw_recipe(
            &RecipePlotData {
                manifest,
                analysis: &a,
            },
            plots_dir,
        )?,
        false => Vec::new(),
    };
    Ok(Published {
        verdicts: analysis::recipe_report::verdicts(&a),
        report,
        plots: plots
            .iter()
            .map(|s| plots_dir.join(format!("{s}.png")))
            .collect(),
    })
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

/// Claim (b)'s evidence from the learning-rate sweep beside `results`, if it has an analysis.
fn stability_claim(results: &Path) -> Option<lr_analysis::StabilityClaim> {
    let path = results
        .parent()?
        .join(STABILITY_SWEEP)
        .join("analysis.json");
    let text = std::fs::read_to_string(&path).ok()?;
    let a: LrAnalysis = serde_json::from_str(&text).ok()?;
    a.stability_claim(&path.display().to_string())
}

/// After a learning-rate sweep: re-publish the flagship beside it (if it has results), so its
/// claims table cites the new answer. A failure there is reported, not fatal.
fn refresh_flagship(results: &Path, plots_root: &Path, draw: bool) {
    let Some(flagship) = results.parent().map(|p| p.join(FLAGSHIP_SWEEP)) else {
        return;
    };
    if results.file_name() != Some(STABILITY_SWEEP.as_ref()) || !flagship.join(MANIFEST).exists() {
        return;
    }
    match publish(&flagship, plots_root, draw) {
        Ok(p) => eprintln!("{}: claims table updated", p.report.display()),
        Err(e) => eprintln!("{}: not updated: {e:#}", flagship.display()),
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
