//! Runs a [`Plan`]'s cells: skips finished ones, resumes interrupted ones from their
//! checkpoints, reports diverged ones, and shows progress with an ETA.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};

use super::experiment::{Plan, PlannedCell};
use super::lock::SweepLock;
use crate::error::{EXIT_INTERRUPTED, SpecError};
use crate::run::dir::CONFIG;
use crate::run::{MANIFEST, Manifest};
use crate::run::{RunDir, RunStatus, Summary, write_atomic};
use crate::train::device::DeviceChoice;
use crate::train::interrupt;

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

/// Whether a cell's directory holds a finished run of exactly this config.
enum CellState {
    Fresh,
    Finished(RunStatus),
    Interrupted,
}

fn cell_state(dir: &RunDir, cell: &PlannedCell) -> Result<CellState> {
    let summary = match dir.read_summary() {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(CellState::Fresh),
        // Cut short or overwritten: rerun it (from its checkpoint if it has a good one).
        Err(e) => {
            crate::say!("{}: {e:#}; the cell reruns", cell.name());
            return Ok(CellState::Interrupted);
        }
    };
    let want = &cell.config.spec;
    // Compared as specs, not as text: a run written before a field was added (and so without
    // it) holds that field's default, and is the same run.
    let have = std::fs::read_to_string(dir.file(CONFIG))
        .ok()
        .and_then(|t| toml::from_str::<crate::spec::RunSpec>(&t).ok());
    if have.as_ref() != Some(want) {
        return Err(SpecError::Field {
            file: dir.file(CONFIG),
            field: cell.name().to_string(),
            message: "this run directory holds a different configuration than the experiment now \
                      asks for (was the spec edited? runs written before per-part init, whose \
                      config.toml has no model.init, differ too); move it away or delete it \
                      to rerun"
                .into(),
        }
        .into());
    }
    if let Err(e) = dir.check_rows() {
        crate::say!("{}: {e:#}; the cell reruns", cell.name());
        return Ok(CellState::Interrupted);
    }
    Ok(match summary.status {
        RunStatus::Running => CellState::Interrupted,
        done => CellState::Finished(done),
    })
}

