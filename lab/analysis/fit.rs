//! The compute scaling law `L(C) = E + A·C^(−α)`, fitted per arm by nonlinear least squares
//! (Levenberg–Marquardt, started from a grid over E with log-linear fits for A and α), with
//! standard errors from the Gauss–Newton covariance `s²·(JᵀJ)⁻¹`.
//!
//! C is normalised by the geometric mean of the data's budgets (C₀) inside the fit, so the
//! three parameters have comparable scales; `A` is reported in the original units.

// 3×3 linear algebra by index reads like the math it implements.
#![allow(clippy::needless_range_loop)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PowerLawFit {
    pub e: f64,
    pub a: f64,
    pub alpha: f64,
    /// Standard errors (None when there are no residual degrees of freedom).
    pub se_e: Option<f64>,
    pub se_a: Option<f64>,
    pub se_alpha: Option<f64>,
    /// Internal parameters (E, a at C₀, α) and their covariance, for predictions.
    pub c0: f64,
    pub theta: [f64; 3],
    pub cov: Option<[[f64; 3]; 3]>,
    pub n: usize,
    pub rmse: f64,
    /// Range of budgets in the data: predictions outside it are extrapolations.
    pub c_min: f64,
    pub c_max: f64,
}

fn model(theta: &[f64; 3], x: f64) -> f64 {
    theta[0] + theta[1] * x.powf(-theta[2])
}

fn jacobian_row(theta: &[f64; 3], x: f64) -> [f64; 3] {
    let p = x.powf(-theta[2]);
    [1.0, p, -theta[1] * p * x.ln()]
}

fn sse(theta: &[f64; 3], xs: &[f64], ys: &[f64]) -> f64 {
    xs.iter()
        .zip(ys)
        .map(|(x, y)| (y - model(theta, *x)).powi(2))
        .sum()
}

