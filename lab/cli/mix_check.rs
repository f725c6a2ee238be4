//! `lab sweep` on a mixture axis with a check size, second phase: once the small runs have all
//! finished, each arm's predicted optimum is frozen in `mix-optima.json` (before any check cell
//! starts, and never rewritten) and trained at the check size beside `base` and `uniform`, on
//! the same seeds. The report reads the paired verdicts (`analysis::mix::check`).

use std::path::Path;

use anyhow::Result;

use crate::analysis::mix::check::{ArmOptimum, optima};
use crate::analysis::{load, mix};
use crate::sweep::frozen::{Frozen, check_inputs, read_or_make};
use crate::sweep::{self, Plan, SweepOptions, SweepOutcome};

/// The frozen optima, in the results directory.
pub const OPTIMA: &str = "mix-optima.json";

/// Freeze the optima of `plan`'s finished small runs in `results` (or read them back), then
/// run the check's cells; `None` without a check size.
pub(super) fn run(
    plan: &Plan,
    opts: &SweepOptions,
    results: &Path,
) -> Result<Option<SweepOutcome>> {
    let Some(check) = &plan.mix_check else {
        return Ok(None);
    };
    let frozen = freeze(plan, results)?;
    let mut chosen = Vec::new();
    for o in &frozen.body {
        match &o.weights {
            Some(w) => chosen.push((o.arm.clone(), w.clone())),
            None => crate::say!(
                "{}: no law predicts held-out mixtures better than their mean at {}; its optimum \
                 is not checked",
                o.arm,
                o.size
            ),
        }
    }
    crate::say!(
        "each arm's predicted optimum ({}, {}) trains at {} on {} seeds beside base and uniform",
        results.join(OPTIMA).display(),
        frozen_when(&frozen),
        check.size,
        check.seeds
    );
    let checked = sweep::mix_check::extended(plan, &chosen)?;
    Ok(Some(sweep::run_sweep(&checked, opts)?))
}

/// What the check will add once the small runs finish (`lab sweep --dry-run`).
pub(super) fn planned(plan: &Plan) -> Result<Option<String>> {
    let Some(check) = &plan.mix_check else {
        return Ok(None);
    };
    // Any weights stand for the optima, which are not known yet: only the count matters.
    let base = sweep::mixtures::base_weights(&plan.experiment.base.data);
    let stand_in: Vec<(String, Vec<f64>)> = (plan.arms.iter())
        .map(|a| (a.clone(), base.clone()))
        .collect();
    let more = sweep::mix_check::extended(plan, &stand_in)?.cells.len() - plan.cells.len();
    Ok(Some(format!(
        "then: each arm's predicted optimum, frozen in {OPTIMA} once these cells finish, trains \
         at {} on {} seeds beside base and uniform (up to {more} more cells)",
        check.size, check.seeds
    )))
}

/// Refuse (exit 2) frozen optima made from other small runs than `plan`'s, before any cell
/// trains.
pub(super) fn refuse_stale(plan: &Plan, results: &Path) -> Result<()> {
    match plan.mix_check {
        Some(_) => check_inputs(&results.join(OPTIMA), &inputs(plan)),
        None => Ok(()),
    }
}

fn inputs(plan: &Plan) -> Vec<String> {
    plan.cells.iter().map(|c| c.name().to_string()).collect()
}

/// The optima frozen from the small runs (made now if this is the first time).
fn freeze(plan: &Plan, results: &Path) -> Result<Frozen<Vec<ArmOptimum>>> {
    read_or_make(&results.join(OPTIMA), &inputs(plan), || {
        let loaded = load::load(results)?;
        Ok(optima(&mix::analyze(&loaded.manifest, &loaded.runs).arms))
    })
}

fn frozen_when(f: &Frozen<Vec<ArmOptimum>>) -> String {
    format!("frozen at commit {}", f.commit)
}