/// Run the plan's unfinished cells (at most `max_cells`), `jobs` at a time, under the
/// experiment's lock; write the manifest first, so the analysis finds every cell.
pub fn run_sweep(plan: &Plan, opts: &SweepOptions) -> Result<SweepOutcome> {
    // Before the lock and the results directory: a cell too big fails the sweep untouched.
    check_memory(plan, opts, &plan.cells)?;
    let root = opts.results_root.join(&plan.results_name);
    let _lock = SweepLock::acquire(&root)?;
    let started = Instant::now();
    let (todo, mut outcome) = unfinished_cells(plan, &root, opts.checkpoint_every)?;
    let limit = opts.max_cells.unwrap_or(usize::MAX).min(todo.len());
    outcome.pending = todo[limit..].iter().map(|c| c.name().to_string()).collect();
    let todo = &todo[..limit];
    if !outcome.skipped.is_empty() {
        crate::say!(
            "{}: {} of {} cells already finished, {} to run",
            plan.results_name,
            outcome.skipped.len(),
            plan.cells.len(),
            todo.len()
        );
    }
    // The teacher first, alone: the distilling cells need its final model.
    let (teacher, rest): (Vec<PlannedCell>, Vec<PlannedCell>) = todo
        .iter()
        .cloned()
        .partition(|c| plan.teacher.as_deref() == Some(c.name()));
    let mut already = outcome.skipped.len();
    for (i, phase) in [teacher, rest].into_iter().enumerate() {
        let mut phase = phase;
        if i == 1 && !teacher_ready(plan, &root) {
            let (wait, go): (Vec<PlannedCell>, Vec<PlannedCell>) =
                phase.into_iter().partition(distills);
            if !wait.is_empty() {
                crate::say!(
                    "{} cells wait for the teacher, which has no final model",
                    wait.len()
                );
            }
            outcome
                .pending
                .extend(wait.iter().map(|c| c.name().to_string()));
            phase = go;
        }
        let queue = Queue {
            todo: &phase,
            total: plan.cells.len(),
            already,
            flops_todo: phase.iter().map(cell_flops).sum(),
            // Each phase's ETA from its own pace.
            started: Instant::now(),
            next: AtomicUsize::new(0),
            progress: Mutex::new((0, 0.0)),
            results: Mutex::new(Vec::new()),
        };
        queue.run(opts, &root);
        already += phase.len();
        for (name, result) in queue.results.into_inner().expect("no job panicked") {
            match result {
                Ok(s) if s.status == RunStatus::Diverged => {
                    outcome.ran.push(name.clone());
                    outcome.diverged.push(name);
                }
                Ok(_) => outcome.ran.push(name),
                Err(e) => outcome.failed.push((name, format!("{e:#}"))),
            }
        }
    }
    outcome.wall_time_s = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// Whether the plan's teacher (if it has one) has its final model under `root`.
fn teacher_ready(plan: &Plan, root: &Path) -> bool {
    plan.teacher
        .as_ref()
        .is_none_or(|t| RunDir::new(root.join(t)).model_file().exists())
}

fn distills(cell: &PlannedCell) -> bool {
    cell.config.spec.distill.is_some()
}

/// Check every cell of the plan against its run directory (so a changed spec stops the sweep
/// before anything runs) and write the manifest; returns the cells still to run (fresh or
/// interrupted, with `checkpoint_every` filled in) and the finished ones as skipped.
pub fn unfinished_cells(
    plan: &Plan,
    root: &Path,
    checkpoint_every: usize,
) -> Result<(Vec<PlannedCell>, SweepOutcome)> {
    let cells = prepared(plan, root, checkpoint_every);
    let mut todo = Vec::new();
    let mut outcome = SweepOutcome::default();
    for cell in &cells {
        let dir = RunDir::new(root.join(cell.name()));
        match cell_state(&dir, cell)? {
            CellState::Finished(RunStatus::Diverged) => {
                outcome.skipped.push(cell.name().to_string());
                outcome.diverged.push(cell.name().to_string());
            }
            CellState::Finished(_) => outcome.skipped.push(cell.name().to_string()),
            CellState::Fresh | CellState::Interrupted => todo.push(cell.clone()),
        }
    }
    std::fs::create_dir_all(root)?;
    let manifest = manifest_of(plan, &cells);
    let json = serde_json::to_string_pretty(&manifest)?;
    write_atomic(&root.join(MANIFEST), json.as_bytes())?;
    Ok((todo, outcome))
}

/// Before any cell runs: on devices that allocate from host memory (flex, software wgpu), every
/// cell to run must fit in the memory available, shared by `jobs` cells at once. Err (exit 2):
/// the first that does not, with its numbers.
fn check_memory(plan: &Plan, opts: &SweepOptions, todo: &[PlannedCell]) -> Result<()> {
    let host = opts
        .devices
        .iter()
        .any(|d| matches!(concrete(*d), DeviceChoice::Flex | DeviceChoice::WgpuCpu));
    let Some(available) = crate::train::memory::host_available_bytes().filter(|_| host) else {
        return Ok(());
    };
    let share = available / opts.jobs.max(1) as u64;
    for cell in todo {
        crate::train::memory::check_fits(&cell.config, share).map_err(|message| {
            SpecError::Field {
                file: plan.source.clone(),
                field: format!("cell {}", cell.name()),
                message: format!(
                    "{message} (with --jobs {}: a share of the memory)",
                    opts.jobs
                ),
            }
        })?;
    }
    Ok(())
}

/// `--jobs auto`: on devices that compute on the host (flex, software wgpu), one cell per core
/// (small steps gain little from a second thread: docs/measurements.md, "The flagship"), fewer if the cells would not fit in the memory
/// available together; on GPUs one cell per device. Returns the count and why.
pub fn auto_jobs(plan: &Plan, devices: &[DeviceChoice]) -> (usize, String) {
    let host = devices.iter().all(|d| on_host(concrete(*d)));
    if !host {
        return (devices.len().max(1), "one per device".into());
    }
    let cores = cores();
    let available = crate::train::memory::host_available_bytes();
    let fits = |n: usize| {
        available.is_none_or(|bytes| {
            plan.cells
                .iter()
                .map(|c| &c.config)
                .all(|cfg| crate::train::memory::check_fits(cfg, bytes / n as u64).is_ok())
        })
    };
    let jobs = (1..=cores).rev().find(|&n| fits(n)).unwrap_or(1);
    let threads = (cores / jobs).max(1);
    let why = format!("auto: {cores} cores, {threads} thread(s) per cell");
    (jobs, why)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn on_host(d: DeviceChoice) -> bool {
    matches!(d, DeviceChoice::Flex | DeviceChoice::WgpuCpu)
}

/// The plan's cells as they run under `root`: checkpointing every `every` steps where their
/// spec sets no interval, and a distilling cell's teacher pointed at the teacher cell's run
/// directory there.
fn prepared(plan: &Plan, root: &Path, every: usize) -> Vec<PlannedCell> {
    let mut cells = plan.cells.clone();
    for cfg in cells.iter_mut().map(|c| &mut c.config) {
        if cfg.spec.train.checkpoint_every == 0 {
            cfg.spec.train.checkpoint_every = every;
        }
        if let (Some(d), Some(teacher)) = (cfg.spec.distill.as_mut(), &plan.teacher) {
            // Absolute: `config.toml`'s relative paths are read from the run's own directory.
            let path = root.join(teacher);
            d.teacher = std::path::absolute(&path).unwrap_or(path);
        }
    }
    cells
}

/// `sweep.json` for `plan`, whose cells run as `cells`.
fn manifest_of(plan: &Plan, cells: &[PlannedCell]) -> Manifest {
    let mut sizes: Vec<String> = Vec::new();
    for c in &plan.cells {
        if !sizes.contains(&c.cell.size) {
            sizes.push(c.cell.size.clone());
        }
    }
    Manifest {
        experiment: plan.experiment.name.clone(),
        preset: plan.preset.clone(),
        source: plan.source.clone(),
        description: plan.experiment.description.clone(),
        cells: cells.iter().map(|c| c.cell.clone()).collect(),
        arms: plan.arms.clone(),
        sizes,
        reference_arm: plan.experiment.budget.reference_arm.clone(),
        baseline_arm: plan.baseline_arm(),
        equivalence_margin: plan.experiment.analysis.equivalence_margin,
        learning_rates: plan.learning_rates(),
        domains: match plan.experiment.mixtures {
            Some(_) => super::mixtures::domains(&plan.experiment.base.data),
            None => Vec::new(),
        },
        mixture_floor: plan.experiment.mixtures.as_ref().map(|m| m.floor),
        mixture_target: (plan.experiment.mixtures.as_ref())
            .and_then(|m| super::mixtures::target(m, &plan.experiment.base.data).ok()),
        teacher: plan.teacher.clone(),
        stability_from: plan.experiment.analysis.stability_from.clone(),
        aims: (plan.arms.iter())
            .filter_map(|arm| {
                let recipe = super::recipe::arm_recipe(&plan.experiment, arm).ok()?;
                Some((arm.clone(), recipe.aims_at?))
            })
            .collect(),
    }
}

/// The cells to run, shared by the jobs: each job takes the next cell until none is left.
struct Queue<'a> {
    todo: &'a [PlannedCell],
    /// Cells in the plan, and those finished before this sweep (for the `[i/total]` count).
    total: usize,
    already: usize,
    flops_todo: f64,
    started: Instant,
    next: AtomicUsize,
    /// (cells done, FLOPs done), for the ETA.
    progress: Mutex<(usize, f64)>,
    results: Mutex<Vec<(String, Result<Summary>)>>,
}

impl Queue<'_> {
    /// Run every cell, `opts.jobs` at a time, job j on `opts.devices[j % len]`.
    fn run(&self, opts: &SweepOptions, root: &Path) {
        let jobs = opts.jobs.max(1).min(self.todo.len().max(1));
        std::thread::scope(|scope| {
            for job in 0..jobs {
                let device = concrete(opts.devices[job % opts.devices.len()]);
                scope.spawn(move || {
                    while let Some((i, cell)) = self.take() {
                        let result = self.run_one(opts, root, i, cell, device, jobs == 1);
                        self.results
                            .lock()
                            .expect("no job panicked")
                            .push((cell.name().to_string(), result));
                    }
                });
            }
        });
    }

    fn take(&self) -> Option<(usize, &PlannedCell)> {
        // Asked to stop (SIGTERM / SIGUSR1): the running cells checkpoint; start no more.
        if interrupt::requested() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        self.todo.get(i).map(|c| (i, c))
    }

    /// Train cell `i`, printing its start and its end with the sweep's ETA.
    fn run_one(
        &self,
        opts: &SweepOptions,
        root: &Path,
        i: usize,
        cell: &PlannedCell,
        device: DeviceChoice,
        show_progress: bool,
    ) -> Result<Summary> {
        let config = &cell.config;
        let t0 = Instant::now();
        crate::say!(
            "[{}/{}] {} ({device:?}): {} steps, {:.3e} FLOPs",
            self.already + i + 1,
            self.total,
            cell.name(),
            config.steps,
            config.total_train_flops()
        );
        let result = run_cell(opts, root, cell, device, show_progress);
        let mut p = self.progress.lock().expect("no job panicked");
        p.0 += 1;
        p.1 += cell_flops(cell);
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = if p.1 > 0.0 {
            elapsed * (self.flops_todo - p.1) / p.1
        } else {
            0.0
        };
        match &result {
            Ok(s) => crate::say!(
                "    {} {:?}: val loss {} in {:.1} s; {} of {} cells to go, ETA {}",
                cell.name(),
                s.status,
                s.final_val_loss.map_or("-".into(), |v| format!("{v:.4}")),
                t0.elapsed().as_secs_f64(),
                self.todo.len() - p.0,
                self.todo.len(),
                format_duration(eta)
            ),
            Err(e) => crate::say!("    {} FAILED: {e:#}", cell.name()),
        }
        result
    }
}

