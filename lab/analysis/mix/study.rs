//! A sweep with a mixture axis as a [`Study`]: each arm's law of loss against mixture, and the
//! optimum it implies.

use super::{analyze, figures, is_mix, report};
use crate::analysis::study::{Parts, Study, Sweep, no_primary};
use crate::error::SpecError;

/// Opens on a manifest with a mixture axis.
pub fn open<'a>(s: &Sweep<'a>) -> Result<Option<Box<dyn Study + 'a>>, SpecError> {
    if !is_mix(s.manifest) {
        return Ok(None);
    }
    Ok(Some(Box::new(Parts {
        sweep: *s,
        analysis: analyze(s.manifest, s.runs),
        report: |a, _, plots| report::render(a, plots),
        verdicts: report::verdicts,
        figures: |a, s| figures::figures(a, &s.manifest.arms),
        primary: no_primary,
    })))
}
