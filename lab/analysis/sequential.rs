//! Group-sequential tests: paired seeds added in groups and the test looked at after each
//! group, with the two-sided type-I error α spent across the looks (Lan & DeMets 1983), so that
//! stopping at the first decisive look keeps the false-call rate at α. Looking after every
//! group with a fixed-sample test at α would not: with 5 looks that rate is about 14%.
//!
//! Under the null, the z-statistic at information fraction t is W(t)/√t for a Brownian motion
//! W. The boundary c_k of look k is the value for which the chance of first crossing at look k
//! (|Z_j| < c_j before, |Z_k| ≥ c_k) equals the α spent between looks k − 1 and k; it is found
//! by integrating W's density over the region not yet stopped, look by look (Armitage,
//! McPherson & Rowe 1969), on a grid.
//!
//! Paired seed differences have an unknown variance: each look's z boundary becomes a Student-t
//! boundary with the same one-sided tail at that look's degrees of freedom (the usual
//! approximation; its error rate is checked by simulation in `tests/it/sequential.rs`).

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// How α is spent over the information fraction t ∈ (0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Spending {
    /// Each side spends α/2 as 2 − 2Φ(z_{1−α/4} / √t) (Lan & DeMets' one-sided form at
    /// level α/2, as gsDesign's `sfLDOF` and published tables): almost nothing early, nearly all
    /// of α at the last look.
    OBrienFleming,
    /// α(t) = α · ln(1 + (e − 1) t): about even across looks.
    Pocock,
}

fn normal() -> Normal {
    Normal::new(0.0, 1.0).expect("the standard normal")
}

impl Spending {
    /// The two-sided α spent by information fraction `t`.
    pub fn spent(self, alpha: f64, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        if t == 0.0 {
            return 0.0;
        }
        match self {
            Spending::OBrienFleming => {
                // Upper tails as survival functions: `1 − cdf` rounds to 0 far out.
                let z = -normal().inverse_cdf(alpha / 4.0);
                4.0 * normal().sf(z / t.sqrt())
            }
            Spending::Pocock => alpha * (1.0 + (std::f64::consts::E - 1.0) * t).ln(),
        }
    }
}

/// The smallest upper tail a boundary is read at, and the largest boundary: beyond them a
/// look's interval is wider than any effect, and a record stays finite JSON.
pub const MIN_TAIL: f64 = 1e-300;
pub const MAX_BOUND: f64 = 1e12;

/// Grid points per unit of W's scale: the boundaries agree with published tables to about
/// 1e-3 (tests/it/sequential.rs).
const POINTS_PER_SD: f64 = 60.0;

/// Two-sided z boundaries at increasing information fractions `fractions` (the last 1).
pub fn boundaries(spending: Spending, alpha: f64, fractions: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(fractions.len());
    // W's density on the region not yet stopped, as (grid of w, density).
    let mut alive: Option<(Vec<f64>, Vec<f64>)> = None;
    let (mut t_prev, mut spent_prev) = (0.0, 0.0);
    for &t in fractions {
        let target = spending.spent(alpha, t) - spent_prev;
        let dt = t - t_prev;
        let cross = |c: f64| crossing(alive.as_ref(), dt, c * t.sqrt());
        let c = solve_decreasing(cross, target);
        out.push(c);
        alive = Some(advance(alive.as_ref(), dt, c * t.sqrt()));
        (t_prev, spent_prev) = (t, spending.spent(alpha, t));
    }
    out
}

/// P(|W(t)| ≥ b, not stopped before), W(t) = W(t − dt) + N(0, dt).
fn crossing(alive: Option<&(Vec<f64>, Vec<f64>)>, dt: f64, b: f64) -> f64 {
    let n = normal();
    let sd = dt.sqrt();
    let outside = |u: f64| n.sf((b - u) / sd) + n.cdf((-b - u) / sd);
    match alive {
        None => outside(0.0),
        Some((w, f)) => integrate(w, f, outside),
    }
}

