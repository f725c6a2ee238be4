//! A [`Study`]: one kind of analysis of a sweep's results, with the report, verdicts and figures
//! it writes. Each lives in its own folder with an [`Opener`], registered in
//! `analysis::STUDIES`; `publish` takes the first that claims the manifest and puts every study
//! through the same write path.

use std::path::Path;

use anyhow::Result;

use super::decisive::Record;
use super::figure::Figure;
use super::load::RunData;
use super::stats::Paired;
use crate::error::SpecError;
use crate::run::Manifest;

pub trait Study {
    /// `analysis.json`: every number the report states, and its verdict lines.
    fn analysis_json(&self, verdicts: &[String]) -> Result<String>;
    /// `report.md`, its figures linked from `plots_rel` (relative to the report).
    fn report(&self, plots_rel: &str) -> String;
    /// The answers, one line each, as the report states them.
    fn verdicts(&self) -> Vec<String>;
    /// The figures, described once for both renderers.
    fn figures(&self) -> Vec<Figure>;
    /// The primary comparisons, named: what `lab sweep --until-decisive` adds seeds for.
    fn primary(&self) -> Vec<(String, Paired)>;
}

/// A study's opener: `Some` where the manifest is this study's kind.
pub type Opener = for<'a> fn(&Sweep<'a>) -> Result<Option<Box<dyn Study + 'a>>, SpecError>;

/// What a study is opened on: the sweep's manifest, its runs, and its results folder (a study
/// may read a record there, or a sweep beside it).
#[derive(Clone, Copy)]
pub struct Sweep<'a> {
    pub manifest: &'a Manifest,
    pub runs: &'a [RunData],
    pub results: &'a Path,
}

/// A study made of its analysis and the functions that report it, which is what each study is:
/// its `study.rs` names the functions and opens on the manifests it reads.
pub struct Parts<'a, A> {
    pub sweep: Sweep<'a>,
    pub analysis: A,
    /// `report.md`, given the sweep and where the figures are.
    pub report: fn(&A, &Sweep, &str) -> String,
    pub verdicts: fn(&A) -> Vec<String>,
    pub figures: fn(&A, &Sweep) -> Vec<Figure>,
    pub primary: fn(&A) -> Vec<(String, Paired)>,
}

impl<A: serde::Serialize> Study for Parts<'_, A> {
    fn analysis_json(&self, verdicts: &[String]) -> Result<String> {
        with_verdicts(&self.analysis, verdicts)
    }
    fn report(&self, plots_rel: &str) -> String {
        (self.report)(&self.analysis, &self.sweep, plots_rel)
    }
    fn verdicts(&self) -> Vec<String> {
        (self.verdicts)(&self.analysis)
    }
    fn figures(&self) -> Vec<Figure> {
        (self.figures)(&self.analysis, &self.sweep)
    }
    fn primary(&self) -> Vec<(String, Paired)> {
        (self.primary)(&self.analysis)
    }
}

/// No paired comparison decides the study (its intervals are bootstraps).
pub fn no_primary<A>(_: &A) -> Vec<(String, Paired)> {
    Vec::new()
}

/// An analysis as JSON with the verdict lines the reports state (`verdicts`, after its own
/// fields): the lines kept with the numbers they come from.
pub fn with_verdicts<T: serde::Serialize>(analysis: &T, verdicts: &[String]) -> Result<String> {
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
