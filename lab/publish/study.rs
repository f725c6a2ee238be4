//! A [`Study`]: one kind of analysis of a sweep's results, with the report, verdicts and figures
//! it writes. `publish` picks one by what the manifest holds ([`for_manifest`]) and puts every
//! study through the same write path, so a new kind (the IsoFLOP study next) is one more
//! implementation here and one more arm there.

use std::path::Path;

use anyhow::Result;

use crate::analysis::decisive::Record;
use crate::analysis::isoflop::{self, IsoflopAnalysis};
use crate::analysis::load::RunData;
use crate::analysis::lr::{self as lr_analysis, LrAnalysis, StabilityClaim};
use crate::analysis::recipe::RecipeAnalysis;
use crate::analysis::scaling::Analysis;
use crate::analysis::stats::Paired;
use crate::analysis::{
    self, isoflop::report as isoflop_report, lr::report as lr_report,
    recipe::report as recipe_report,
};
use crate::error::SpecError;
use crate::page::chart::Chart;
use crate::page::{scaling, studies};
use crate::plot::{self, IsoflopPlotData, LrPlotData, PlotData, RecipePlotData};
use crate::run::Manifest;

pub trait Study {
    /// `analysis.json`: every number the report states, and its verdict lines.
    fn analysis_json(&self, verdicts: &[String]) -> Result<String>;
    /// `report.md`, its figures linked from `plots_rel` (relative to the report).
    fn report(&self, plots_rel: &str) -> String;
    /// The answers, one line each, as the report states them.
    fn verdicts(&self) -> Vec<String>;
    /// Draw the figures into `dir`; their file stems.
    fn draw(&self, dir: &Path) -> Result<Vec<String>>;
    /// The same figures, interactive, for `report.html` (each under its static twin's stem).
    fn charts(&self) -> Vec<Chart>;
    /// The primary comparisons, named: what `lab sweep --until-decisive` adds seeds for.
    fn primary(&self) -> Vec<(String, Paired)>;
}

/// The study a sweep's manifest asks for: a learning-rate axis gets the stability analysis,
/// budgets on the cells the IsoFLOP analysis, a `[teacher]` the recipe analysis, anything
/// else the scaling comparison (which cites the
/// learning-rate sweep named by its `stability_from`, read from beside `results`).
pub fn for_manifest<'a>(
    manifest: &'a Manifest,
    runs: &'a [RunData],
    results: &Path,
) -> Result<Box<dyn Study + 'a>, SpecError> {
    if !manifest.learning_rates.is_empty() {
        let mut analysis = lr_analysis::analyze(manifest, runs);
        analysis.sequential = decisive_record(manifest, results)?;
        return Ok(Box::new(LearningRate {
            manifest,
            runs,
            analysis,
        }));
    }
    if isoflop::is_isoflop(manifest) {
        let analysis = isoflop::analyze(manifest, runs);
        return Ok(Box::new(Isoflop { manifest, analysis }));
    }
    if manifest.teacher.is_some() {
        let analysis = analysis::recipe::analyze(manifest, runs);
        return Ok(Box::new(Recipe { manifest, analysis }));
    }
    let mut analysis = analysis::scaling::analyze(manifest, runs);
    analysis.stability_claim = manifest
        .stability_from
        .as_ref()
        .and_then(|name| stability_claim(&results.parent()?.join(name)));
    Ok(Box::new(Scaling {
        manifest,
        runs,
        analysis,
    }))
}

/// An analysis as JSON with the verdict lines the reports state (`verdicts`, after its own
/// fields): the lines kept with the numbers they come from.
fn with_verdicts<T: serde::Serialize>(analysis: &T, verdicts: &[String]) -> Result<String> {
    #[derive(serde::Serialize)]
    struct WithVerdicts<'a, T> {
        #[serde(flatten)]
        analysis: &'a T,
        verdicts: &'a [String],
    }
    Ok(serde_json::to_string_pretty(&WithVerdicts {
        analysis,
        verdicts,
    })?)
}

/// The `--until-decisive` record in `results`, if its last look saw exactly the seeds the
/// manifest holds (a later plain sweep with fewer seeds leaves it stale, and it is ignored);
/// Err naming the file where it does not read.
pub fn decisive_record(manifest: &Manifest, results: &Path) -> Result<Option<Record>, SpecError> {
    let Some(record) = Record::read(results)? else {
        return Ok(None);
    };
    let mut seeds: Vec<u64> = (manifest.cells.iter())
        .filter(|c| manifest.teacher.as_ref() != Some(&c.name))
        .map(|c| c.seed)
        .collect();
    seeds.sort();
    seeds.dedup();
    let current = record.last().is_some_and(|l| l.seeds == seeds.len());
    Ok(current.then_some(record))
}

/// The stability claim's evidence from the learning-rate sweep in `dir`, if it has an
/// analysis.
fn stability_claim(dir: &Path) -> Option<StabilityClaim> {
    let path = dir.join("analysis.json");
    let text = std::fs::read_to_string(&path).ok()?;
    let a: LrAnalysis = serde_json::from_str(&text).ok()?;
    a.stability_claim(&path.display().to_string())
}

