//! Forecasts that are scored: a scaling sweep holds out its largest size(s), fits the others,
//! states what the held-out runs will give before they start (`forecast.json`, frozen by the
//! sweep), and is scored once they finish. LLaMA-3's method, and the only way a lab learns how
//! far its curves carry.
//!
//! - [`curve`]: the law extrapolated and its prediction interval (fit uncertainty and seed
//!   spread);
//! - [`sigmoid`]: the downstream step, exact match against the answers' loss;
//! - [`make`]: the forecast from the runs the sweep may see;
//! - [`score`]: the forecast against the held-out runs, the report's section and figure.

pub mod curve;
pub mod figure;
pub mod make;
pub mod report;
pub mod score;
pub mod sigmoid;

use serde::{Deserialize, Serialize};

pub use curve::{Curve, Form, Predicted};
use sigmoid::Sigmoid;

/// The frozen forecast, in the results directory.
pub const FORECAST: &str = "forecast.json";
/// Its score, rewritten by every publish.
pub const SCORE: &str = "forecast-score.json";

/// A held-out cell as the plan knows it before it trains: its budget and how many seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    pub size: String,
    pub arm: String,
    pub budget: f64,
    pub seeds: usize,
}

/// What the runs the sweep could see predict for the held-out ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forecast {
    pub form: Form,
    /// The sizes fitted, and the largest training budget among them.
    pub fitted_sizes: Vec<String>,
    pub fitted_up_to: f64,
    pub margin: f64,
    pub reference_arm: String,
    pub baseline_arm: Option<String>,
    pub arms: Vec<ArmForecast>,
    /// Reference − baseline at each held-out size.
    pub differences: Vec<DifferenceForecast>,
    /// Exact match on each question stream, in two steps.
    pub downstream: Vec<DownstreamForecast>,
    pub notes: Vec<String>,
}

/// One arm's curve and its predicted final loss (seed mean) at each held-out size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArmForecast {
    pub arm: String,
    pub curve: Option<Curve>,
    pub at: Vec<PointForecast>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointForecast {
    pub size: String,
    pub budget: f64,
    pub seeds: usize,
    pub predicted: Predicted,
}

/// The predicted reference − baseline difference of seed means at a held-out size, and the
/// verdict it implies: `lower`/`higher` when the interval excludes 0, `equivalent` inside
/// ±margin, else `inconclusive`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DifferenceForecast {
    pub size: String,
    pub predicted: Predicted,
    pub verdict: crate::analysis::stats::Verdict,
}

/// Two steps: each arm's compute → answer loss curve, then one sigmoid from answer loss to
/// exact match pooled over the fitted runs of every arm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DownstreamForecast {
    pub stream: String,
    pub sigmoid: Sigmoid,
    pub arms: Vec<DownstreamArm>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DownstreamArm {
    pub arm: String,
    pub size: String,
    pub answer_loss: Predicted,
    pub exact_match: Predicted,
}

/// The results' frozen forecast scored against `runs`, where the sweep has one.
pub fn read_scored(
    results: &std::path::Path,
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
    let scored = score::score(&frozen.body, (frozen.written_unix_s, &frozen.commit), runs);
    Ok(Some((frozen.body, scored)))
}
