//! Forecasts that are scored: a scaling sweep holds out its largest size(s), fits the others,
//! states what the held-out runs will give before they start (`forecast.json`, frozen by the
//! sweep), and is scored once they finish. LLaMA-3's method, and the only way a lab learns how
//! far its curves carry.
//!
//! - [`curve`]: the law extrapolated and its prediction interval (fit uncertainty and seed
//!   spread);
//! - [`sigmoid`]: the downstream step, exact match against the answers' loss;
//! - [`stated`]: what a forecast states;
//! - [`make`]: the forecast from the runs the sweep may see;
//! - [`optima`]: the IsoFLOP forecast, of each held-out budget's optimal loss;
//! - [`score`]: the forecast against the held-out runs, the report's section and figure.

pub mod curve;
pub mod figure;
pub mod make;
pub mod optima;
pub mod report;
pub mod score;
pub mod sigmoid;
pub mod stated;

pub use curve::{Curve, Form, Predicted};
pub use stated::*;

/// The results' frozen forecast scored against `runs`, where the sweep has one.
pub fn read_scored(
    results: &std::path::Path,
    manifest: &crate::run::Manifest,
    runs: &[crate::analysis::load::RunData],
) -> anyhow::Result<Option<(Forecast, score::Scored)>> {
    let path = results.join(FORECAST);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)?;
    let frozen: crate::sweep::frozen::Frozen<Forecast> =
        serde_json::from_str(&text).map_err(|e| crate::error::SpecError::Parse {
            file: path.clone(),
            message: e.to_string(),
        })?;
    let written = (frozen.written_unix_s, frozen.commit.as_str());
    let scored = score::score(&frozen.body, written, manifest, runs);
    Ok(Some((frozen.body, scored)))
}
