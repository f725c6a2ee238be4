//! An IsoFLOP experiment as a [`Study`]: compute-optimal frontiers per arm from IsoFLOP
//! profiles, and the compute multiplier along them.

use super::{analyze, figures, is_isoflop, report};
use crate::analysis::study::{Parts, Study, Sweep, no_primary};
use crate::error::SpecError;

/// Opens on a manifest whose cells carry budgets.
pub fn open<'a>(s: &Sweep<'a>) -> Result<Option<Box<dyn Study + 'a>>, SpecError> {
    if !is_isoflop(s.manifest) {
        return Ok(None);
    }
    Ok(Some(Box::new(Parts {
        sweep: *s,
        analysis: analyze(s.manifest, s.runs),
        report: |a, s, plots| report::render(a, s.manifest, plots),
        verdicts: report::verdicts,
        figures: |a, s| figures::figures(a, &s.manifest.arms),
        primary: no_primary,
    })))
}