/// Train one cell in a child `lab train` process, resuming from its checkpoint if any, under
/// the cell's own lock; a stop request to this process is passed on to the child, which
/// checkpoints and exits ([`EXIT_INTERRUPTED`]).
fn run_cell(
    opts: &SweepOptions,
    root: &Path,
    cell: &PlannedCell,
    device: DeviceChoice,
    show_progress: bool,
) -> Result<Summary> {
    let dir = RunDir::new(root.join(cell.name()));
    dir.create()?;
    let _lock = SweepLock::acquire(&dir.path)?;
    let spec_path = dir.write_config(&cell.config)?;
    let device_name = device.name();
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
    if opts.jobs > 1 && on_host(device) && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Cells side by side share the cores: each gets its share of threads, not all of them.
        let threads = (cores() / opts.jobs).max(1);
        cmd.env("RAYON_NUM_THREADS", threads.to_string());
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", opts.lab_exe.display()))?;
    let status = wait_passing_on_stop(&mut child)?;
    let summary = dir.read_summary().ok().flatten();
    match (status.code(), summary) {
        (Some(0) | Some(crate::error::EXIT_DIVERGED), Some(s))
            if s.status != RunStatus::Running =>
        {
            Ok(s)
        }
        (Some(EXIT_INTERRUPTED), _) => Err(Interrupted(cell.name().to_string()).into()),
        (code, _) => anyhow::bail!("`lab train` for {} exited with {:?}", cell.name(), code),
    }
}

