//! The seed-to-seed noise of final losses, which the IsoFLOP intervals resample.
//!
//! Why not resample seeds: an IsoFLOP sweep runs few seeds (2 in the small preset), and a
//! bootstrap over 2 seeds has 3 distinct draws, so its 95% interval is about the span of the
//! two single-seed estimates, and with no true difference both fall on the same side of 1
//! half the time. The spread of the seeds around their cell's mean, pooled over every
//! (budget, size) cell of an arm, has many more degrees of freedom (15 with 3 budgets × 5
//! sizes × 2 seeds). A draw perturbs every run's loss by that spread (a parametric bootstrap),
//! its σ itself drawn from its scaled χ² so that its uncertainty widens the interval as a
//! Student t would. The null simulation in `tests/it/isoflop.rs` checks the error rate.

use std::collections::BTreeMap;

use rand::Rng;

use super::profile::SizePoint;

/// Per arm: the pooled variance of a run's final loss around its cell's mean, and its degrees
/// of freedom (runs less cells, over cells with 2 or more seeds).
#[derive(Debug, Clone, Default)]
pub struct SeedNoise {
    by_arm: BTreeMap<String, (f64, usize)>,
}

impl SeedNoise {
    /// Pooled over the cells `(arm, budget, sizes)`.
    pub fn pooled(cells: &[(String, f64, Vec<SizePoint>)]) -> SeedNoise {
        let mut by_arm: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for (arm, _, points) in cells {
            let sums = by_arm.entry(arm.clone()).or_default();
            for p in points.iter().filter(|p| p.losses.len() >= 2) {
                let mean = p.mean_loss();
                sums.0 += p.losses.iter().map(|l| (l.1 - mean).powi(2)).sum::<f64>();
                sums.1 += p.losses.len() - 1;
            }
        }
        for (ss, df) in by_arm.values_mut() {
            *ss /= (*df).max(1) as f64;
        }
        SeedNoise { by_arm }
    }

    /// Whether every arm's spread is estimated (2 or more seeds in some cell).
    pub fn known(&self) -> bool {
        !self.by_arm.is_empty() && self.by_arm.values().all(|(_, df)| *df > 0)
    }

    /// The estimated standard deviation per arm.
    pub fn sigmas(&self) -> BTreeMap<String, f64> {
        (self.by_arm.iter())
            .map(|(arm, (var, _))| (arm.clone(), var.sqrt()))
            .collect()
    }

    /// One draw of each arm's σ: `σ̂² · df / χ²(df)`.
    pub fn draw_sigmas(&self, rng: &mut impl Rng) -> BTreeMap<String, f64> {
        (self.by_arm.iter())
            .map(|(arm, &(var, df))| {
                let chi2: f64 = (0..df).map(|_| standard_normal(rng).powi(2)).sum();
                (arm.clone(), (var * df as f64 / chi2.max(1e-300)).sqrt())
            })
            .collect()
    }
}

/// `points` with every loss moved by an independent N(0, σ²).
pub fn perturbed(points: &[SizePoint], sigma: f64, rng: &mut impl Rng) -> Vec<SizePoint> {
    (points.iter())
        .map(|p| SizePoint {
            losses: (p.losses.iter())
                .map(|&(seed, l)| (seed, l + sigma * standard_normal(rng)))
                .collect(),
            ..p.clone()
        })
        .collect()
}

/// Box–Muller: one N(0, 1) from two uniforms.
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}
