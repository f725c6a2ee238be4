//! `lab sweep` with held-out sizes or IsoFLOP budgets (`[forecast] hold_out`,
//! `hold_out_budgets`): the other cells train first; once they have all finished, the forecast
//! for the held-out cells is frozen in `forecast.json` (before any of them starts, and never
//! rewritten), and only then do they train. The report scores it
//! (`analysis::forecast::score`).

use std::path::Path;

use anyhow::Result;

use crate::analysis::forecast::{FORECAST, Forecast, HeldOut, budget_name, make::make};
use crate::analysis::load;
use crate::sweep::frozen::{Frozen, check_inputs, read_or_make};
use crate::sweep::spec::Form;
use crate::sweep::{self, Plan, SweepOptions, SweepOutcome};

/// The cells that may train now: all of them once the forecast is frozen in `results`, else
/// the first phase's.
pub(super) fn ready(plan: &Plan, results: &Path) -> Plan {
    match results.join(FORECAST).exists() {
        true => plan.clone(),
        false => plan.first_phase(),
    }
}

/// `--until-decisive` adds seeds to every cell, held-out ones too: refused (exit 2).
pub(super) fn refuse_until_decisive(plan: &Plan) -> Result<()> {
    if !plan.holds_out() {
        return Ok(());
    }
    let why = "held-out sizes train once, after their forecast; run the sweep without \
               --until-decisive (or without hold_out)";
    Err(crate::error::SpecError::field(&plan.source, "--until-decisive", why).into())
}

/// What waits for the forecast (`lab sweep --dry-run`).
pub(super) fn planned(plan: &Plan) -> Option<String> {
    if !plan.holds_out() {
        return None;
    }
    let first = plan.first_phase().cells.len();
    Some(format!(
        "held out: {} ({} cells) train only after {FORECAST} is frozen from the other {first}",
        held_names(plan).join(", "),
        plan.cells.len() - first
    ))
}

/// Refuse (exit 2) a forecast made from other cells than `plan`'s first phase, before any
/// cell trains.
pub(super) fn refuse_stale(plan: &Plan, results: &Path) -> Result<()> {
    match plan.holds_out() {
        false => Ok(()),
        true => check_inputs(&results.join(FORECAST), &inputs(plan)),
    }
}

fn inputs(plan: &Plan) -> Vec<String> {
    let first = plan.first_phase();
    first.cells.iter().map(|c| c.name().to_string()).collect()
}

/// Freeze the forecast from the finished first phase in `results` (or read it back), then
/// train the held-out cells; `None` without held-out sizes.
pub(super) fn run(
    plan: &Plan,
    opts: &SweepOptions,
    results: &Path,
) -> Result<Option<SweepOutcome>> {
    if !plan.holds_out() {
        return Ok(None);
    }
    let frozen = freeze(plan, results)?;
    crate::say!(
        "forecast for {} frozen in {} (commit {}); the held-out cells train now",
        held_names(plan).join(", "),
        results.join(FORECAST).display(),
        frozen.commit
    );
    Ok(Some(sweep::run_sweep(plan, opts)?))
}

fn freeze(plan: &Plan, results: &Path) -> Result<Frozen<Forecast>> {
    read_or_make(&results.join(FORECAST), &inputs(plan), || {
        let loaded = load::load(results)?;
        Ok(make(
            &loaded.manifest,
            &loaded.runs,
            &held(plan),
            form(plan),
        ))
    })
}

fn form(plan: &Plan) -> Form {
    plan.experiment
        .forecast
        .as_ref()
        .map_or(Form::Floor, |f| f.form)
}

/// Each held-out (size or budget, arm): its planned training FLOPs and how many seeds it
/// trains (an IsoFLOP budget's forecast is of its profile's optimum: one per arm).
fn held(plan: &Plan) -> Vec<HeldOut> {
    let mut out: Vec<HeldOut> = Vec::new();
    for c in plan.cells.iter().filter(|c| plan.is_held_out(c)) {
        let (size, budget) = match c.cell.budget {
            Some(b) => (budget_name(b), b),
            None => (
                c.cell.size.clone(),
                c.config.steps as f64 * c.config.train_flops_per_step(),
            ),
        };
        match out
            .iter_mut()
            .find(|h| h.size == size && h.arm == c.cell.arm)
        {
            Some(h) if c.cell.budget.is_none() => h.seeds += 1,
            Some(_) => {}
            None => out.push(HeldOut {
                size,
                arm: c.cell.arm.clone(),
                budget,
                seeds: 1,
            }),
        }
    }
    out
}

/// What is held out, in words: sizes by name, budgets as `C=1e12`.
fn held_names(plan: &Plan) -> Vec<String> {
    let budgets = plan.held_out_budgets.iter().map(|b| budget_name(*b));
    plan.held_out.iter().cloned().chain(budgets).collect()
}
