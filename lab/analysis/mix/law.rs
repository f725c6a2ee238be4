//! How a target loss depends on the training mixture `r` (weights on k domains, summing to 1):
//! the data mixing law of Ye et al. (2024), `L(r) = c + exp(b + Σ_j t_j r_j)`, and a linear
//! baseline. On the simplex only the differences between the `t_j` matter (adding a constant to
//! every `t_j` is a change of `b`), so the last domain's `t` is fixed at 0.

use serde::{Deserialize, Serialize};

use super::linear::{least_squares, solve};

/// `L(r) = c + exp(b + Σ_j t_j r_j)`, `t` one per domain with the last 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixingLaw {
    pub c: f64,
    pub b: f64,
    pub t: Vec<f64>,
}

impl MixingLaw {
    pub fn at(&self, r: &[f64]) -> f64 {
        self.c + self.exponential(r)
    }

    fn exponential(&self, r: &[f64]) -> f64 {
        let u: f64 = self.t.iter().zip(r).map(|(t, r)| t * r).sum();
        (self.b + u).exp()
    }

    /// The parameters as one vector: `[c, b, t_0, …, t_{k−2}]`.
    fn theta(&self) -> Vec<f64> {
        let k = self.t.len();
        [self.c, self.b]
            .into_iter()
            .chain(self.t[..k - 1].iter().copied())
            .collect()
    }

    fn from_theta(theta: &[f64]) -> MixingLaw {
        let t = theta[2..].iter().copied().chain([0.0]).collect();
        MixingLaw {
            c: theta[0],
            b: theta[1],
            t,
        }
    }
}

/// `L(r) = β₀ + Σ_{j<k−1} β_j r_j` (the last weight is 1 minus the others).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearLaw {
    pub beta: Vec<f64>,
}

impl LinearLaw {
    pub fn at(&self, r: &[f64]) -> f64 {
        self.beta[0]
            + self.beta[1..]
                .iter()
                .zip(r)
                .map(|(b, r)| b * r)
                .sum::<f64>()
    }
}

/// The regressors of a mixture for the linear law: 1 and every weight but the last.
pub fn linear_row(r: &[f64]) -> Vec<f64> {
    [1.0]
        .into_iter()
        .chain(r[..r.len() - 1].iter().copied())
        .collect()
}

/// The linear law through `(mixtures, losses)`; `None` with fewer mixtures than its k
/// parameters, or mixtures that do not vary enough to fix them.
pub fn fit_linear(mixtures: &[Vec<f64>], losses: &[f64]) -> Option<LinearLaw> {
    let k = mixtures.first()?.len();
    if mixtures.len() < k {
        return None;
    }
    let rows: Vec<Vec<f64>> = mixtures.iter().map(|r| linear_row(r)).collect();
    least_squares(&rows, losses).map(|beta| LinearLaw { beta })
}

/// The mixing law through `(mixtures, losses)` by least squares (Levenberg–Marquardt from the
/// best of a few starts); `None` with fewer mixtures than its k + 1 parameters, or no fit.
pub fn fit_law(mixtures: &[Vec<f64>], losses: &[f64]) -> Option<MixingLaw> {
    let k = mixtures.first()?.len();
    if k < 2 || mixtures.len() < k + 1 || losses.iter().any(|l| !l.is_finite()) {
        return None;
    }
    let start = starts(mixtures, losses)
        .into_iter()
        .min_by(|a, b| sse(a, mixtures, losses).total_cmp(&sse(b, mixtures, losses)))?;
    let fitted = levenberg_marquardt(start, mixtures, losses);
    fitted
        .theta()
        .iter()
        .all(|x| x.is_finite())
        .then_some(fitted)
}

fn sse(law: &MixingLaw, mixtures: &[Vec<f64>], losses: &[f64]) -> f64 {
    mixtures
        .iter()
        .zip(losses)
        .map(|(r, y)| (y - law.at(r)).powi(2))
        .sum()
}

/// Starts with the floor `c` at a few distances below the smallest loss, the rest from a linear
/// fit of `ln(L − c)`.
fn starts(mixtures: &[Vec<f64>], losses: &[f64]) -> Vec<MixingLaw> {
    let lo = losses.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = losses.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1e-6);
    let rows: Vec<Vec<f64>> = mixtures.iter().map(|r| linear_row(r)).collect();
    [0.01, 0.05, 0.2, 1.0, 5.0, 20.0]
        .iter()
        .filter_map(|gap| {
            let c = lo - gap * span;
            let logs: Vec<f64> = losses.iter().map(|l| (l - c).ln()).collect();
            let beta = least_squares(&rows, &logs)?;
            // ln(L − c) = β₀ + Σ_{j<k−1} β_j r_j, i.e. t_j = β_j with t_{k−1} = 0.
            Some(MixingLaw::from_theta(&[[c].as_slice(), &beta].concat()))
        })
        .collect()
}

/// Levenberg–Marquardt on `[c, b, t_0 … t_{k−2}]`, with the analytic Jacobian
/// `∂L/∂c = 1`, `∂L/∂b = e`, `∂L/∂t_j = e·r_j` (`e` the exponential term).
fn levenberg_marquardt(start: MixingLaw, mixtures: &[Vec<f64>], losses: &[f64]) -> MixingLaw {
    let mut law = start;
    let mut cost = sse(&law, mixtures, losses);
    let mut lambda = 1e-3;
    for _ in 0..500 {
        let (jtj, jtr) = normal_equations(&law, mixtures, losses);
        let damped: Vec<Vec<f64>> = (jtj.iter().enumerate())
            .map(|(i, row)| {
                let mut row = row.clone();
                row[i] += lambda * row[i].max(1e-12);
                row
            })
            .collect();
        let Some(step) = solve(damped, jtr) else {
            lambda *= 10.0;
            continue;
        };
        let theta: Vec<f64> = law.theta().iter().zip(&step).map(|(a, d)| a + d).collect();
        let next = MixingLaw::from_theta(&theta);
        let next_cost = sse(&next, mixtures, losses);
        if next_cost.is_finite() && next_cost < cost {
            let done = cost - next_cost < 1e-15 * cost.max(1e-300);
            (law, cost, lambda) = (next, next_cost, (lambda / 10.0).max(1e-12));
            if done {
                break;
            }
        } else if lambda > 1e12 {
            break;
        } else {
            lambda *= 10.0;
        }
    }
    law
}

/// `JᵀJ` and `Jᵀ(y − L)` at `law`.
fn normal_equations(
    law: &MixingLaw,
    mixtures: &[Vec<f64>],
    losses: &[f64],
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let p = law.t.len() + 1;
    let mut jtj = vec![vec![0.0; p]; p];
    let mut jtr = vec![0.0; p];
    for (r, y) in mixtures.iter().zip(losses) {
        let e = law.exponential(r);
        let row: Vec<f64> = [1.0, e]
            .into_iter()
            .chain(r[..r.len() - 1].iter().map(|x| e * x))
            .collect();
        let residual = y - law.c - e;
        for i in 0..p {
            jtr[i] += row[i] * residual;
            for j in 0..p {
                jtj[i][j] += row[i] * row[j];
            }
        }
    }
    (jtj, jtr)
}
