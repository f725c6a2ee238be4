//! `lab sweep NAME --until-decisive`: run the preset's seeds, look at the primary comparisons,
//! and add seeds in groups until every one is decided or the cap is reached. The looks follow a
//! group-sequential design fixed before the first ([`analysis::sequential::Plan`], O'Brien–
//! Fleming-type spending), read by repeated confidence intervals ([`analysis::decisive`]),
//! so looking after every group keeps the false-call rate at α. Each look's sweep resumes the
//! last one (finished cells are kept), and the record is written after every look
//! (`sequential.json`), so a crash or a stop loses no finished look.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use crate::analysis::decisive::report::decision_words;
use crate::analysis::decisive::{self, Look, RECORD, Record};
use crate::analysis::sequential::{Plan as Design, Spending};
use crate::error::SpecError;
use crate::publish::{self, Published};
use crate::run::write_atomic;
use crate::sweep::{self, SweepOptions, SweepOutcome};

/// Two-sided error rate of the design.
pub const ALPHA: f64 = 0.05;

/// How seeds are added: `group` per look (default: the preset's seeds) up to `max_seeds`
/// (default: 4 × the preset's seeds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Growth {
    pub max_seeds: Option<usize>,
    pub group: Option<usize>,
}

/// How the looks ended.
pub enum Ended {
    /// Every primary comparison decided, or the cap reached: the record and the last report.
    Looked(Record, Published, SweepOutcome),
    /// A look's sweep did not finish every cell (failed, pending, or stopped by a signal):
    /// no look is taken on partial results.
    Unfinished(SweepOutcome),
}

/// The seeds per cell at each look: `first`, then `group` more each time, the last `max`.
pub fn looks(first: usize, group: usize, max: usize) -> Vec<usize> {
    let mut looks: Vec<usize> = (0..)
        .map(|k| first + k * group)
        .take_while(|&n| n < max)
        .collect();
    looks.push(max);
    looks
}

/// The planned looks of `experiment` under `growth`. Err (exit 2): a cap below the preset's
/// seeds, or a group of 0.
pub fn planned(experiment: &str, preset: Option<&str>, growth: Growth) -> Result<Vec<usize>> {
    let plan = sweep::plan(experiment, preset)?;
    let first = seeds_of(&plan);
    let bad = |field: &str, message: String| SpecError::Field {
        file: plan.source.clone(),
        field: field.into(),
        message,
    };
    if plan.cells.iter().any(|c| c.cell.budget.is_some()) {
        let why = "an IsoFLOP experiment's answers are bootstrap intervals over seeds, not \
                   paired comparisons a sequential design can decide; raise its seeds instead";
        return Err(bad("--until-decisive", why.into()).into());
    }
    let group = growth.group.unwrap_or(first);
    if group == 0 {
        return Err(bad("--seed-group", "must be at least 1".into()).into());
    }
    let max = growth.max_seeds.unwrap_or(4 * first);
    if max < first {
        let why = format!("{max} is below the preset's {first} seeds, the first look");
        return Err(bad("--max-seeds", why).into());
    }
    Ok(looks(first, group, max))
}

fn seeds_of(plan: &sweep::Plan) -> usize {
    let mut seeds: Vec<u64> = (plan.cells.iter())
        .filter(|c| plan.teacher.as_deref() != Some(c.name()))
        .map(|c| c.cell.seed)
        .collect();
    seeds.sort();
    seeds.dedup();
    seeds.len()
}

/// Run the looks (see the module docs); figures are drawn once, after the last.
pub fn run(
    experiment: &str,
    preset: Option<&str>,
    opts: &SweepOptions,
    plots: &Path,
    growth: Growth,
) -> Result<Ended> {
    let planned_seeds = planned(experiment, preset, growth)?;
    let design = Design::new(Spending::OBrienFleming, ALPHA, &planned_seeds);
    let mut record = Record {
        spending: Spending::OBrienFleming,
        alpha: ALPHA,
        planned_seeds: planned_seeds.clone(),
        looks: Vec::new(),
    };
    let started = Instant::now();
    for (k, &seeds) in planned_seeds.iter().enumerate() {
        let plan = sweep::plan_with_seeds(experiment, preset, Some(seeds))?;
        let results = opts.results_root.join(&plan.results_name);
        crate::say!(
            "look {} of {}: {seeds} seeds per cell ({} cells)",
            k + 1,
            planned_seeds.len(),
            plan.cells.len()
        );
        let outcome = sweep::run_sweep(&plan, opts)?;
        let interrupted = crate::train::interrupt::requested();
        if interrupted || !outcome.failed.is_empty() || !outcome.pending.is_empty() {
            return Ok(Ended::Unfinished(outcome));
        }
        let published = publish::publish(&results, plots, false)?;
        let comparisons = (published.primary.iter())
            .map(|(name, p)| decisive::judge(&design, k, name, p))
            .collect();
        let look = Look {
            seeds,
            comparisons,
            elapsed_s: started.elapsed().as_secs_f64(),
        };
        print_look(&look);
        let done = look.decisive() || k + 1 == planned_seeds.len();
        record.looks.push(look);
        write_atomic(&results.join(RECORD), record.to_json()?.as_bytes())?;
        if done {
            let published = publish::publish(&results, plots, true)?;
            return Ok(Ended::Looked(record, published, outcome));
        }
    }
    unreachable!("the last planned look ends the loop")
}

fn print_look(look: &Look) {
    if look.comparisons.is_empty() {
        crate::say!("  no primary comparison yet (too few seed pairs, or no spread)");
    }
    for c in &look.comparisons {
        crate::say!(
            "  {}: {:+.4}, repeated 95% CI [{:+.4}, {:+.4}]: {}",
            c.name,
            c.mean,
            c.ci_low,
            c.ci_high,
            decision_words(c)
        );
    }
}
