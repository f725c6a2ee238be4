//! The scaling comparison as a [`Study`]: arms compared at matched compute across sizes,
//! paired by seed, citing the learning-rate sweep named by `stability_from` (read from beside
//! the results).

use std::path::Path;

use anyhow::Result;

use super::{Analysis, analyze, figures, report};
use crate::analysis::figure::Figure;
use crate::analysis::load::RunData;
use crate::analysis::lr::{LrAnalysis, StabilityClaim};
use crate::analysis::stats::Paired;
use crate::analysis::study::{Study, Sweep, with_verdicts};
use crate::error::SpecError;
use crate::run::Manifest;

struct Scaling<'a> {
    manifest: &'a Manifest,
    runs: &'a [RunData],
    analysis: Analysis,
}

/// Opens on any manifest: the default study.
pub fn open<'a>(s: &Sweep<'a>) -> Result<Option<Box<dyn Study + 'a>>, SpecError> {
    let mut analysis = analyze(s.manifest, s.runs);
    analysis.stability_claim = (s.manifest.stability_from.as_ref())
        .and_then(|name| stability_claim(&s.results.parent()?.join(name)));
    let (manifest, runs) = (s.manifest, s.runs);
    Ok(Some(Box::new(Scaling {
        manifest,
        runs,
        analysis,
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

impl Study for Scaling<'_> {
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
        figures::figures(&figures::Inputs {
            manifest: self.manifest,
            runs: self.runs,
            analysis: &self.analysis,
        })
    }
    fn primary(&self) -> Vec<(String, Paired)> {
        let a = &self.analysis;
        let base = a.baseline_arm.as_ref();
        let p = base.and_then(|b| {
            let name = format!("final loss {} − {b} (nats)", a.reference_arm);
            Some((name, *a.pooled.get(b)?))
        });
        p.into_iter().collect()
    }
}
