//! Small-sample statistics for comparing arms across seeds: mean with a t-based 95% interval,
//! Welch's t-test with Hedges' g, and the paired comparison with its verdict.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean and 95% confidence interval (Student t) of a sample.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MeanCi {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for n = 1.
    pub sd: f64,
    /// Half-width of the 95% interval; infinite for n = 1.
    pub half_width: f64,
}

pub fn mean_ci(xs: &[f64]) -> MeanCi {
    let n = xs.len();
    assert!(n > 0, "mean of an empty sample");
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return MeanCi {
            n,
            mean,
            sd: 0.0,
            half_width: f64::INFINITY,
        };
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let sd = var.sqrt();
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .unwrap()
        .inverse_cdf(0.975);
    MeanCi {
        n,
        mean,
        sd,
        half_width: t * sd / (n as f64).sqrt(),
    }
}

/// Welch's unequal-variance t-test of mean(a) − mean(b).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Welch {
    pub diff: f64,
    /// 95% interval of the difference (Welch–Satterthwaite degrees of freedom).
    pub ci_low: f64,
    pub ci_high: f64,
    pub t: f64,
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Hedges' g: the difference in pooled standard deviations, small-sample corrected.
    pub hedges_g: f64,
}

/// `None` when either sample has fewer than 2 values or both have zero variance.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (ma, mb) = (mean_ci(a), mean_ci(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (ma.sd.powi(2) / na, mb.sd.powi(2) / nb);
    let se = (va + vb).sqrt();
    if se == 0.0 {
        return None;
    }
    let diff = ma.mean - mb.mean;
    let t = diff / se;
    let df = (va + vb).powi(2) / (va.powi(2) / (na - 1.0) + vb.powi(2) / (nb - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).unwrap();
    let p = 2.0 * (1.0 - dist.cdf(t.abs()));
    let q = dist.inverse_cdf(0.975);
    let pooled =
        (((na - 1.0) * ma.sd.powi(2) + (nb - 1.0) * mb.sd.powi(2)) / (na + nb - 2.0)).sqrt();
    let correction = 1.0 - 3.0 / (4.0 * (na + nb) - 9.0);
    let hedges_g = if pooled > 0.0 {
        diff / pooled * correction
    } else {
        0.0
    };
    Some(Welch {
        diff,
        ci_low: diff - q * se,
        ci_high: diff + q * se,
        t,
        df,
        p,
        hedges_g,
    })
}

/// A paired comparison: the mean of per-pair differences (treatment − baseline; a pair is one
/// seed of one size), with groups (sizes) as fixed effects: `d_ij = μ_i + ε_ij`, the effect
/// the pair-weighted mean of the group means `Σ wᵢ d̄ᵢ` (`wᵢ = nᵢ / N`). Each group keeps its
/// own spread: `se² = Σ wᵢ² sᵢ² / nᵢ`, with Welch–Satterthwaite degrees of freedom
/// `se⁴ / Σ (wᵢ² sᵢ² / nᵢ)² / (nᵢ − 1)`, because sizes differ in how much seeds move them (a
/// pooled `s²` with `N − G` degrees of freedom undercovers when one size is much noisier:
/// 90% for a nominal 95% in `tests/it/audit.rs`). Where a group has a single pair its spread
/// is unknown, and the pooled within-group spread `ΣΣ (d_ij − d̄ᵢ)² / (N − G)` stands for all.
/// With one group this is the ordinary paired t-test. The effect is the average over the
/// groups run; it says nothing of sizes outside them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Paired {
    /// Pairs N and groups G.
    pub n: usize,
    pub groups: usize,
    pub mean: f64,
    pub se: f64,
    pub df: f64,
    /// 95% interval of the mean difference.
    pub ci_low: f64,
    pub ci_high: f64,
    pub t: f64,
    /// Two-sided p-value of "no difference".
    pub p: f64,
    /// The equivalence margin m, and the two-one-sided-tests p-value of "|effect| ≥ m"
    /// (< 0.05 exactly when the 90% interval lies inside ±m).
    pub margin: f64,
    pub tost_p: f64,
    /// The smallest effect this design detects with 80% power (two-sided, α = 0.05) at the
    /// observed spread: `(t₀.₉₇₅ + t₀.₈₀) · se`.
    pub min_detectable: f64,
}

/// `None` without a residual degree of freedom (fewer pairs than groups + 1) or with no
/// spread at all.
pub fn paired(groups: &[Vec<f64>], margin: f64) -> Option<Paired> {
    let groups: Vec<&Vec<f64>> = groups.iter().filter(|g| !g.is_empty()).collect();
    let n: usize = groups.iter().map(|g| g.len()).sum();
    let g = groups.len();
    if n <= g {
        return None;
    }
    let mean = groups.iter().flat_map(|g| g.iter()).sum::<f64>() / n as f64;
    let (se, df) = standard_error(&groups, n);
    if se.is_nan() || se <= 0.0 || df.is_nan() {
        return None;
    }
    let dist = StudentsT::new(0.0, 1.0, df).unwrap();
    let q = dist.inverse_cdf(0.975);
    let t = mean / se;
    // TOST: H0 μ ≤ −m rejected when (mean + m)/se is large; H0 μ ≥ m when (mean − m)/se is
    // very negative.
    let p_low = 1.0 - dist.cdf((mean + margin) / se);
    let p_high = dist.cdf((mean - margin) / se);
    Some(Paired {
        n,
        groups: g,
        mean,
        se,
        df,
        ci_low: mean - q * se,
        ci_high: mean + q * se,
        t,
        p: 2.0 * (1.0 - dist.cdf(t.abs())),
        margin,
        tost_p: p_low.max(p_high),
        min_detectable: (q + dist.inverse_cdf(0.80)) * se,
    })
}

