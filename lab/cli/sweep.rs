//! `lab sweep`: plan, train the cells (locally, on Slurm, or until decisive), publish.

use super::args::*;
use super::forecast;
use super::mix_check;
use super::text as cli_text;
use super::text::print_verdicts;
use super::until_decisive;
use crate::error::{EXIT_INTERRUPTED, EXIT_LOCKED, SpecError};
use crate::{publish, sweep, train};

/// `lab sweep`: train the grid's cells, then analyse and plot.
pub(super) fn sweep_cmd(args: SweepArgs) -> anyhow::Result<i32> {
    let plan = sweep::plan(&args.experiment, args.preset.as_deref())?;
    for w in &plan.warnings {
        crate::say!("warning: {w}");
    }
    let results = args.out.join(&plan.results_name);
    if args.status {
        println!(
            "{}",
            cli_text::status_table(&sweep::status::status(&plan, &results))
        );
        return Ok(0);
    }
    if args.dry_run && !args.slurm.slurm {
        return dry_run(&plan, &args);
    }
    let opts = sweep::SweepOptions {
        results_root: args.out.clone(),
        lab_exe: std::env::current_exe()?,
        devices: args.devices.clone(),
        // One cell per process on a cluster (each task has its own cores).
        jobs: match args.cell.is_some() || args.slurm.slurm {
            true => 1,
            false => jobs_for(&plan, &args)?,
        },
        max_cells: args.max_cells,
        progress: true,
        checkpoint_every: args.checkpoint_every,
    };
    // A stop request (SIGTERM, SIGUSR1) reaches the cells, which checkpoint.
    train::interrupt::install()?;
    let locked = |e: anyhow::Error| match e.downcast_ref::<sweep::lock::LockedError>() {
        Some(_) => {
            crate::say!("error: {e:#}");
            Ok(EXIT_LOCKED)
        }
        None => Err(e),
    };
    // One cell, or a Slurm array: held-out cells only once their forecast is frozen (by a
    // local `lab sweep`, after the other cells).
    let ready = forecast::ready(&plan, &results);
    if let Some(cell) = &args.cell {
        return sweep::runner::run_one_cell(&ready, &opts, cell).or_else(locked);
    }
    if args.slurm.slurm {
        return slurm_cmd(&ready, &opts, &args);
    }
    crate::say!(
        "sweep {} (preset {}): {} cells → {}",
        plan.experiment.name,
        plan.preset,
        plan.cells.len(),
        results.display()
    );
    if let Some(p) = plan.experiment.presets.get(&plan.preset)
        && !p.expected_time.is_empty()
    {
        crate::say!("expected time: {}", p.expected_time);
    }
    if args.until_decisive {
        forecast::refuse_until_decisive(&plan)?;
        return until_decisive_cmd(&args, &opts).or_else(locked);
    }
    let outcome = match both_phases(&plan, &opts, &results) {
        Ok(Some(o)) => o,
        Ok(None) => return Ok(EXIT_INTERRUPTED),
        Err(e) => return locked(e),
    };
    if outcome.pending.is_empty() && plan.learning_rates().is_empty() {
        sweep::runner::measure_generation(&plan, &opts);
    }
    let published = publish::publish(&results, &args.plots, true)?;
    print_verdicts(&published);
    Ok(if outcome.failed.is_empty() { 0 } else { 1 })
}

/// Train the first phase's cells, then what is planned from their results; `None` when a
/// signal stopped the sweep (rerun it to resume).
fn both_phases(
    plan: &sweep::Plan,
    opts: &sweep::SweepOptions,
    results: &std::path::Path,
) -> anyhow::Result<Option<sweep::SweepOutcome>> {
    mix_check::refuse_stale(plan, results)?;
    forecast::refuse_stale(plan, results)?;
    let stopped = || {
        let stop = train::interrupt::requested();
        if stop {
            crate::say!("sweep stopped by a signal; rerun it to resume the interrupted cells");
        }
        stop
    };
    let outcome = sweep::run_sweep(&plan.first_phase(), opts)?;
    crate::say!("{}", cli_text::sweep_outcome(&outcome));
    if stopped() {
        return Ok(None);
    }
    let outcome = second_phase(plan, opts, results, outcome)?;
    Ok((!stopped()).then_some(outcome))
}

