//! What the study says of one arm: its laws, which one it trusts, and the optimum; and the laws'
//! fits from an arm's rows.

use serde::{Deserialize, Serialize};

use super::law::{LinearLaw, MixingLaw, fit_law, fit_linear};
use super::loo::{self, LooError};
use super::points::{MixPoint, Rows};

/// Which law predicts held-out mixtures best, if any beats their mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Trusted {
    MixingLaw,
    Linear,
}

/// The optimum of the trusted law over the floored simplex.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Optimum {
    pub weights: Vec<f64>,
    /// Per domain, the 95% bootstrap interval of its weight (mixtures and seeds resampled).
    pub intervals: Vec<(f64, f64)>,
    pub predicted: f64,
    /// The law's prediction at the base and the uniform mixture, for comparison.
    pub at_base: Option<f64>,
    pub at_uniform: f64,
}

/// One arm (at one size) on the mixture axis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArmMix {
    pub arm: String,
    pub size: String,
    pub points: Vec<MixPoint>,
    /// One mixing law per target component (a stream's weighted loss: still a mixing law); the
    /// target is their sum.
    pub laws: Option<Vec<MixingLaw>>,
    pub linear: Option<LinearLaw>,
    /// Leave-one-mixture-out errors: the mixing law, the linear law, the mean.
    pub loo_law: LooError,
    pub loo_linear: LooError,
    pub loo_mean: LooError,
    pub trusted: Option<Trusted>,
    pub optimum: Option<Optimum>,
}

impl ArmMix {
    /// The trusted law's prediction at `r`.
    pub fn predict(&self, r: &[f64]) -> Option<f64> {
        match self.trusted? {
            Trusted::MixingLaw => self.laws.as_ref().map(|l| target_law(l, r)),
            Trusted::Linear => self.linear.as_ref().map(|l| l.at(r)),
        }
    }
}

/// The target the component laws predict: the sum of their predictions.
pub fn target_law(laws: &[MixingLaw], r: &[f64]) -> f64 {
    laws.iter().map(|l| l.at(r)).sum::<f64>()
}

/// One mixing law per domain through `rows` of `Rows`; `None` if any domain's fails.
pub fn fit_components(rows: &Rows, subset: &[usize]) -> Option<Vec<MixingLaw>> {
    let r = loo::select(&rows.mixtures, subset);
    let k = rows.components.first()?.len();
    (0..k)
        .map(|d| {
            let y: Vec<f64> = subset.iter().map(|i| rows.components[*i][d]).collect();
            fit_law(&r, &y)
        })
        .collect()
}

/// The linear law of the target through `subset` of `rows`.
pub fn fit_target_linear(rows: &Rows, subset: &[usize]) -> Option<LinearLaw> {
    fit_linear(
        &loo::select(&rows.mixtures, subset),
        &loo::select(&rows.targets, subset),
    )
}
