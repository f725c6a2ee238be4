//! `lab sweep` with held-out sizes (`[forecast] hold_out`): the other cells train first; once
//! they have all finished, the forecast for the held-out cells is frozen in `forecast.json`
//! (before any of them starts, and never rewritten), and only then do they train. The report
//! scores it (`analysis::forecast::score`).

use std::path::Path;

use anyhow::Result;

use crate::analysis::forecast::{FORECAST, Forecast, HeldOut, make::make};
use crate::analysis::load;
use crate::sweep::frozen::{Frozen, check_inputs, read_or_make};
use crate::sweep::spec::Form;
use crate::sweep::{self, Plan, SweepOptions, SweepOutcome};

/// What trains before the forecast: the plan without its held-out cells.
pub(super) fn first_phase(plan: &Plan) -> Plan {
    plan.first_phase()
}

/// The cells that may train now: all of them once the forecast is frozen in `results`, else
/// the first phase's.
pub(super) fn ready(plan: &Plan, results: &Path) -> Plan {
    match results.join(FORECAST).exists() {
        true => plan.clone(),
        false => first_phase(plan),
    }
}

/// `--until-decisive` adds seeds to every cell, held-out ones too: refused (exit 2).
pub(super) fn refuse_until_decisive(plan: &Plan) -> Result<()> {
    if plan.held_out.is_empty() {
        return Ok(());
    }
    let why = "held-out sizes train once, after their forecast; run the sweep without \
               --until-decisive (or without hold_out)";
    Err(crate::error::SpecError::field(&plan.source, "--until-decisive", why).into())
}

/// What waits for the forecast (`lab sweep --dry-run`).
pub(super) fn planned(plan: &Plan) -> Option<String> {
    if plan.held_out.is_empty() {
        return None;
    }
    let first = first_phase(plan).cells.len();
    Some(format!(
        "held out: {} ({} cells) train only after {FORECAST} is frozen from the other {first}",
        plan.held_out.join(", "),
        plan.cells.len() - first
    ))
}

/// Refuse (exit 2) a forecast made from other cells than `plan`'s first phase, before any
/// cell trains.
pub(super) fn refuse_stale(plan: &Plan, results: &Path) -> Result<()> {
    match plan.held_out.is_empty() {
        true => Ok(()),
        false => check_inputs(&results.join(FORECAST), &inputs(plan)),
    }
}

fn inputs(plan: &Plan) -> Vec<String> {
    let first = first_phase(plan);
    first.cells.iter().map(|c| c.name().to_string()).collect()
}

/// Freeze the forecast from the finished first phase in `results` (or read it back), then
/// train the held-out cells; `None` without held-out sizes.
pub(super) fn run(
    plan: &Plan,
    opts: &SweepOptions,
    results: &Path,
) -> Result<Option<SweepOutcome>> {
    if plan.held_out.is_empty() {
        return Ok(None);
    }
    let frozen = freeze(plan, results)?;
    crate::say!(
        "forecast for {} frozen in {} (commit {}); the held-out cells train now",
        plan.held_out.join(", "),
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

/// Each held-out (size, arm): its planned training FLOPs and how many seeds it trains.
fn held(plan: &Plan) -> Vec<HeldOut> {
    let mut out: Vec<HeldOut> = Vec::new();
    for c in plan
        .cells
        .iter()
        .filter(|c| plan.held_out.contains(&c.cell.size))
    {
        let budget = c.config.steps as f64 * c.config.train_flops_per_step();
        match out
            .iter_mut()
            .find(|h| h.size == c.cell.size && h.arm == c.cell.arm)
        {
            Some(h) => h.seeds += 1,
            None => out.push(HeldOut {
                size: c.cell.size.clone(),
                arm: c.cell.arm.clone(),
                budget,
                seeds: 1,
            }),
        }
    }
    out
}