/// W's density at the next look on |w| < b, from the current one (or from W(0) = 0).
fn advance(alive: Option<&(Vec<f64>, Vec<f64>)>, dt: f64, b: f64) -> (Vec<f64>, Vec<f64>) {
    let sd = dt.sqrt();
    let points = ((2.0 * b * POINTS_PER_SD).ceil() as usize).max(50) | 1;
    let grid: Vec<f64> = (0..points)
        .map(|i| -b + 2.0 * b * i as f64 / (points - 1) as f64)
        .collect();
    let kernel = |x: f64| (-0.5 * x * x).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt());
    let density = grid
        .iter()
        .map(|&s| match alive {
            None => kernel(s / sd),
            Some((w, f)) => integrate(w, f, |u| kernel((s - u) / sd)),
        })
        .collect();
    (grid, density)
}

/// ∫ f(w) g(w) dw on an even grid (Simpson's rule; the grids have an odd number of points).
fn integrate(w: &[f64], f: &[f64], g: impl Fn(f64) -> f64) -> f64 {
    let h = (w[w.len() - 1] - w[0]) / (w.len() - 1) as f64;
    let weight = |i: usize| match i {
        0 => 1.0,
        i if i == w.len() - 1 => 1.0,
        i if i % 2 == 1 => 4.0,
        _ => 2.0,
    };
    (0..w.len())
        .map(|i| weight(i) * f[i] * g(w[i]))
        .sum::<f64>()
        * h
        / 3.0
}

/// The c at which a decreasing `g` equals `target` (bisection on [0, 40]).
fn solve_decreasing(g: impl Fn(f64) -> f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 40.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if g(mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// What one look at the paired differences says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// The mean difference is below zero beyond this look's boundary.
    Lower,
    Higher,
    /// Not decisive at this look.
    Continue,
}

/// A group-sequential paired t-test planned for at most `max_n` pairs, looked at after each
/// of the pair counts `looks` (increasing, the last `max_n`).
#[derive(Debug, Clone)]
pub struct Plan {
    pub looks: Vec<usize>,
    pub z_bounds: Vec<f64>,
}

impl Plan {
    pub fn new(spending: Spending, alpha: f64, looks: &[usize]) -> Plan {
        let max = *looks.last().expect("at least one look") as f64;
        let fractions: Vec<f64> = looks.iter().map(|&n| n as f64 / max).collect();
        Plan {
            looks: looks.to_vec(),
            z_bounds: boundaries(spending, alpha, &fractions),
        }
    }

    /// The t boundary of look `k` (its z boundary's one-sided tail at n − 1 degrees of freedom).
    pub fn t_bound(&self, k: usize) -> f64 {
        self.t_bound_at(k, (self.looks[k] - 1) as f64)
    }

    /// The t boundary of look `k` at `df` degrees of freedom (a pooled comparison's own):
    /// the t quantile with the z boundary's upper tail, always finite. The tail is a survival
    /// function and the quantile is read on the lower side (t is symmetric), since `1 − cdf`
    /// and `inverse_cdf(1 − tail)` round to 0 and +∞ for the large boundaries of early looks;
    /// a tail below [`MIN_TAIL`] is read at it (a boundary no data can cross either way).
    pub fn t_bound_at(&self, k: usize, df: f64) -> f64 {
        let tail = normal().sf(self.z_bounds[k]).max(MIN_TAIL);
        let t = StudentsT::new(0.0, 1.0, df.max(1e-3)).expect("df > 0");
        let bound = -t.inverse_cdf(tail);
        match bound.is_nan() {
            true => MAX_BOUND,
            false => bound.min(MAX_BOUND),
        }
    }

    /// Look `k` at `diffs` (the first `looks[k]` paired differences).
    pub fn look(&self, k: usize, diffs: &[f64]) -> Call {
        let t = t_statistic(&diffs[..self.looks[k]]);
        let bound = self.t_bound(k);
        if t <= -bound {
            Call::Lower
        } else if t >= bound {
            Call::Higher
        } else {
            Call::Continue
        }
    }

    /// Looks in order until one is decisive: that look's index and call (the last look's
    /// `Continue` means inconclusive at the cap).
    pub fn run(&self, diffs: &[f64]) -> (usize, Call) {
        for k in 0..self.looks.len() {
            let call = self.look(k, diffs);
            if call != Call::Continue {
                return (k, call);
            }
        }
        (self.looks.len() - 1, Call::Continue)
    }
}

/// The one-sample t statistic of `x` (0 when its spread is 0).
pub fn t_statistic(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    if var > 0.0 {
        mean / (var / n).sqrt()
    } else {
        0.0
    }
}
