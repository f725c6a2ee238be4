//! Runs a [`Plan`]'s cells: skips finished ones, resumes interrupted ones from their
//! checkpoints, reports diverged ones, and shows progress with an ETA.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::experiment::{Cell, Plan};
use super::lock::SweepLock;
use crate::error::SpecError;
use crate::train::device::DeviceChoice;
use crate::train::run_dir::{self, RunDir, write_atomic};
use crate::train::summary::{RunStatus, Summary};

pub struct SweepOptions {
    pub results_root: PathBuf,
    /// The `lab` executable that trains each cell in its own process (so each cell's memory is
    /// measured alone and a crash loses only that cell).
    pub lab_exe: PathBuf,
    /// Devices to spread cells over; job j uses `devices[j % len]`.
    pub devices: Vec<DeviceChoice>,
    pub jobs: usize,
    /// Run at most this many cells, then stop (the rest stay for a rerun).
    pub max_cells: Option<usize>,
    pub progress: bool,
    /// Checkpoint interval for cells whose spec sets none.
    pub checkpoint_every: usize,
}

#[derive(Debug, Default)]
pub struct SweepOutcome {
    pub ran: Vec<String>,
    pub skipped: Vec<String>,
    pub diverged: Vec<String>,
    pub pending: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub wall_time_s: f64,
}

/// `sweep.json`: what the analysis needs to know about the cells.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub experiment: String,
    pub preset: String,
    pub source: PathBuf,
    pub description: String,
    pub cells: Vec<Cell>,
    pub arms: Vec<String>,
    pub sizes: Vec<String>,
    /// The arm the budget is set from (the MoE under test).
    pub reference_arm: String,
    /// The arm the verdicts compare it with: the dense arm matched on active FLOPs if there is
    /// one, else the first other arm.
    pub baseline_arm: Option<String>,
}

pub const MANIFEST: &str = "sweep.json";

/// Whether a cell's directory holds a finished run of exactly this config.
enum CellState {
    Fresh,
    Finished(RunStatus),
    Interrupted,
}

fn cell_state(dir: &RunDir, cell: &Cell) -> Result<CellState> {
    let summary_path = dir.file(run_dir::SUMMARY);
    let Ok(text) = std::fs::read_to_string(&summary_path) else {
        return Ok(CellState::Fresh);
    };
    let want = &cell
        .config
        .as_ref()
        .expect("planned cells carry configs")
        .spec;
    // Compared as specs, not as text: a run written before a field was added (and so without
    // it) holds that field's default, and is the same run.
    let have = std::fs::read_to_string(dir.file(run_dir::CONFIG))
        .ok()
        .and_then(|t| toml::from_str::<crate::spec::RunSpec>(&t).ok());
    if have.as_ref() != Some(want) {
        return Err(SpecError::Field {
            file: dir.file(run_dir::CONFIG),
            field: cell.name.clone(),
            message: "this run directory holds a different configuration than the experiment now \
                      asks for (was the spec edited?); move it away or delete it to rerun"
                .into(),
        }
        .into());
    }
    let summary: Summary = serde_json::from_str(&text)
        .with_context(|| format!("reading {}", summary_path.display()))?;
    Ok(match summary.status {
        RunStatus::Running => CellState::Interrupted,
        done => CellState::Finished(done),
    })
}