/// The cells a sweep trains after its first phase's results are in (a mixture axis' optimum
/// check, or held-out sizes once their forecast is frozen), once every first-phase cell has
/// finished; the outcome to go on with.
fn second_phase(
    plan: &sweep::Plan,
    opts: &sweep::SweepOptions,
    results: &std::path::Path,
    first: sweep::SweepOutcome,
) -> anyhow::Result<sweep::SweepOutcome> {
    let waits = match (&plan.mix_check, !plan.holds_out()) {
        (Some(_), _) => "the optimum check at the larger size waits until every small run finishes",
        (None, false) => {
            "the held-out cells wait until every other cell finishes (their forecast is made first)"
        }
        (None, true) => return Ok(first),
    };
    if !(first.pending.is_empty() && first.failed.is_empty()) {
        crate::say!("{waits}");
        return Ok(first);
    }
    let second = match plan.mix_check.is_some() {
        true => mix_check::run(plan, opts, results)?,
        false => forecast::run(plan, opts, results)?,
    };
    let Some(second) = second else {
        return Ok(first);
    };
    crate::say!("{}", cli_text::sweep_outcome(&second));
    Ok(second)
}

/// `lab sweep --dry-run`: the cells, and with `--until-decisive` the planned looks.
fn dry_run(plan: &sweep::Plan, args: &SweepArgs) -> anyhow::Result<i32> {
    println!("{}", cli_text::plan_table(plan));
    if args.until_decisive {
        let preset = args.preset.as_deref();
        let looks = until_decisive::planned(&args.experiment, preset, growth(args))?;
        println!("until decisive: looks at {looks:?} seeds per cell (the last is the cap)");
    }
    if let Some(line) = mix_check::planned(plan)? {
        println!("{line}");
    }
    if let Some(line) = forecast::planned(plan) {
        println!("{line}");
    }
    Ok(0)
}

fn growth(args: &SweepArgs) -> until_decisive::Growth {
    until_decisive::Growth {
        max_seeds: args.max_seeds,
        group: args.seed_group,
    }
}

/// `lab sweep --until-decisive`: the looks, then the verdicts of the last.
pub(super) fn until_decisive_cmd(
    args: &SweepArgs,
    opts: &sweep::SweepOptions,
) -> anyhow::Result<i32> {
    let preset = args.preset.as_deref();
    match until_decisive::run(&args.experiment, preset, opts, &args.plots, growth(args))? {
        until_decisive::Ended::Looked(_, published, _) => {
            print_verdicts(&published);
            Ok(0)
        }
        until_decisive::Ended::Unfinished(outcome) => {
            crate::say!("{}", cli_text::sweep_outcome(&outcome));
            crate::say!("no look on unfinished results: rerun the same command to go on");
            Ok(match train::interrupt::requested() {
                true => EXIT_INTERRUPTED,
                false => 1,
            })
        }
    }
}

/// `--jobs`: a positive number, or `auto` ([`sweep::runner::auto_jobs`]).
fn jobs_for(plan: &sweep::Plan, args: &SweepArgs) -> anyhow::Result<usize> {
    if args.jobs == "auto" {
        let (jobs, why) = sweep::runner::auto_jobs(plan, &args.devices);
        crate::say!("jobs: {jobs} ({why})");
        return Ok(jobs);
    }
    match args.jobs.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(SpecError::Field {
            file: plan.source.clone(),
            field: "--jobs".into(),
            message: format!("must be a positive number or `auto`, got {:?}", args.jobs),
        }
        .into()),
    }
}

/// `lab sweep --slurm`: write the job array and analysis scripts, and submit them.
pub(super) fn slurm_cmd(
    plan: &sweep::Plan,
    opts: &sweep::SweepOptions,
    args: &SweepArgs,
) -> anyhow::Result<i32> {
    let a = &args.slurm;
    let slurm = sweep::slurm::SlurmOptions {
        partition: a.partition.clone(),
        time: a.time.clone(),
        gpus_per_task: a.gpus_per_task,
        cpus_per_task: a.cpus_per_task,
        max_parallel: a.max_parallel,
        warn_seconds: a.warn_seconds,
        experiment: plan.source.clone(),
        preset: args.preset.clone(),
        plots: args.plots.clone(),
    };
    let scripts = sweep::slurm::write_scripts(plan, opts, &slurm)?;
    if args.dry_run {
        println!("{}", cli_text::slurm_scripts(&scripts, None));
        return Ok(0);
    }
    let submitted = sweep::slurm::submit(&scripts)?;
    println!("{}", cli_text::slurm_scripts(&scripts, Some(&submitted)));
    Ok(0)
}
