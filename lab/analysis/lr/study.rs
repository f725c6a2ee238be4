//! The learning-rate sweep as a [`Study`]: loss against learning rate per arm, and the
//! stability verdict.

use super::{LrAnalysis, analyze, figures, report};
use crate::analysis::study::{Parts, Study, Sweep, decisive_record};
use crate::error::SpecError;

/// Opens on a manifest with a learning-rate axis.
pub fn open<'a>(s: &Sweep<'a>) -> Result<Option<Box<dyn Study + 'a>>, SpecError> {
    if s.manifest.learning_rates.is_empty() {
        return Ok(None);
    }
    let mut analysis = analyze(s.manifest, s.runs);
    analysis.sequential = decisive_record(s.manifest, s.results)?;
    Ok(Some(Box::new(Parts {
        sweep: *s,
        analysis,
        report: |a, s, plots| report::render(a, s.manifest, s.runs, plots),
        verdicts: report::verdicts,
        figures: |a, s| figures::figures(a, &s.manifest.arms),
        primary: LrAnalysis::primary,
    })))
}
