//! The scaling comparison as a [`Study`]: arms compared at matched compute across sizes,
//! paired by seed, citing the learning-rate sweep named by `stability_from` (read from beside
//! the results).

use std::path::Path;

use anyhow::Result;

use super::{Analysis, analyze, figures, report};
use crate::analysis::lr::{LrAnalysis, StabilityClaim};
use crate::analysis::stats::Paired;
use crate::analysis::study::{Parts, Study, Sweep};
use crate::error::SpecError;

/// Opens on any manifest: the default study.
pub fn open<'a>(s: &Sweep<'a>) -> Result<Option<Box<dyn Study + 'a>>, SpecError> {
    let mut analysis = analyze(s.manifest, s.runs);
    analysis.stability_claim = (s.manifest.stability_from.as_ref())
        .and_then(|name| stability_claim(&s.results.parent()?.join(name)));
    Ok(Some(Box::new(Parts {
        sweep: *s,
        analysis,
        report: |a, s, plots| report::render(a, s.manifest, s.runs, plots),
        verdicts: report::verdicts,
        figures: |a, s| {
            let (manifest, runs) = (s.manifest, s.runs);
            figures::figures(&figures::Inputs {
                manifest,
                runs,
                analysis: a,
            })
        },
        primary,
    })))
}

/// The stability claim's evidence from the learning-rate sweep in `dir`, if it has an
/// analysis.
fn stability_claim(dir: &Path) -> Option<StabilityClaim> {
    let path = dir.join("analysis.json");
    let text = std::fs::read_to_string(&path).ok()?;
    let a: LrAnalysis = serde_json::from_str(&text).ok()?;
    a.stability_claim(&path.display().to_string())
}

/// The pooled paired difference of the reference arm and the baseline.
fn primary(a: &Analysis) -> Vec<(String, Paired)> {
    let base = a.baseline_arm.as_ref();
    let p = base.and_then(|b| {
        let name = format!("final loss {} − {b} (nats)", a.reference_arm);
        Some((name, *a.pooled.get(b)?))
    });
    p.into_iter().collect()
}