/// Solve the 3×3 system `m · v = b` (Gaussian elimination with partial pivoting).
fn solve3(mut m: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..3 {
            let f = m[row][col] / m[col][col];
            for k in col..3 {
                m[row][k] -= f * m[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut v = [0.0; 3];
    for row in (0..3).rev() {
        let s: f64 = (row + 1..3).map(|k| m[row][k] * v[k]).sum();
        v[row] = (b[row] - s) / m[row][row];
    }
    Some(v)
}

fn normal_matrix(theta: &[f64; 3], xs: &[f64]) -> [[f64; 3]; 3] {
    let mut jtj = [[0.0; 3]; 3];
    for x in xs {
        let j = jacobian_row(theta, *x);
        for r in 0..3 {
            for c in 0..3 {
                jtj[r][c] += j[r] * j[c];
            }
        }
    }
    jtj
}

/// Starting point: E on a grid below the smallest loss, a and α from a log-linear fit of
/// `L − E` at each; the best by squared error. `None` when no grid point gives a line.
fn start(xs: &[f64], losses: &[f64], l_min: f64) -> Option<([f64; 3], f64)> {
    let mut best: Option<([f64; 3], f64)> = None;
    for i in 0..40 {
        let e0 = l_min * (i as f64 / 40.0);
        let pts: Vec<(f64, f64)> = xs
            .iter()
            .zip(losses)
            .filter(|(_, l)| **l > e0)
            .map(|(x, l)| (x.ln(), (l - e0).ln()))
            .collect();
        if pts.len() < 2 {
            continue;
        }
        let m = pts.len() as f64;
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        let sxx: f64 = pts.iter().map(|(x, _)| (x - sx / m).powi(2)).sum();
        if sxx == 0.0 {
            continue;
        }
        let slope = pts
            .iter()
            .map(|(x, y)| (x - sx / m) * (y - sy / m))
            .sum::<f64>()
            / sxx;
        let theta = [e0, (sy / m - slope * sx / m).exp(), -slope];
        let s = sse(&theta, xs, losses);
        if s.is_finite() && best.as_ref().is_none_or(|(_, b)| s < *b) {
            best = Some((theta, s));
        }
    }
    best
}

/// Levenberg–Marquardt from `(theta, cost)`: the fitted parameters and their squared error.
fn levenberg_marquardt(
    (mut theta, mut cost): ([f64; 3], f64),
    xs: &[f64],
    losses: &[f64],
) -> ([f64; 3], f64) {
    let mut lambda = 1e-3;
    for _ in 0..500 {
        let mut jtj = normal_matrix(&theta, xs);
        let mut jtr = [0.0; 3];
        for (x, y) in xs.iter().zip(losses) {
            let j = jacobian_row(&theta, *x);
            let r = y - model(&theta, *x);
            for k in 0..3 {
                jtr[k] += j[k] * r;
            }
        }
        for k in 0..3 {
            jtj[k][k] *= 1.0 + lambda;
        }
        let Some(step) = solve3(jtj, jtr) else { break };
        let trial = [theta[0] + step[0], theta[1] + step[1], theta[2] + step[2]];
        let c = sse(&trial, xs, losses);
        if c.is_finite() && c < cost {
            let done = (cost - c) <= 1e-15 * cost.max(1e-300);
            theta = trial;
            cost = c;
            lambda = (lambda / 3.0).max(1e-12);
            if done {
                break;
            }
        } else {
            lambda *= 4.0;
            if lambda > 1e12 {
                break;
            }
        }
    }
    (theta, cost)
}

/// The parameters' covariance, `s²·(JᵀJ)⁻¹` with `s² = SSE / (n − 3)` (Gauss–Newton); `None`
/// with 3 points (no residual degrees of freedom) or a singular `JᵀJ`.
fn covariance(theta: &[f64; 3], cost: f64, xs: &[f64]) -> Option<[[f64; 3]; 3]> {
    let dof = xs.len() as f64 - 3.0;
    (dof > 0.0)
        .then(|| {
            let jtj = normal_matrix(theta, xs);
            let s2 = cost / dof;
            let cols: Option<Vec<[f64; 3]>> = (0..3)
                .map(|k| {
                    let mut e = [0.0; 3];
                    e[k] = 1.0;
                    solve3(jtj, e)
                })
                .collect();
            cols.map(|c| {
                let mut m = [[0.0; 3]; 3];
                for r in 0..3 {
                    for k in 0..3 {
                        m[r][k] = s2 * c[k][r];
                    }
                }
                m
            })
        })
        .flatten()
}

/// Fit `L = E + A·C^(−α)` to (budget, loss) points. Needs at least 3 points with 2 distinct
/// budgets.
pub fn fit_power_law(budgets: &[f64], losses: &[f64]) -> Option<PowerLawFit> {
    let n = budgets.len();
    if n < 3 || n != losses.len() {
        return None;
    }
    let c0 = (budgets.iter().map(|c| c.ln()).sum::<f64>() / n as f64).exp();
    let xs: Vec<f64> = budgets.iter().map(|c| c / c0).collect();
    let (c_min, c_max) = budgets
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), c| (lo.min(*c), hi.max(*c)));
    if c_max / c_min < 1.0 + 1e-9 {
        return None;
    }
    let l_min = losses.iter().cloned().fold(f64::MAX, f64::min);

    let (theta, cost) = levenberg_marquardt(start(&xs, losses, l_min)?, &xs, losses);
    let cov = covariance(&theta, cost, &xs);
    let a = theta[1] * c0.powf(theta[2]);
    // Delta method for A = a·C₀^α.
    let se_a = cov.map(|m| {
        let g = [0.0, c0.powf(theta[2]), a * c0.ln()];
        let mut v = 0.0;
        for r in 0..3 {
            for k in 0..3 {
                v += g[r] * m[r][k] * g[k];
            }
        }
        v.max(0.0).sqrt()
    });
    Some(PowerLawFit {
        e: theta[0],
        a,
        alpha: theta[2],
        se_e: cov.map(|m| m[0][0].max(0.0).sqrt()),
        se_a,
        se_alpha: cov.map(|m| m[2][2].max(0.0).sqrt()),
        c0,
        theta,
        cov,
        n,
        rmse: (cost / n as f64).sqrt(),
        c_min,
        c_max,
    })
}

impl PowerLawFit {
    pub fn predict(&self, c: f64) -> f64 {
        model(&self.theta, c / self.c0)
    }

    /// The budget at which the curve reaches `loss` (None if `loss` ≤ E: never).
    pub fn budget_for(&self, loss: f64) -> Option<f64> {
        budget_for(&self.theta, self.c0, loss)
    }

    /// Parameter draws from the fit's approximate normal distribution (for intervals).
    pub fn draws(&self, count: usize, seed: u64) -> Vec<[f64; 3]> {
        let Some(cov) = self.cov else { return vec![] };
        let Some(l) = cholesky(cov) else {
            return vec![];
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..count)
            .map(|_| {
                let z = [
                    std_normal(&mut rng),
                    std_normal(&mut rng),
                    std_normal(&mut rng),
                ];
                let mut t = self.theta;
                for r in 0..3 {
                    for k in 0..=r {
                        t[r] += l[r][k] * z[k];
                    }
                }
                t
            })
            .collect()
    }
}

pub fn budget_for(theta: &[f64; 3], c0: f64, loss: f64) -> Option<f64> {
    let (e, a, alpha) = (theta[0], theta[1], theta[2]);
    if loss <= e || a <= 0.0 || alpha <= 0.0 {
        return None;
    }
    Some(c0 * ((loss - e) / a).powf(-1.0 / alpha))
}

pub fn predict(theta: &[f64; 3], c0: f64, c: f64) -> f64 {
    model(theta, c / c0)
}

fn cholesky(m: [[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let mut l = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = m[i][i] - s;
                if d <= 0.0 {
                    return None;
                }
                l[i][j] = d.sqrt();
            } else {
                l[i][j] = (m[i][j] - s) / l[j][j];
            }
        }
    }
    Some(l)
}

