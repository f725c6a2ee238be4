//! An IsoFLOP experiment as a [`Study`]: compute-optimal frontiers per arm from IsoFLOP
//! profiles, and the compute multiplier along them.

use anyhow::Result;

use super::{IsoflopAnalysis, analyze, figures, is_isoflop, report};
use crate::analysis::figure::Figure;
use crate::analysis::stats::Paired;
use crate::analysis::study::{Study, Sweep, with_verdicts};
use crate::error::SpecError;
use crate::run::Manifest;

struct Isoflop<'a> {
    manifest: &'a Manifest,
    analysis: IsoflopAnalysis,
}

/// Opens on a manifest whose cells carry budgets.
pub fn open<'a>(s: &Sweep<'a>) -> Result<Option<Box<dyn Study + 'a>>, SpecError> {
    if !is_isoflop(s.manifest) {
        return Ok(None);
    }
    let analysis = analyze(s.manifest, s.runs);
    let manifest = s.manifest;
    Ok(Some(Box::new(Isoflop { manifest, analysis })))
}

impl Study for Isoflop<'_> {
    fn analysis_json(&self, verdicts: &[String]) -> Result<String> {
        with_verdicts(&self.analysis, verdicts)
    }
    fn report(&self, plots_rel: &str) -> String {
        report::render(&self.analysis, self.manifest, plots_rel)
    }
    fn verdicts(&self) -> Vec<String> {
        report::verdicts(&self.analysis)
    }
    fn figures(&self) -> Vec<Figure> {
        figures::figures(&self.analysis, &self.manifest.arms)
    }
    /// No paired comparison decides an IsoFLOP answer: its intervals are bootstraps.
    fn primary(&self) -> Vec<(String, Paired)> {
        Vec::new()
    }
}
