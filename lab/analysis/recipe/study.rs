//! A recipe experiment as a [`Study`]: recipe levers against a baseline, per size.

use anyhow::Result;

use super::{Lever, RecipeAnalysis, analyze, figures, report};
use crate::analysis::figure::Figure;
use crate::analysis::stats::Paired;
use crate::analysis::study::{Study, Sweep, with_verdicts};
use crate::error::SpecError;
use crate::run::Manifest;

struct Recipe<'a> {
    manifest: &'a Manifest,
    analysis: RecipeAnalysis,
}

/// Opens on a manifest with a `[teacher]`.
pub fn open<'a>(s: &Sweep<'a>) -> Result<Option<Box<dyn Study + 'a>>, SpecError> {
    if s.manifest.teacher.is_none() {
        return Ok(None);
    }
    let analysis = analyze(s.manifest, s.runs);
    let manifest = s.manifest;
    Ok(Some(Box::new(Recipe { manifest, analysis })))
}

impl Study for Recipe<'_> {
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
    fn primary(&self) -> Vec<(String, Paired)> {
        let a = &self.analysis;
        let gain = |l: &Lever| {
            let name = format!("gain of {} over {} (nats)", l.arm, a.baseline_arm);
            Some((name, l.pooled?))
        };
        a.levers.iter().filter_map(gain).collect()
    }
}