fn std_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller.
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// How many times more compute arm B (dense) needs to reach arm A's (MoE) fitted loss at
/// budget `c`, with a 95% interval from parameter draws of both fits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ComputeMultiplier {
    pub budget: f64,
    pub target_loss: f64,
    /// None when B's curve never reaches the target (target ≤ E_B).
    pub multiplier: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// The budget B would need lies outside B's data: the number is an extrapolation.
    pub extrapolated: bool,
    /// Share of draws where B never reaches the target.
    pub unreachable_share: f64,
}

pub fn compute_multiplier(a: &PowerLawFit, b: &PowerLawFit, budget: f64) -> ComputeMultiplier {
    let target = a.predict(budget);
    let needed = b.budget_for(target);
    let multiplier = needed.map(|c| c / budget);
    let extrapolated = needed.is_none_or(|c| c < b.c_min * 0.999 || c > b.c_max * 1.001);
    let (da, db) = (a.draws(2000, 1), b.draws(2000, 2));
    let mut ratios = Vec::new();
    let mut unreachable = 0usize;
    for (ta, tb) in da.iter().zip(&db) {
        let t = predict(ta, a.c0, budget);
        match budget_for(tb, b.c0, t) {
            Some(c) => ratios.push(c / budget),
            None => unreachable += 1,
        }
    }
    ratios.sort_by(|x, y| x.total_cmp(y));
    let q = |p: f64| {
        ratios
            .get(((ratios.len() as f64 - 1.0) * p).round() as usize)
            .copied()
    };
    let draws = da.len().min(db.len());
    ComputeMultiplier {
        budget,
        target_loss: target,
        multiplier,
        ci_low: if ratios.is_empty() { None } else { q(0.025) },
        ci_high: if ratios.is_empty() { None } else { q(0.975) },
        extrapolated,
        unreachable_share: if draws == 0 {
            0.0
        } else {
            unreachable as f64 / draws as f64
        },
    }
}