/// Arms compared at matched compute across sizes, paired by seed ([`analysis::scaling::analyze`]).
struct Scaling<'a> {
    manifest: &'a Manifest,
    runs: &'a [RunData],
    analysis: Analysis,
}

impl Study for Scaling<'_> {
    fn analysis_json(&self, verdicts: &[String]) -> Result<String> {
        with_verdicts(&self.analysis, verdicts)
    }
    fn report(&self, plots_rel: &str) -> String {
        analysis::scaling::report::render(&self.analysis, self.manifest, self.runs, plots_rel)
    }
    fn verdicts(&self) -> Vec<String> {
        analysis::scaling::report::verdicts(&self.analysis)
    }
    fn draw(&self, dir: &Path) -> Result<Vec<String>> {
        let data = PlotData {
            manifest: self.manifest,
            runs: self.runs,
            analysis: &self.analysis,
        };
        plot::draw_all(&data, dir)
    }
    fn charts(&self) -> Vec<Chart> {
        scaling::charts(&PlotData {
            manifest: self.manifest,
            runs: self.runs,
            analysis: &self.analysis,
        })
    }
    fn primary(&self) -> Vec<(String, Paired)> {
        let a = &self.analysis;
        let base = a.baseline_arm.as_ref();
        let p = base.and_then(|b| {
            let name = format!("final loss {} − {b} (nats)", a.reference_arm);
            Some((name, *a.pooled.get(b)?))
        });
        p.into_iter().collect()
    }
}

/// Loss against learning rate per arm, and the stability verdict ([`lr_analysis::analyze`]).
struct LearningRate<'a> {
    manifest: &'a Manifest,
    runs: &'a [RunData],
    analysis: LrAnalysis,
}

impl Study for LearningRate<'_> {
    fn analysis_json(&self, verdicts: &[String]) -> Result<String> {
        with_verdicts(&self.analysis, verdicts)
    }
    fn report(&self, plots_rel: &str) -> String {
        lr_report::render(&self.analysis, self.manifest, self.runs, plots_rel)
    }
    fn verdicts(&self) -> Vec<String> {
        lr_report::verdicts(&self.analysis)
    }
    fn draw(&self, dir: &Path) -> Result<Vec<String>> {
        let data = LrPlotData {
            manifest: self.manifest,
            analysis: &self.analysis,
        };
        plot::draw_lr(&data, dir)
    }
    fn charts(&self) -> Vec<Chart> {
        studies::lr(&LrPlotData {
            manifest: self.manifest,
            analysis: &self.analysis,
        })
    }
    fn primary(&self) -> Vec<(String, Paired)> {
        self.analysis.primary()
    }
}

/// Recipe levers against a baseline, per size ([`analysis::recipe::analyze`]).
struct Recipe<'a> {
    manifest: &'a Manifest,
    analysis: RecipeAnalysis,
}

impl Study for Recipe<'_> {
    fn analysis_json(&self, verdicts: &[String]) -> Result<String> {
        with_verdicts(&self.analysis, verdicts)
    }
    fn report(&self, plots_rel: &str) -> String {
        recipe_report::render(&self.analysis, self.manifest, plots_rel)
    }
    fn verdicts(&self) -> Vec<String> {
        recipe_report::verdicts(&self.analysis)
    }
    fn draw(&self, dir: &Path) -> Result<Vec<String>> {
        let data = RecipePlotData {
            manifest: self.manifest,
            analysis: &self.analysis,
        };
        plot::draw_recipe(&data, dir)
    }
    fn charts(&self) -> Vec<Chart> {
        studies::recipe(&RecipePlotData {
            manifest: self.manifest,
            analysis: &self.analysis,
        })
    }
    fn primary(&self) -> Vec<(String, Paired)> {
        let a = &self.analysis;
        let gain = |l: &crate::analysis::recipe::Lever| {
            let name = format!("gain of {} over {} (nats)", l.arm, a.baseline_arm);
            Some((name, l.pooled?))
        };
        a.levers.iter().filter_map(gain).collect()
    }
}

/// Compute-optimal frontiers per arm from IsoFLOP profiles ([`isoflop::analyze`]).
struct Isoflop<'a> {
    manifest: &'a Manifest,
    analysis: IsoflopAnalysis,
}

impl Study for Isoflop<'_> {
    fn analysis_json(&self, verdicts: &[String]) -> Result<String> {
        with_verdicts(&self.analysis, verdicts)
    }
    fn report(&self, plots_rel: &str) -> String {
        isoflop_report::render(&self.analysis, self.manifest, plots_rel)
    }
    fn verdicts(&self) -> Vec<String> {
        isoflop_report::verdicts(&self.analysis)
    }
    fn draw(&self, dir: &Path) -> Result<Vec<String>> {
        let data = IsoflopPlotData {
            manifest: self.manifest,
            analysis: &self.analysis,
        };
        plot::draw_isoflop(&data, dir)
    }
    fn charts(&self) -> Vec<Chart> {
        studies::isoflop(&IsoflopPlotData {
            manifest: self.manifest,
            analysis: &self.analysis,
        })
    }
    /// No paired comparison decides an IsoFLOP answer: its intervals are bootstraps.
    fn primary(&self) -> Vec<(String, Paired)> {
        Vec::new()
    }
}
