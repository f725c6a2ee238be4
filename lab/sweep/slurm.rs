//! Sweeps on a Slurm cluster: `lab sweep NAME --slurm` writes `results/<exp>/slurm/`, a job
//! array with one task per unfinished cell and an analysis job that runs after it
//! (`afterany`), and submits both with `sbatch`.
//!
//! Each array task runs `lab sweep NAME --cell CELL`: the code path of a local sweep's cell
//! (config check, resume from the checkpoint, the cell's lock), on the binary that wrote the
//! scripts (a shared filesystem is assumed, as on any cluster: the binary, `experiments/` and
//! `results/` must be visible from the compute nodes at the same paths). Preemption and
//! `scontrol requeue` send SIGTERM: the cell checkpoints and the task is requeued (`--requeue`);
//! before the time limit Slurm sends SIGUSR1 (`--signal=B:USR1@…`) to the task's shell, which
//! passes it on, and requeues the task itself once the cell has checkpointed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::experiment::Plan;
use super::runner::{SweepOptions, unfinished_cells};
use crate::error::SpecError;
use crate::run::write_atomic;

/// `--slurm`'s options, as `sbatch` takes them.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    /// Wall-clock limit per task (`--time`, e.g. `2:00:00`).
    pub time: Option<String>,
    pub gpus_per_task: Option<u32>,
    pub cpus_per_task: Option<u32>,
    /// Tasks of the array running at once (`--array=…%N`).
    pub max_parallel: Option<usize>,
    /// Seconds before the time limit at which a task is told to checkpoint (SIGUSR1).
    pub warn_seconds: u32,
    /// The sweep's `lab` arguments the tasks repeat: experiment, preset, results and plots
    /// directories, device, checkpoint interval.
    pub experiment: PathBuf,
    /// `--preset` as the user gave it (`None`: the experiment's default).
    pub preset: Option<String>,
    pub plots: PathBuf,
}

/// `slurm/jobs.json`: what was submitted (read by `--status`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Submitted {
    /// The teacher's job (a one-task array the cells' array waits for), in an experiment
    /// with an unfinished `[teacher]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_job: Option<String>,
    /// The array job's id; `None` when no cell was left to run.
    pub array_job: Option<String>,
    pub analysis_job: String,
    /// Task i of the array runs `cells[i]`.
    pub cells: Vec<String>,
}

/// The scripts written for one submission.
#[derive(Debug, Clone)]
pub struct SlurmScripts {
    pub dir: PathBuf,
    /// The teacher's one-task array, when the experiment has an unfinished teacher.
    pub teacher: Option<PathBuf>,
    /// `None` when every cell is finished.
    pub array: Option<PathBuf>,
    pub analysis: PathBuf,
    pub cells: Vec<String>,
}

pub const SLURM_DIR: &str = "slurm";
pub const JOBS: &str = "jobs.json";

/// Check the plan's cells (as a local sweep does), write the manifest and the scripts.
pub fn write_scripts(
    plan: &Plan,
    opts: &SweepOptions,
    slurm: &SlurmOptions,
) -> Result<SlurmScripts> {
    let root = absolute(&opts.results_root.join(&plan.results_name))?;
    let (todo, _) = unfinished_cells(plan, &root, opts.checkpoint_every)?;
    let dir = root.join(SLURM_DIR);
    std::fs::create_dir_all(dir.join("logs"))?;
    let (teacher, cells): (Vec<String>, Vec<String>) = todo
        .iter()
        .map(|c| c.name().to_string())
        .partition(|c| plan.teacher.as_ref() == Some(c));
    let lab = Lab::new(opts, slurm)?;
    let write = |file: &str, cells: &[String], job: String| -> Result<Option<PathBuf>> {
        if cells.is_empty() {
            return Ok(None);
        }
        let path = dir.join(file);
        write_atomic(
            &path,
            array_script(&lab, slurm, cells, &dir, &job).as_bytes(),
        )?;
        Ok(Some(path))
    };
    let teacher = write(
        "teacher.sbatch",
        &teacher,
        format!("{}-teacher", plan.results_name),
    )?;
    let array = write("cells.sbatch", &cells, plan.results_name.clone())?;
    let analysis = dir.join("analysis.sbatch");
    write_atomic(
        &analysis,
        analysis_script(&lab, plan, slurm, &dir).as_bytes(),
    )?;
    Ok(SlurmScripts {
        dir,
        teacher,
        array,
        analysis,
        cells,
    })
}

