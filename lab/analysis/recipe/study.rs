//! A recipe experiment as a [`Study`]: recipe levers against a baseline, per size.

use super::{Lever, RecipeAnalysis, analyze, figures, report};
use crate::analysis::stats::Paired;
use crate::analysis::study::{Parts, Study, Sweep};
use crate::error::SpecError;

/// Opens on a manifest with a `[teacher]`.
pub fn open<'a>(s: &Sweep<'a>) -> Result<Option<Box<dyn Study + 'a>>, SpecError> {
    if s.manifest.teacher.is_none() {
        return Ok(None);
    }
    Ok(Some(Box::new(Parts {
        sweep: *s,
        analysis: analyze(s.manifest, s.runs),
        report: |a, s, plots| report::render(a, s.manifest, plots),
        verdicts: report::verdicts,
        figures: |a, s| figures::figures(a, &s.manifest.arms),
        primary,
    })))
}

/// Each lever's pooled gain over the baseline: what `--until-decisive` adds seeds for.
fn primary(a: &RecipeAnalysis) -> Vec<(String, Paired)> {
    let gain = |l: &Lever| {
        let name = format!("gain of {} over {} (nats)", l.arm, a.baseline_arm);
        Some((name, l.pooled?))
    };
    a.levers.iter().filter_map(gain).collect()
}
