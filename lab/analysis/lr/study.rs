//! The learning-rate sweep as a [`Study`]: loss against learning rate per arm, and the
//! stability verdict.

use anyhow::Result;

use super::{LrAnalysis, analyze, figures, report};
use crate::analysis::figure::Figure;
use crate::analysis::load::RunData;
use crate::analysis::stats::Paired;
use crate::analysis::study::{Study, Sweep, decisive_record, with_verdicts};
use crate::error::SpecError;
use crate::run::Manifest;

struct LearningRate<'a> {
    manifest: &'a Manifest,
    runs: &'a [RunData],
    analysis: LrAnalysis,
}

/// Opens on a manifest with a learning-rate axis.
pub fn open<'a>(s: &Sweep<'a>) -> Result<Option<Box<dyn Study + 'a>>, SpecError> {
    if s.manifest.learning_rates.is_empty() {
        return Ok(None);
    }
    let mut analysis = analyze(s.manifest, s.runs);
    analysis.sequential = decisive_record(s.manifest, s.results)?;
    let (manifest, runs) = (s.manifest, s.runs);
    Ok(Some(Box::new(LearningRate {
        manifest,
        runs,
        analysis,
    })))
}

impl Study for LearningRate<'_> {
    fn analysis_json(&self, verdicts: &[String]) -> Result<String> {
        with_verdicts(&self.analysis, verdicts)
    }
    fn report(&self, plots_rel: &str) -> String {
        report::render(&self.analysis, self.manifest, self.runs, plots_rel)
    }
    fn verdicts(&self) -> Vec<String> {
        report::verdicts(&self.analysis)
    }
    fn figures(&self) -> Vec<Figure> {
        figures::figures(&self.analysis, &self.manifest.arms)
    }
    fn primary(&self) -> Vec<(String, Paired)> {
        self.analysis.primary()
    }
}
