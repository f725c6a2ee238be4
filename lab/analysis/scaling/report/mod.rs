//! `report.md` of a scaling comparison: the claims and verdicts first, then one section per
//! question, each with its table and, beside them, its figure and caption. One file per
//! section: [`claims`], [`verdicts`] (also the lines `lab sweep` prints), [`setup`] (and the
//! runs), [`loss`] (and the paired tests), [`fits`], and [`costs`] (stability, memory,
//! inference, routing).

mod claims;
mod costs;
mod fits;
mod loss;
mod setup;
mod verdicts;

pub use verdicts::{p_value, verdicts};

use super::Analysis;
use crate::analysis::load::RunData;
use crate::analysis::markdown::Doc;
use crate::run::Manifest;

/// The report; `plots_rel` is the figures' directory relative to the report's.
pub fn render(a: &Analysis, manifest: &Manifest, runs: &[RunData], plots_rel: &str) -> String {
    let mut doc = Doc::default();
    doc.line(&format!("# {} — preset `{}`\n", a.experiment, a.preset));
    if !manifest.description.is_empty() {
        doc.para(manifest.description.trim());
    }
    claims::section(&mut doc, a);
    verdicts::section(&mut doc, a);
    setup::section(&mut doc, a, manifest, runs);
    setup::runs(&mut doc, runs);
    loss::section(&mut doc, a, plots_rel);
    loss::by_stream(&mut doc, a, runs);
    fits::section(&mut doc, a, plots_rel);
    costs::stability(&mut doc, a, plots_rel);
    costs::memory(&mut doc, a, plots_rel);
    costs::inference(&mut doc, runs);
    costs::routing(&mut doc, a, plots_rel);
    doc.finish()
}
