//! The check at a larger size: each arm's predicted optimum (from the small runs' trusted law)
//! trained beside `base` and `uniform` on the same seeds, and the paired difference of the
//! target, optimum − other, read as better, equivalent or worse within the equivalence margin.

use serde::{Deserialize, Serialize};

use super::arm::ArmMix;
use super::points::MixPoint;
use crate::analysis::stats::{Paired, Verdict, paired};
use crate::sweep::mix_check::OPTIMUM;

/// What an arm's small runs predict is its best mixture, as frozen before the check trains it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmOptimum {
    pub arm: String,
    /// The size the law was fitted at.
    pub size: String,
    /// `None` when no law was trusted (then there is nothing to check).
    pub weights: Option<Vec<f64>>,
    /// The law's prediction of the target there, at the fitted size.
    pub predicted: Option<f64>,
}

/// Each arm's predicted optimum at its main size (the one with the most mixtures).
pub fn optima(arms: &[ArmMix]) -> Vec<ArmOptimum> {
    let mut out: Vec<ArmOptimum> = Vec::new();
    for m in arms {
        let main = (arms.iter().filter(|b| b.arm == m.arm))
            .max_by_key(|b| b.points.len())
            .expect("m itself");
        if main.size != m.size || out.iter().any(|o| o.arm == m.arm) {
            continue;
        }
        out.push(ArmOptimum {
            arm: m.arm.clone(),
            size: m.size.clone(),
            weights: m.optimum.as_ref().map(|o| o.weights.clone()),
            predicted: m.optimum.as_ref().map(|o| o.predicted),
        });
    }
    out
}

/// One arm's optimum against one other mixture at the check size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptimumCheck {
    pub arm: String,
    pub size: String,
    /// `base` or `uniform`.
    pub against: String,
    /// Optimum − other, paired by seed (`None` with fewer than two pairs or no spread).
    pub paired: Option<Paired>,
    /// [`Paired::practical_verdict`]: `lower` means the optimum is better.
    pub verdict: Option<Verdict>,
}

/// The checks of every arm at every size that trained its optimum.
pub fn optimum_checks(arms: &[ArmMix], margin: f64) -> Vec<OptimumCheck> {
    (arms.iter())
        .flat_map(|m| checks_of(&m.arm, &m.size, &m.points, margin))
        .collect()
}

/// One arm's checks at one size, from its points (none without an optimum among them).
pub fn checks_of(arm: &str, size: &str, points: &[MixPoint], margin: f64) -> Vec<OptimumCheck> {
    let Some(opt) = points.iter().find(|p| p.name == OPTIMUM) else {
        return Vec::new();
    };
    let others = ["base", "uniform"].into_iter();
    (others.filter_map(|against| Some((against, points.iter().find(|p| p.name == against)?))))
        .map(|(against, other)| {
            let p = paired(&[differences(opt, other)], margin);
            OptimumCheck {
                arm: arm.into(),
                size: size.into(),
                against: against.into(),
                paired: p,
                verdict: p.map(|p| p.practical_verdict()),
            }
        })
        .collect()
}

/// `a − b` for every seed both trained.
fn differences(a: &MixPoint, b: &MixPoint) -> Vec<f64> {
    (a.losses.iter())
        .filter_map(|(s, l)| Some(l - b.losses.iter().find(|x| x.0 == *s)?.1))
        .collect()
}
