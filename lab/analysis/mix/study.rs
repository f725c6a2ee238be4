//! A sweep with a mixture axis as a [`Study`]: each arm's law of loss against mixture, and the
//! optimum it implies.

use anyhow::Result;

use super::{MixAnalysis, analyze, figures, is_mix, report};
use crate::analysis::figure::Figure;
use crate::analysis::stats::Paired;
use crate::analysis::study::{Study, Sweep, with_verdicts};
use crate::error::SpecError;
use crate::run::Manifest;

struct Mix<'a> {
    manifest: &'a Manifest,
    analysis: MixAnalysis,
}

/// Opens on a manifest with a mixture axis.
pub fn open<'a>(s: &Sweep<'a>) -> Result<Option<Box<dyn Study + 'a>>, SpecError> {
    if !is_mix(s.manifest) {
        return Ok(None);
    }
    let analysis = analyze(s.manifest, s.runs);
    let manifest = s.manifest;
    Ok(Some(Box::new(Mix { manifest, analysis })))
}

impl Study for Mix<'_> {
    fn analysis_json(&self, verdicts: &[String]) -> Result<String> {
        with_verdicts(&self.analysis, verdicts)
    }
    fn report(&self, plots_rel: &str) -> String {
        report::render(&self.analysis, plots_rel)
    }
    fn verdicts(&self) -> Vec<String> {
        report::verdicts(&self.analysis)
    }
    fn figures(&self) -> Vec<Figure> {
        figures::figures(&self.analysis, &self.manifest.arms)
    }
    /// The optimum's intervals are bootstraps; no paired comparison decides this study.
    fn primary(&self) -> Vec<(String, Paired)> {
        Vec::new()
    }
}
