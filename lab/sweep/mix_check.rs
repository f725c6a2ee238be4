//! The check of each arm's predicted optimum mixture at the mixture axis' check size: the
//! optimum, `base` (the data's own weights: LLaMA-3's mix for the generated corpus) and
//! `uniform`, each on the same seeds so the comparison pairs them, on the check size's budget.
//! The optimum comes from the small runs' fit, so these cells are planned after those finish.

use std::collections::HashSet;

use super::cells::CellAt;
use super::experiment::{Plan, PlannedCell};
use super::mixtures::base_weights;
use crate::error::SpecError;
use crate::run::Mixture;

/// The name of an arm's predicted optimum on the mixture axis.
pub const OPTIMUM: &str = "optimum";

/// The three mixtures an arm's check trains.
pub fn mixtures(plan: &Plan, optimum: &[f64]) -> [Mixture; 3] {
    let base = base_weights(&plan.experiment.base.data);
    let k = base.len();
    [
        Mixture {
            name: OPTIMUM.into(),
            weights: optimum.to_vec(),
        },
        Mixture {
            name: "base".into(),
            weights: base,
        },
        Mixture {
            name: "uniform".into(),
            weights: vec![1.0 / k as f64; k],
        },
    ]
}

/// The check's cells: for each `(arm, optimum weights)`, the three [`mixtures`] × the check's
/// seeds at the check size. Empty without a check size.
pub fn cells(plan: &Plan, optima: &[(String, Vec<f64>)]) -> Result<Vec<PlannedCell>, SpecError> {
    let Some(check) = &plan.mix_check else {
        return Ok(Vec::new());
    };
    let exp = &plan.experiment;
    let preset = exp.presets.get(&plan.preset).cloned().unwrap_or_default();
    let size = (exp.sizes.iter())
        .find(|s| s.name == check.size)
        .expect("the plan's check size is one of its sizes");
    let mut out = Vec::new();
    for (arm, weights) in optima {
        for mixture in &mixtures(plan, weights) {
            for seed in 0..check.seeds as u64 {
                let at = CellAt {
                    mixture: Some(mixture),
                    ..CellAt::new(size, arm, seed)
                };
                out.push(at.plan(exp, &preset, check.budget, &plan.source)?);
            }
        }
    }
    Ok(out)
}

/// `plan` with the check's cells after its own; a cell it plans already (`base` and `uniform`
/// at the check size, trained for the rank check) is kept once.
pub fn extended(plan: &Plan, optima: &[(String, Vec<f64>)]) -> Result<Plan, SpecError> {
    let mut out = plan.clone();
    let mut seen: HashSet<String> = plan.cells.iter().map(|c| c.name().to_string()).collect();
    for c in cells(plan, optima)? {
        if seen.insert(c.name().to_string()) {
            out.cells.push(c);
        }
    }
    Ok(out)
}