/// A cell stopped by a signal after writing its checkpoint: rerunning resumes it.
#[derive(Debug, thiserror::Error)]
#[error("{0}: interrupted by a signal, checkpoint written; rerun the sweep to resume it")]
pub struct Interrupted(pub String);

/// Wait for `child`; when this process is asked to stop, ask the child once (SIGTERM), and go
/// on waiting while it checkpoints.
fn wait_passing_on_stop(child: &mut std::process::Child) -> Result<std::process::ExitStatus> {
    let mut passed_on = false;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if interrupt::requested() && !passed_on {
            // SAFETY: `child` is ours and not yet reaped, so its pid is not reused.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            passed_on = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// `lab sweep NAME --cell CELL`: run one cell of the plan, as a local sweep runs each (the
/// same config check, resume and lock), unless it is finished; the path of a Slurm array
/// task. Refuses while a local sweep holds the experiment. Returns the exit code: 0 finished
/// (complete or diverged), [`EXIT_INTERRUPTED`] stopped by a signal with a checkpoint.
pub fn run_one_cell(plan: &Plan, opts: &SweepOptions, name: &str) -> Result<i32> {
    let root = opts.results_root.join(&plan.results_name);
    let Some(cell) = plan.cells.iter().find(|c| c.name() == name) else {
        let names: Vec<&str> = plan.cells.iter().map(PlannedCell::name).collect();
        return Err(SpecError::Field {
            file: plan.source.clone(),
            field: "--cell".into(),
            message: format!(
                "no cell `{name}` in this plan; its cells: {}",
                names.join(", ")
            ),
        }
        .into());
    };
    if let Some(holder) = super::lock::live_holder(&root) {
        let path = root.join(".lock");
        return Err(super::lock::LockedError { path, holder }.into());
    }
    let mut cell = cell.clone();
    let train = &mut cell.config.spec.train;
    if train.checkpoint_every == 0 {
        train.checkpoint_every = opts.checkpoint_every;
    }
    let dir = RunDir::new(root.join(cell.name()));
    if let CellState::Finished(status) = cell_state(&dir, &cell)? {
        crate::say!("{}: already finished ({status:?})", cell.name());
        return Ok(0);
    }
    let device = concrete(opts.devices[0]);
    crate::say!("{} ({device:?}): {} steps", cell.name(), cell.config.steps);
    match run_cell(opts, &root, &cell, device, false) {
        Ok(s) => {
            crate::say!(
                "{}: {:?}, val loss {:?}",
                cell.name(),
                s.status,
                s.final_val_loss
            );
            Ok(0)
        }
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => {
            crate::say!("{e}");
            Ok(EXIT_INTERRUPTED)
        }
        Err(e) => Err(e),
    }
}

/// Bytes each arm generates for the report's inference table.
const GENERATION_BYTES: usize = 256;

/// After the cells: per arm, time text generation from the final model of its seed-0 run at
/// the largest size (greedy, `lab sample --stats` in its own process, so its peak memory is
/// its own), unless already measured. A failure is reported and the table shows a gap.
pub fn measure_generation(plan: &Plan, opts: &SweepOptions) {
    let root = opts.results_root.join(&plan.results_name);
    let device = concrete(opts.devices[0]).name();
    for arm in &plan.arms {
        let largest = (plan.cells.iter()).rfind(|c| &c.cell.arm == arm && c.cell.seed == 0);
        let Some(PlannedCell { cell, .. }) = largest else {
            continue;
        };
        let dir = RunDir::new(root.join(&cell.name));
        if dir.read_generation().is_some() {
            continue;
        }
        if !dir.model_file().exists() {
            crate::say!(
                "{}: generation not measured: no final model (trained before runs kept one?)",
                cell.name
            );
            continue;
        }
        let bytes = GENERATION_BYTES.to_string();
        let status = std::process::Command::new(&opts.lab_exe)
            .arg("sample")
            .arg(&dir.path)
            .args(["--max-bytes", &bytes, "--temperature", "0", "--stats"])
            .args(["--device", device])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if !status.as_ref().is_ok_and(|s| s.success()) {
            crate::say!("{}: generation not measured ({status:?})", cell.name);
        }
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

fn cell_flops(cell: &PlannedCell) -> f64 {
    cell.config.total_train_flops()
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
