//! The optimum of an arm's trusted law, and its interval: the mixtures resampled with
//! replacement, and each chosen mixture's seeds within it, the law refitted and minimised
//! again; the 2.5% and 97.5% quantiles of each domain's weight over the draws.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::arm::{ArmMix, Optimum, Trusted, fit_components, fit_target_linear, target_law};
use super::points::{MixPoint, rows};
use super::simplex::minimize;
use crate::run::Manifest;

/// Bootstrap draws behind the optimum's intervals.
pub const DRAWS: usize = 200;

/// The trusted law's minimum over the floored simplex with its intervals; `None` when no law is
/// trusted, or too few draws fit.
pub fn optimum(mix: &ArmMix, manifest: &Manifest, floor: f64) -> Option<Optimum> {
    let trusted = mix.trusted?;
    let k = manifest.domains.len();
    let predict = |r: &[f64]| mix.predict(r).unwrap_or(f64::INFINITY);
    let (weights, predicted) = minimize(predict, k, floor);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let draws: Vec<Vec<f64>> = (0..DRAWS)
        .filter_map(|_| draw(&mix.points, trusted, k, floor, &mut rng))
        .collect();
    if draws.len() < DRAWS / 2 {
        return None;
    }
    let intervals = (0..k)
        .map(|j| quantiles(draws.iter().map(|d| d[j]).collect()))
        .collect();
    let base = mix.points.iter().find(|p| p.name == "base");
    Some(Optimum {
        weights,
        intervals,
        predicted,
        at_base: base.map(|p| predict(&p.weights)),
        at_uniform: predict(&vec![1.0 / k as f64; k]),
    })
}

/// One bootstrap draw's optimum (`None` where the law does not fit the resample).
fn draw(
    points: &[MixPoint],
    trusted: Trusted,
    k: usize,
    floor: f64,
    rng: &mut ChaCha8Rng,
) -> Option<Vec<f64>> {
    let resample: Vec<MixPoint> = (0..points.len())
        .map(|_| {
            let p = &points[rng.random_range(0..points.len())];
            let seeds = (0..p.losses.len()).map(|_| rng.random_range(0..p.losses.len()));
            let picks: Vec<usize> = seeds.collect();
            MixPoint {
                losses: picks.iter().map(|s| p.losses[*s]).collect(),
                components: picks.iter().map(|s| p.components[*s].clone()).collect(),
                ..p.clone()
            }
        })
        .collect();
    let rows = rows(&resample);
    let all: Vec<usize> = (0..rows.targets.len()).collect();
    let best = match trusted {
        Trusted::MixingLaw => {
            let laws = fit_components(&rows, &all)?;
            minimize(|x| target_law(&laws, x), k, floor).0
        }
        Trusted::Linear => {
            let law = fit_target_linear(&rows, &all)?;
            minimize(|x| law.at(x), k, floor).0
        }
    };
    Some(best)
}

/// The 2.5% and 97.5% quantiles (nearest rank) of `v`.
fn quantiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    (at(0.025), at(0.975))
}
