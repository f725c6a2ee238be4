//! The compute scaling law `L(C) = E + A·C^(−α)`, fitted per arm by nonlinear least squares
//! (Levenberg–Marquardt, started from a grid over E with log-linear fits for A and α), with
//! standard errors from the Gauss–Newton covariance `s²·(JᵀJ)⁻¹`.
//!
//! The fit is **bounded**: it searches `E = L_min·σ(u)`, `a = eᵘ`, `α = eʷ` over unconstrained
//! (u, v, w), so 0 ≤ E < the smallest observed loss, A > 0 and α > 0 hold by construction (an
//! unbounded fit of a few noisy points happily returns E above the data or α < 0). It needs
//! [`MIN_BUDGETS`] distinct budgets: three parameters from three budgets leave nothing to
//! check the curve's shape against.
//!
//! C is normalised by the geometric mean of the data's budgets (C₀) inside the fit, so the
//! three parameters have comparable scales; `A` is reported in the original units.
//!
//! The compute multiplier's interval is a bootstrap over seeds within sizes ([`ArmRuns`]):
//! each draw resamples every size's seeds with replacement, **the same seeds for both arms**
//! (a seed's runs of the two arms share data order and initial weights, so they are one
//! draw), and refits both arms. A draw whose baseline never reaches the target counts as +∞
//! in the quantiles (evidence of a large multiplier); a draw whose fit fails is no evidence
//! either way: it is left out of the quantiles and its share reported ([`Draw`]).

// 3×3 linear algebra by index reads like the math it implements.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;

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

/// Distinct budgets a fit needs.
pub const MIN_BUDGETS: usize = crate::limits::FIT_BUDGETS;

/// `L(x) = E + a·x^(−α)` at natural parameters `theta = [E, a, α]`.
fn model(theta: &[f64; 3], x: f64) -> f64 {
    theta[0] + theta[1] * x.powf(-theta[2])
}

fn sigmoid(u: f64) -> f64 {
    1.0 / (1.0 + (-u).exp())
}

/// Natural parameters `[E, a, α]` of the unconstrained `phi = [u, v, w]` under the bound
/// `l_min` on E.
fn natural(phi: &[f64; 3], l_min: f64) -> [f64; 3] {
    [l_min * sigmoid(phi[0]), phi[1].exp(), phi[2].exp()]
}

/// d(natural)/d(phi), diagonal.
fn natural_jacobian(phi: &[f64; 3], l_min: f64) -> [f64; 3] {
    let s = sigmoid(phi[0]);
    [l_min * s * (1.0 - s), phi[1].exp(), phi[2].exp()]
}

/// The model's gradient in natural parameters at `x`.
pub(crate) fn jacobian_row(theta: &[f64; 3], x: f64) -> [f64; 3] {
    let p = x.powf(-theta[2]);
    [1.0, p, -theta[1] * p * x.ln()]
}

/// The model's gradient in `phi` at `x` (chain rule through [`natural`]).
fn jacobian_row_phi(phi: &[f64; 3], l_min: f64, x: f64) -> [f64; 3] {
    let (j, d) = (
        jacobian_row(&natural(phi, l_min), x),
        natural_jacobian(phi, l_min),
    );
    [j[0] * d[0], j[1] * d[1], j[2] * d[2]]
}

fn sse(theta: &[f64; 3], xs: &[f64], ys: &[f64]) -> f64 {
    xs.iter()
        .zip(ys)
        .map(|(x, y)| (y - model(theta, *x)).powi(2))
        .sum()
}

