//! What a forecast states, as frozen in `forecast.json` before the held-out cells train.

use serde::{Deserialize, Serialize};

use super::curve::{Curve, Form, Predicted};
use super::sigmoid::Sigmoid;

/// The frozen forecast, in the results directory.
pub const FORECAST: &str = "forecast.json";
/// Its score, rewritten by every publish.
pub const SCORE: &str = "forecast-score.json";

/// How a held-out IsoFLOP budget is named where a size would be: `C=1e12`.
pub fn budget_name(budget: f64) -> String {
    format!("C={budget:e}")
}

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
    /// An IsoFLOP forecast: of each held-out budget's compute-optimal loss L* (its `sizes` are
    /// budgets, `C=…`), not of runs' final losses.
    #[serde(default)]
    pub optima: bool,
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
    /// The direct fit beside the two steps: a log–log line of exact match on compute (whose
    /// errors do not compound; Apple 2025 found it extrapolates better). `None` where a fitted
    /// run has no exact answer (its log is −∞).
    #[serde(default)]
    pub direct: Option<Predicted>,
}

/// A run the forecast may use or score: finished, with a final loss.
pub(super) fn complete(r: &crate::analysis::load::RunData) -> bool {
    r.summary.status == crate::run::RunStatus::Complete && r.summary.final_val_loss.is_some()
}