pub fn run_sweep(plan: &Plan, opts: &SweepOptions) -> Result<SweepOutcome> {
    let root = opts.results_root.join(&plan.results_name);
    let _lock = SweepLock::acquire(&root)?;
    let started = Instant::now();

    let cells: Vec<Cell> = plan
        .cells
        .iter()
        .cloned()
        .map(|mut c| {
            if let Some(cfg) = c.config.as_mut()
                && cfg.spec.train.checkpoint_every == 0
            {
                cfg.spec.train.checkpoint_every = opts.checkpoint_every;
            }
            c
        })
        .collect();
    // Check every cell before running any, so a changed spec stops the sweep up front.
    let mut todo = Vec::new();
    let mut outcome = SweepOutcome::default();
    for cell in &cells {
        let dir = RunDir::new(root.join(&cell.name));
        match cell_state(&dir, cell)? {
            CellState::Finished(RunStatus::Diverged) => {
                outcome.skipped.push(cell.name.clone());
                outcome.diverged.push(cell.name.clone());
            }
            CellState::Finished(_) => outcome.skipped.push(cell.name.clone()),
            CellState::Fresh | CellState::Interrupted => todo.push(cell.clone()),
        }
    }
    let manifest = Manifest {
        experiment: plan.experiment.name.clone(),
        preset: plan.preset.clone(),
        source: plan.source.clone(),
        description: plan.experiment.description.clone(),
        cells: cells.clone(),
        arms: plan.experiment.arms.keys().cloned().collect(),
        sizes: {
            let mut v: Vec<String> = Vec::new();
            for c in &plan.cells {
                if !v.contains(&c.size) {
                    v.push(c.size.clone());
                }
            }
            v
        },
        reference_arm: plan.experiment.budget.reference_arm.clone(),
        baseline_arm: plan.baseline_arm(),
    };
    write_atomic(
        &root.join(MANIFEST),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;

    let limit = opts.max_cells.unwrap_or(usize::MAX).min(todo.len());
    outcome.pending = todo[limit..].iter().map(|c| c.name.clone()).collect();
    let todo = &todo[..limit];
    let total = plan.cells.len();
    let already = outcome.skipped.len();
    if !outcome.skipped.is_empty() {
        eprintln!(
            "{}: {} of {total} cells already finished, {} to run",
            plan.results_name,
            outcome.skipped.len(),
            todo.len()
        );
    }
    let flops_todo: f64 = todo.iter().map(|c| cell_flops(c)).sum();
    let next = AtomicUsize::new(0);
    let progress = Mutex::new((0usize, 0.0f64)); // (cells done, FLOPs done)
    let results: Mutex<Vec<(String, Result<Summary>)>> = Mutex::new(Vec::new());
    let jobs = opts.jobs.max(1).min(todo.len().max(1));

    std::thread::scope(|scope| {
        for job in 0..jobs {
            let choice = concrete(opts.devices[job % opts.devices.len()]);
            let (next, progress, results, root) = (&next, &progress, &results, &root);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(cell) = todo.get(i) else { break };
                    let config = cell.config.as_ref().expect("planned cells carry configs");
                    let t0 = Instant::now();
                    eprintln!(
                        "[{}/{total}] {} ({:?}): {} steps, {:.3e} FLOPs",
                        already + i + 1,
                        cell.name,
                        choice,
                        config.steps,
                        config.total_train_flops()
                    );
                    let result = run_cell(opts, root, cell, choice, jobs == 1);
                    let mut p = progress.lock().unwrap();
                    p.0 += 1;
                    p.1 += cell_flops(cell);
                    let elapsed = started.elapsed().as_secs_f64();
                    let eta = if p.1 > 0.0 {
                        elapsed * (flops_todo - p.1) / p.1
                    } else {
                        0.0
                    };
                    match &result {
                        Ok(s) => eprintln!(
                            "    {} {:?}: val loss {} in {:.1} s; {} of {} cells to go, ETA {}",
                            cell.name,
                            s.status,
                            s.final_val_loss.map_or("-".into(), |v| format!("{v:.4}")),
                            t0.elapsed().as_secs_f64(),
                            todo.len() - p.0,
                            todo.len(),
                            format_duration(eta)
                        ),
                        Err(e) => eprintln!("    {} FAILED: {e:#}", cell.name),
                    }
                    drop(p);
                    results.lock().unwrap().push((cell.name.clone(), result));
                }
            });
        }
    });

    for (name, result) in results.into_inner().unwrap() {
        match result {
            Ok(s) if s.status == RunStatus::Diverged => {
                outcome.ran.push(name.clone());
                outcome.diverged.push(name);
            }
            Ok(_) => outcome.ran.push(name),
            Err(e) => outcome.failed.push((name, format!("{e:#}"))),
        }
    }
    outcome.wall_time_s = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// Train one cell in a child `lab train` process, resuming from its checkpoint if any.
fn run_cell(
    opts: &SweepOptions,
    root: &std::path::Path,
    cell: &Cell,
    device: DeviceChoice,
    show_progress: bool,
) -> Result<Summary> {
    let dir = RunDir::new(root.join(&cell.name));
    dir.create()?;
    let config = cell.config.as_ref().expect("planned cells carry configs");
    let spec_path = dir.file(run_dir::CONFIG);
    write_atomic(&spec_path, config.spec_toml().as_bytes())?;
    let device_name = match device {
        DeviceChoice::Auto => "auto",
        DeviceChoice::Wgpu => "wgpu",
        DeviceChoice::WgpuCpu => "wgpu-cpu",
        DeviceChoice::Flex => "flex",
    };
    let mut cmd = std::process::Command::new(&opts.lab_exe);
    cmd.arg("train")
        .arg("--spec")
        .arg(&spec_path)
        .arg("--run-dir")
        .arg(&dir.path)
        .args(["--device", device_name, "--resume", "--exit-with-parent"])
        .stdout(std::process::Stdio::null());
    if !show_progress {
        cmd.arg("--quiet");
    }
    if device == DeviceChoice::Flex {
        // See `lab train`: checkpointed optimizer state loads onto burn's default device.
        cmd.env("BURN_DEVICE", "flex");
    }
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", opts.lab_exe.display()))?;
    let summary: Option<Summary> = std::fs::read_to_string(dir.file(run_dir::SUMMARY))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match (status.code(), summary) {
        (Some(0) | Some(crate::error::EXIT_DIVERGED), Some(s))
            if s.status != RunStatus::Running =>
        {
            Ok(s)
        }
        (code, _) => anyhow::bail!("`lab train` for {} exited with {:?}", cell.name, code),
    }
}

/// `auto` decided once here, so the cells' processes do not each probe the adapters.
fn concrete(choice: DeviceChoice) -> DeviceChoice {
    match choice {
        DeviceChoice::Auto
            if crate::train::device::adapters()
                .iter()
                .any(|a| a.is_hardware) =>
        {
            DeviceChoice::Wgpu
        }
        DeviceChoice::Auto => DeviceChoice::Flex,
        other => other,
    }
}

fn cell_flops(cell: &Cell) -> f64 {
    cell.config.as_ref().map_or(0.0, |c| c.total_train_flops())
}

pub fn format_duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