/// Submit the teacher (if any), the array after it (`afterok`: the distilling cells need its
/// final model), then the analysis job after the array; write `jobs.json`.
pub fn submit(scripts: &SlurmScripts) -> Result<Submitted> {
    let teacher_job = scripts
        .teacher
        .as_deref()
        .map(|t| sbatch(&[], t))
        .transpose()?;
    let after_teacher = teacher_job
        .as_ref()
        .map(|id| format!("--dependency=afterok:{id}"));
    let array_job = scripts
        .array
        .as_deref()
        .map(|a| sbatch(after_teacher.as_slice(), a))
        .transpose()?;
    let after = array_job
        .as_ref()
        .or(teacher_job.as_ref())
        .map(|id| format!("--dependency=afterany:{id}"));
    let analysis_job = sbatch(after.as_slice(), &scripts.analysis)?;
    let submitted = Submitted {
        teacher_job,
        array_job,
        analysis_job,
        cells: scripts.cells.clone(),
    };
    let json = serde_json::to_string_pretty(&submitted)?;
    write_atomic(&scripts.dir.join(JOBS), json.as_bytes())?;
    Ok(submitted)
}

/// `sbatch --parsable ARGS SCRIPT` → the job id.
fn sbatch(args: &[String], script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .map_err(|e| {
            anyhow::Error::from(SpecError::Field {
                file: script.to_path_buf(),
                field: "--slurm".into(),
                message: format!(
                    "cannot run sbatch ({e}): --slurm needs Slurm's commands on PATH; \
                     --slurm --dry-run writes the scripts only"
                ),
            })
        })?;
    anyhow::ensure!(
        out.status.success(),
        "sbatch {}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints `id` or `id;cluster`.
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    anyhow::ensure!(!id.is_empty(), "sbatch printed no job id");
    Ok(id)
}

/// How the scripts call the lab: absolute paths, so tasks run from any directory.
struct Lab {
    exe: PathBuf,
    experiment: PathBuf,
    out: PathBuf,
    plots: PathBuf,
    workdir: PathBuf,
    preset: Option<String>,
    device: &'static str,
    checkpoint_every: usize,
}

impl Lab {
    fn new(opts: &SweepOptions, slurm: &SlurmOptions) -> Result<Lab> {
        Ok(Lab {
            exe: absolute(&opts.lab_exe)?,
            experiment: absolute(&slurm.experiment)?,
            out: absolute(&opts.results_root)?,
            plots: absolute(&slurm.plots)?,
            workdir: std::env::current_dir()?,
            preset: slurm.preset.clone(),
            device: opts.devices[0].name(),
            checkpoint_every: opts.checkpoint_every,
        })
    }

    /// `lab <command> EXPERIMENT [--preset P] --out OUT`, to add the rest of the flags to.
    fn command(&self, command: &str) -> String {
        let preset = self
            .preset
            .as_deref()
            .map_or(String::new(), |p| format!(" --preset {}", shell_word(p)));
        format!(
            "{} {command} {}{preset} --out {}",
            quote(&self.exe),
            quote(&self.experiment),
            quote(&self.out)
        )
    }
}

/// `#SBATCH` lines every job of the sweep shares.
fn common_directives(slurm: &SlurmOptions, lab: &Lab) -> String {
    let mut d = format!("#SBATCH --chdir={}\n", lab.workdir.display());
    if let Some(p) = &slurm.partition {
        d += &format!("#SBATCH --partition={p}\n");
    }
    if let Some(c) = slurm.cpus_per_task {
        d += &format!("#SBATCH --cpus-per-task={c}\n");
    }
    d
}

/// A job array over `cells` (task i runs `cells[i]`), named `lab-<job>`.
fn array_script(
    lab: &Lab,
    slurm: &SlurmOptions,
    cells: &[String],
    dir: &Path,
    job: &str,
) -> String {
    let last = cells.len() - 1;
    let limit = slurm
        .max_parallel
        .map_or(String::new(), |m| format!("%{m}"));
    let mut d = format!(
        "#SBATCH --job-name=lab-{job}\n#SBATCH --array=0-{last}{limit}\n\
         #SBATCH --output={}/logs/cell-%A_%a.out\n#SBATCH --open-mode=append\n\
         #SBATCH --requeue\n#SBATCH --signal=B:USR1@{}\n",
        dir.display(),
        slurm.warn_seconds
    );
    d += &common_directives(slurm, lab);
    if let Some(t) = &slurm.time {
        d += &format!("#SBATCH --time={t}\n");
    }
    if let Some(g) = slurm.gpus_per_task {
        d += &format!("#SBATCH --gpus-per-task={g}\n");
    }
    let names: Vec<String> = cells.iter().map(|c| shell_word(c)).collect();
    let run = format!(
        "{} --devices {} --checkpoint-every {} --cell \"$cell\"",
        lab.command("sweep"),
        lab.device,
        lab.checkpoint_every
    );
    format!(
        "#!/bin/bash\n{d}\n{}\ncells=({})\ncell=${{cells[$SLURM_ARRAY_TASK_ID]}}\n{}\n{run} &\n{}",
        CELL_PREAMBLE,
        names.join(" "),
        THREADS,
        CELL_WAIT
    )
}

const CELL_PREAMBLE: &str = "# Written by `lab sweep --slurm`: task i trains cells[i] through `lab sweep --cell`
# (resume, lock and config checks as in a local sweep). SIGTERM (preemption, requeue) and
# SIGUSR1 (before the time limit) make the cell checkpoint and exit 5; after SIGUSR1 the task
# requeues itself, after a preemption Slurm requeues it (--requeue).
set -u
echo \"task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} (job ${SLURM_JOB_ID}, restart ${SLURM_RESTART_COUNT:-0}) on $(hostname) at $(date -Is)\"";

const THREADS: &str = "if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then export RAYON_NUM_THREADS=$SLURM_CPUS_PER_TASK; fi";

const CELL_WAIT: &str = "pid=$!
warned=0
trap 'warned=1; kill -USR1 $pid 2>/dev/null' USR1
trap 'kill -TERM $pid 2>/dev/null' TERM
wait $pid; code=$?
# A trapped signal ends `wait` early (status > 128): wait for the cell's own exit.
while [ $code -gt 128 ] && kill -0 $pid 2>/dev/null; do wait $pid; code=$?; done
echo \"cell $cell: exit $code at $(date -Is)\"
if [ $code -eq 5 ] && [ $warned -eq 1 ]; then
    scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"
fi
exit $code
";

fn analysis_script(lab: &Lab, plan: &Plan, slurm: &SlurmOptions, dir: &Path) -> String {
    let mut d = format!(
        "#SBATCH --job-name=lab-{}-analysis\n#SBATCH --output={}/logs/analysis-%j.out\n",
        plan.results_name,
        dir.display()
    );
    d += &common_directives(slurm, lab);
    let plots = format!("--plots {}", quote(&lab.plots));
    format!(
        "#!/bin/bash\n{d}\n# Written by `lab sweep --slurm`: after every cell task has ended \
         (afterany), the analysis and figures\n# from whatever finished; rerun `lab sweep \
         --slurm` for cells that did not.\nset -eu\n{} {plots}\n{} {plots}\n",
        lab.command("analyze"),
        lab.command("plot"),
    )
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("{}: no absolute path", p.display()))
}

fn quote(p: &Path) -> String {
    shell_word(&p.display().to_string())
}

/// `s` as one shell word (single-quoted unless plainly safe).
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
