//! The law a forecast extrapolates, fitted to the runs it may see, and its 95% prediction
//! interval for the seed mean of a new size's runs. The interval has both parts a forecast
//! needs: the fit's own uncertainty at the new budget (the delta method on the fitted
//! parameters' covariance) and the spread of the runs themselves (the fit's residual variance
//! over the number of seeds averaged), on the fit's residual degrees of freedom. Without the
//! second part it would be a confidence interval for the curve, and under-cover runs.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::analysis::fit::{PowerLawFit, fit_power_law, jacobian_row};
pub use crate::sweep::spec::Form;

/// A fitted curve with what its prediction interval needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Curve {
    Floor(PowerLawFit),
    /// `ln L = b₀ + b₁·ln(C/C₀)`, least squares; `cov` of (b₀, b₁); `s2` the residual variance
    /// of ln L on `n − 2` degrees of freedom.
    Power {
        c0: f64,
        b: [f64; 2],
        cov: [[f64; 2]; 2],
        s2: f64,
        n: usize,
    },
}

/// A prediction and its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Predicted {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

pub fn fit(form: Form, budgets: &[f64], losses: &[f64]) -> Result<Curve, String> {
    match form {
        Form::Floor => fit_power_law(budgets, losses).map(Curve::Floor),
        Form::Power => fit_log_line(budgets, losses),
    }
}

fn fit_log_line(budgets: &[f64], losses: &[f64]) -> Result<Curve, String> {
    let n = budgets.len();
    if n < 3 || losses.iter().any(|l| *l <= 0.0) {
        return Err("a log–log line needs 3 runs with positive losses".into());
    }
    let c0 = (budgets.iter().map(|c| c.ln()).sum::<f64>() / n as f64).exp();
    let x: Vec<f64> = budgets.iter().map(|c| (c / c0).ln()).collect();
    let y: Vec<f64> = losses.iter().map(|l| l.ln()).collect();
    let (mx, my) = (mean(&x), mean(&y));
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return Err("every run at one budget".into());
    }
    let b1 = x
        .iter()
        .zip(&y)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / sxx;
    let b0 = my - b1 * mx;
    let sse: f64 = x
        .iter()
        .zip(&y)
        .map(|(a, b)| (b - b0 - b1 * a).powi(2))
        .sum();
    let s2 = sse / (n - 2) as f64;
    // x is centred on C₀'s log (mx = 0), so b₀ and b₁ are uncorrelated.
    let cov = [[s2 / n as f64, 0.0], [0.0, s2 / sxx]];
    Ok(Curve::Power {
        c0,
        b: [b0, b1],
        cov,
        s2,
        n,
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

impl Curve {
    pub fn predict(&self, c: f64) -> f64 {
        match self {
            Curve::Floor(f) => f.predict(c),
            Curve::Power { c0, b, .. } => (b[0] + b[1] * (c / c0).ln()).exp(),
        }
    }

    /// The variance of the fitted curve's value at `c` (loss units, by the delta method), the
    /// residual variance of one run, and their degrees of freedom; `None` without residual
    /// degrees of freedom or a covariance.
    pub fn variance(&self, c: f64) -> Option<(f64, f64, f64)> {
        let (fit, s2, df) = match self {
            Curve::Floor(f) => {
                let cov = f.cov?;
                let g = jacobian_row(&f.theta, c / f.c0);
                let mut v = 0.0;
                for r in 0..3 {
                    for k in 0..3 {
                        v += g[r] * cov[r][k] * g[k];
                    }
                }
                let df = f.n as f64 - 3.0;
                (v, f.rmse * f.rmse * f.n as f64 / df, df)
            }
            Curve::Power { c0, cov, s2, n, .. } => {
                // ln L's variances, to loss units at the predicted loss.
                let (x, l2) = ((c / c0).ln(), self.predict(c).powi(2));
                let fit = cov[0][0] + x * x * cov[1][1];
                (fit * l2, s2 * l2, *n as f64 - 2.0)
            }
        };
        (df > 0.0 && fit.is_finite() && s2.is_finite()).then_some((fit.max(0.0), s2, df))
    }

    /// The 95% prediction interval at budget `c` for the mean of `seeds` new runs (a
    /// log–log line's is multiplicative, as its errors are).
    pub fn interval(&self, c: f64, seeds: usize) -> Option<Predicted> {
        let m = seeds.max(1) as f64;
        let (fit, s2, df) = self.variance(c)?;
        let q = t975(df)?;
        let mean = self.predict(c);
        Some(match self {
            Curve::Floor(_) => {
                let half = q * (fit + s2 / m).sqrt();
                Predicted {
                    mean,
                    low: mean - half,
                    high: mean + half,
                }
            }
            Curve::Power { .. } => {
                let half = q * ((fit + s2 / m) / (mean * mean)).sqrt();
                Predicted {
                    mean,
                    low: mean * (-half).exp(),
                    high: mean * half.exp(),
                }
            }
        })
    }
}

/// Student's t 97.5% quantile on `df` degrees of freedom.
pub fn t975(df: f64) -> Option<f64> {
    Some(StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(0.975))
}