/// The standard error of the pair-weighted mean and its degrees of freedom ([`Paired`]).
fn standard_error(groups: &[&Vec<f64>], n: usize) -> (f64, f64) {
    let spread = |g: &[f64]| {
        let m = g.iter().sum::<f64>() / g.len() as f64;
        g.iter().map(|d| (d - m).powi(2)).sum::<f64>()
    };
    if groups.iter().any(|g| g.len() < 2) {
        let df = (n - groups.len()) as f64;
        let ss: f64 = groups.iter().map(|g| spread(g)).sum();
        return ((ss / df / n as f64).sqrt(), df);
    }
    // Each group's share of the variance of the mean: (nᵢ/N)² · sᵢ²/nᵢ.
    let parts: Vec<(f64, f64)> = groups
        .iter()
        .map(|g| {
            let ni = g.len() as f64;
            let s2 = spread(g) / (ni - 1.0);
            ((ni / n as f64).powi(2) * s2 / ni, ni - 1.0)
        })
        .collect();
    let var: f64 = parts.iter().map(|(v, _)| v).sum();
    let denom: f64 = parts.iter().map(|(v, df)| v * v / df).sum();
    (var.sqrt(), var * var / denom)
}

/// What a paired comparison lets a reader conclude about treatment − baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Significantly below zero (p < 0.05).
    Lower,
    /// Significantly above zero.
    Higher,
    /// Not significant, and inside ±margin by two one-sided tests (p < 0.05).
    Equivalent,
    /// Neither: the design cannot tell (see `min_detectable`).
    Inconclusive,
}

impl Paired {
    /// What a claim reads from the comparison: [`Verdict::Equivalent`] whenever the difference
    /// lies inside the margin (two one-sided tests), significant or not, since a difference
    /// smaller than the margin is one the experiment declared immaterial; else [`Self::verdict`].
    pub fn practical_verdict(&self) -> Verdict {
        if self.tost_p < 0.05 {
            Verdict::Equivalent
        } else {
            self.verdict()
        }
    }

    pub fn verdict(&self) -> Verdict {
        if self.p < 0.05 {
            if self.mean < 0.0 {
                Verdict::Lower
            } else {
                Verdict::Higher
            }
        } else if self.tost_p < 0.05 {
            Verdict::Equivalent
        } else {
            Verdict::Inconclusive
        }
    }
}

/// A least-squares slope of `y` on `x` with its 95% interval (t, n − 2 degrees of freedom): the
/// recipe study's gain per e-fold of parameters, the data-mix study's MoE gap per nat of
/// mixture entropy.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Slope {
    pub n: usize,
    /// The fitted line: y = intercept + slope · x.
    pub intercept: f64,
    pub slope: f64,
    pub se: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p: f64,
    /// The smallest slope this design detects with 80% power.
    pub min_detectable: f64,
}

/// OLS slope of `y` on `x`; `None` with fewer than 3 points, one distinct x, or no spread.
pub fn slope(points: &[(f64, f64)]) -> Option<Slope> {
    let n = points.len();
    if n < 3 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 1e-12 {
        return None;
    }
    let b = sxy / sxx;
    let a = my - b * mx;
    let rss: f64 = points.iter().map(|p| (p.1 - a - b * p.0).powi(2)).sum();
    let df = (n - 2) as f64;
    let se = (rss / df / sxx).sqrt();
    if se.is_nan() || se <= 0.0 {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    let q = t.inverse_cdf(0.975);
    Some(Slope {
        n,
        intercept: a,
        slope: b,
        se,
        ci_low: b - q * se,
        ci_high: b + q * se,
        p: 2.0 * (1.0 - t.cdf((b / se).abs())),
        min_detectable: (q + t.inverse_cdf(0.80)) * se,
    })
}

/// Ranks of `v` from 1, ties given their mean rank.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|a, b| v[*a].total_cmp(&v[*b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        for k in i..=j {
            out[order[k]] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation of `x` and `y` (Pearson's on their ranks); `None` under 2
/// points or without spread.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    let (rx, ry) = (ranks(x), ranks(y));
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    (rx.len() >= 2 && vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

/// The 95% interval of a Spearman correlation `rho` over `n` points: Fisher's z with the
/// standard error √(1.06 / (n − 3)) (Fieller, Hartley and Pearson 1957); `None` under 4 points.
pub fn spearman_interval(rho: f64, n: usize) -> Option<(f64, f64)> {
    if n < 4 {
        return None;
    }
    let z = rho.clamp(-0.999999, 0.999999).atanh();
    let half = 1.959964 * (1.06 / (n - 3) as f64).sqrt();
    Some(((z - half).tanh(), (z + half).tanh()))
}
