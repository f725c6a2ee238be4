//! The second step of a downstream forecast (LLaMA-3's): exact match as a sigmoid of the
//! answers' negative log-likelihood, `p(ℓ) = 1 / (1 + exp(−(a + b·ℓ)))`, fitted by binomial
//! maximum likelihood on each run's counts (answers reproduced exactly out of answers judged):
//! Newton's method on the log-likelihood, which is concave, so its maximum is the only one.

use serde::{Deserialize, Serialize};

/// A fitted sigmoid and the covariance of (a, b) (the inverse Fisher information).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sigmoid {
    pub a: f64,
    pub b: f64,
    pub cov: [[f64; 2]; 2],
}

/// One run: its answers' mean negative log-likelihood, and `exact` of `answers` reproduced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answered {
    pub nll: f64,
    pub exact: usize,
    pub answers: usize,
}

pub fn logistic(u: f64) -> f64 {
    1.0 / (1.0 + (-u).exp())
}

impl Sigmoid {
    pub fn at(&self, nll: f64) -> f64 {
        logistic(self.a + self.b * nll)
    }
}

/// The maximum-likelihood sigmoid; `None` when the data do not pin it (fewer than 2 distinct
/// losses, no answers, or every answer right or every one wrong: the maximum is at infinity).
pub fn fit_sigmoid(data: &[Answered]) -> Option<Sigmoid> {
    let exact: usize = data.iter().map(|d| d.exact).sum();
    let total: usize = data.iter().map(|d| d.answers).sum();
    let distinct = data.iter().any(|d| (d.nll - data[0].nll).abs() > 1e-12);
    if total == 0 || exact == 0 || exact == total || !distinct {
        return None;
    }
    let mut theta = [(exact as f64 / (total - exact) as f64).ln(), 0.0];
    for _ in 0..100 {
        let (grad, info) = score_and_information(data, theta);
        let step = solve2(info, grad)?;
        theta = [theta[0] + step[0], theta[1] + step[1]];
        if step[0].abs() + step[1].abs() < 1e-12 {
            break;
        }
    }
    let (_, info) = score_and_information(data, theta);
    let cov = invert2(info)?;
    theta.iter().all(|t| t.is_finite()).then_some(Sigmoid {
        a: theta[0],
        b: theta[1],
        cov,
    })
}

/// The log-likelihood's gradient and the Fisher information at `theta`.
fn score_and_information(data: &[Answered], theta: [f64; 2]) -> ([f64; 2], [[f64; 2]; 2]) {
    let (mut g, mut h) = ([0.0; 2], [[0.0; 2]; 2]);
    for d in data {
        let p = logistic(theta[0] + theta[1] * d.nll);
        let n = d.answers as f64;
        let r = d.exact as f64 - n * p;
        let w = n * p * (1.0 - p);
        let x = [1.0, d.nll];
        for i in 0..2 {
            g[i] += r * x[i];
            for j in 0..2 {
                h[i][j] += w * x[i] * x[j];
            }
        }
    }
    (g, h)
}

fn invert2(m: [[f64; 2]; 2]) -> Option<[[f64; 2]; 2]> {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    (det.abs() > 1e-300 && det.is_finite()).then(|| {
        [
            [m[1][1] / det, -m[0][1] / det],
            [-m[1][0] / det, m[0][0] / det],
        ]
    })
}

fn solve2(m: [[f64; 2]; 2], b: [f64; 2]) -> Option<[f64; 2]> {
    let inv = invert2(m)?;
    Some([
        inv[0][0] * b[0] + inv[0][1] * b[1],
        inv[1][0] * b[0] + inv[1][1] * b[1],
    ])
}
