//! The point estimates with their bootstrap intervals, in the analysis' output shapes.

use super::{
    ArmFrontier, Estimate, FrontierMultiplier, Grid, Profile, censored_quantiles, quantiles,
};

impl Grid {
    pub(super) fn profiles(&self, point: &Estimate, draws: &[Estimate]) -> Vec<Profile> {
        (self.cells.iter().enumerate())
            .map(|(i, (arm, budget, points))| {
                let (parabola, optimum) = match &point.optima[i] {
                    Some((p, o)) => (Some(*p), *o),
                    None => (None, None),
                };
                let of = |f: fn(&super::Optimum) -> f64| {
                    let v: Vec<Option<f64>> = (draws.iter())
                        .map(|d| d.optima[i].as_ref().and_then(|o| o.1.as_ref().map(f)))
                        .collect();
                    quantiles(&v)
                };
                Profile {
                    arm: arm.clone(),
                    budget: *budget,
                    points: points.clone(),
                    parabola,
                    optimum,
                    params_ci: of(|o| o.params),
                    loss_ci: of(|o| o.loss),
                    tokens_ci: of(|o| o.tokens),
                }
            })
            .collect()
    }

    pub(super) fn frontiers(&self, point: &Estimate, draws: &[Estimate]) -> Vec<ArmFrontier> {
        (self.arms.iter())
            .map(|arm| {
                let frontier = point.frontiers.get(arm).cloned().flatten();
                let of = |f: fn(&super::Frontier) -> f64| {
                    let v: Vec<Option<f64>> = (draws.iter())
                        .map(|d| d.frontiers.get(arm).and_then(|f| f.as_ref()).map(f))
                        .collect();
                    quantiles(&v)
                };
                let interior = self.interior_budgets(point, arm);
                ArmFrontier {
                    arm: arm.clone(),
                    note: frontier.is_none().then(|| {
                        format!(
                            "a frontier needs optima inside their sizes at 2 or more budgets; \
                             {arm} has {interior} of {}",
                            self.budgets.len()
                        )
                    }),
                    frontier,
                    params_exponent_ci: of(|f| f.params.slope),
                    loss_slope_ci: of(|f| f.loss.slope),
                }
            })
            .collect()
    }

    fn interior_budgets(&self, point: &Estimate, arm: &str) -> usize {
        (self.cells.iter().zip(&point.optima))
            .filter(|((a, ..), o)| {
                a == arm && o.as_ref().and_then(|o| o.1).is_some_and(|o| o.interior)
            })
            .count()
    }

    pub(super) fn multipliers(
        &self,
        point: &Estimate,
        draws: &[Estimate],
    ) -> Vec<FrontierMultiplier> {
        let base = self.baseline.clone().unwrap_or_default();
        let dense = point.frontiers.get(&base).cloned().flatten();
        (point.multipliers.iter())
            .map(|&(budget, target, _)| {
                let inside = dense.as_ref().and_then(|f| f.budget_inside(target));
                let v: Vec<_> = (draws.iter())
                    .map(|d| d.multipliers.iter().find(|m| m.0 == budget)?.2)
                    .collect();
                let note = match (&dense, inside) {
                    (None, _) => Some(format!("{base} has no frontier")),
                    (Some(f), None) => Some(format!(
                        "L* = {target:.4} lies outside {base}'s measured optima ({}): not read",
                        range_of(&f.losses)
                    )),
                    _ => None,
                };
                FrontierMultiplier {
                    budget,
                    target_loss: target,
                    multiplier: inside.map(|c| c / budget),
                    ci: censored_quantiles(&v),
                    note,
                }
            })
            .collect()
    }
}

fn range_of(losses: &[f64]) -> String {
    let lo = losses.iter().copied().fold(f64::MAX, f64::min);
    let hi = losses.iter().copied().fold(f64::MIN, f64::max);
    format!("L* {lo:.4}–{hi:.4}")
}