/// Solve the 3×3 system `m · v = b` (Gaussian elimination with partial pivoting).
pub(crate) fn solve3(mut m: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
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

/// `JᵀJ` of the rows `row(x)` over `xs`.
fn normal_matrix(xs: &[f64], row: impl Fn(f64) -> [f64; 3]) -> [[f64; 3]; 3] {
    let mut jtj = [[0.0; 3]; 3];
    for x in xs {
        let j = row(*x);
        for r in 0..3 {
            for c in 0..3 {
                jtj[r][c] += j[r] * j[c];
            }
        }
    }
    jtj
}

/// Starting point: E on a grid strictly inside (0, L_min), a and α from a log-linear fit of
/// `L − E` at each (α > 0 only: losses must fall with compute); the best by squared error, as
/// `(phi, cost)`. `None` when no grid point gives a falling line.
fn start(xs: &[f64], losses: &[f64], l_min: f64) -> Option<([f64; 3], f64)> {
    let mut best: Option<([f64; 3], f64)> = None;
    for i in 0..40 {
        let share = (i as f64 + 0.5) / 40.0;
        let e0 = l_min * share;
        let pts: Vec<(f64, f64)> = xs
            .iter()
            .zip(losses)
            .map(|(x, l)| (x.ln(), (l - e0).ln()))
            .collect();
        let m = pts.len() as f64;
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        let sxx: f64 = pts.iter().map(|(x, _)| (x - sx / m).powi(2)).sum();
        let slope = pts
            .iter()
            .map(|(x, y)| (x - sx / m) * (y - sy / m))
            .sum::<f64>()
            / sxx;
        if slope.is_nan() || slope >= 0.0 {
            continue;
        }
        let intercept = sy / m - slope * sx / m;
        let phi = [(share / (1.0 - share)).ln(), intercept, (-slope).ln()];
        let s = sse(&natural(&phi, l_min), xs, losses);
        if s.is_finite() && best.as_ref().is_none_or(|(_, b)| s < *b) {
            best = Some((phi, s));
        }
    }
    best
}

/// Levenberg–Marquardt over `phi` from `(phi, cost)`: the fitted `phi` and its squared error.
fn levenberg_marquardt(
    (mut theta, mut cost): ([f64; 3], f64),
    xs: &[f64],
    losses: &[f64],
    l_min: f64,
) -> ([f64; 3], f64) {
    let mut lambda = 1e-3;
    for _ in 0..500 {
        let mut jtj = normal_matrix(xs, |x| jacobian_row_phi(&theta, l_min, x));
        let mut jtr = [0.0; 3];
        for (x, y) in xs.iter().zip(losses) {
            let j = jacobian_row_phi(&theta, l_min, *x);
            let r = y - model(&natural(&theta, l_min), *x);
            for k in 0..3 {
                jtr[k] += j[k] * r;
            }
        }
        for k in 0..3 {
            jtj[k][k] *= 1.0 + lambda;
        }
        let Some(step) = solve3(jtj, jtr) else { break };
        let trial = [theta[0] + step[0], theta[1] + step[1], theta[2] + step[2]];
        let c = sse(&natural(&trial, l_min), xs, losses);
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

/// The natural parameters' covariance, `s²·(JᵀJ)⁻¹` with `s² = SSE / (n − 3)` (Gauss–Newton,
/// at the fitted natural parameters); `None` with 3 points (no residual degrees of freedom) or
/// a singular `JᵀJ` (e.g. E pressed against a bound).
fn covariance(theta: &[f64; 3], cost: f64, xs: &[f64]) -> Option<[[f64; 3]; 3]> {
    let dof = xs.len() as f64 - 3.0;
    (dof > 0.0)
        .then(|| {
            let jtj = normal_matrix(xs, |x| jacobian_row(theta, x));
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

/// Fit `L = E + A·C^(−α)` to (budget, loss) points, bounded as the module says. Err: why
/// there is no fit (too few distinct budgets, losses that do not fall with compute).
pub fn fit_power_law(budgets: &[f64], losses: &[f64]) -> Result<PowerLawFit, String> {
    let n = budgets.len();
    assert_eq!(n, losses.len(), "one loss per budget");
    let mut distinct: Vec<f64> = budgets.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup_by(|a, b| (*a / *b - 1.0).abs() < 1e-9);
    if distinct.len() < MIN_BUDGETS {
        return Err(format!(
            "{} distinct budget{}; a fit of E, A and α needs at least {MIN_BUDGETS}",
            distinct.len(),
            if distinct.len() == 1 { "" } else { "s" }
        ));
    }
    let c0 = (budgets.iter().map(|c| c.ln()).sum::<f64>() / n as f64).exp();
    let xs: Vec<f64> = budgets.iter().map(|c| c / c0).collect();
    let (c_min, c_max) = (distinct[0], distinct[distinct.len() - 1]);
    let l_min = losses.iter().cloned().fold(f64::MAX, f64::min);
    let start = start(&xs, losses, l_min)
        .ok_or("the losses do not fall with compute (no power law with α > 0 fits)")?;
    let (phi, cost) = levenberg_marquardt(start, &xs, losses, l_min);
    let theta = natural(&phi, l_min);
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
    Ok(PowerLawFit {
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

/// One arm's finished runs, grouped by size name: `(seed, budget, final loss)`.
#[derive(Debug, Clone, Default)]
pub struct ArmRuns {
    pub by_size: BTreeMap<String, Vec<(u64, f64, f64)>>,
}

impl ArmRuns {
    /// The fit to every run.
    pub fn fit(&self) -> Result<PowerLawFit, String> {
        let (budgets, losses): (Vec<f64>, Vec<f64>) =
            self.by_size.values().flatten().map(|r| (r.1, r.2)).unzip();
        fit_power_law(&budgets, &losses)
    }

    /// This arm's runs at the drawn seeds of each size (a seed drawn twice counts twice).
    fn at_seeds(&self, draws: &BTreeMap<String, Vec<u64>>) -> ArmRuns {
        let by_size = self
            .by_size
            .iter()
            .map(|(size, runs)| {
                let seeds = draws.get(size).map_or(&[][..], |s| &s[..]);
                let picked = seeds
                    .iter()
                    .flat_map(|seed| runs.iter().filter(move |r| r.0 == *seed))
                    .copied()
                    .collect::<Vec<_>>();
                (size.clone(), picked)
            })
            .filter(|(_, runs)| !runs.is_empty())
            .collect();
        ArmRuns { by_size }
    }
}

/// A joint bootstrap draw of two arms: per size, its seeds (of either arm) drawn with
/// replacement, as many as it has, and each arm's runs at those seeds.
fn resample_jointly(a: &ArmRuns, b: &ArmRuns, rng: &mut ChaCha8Rng) -> (ArmRuns, ArmRuns) {
    let mut seeds: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (size, runs) in a.by_size.iter().chain(&b.by_size) {
        let list = seeds.entry(size.clone()).or_default();
        list.extend(
            runs.iter()
                .map(|r| r.0)
                .filter(|s| !list.contains(s))
                .collect::<Vec<_>>(),
        );
    }
    let draws = seeds
        .into_iter()
        .map(|(size, s)| {
            let drawn = (0..s.len()).map(|_| s[rng.random_range(0..s.len())]);
            (size, drawn.collect())
        })
        .collect();
    (a.at_seeds(&draws), b.at_seeds(&draws))
}

/// One bootstrap draw of the multiplier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Draw {
    Ratio(f64),
    /// Both fits succeeded and the baseline's curve never reaches the target: +∞.
    Unreachable,
    /// A fit failed on the resampled runs: no evidence about the multiplier.
    FitFailed,
}

/// The 95% interval of bootstrap draws ([`multiplier_interval`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawInterval {
    /// `None` is +∞ (unbounded).
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Share of the draws with fits that never reach the target.
    pub unreachable_share: f64,
    /// Share of all draws whose fit failed (left out of the quantiles).
    pub failed_share: f64,
}

/// 2.5% and 97.5% quantiles of the draws whose fits succeeded, unreachable draws as +∞.
pub fn multiplier_interval(draws: &[Draw]) -> DrawInterval {
    let mut ratios: Vec<f64> = draws
        .iter()
        .filter_map(|d| match d {
            Draw::Ratio(r) => Some(*r),
            Draw::Unreachable => Some(f64::INFINITY),
            Draw::FitFailed => None,
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let v = *ratios.get(((ratios.len() as f64 - 1.0) * p).round() as usize)?;
        v.is_finite().then_some(v)
    };
    let unreachable = ratios.iter().filter(|r| r.is_infinite()).count();
    DrawInterval {
        ci_low: q(0.025),
        ci_high: q(0.975),
        unreachable_share: unreachable as f64 / ratios.len().max(1) as f64,
        failed_share: (draws.len() - ratios.len()) as f64 / draws.len().max(1) as f64,
    }
}

/// How many times more compute arm B (dense) needs to reach arm A's (MoE) fitted loss at
/// `budget`, with a 95% bootstrap interval over runs within sizes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ComputeMultiplier {
    /// A's budget it is evaluated at: the largest of A's budgets at which B's needed budget
    /// lies inside B's data, else (extrapolated) the largest budget both ran.
    pub budget: f64,
    pub target_loss: f64,
    /// None when B's curve never reaches the target (target ≤ E_B).
    pub multiplier: Option<f64>,
    /// 2.5% and 97.5% quantiles of the bootstrap draws whose fits succeeded, counting those
    /// that never reach the target as +∞; `None` is +∞ (unbounded).
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// No budget of A has B's needed budget inside B's data: the number is an extrapolation.
    pub extrapolated: bool,
    /// Share of the draws with fits counted as +∞.
    pub unreachable_share: f64,
    /// Share of the draws whose fit failed, left out of the interval.
    #[serde(default)]
    pub failed_share: f64,
    #[serde(default)]
    pub draws: usize,
}

/// Bootstrap replicates of the multiplier's interval.
pub const BOOTSTRAP_DRAWS: usize = 1000;

/// The multiplier of B against A (fits of both from their runs). Err: why a fit failed.
pub fn compute_multiplier(a: &ArmRuns, b: &ArmRuns) -> Result<ComputeMultiplier, String> {
    let (fa, fb) = (a.fit()?, b.fit()?);
    let inside = |c: f64| c >= fb.c_min * 0.999 && c <= fb.c_max * 1.001;
    let mut budgets: Vec<f64> = a.by_size.values().flatten().map(|r| r.1).collect();
    budgets.sort_by(|x, y| y.total_cmp(x));
    budgets.dedup();
    let within = budgets
        .iter()
        .copied()
        .find(|c| fb.budget_for(fa.predict(*c)).is_some_and(inside));
    let (budget, extrapolated) = match within {
        Some(c) => (c, false),
        None => (fa.c_max.min(fb.c_max), true),
    };
    let target = fa.predict(budget);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let draws: Vec<Draw> = (0..BOOTSTRAP_DRAWS)
        .map(|_| {
            let (ra, rb) = resample_jointly(a, b, &mut rng);
            match (ra.fit(), rb.fit()) {
                (Ok(fa), Ok(fb)) => match fb.budget_for(fa.predict(budget)) {
                    Some(c) => Draw::Ratio(c / budget),
                    None => Draw::Unreachable,
                },
                _ => Draw::FitFailed,
            }
        })
        .collect();
    let interval = multiplier_interval(&draws);
    Ok(ComputeMultiplier {
        budget,
        target_loss: target,
        multiplier: fb.budget_for(target).map(|c| c / budget),
        ci_low: interval.ci_low,
        ci_high: interval.ci_high,
        extrapolated,
        unreachable_share: interval.unreachable_share,
        failed_share: interval.failed_share,
        draws: draws.len(),
    })
}
