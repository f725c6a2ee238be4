//! `lab sweep NAME --status`: each cell's state from its run directory (summary and lock),
//! and, for a sweep submitted with `--slurm`, its array task's state from `squeue` and
//! `sacct` where those answer.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use super::experiment::Plan;
use super::lock::live_holder;
use super::slurm::{JOBS, SLURM_DIR, Submitted};
use crate::run::{RunDir, RunStatus};

#[derive(Debug, Clone, PartialEq)]
pub enum CellState {
    Done,
    Diverged,
    /// A live process holds the cell's lock (its holder line).
    Running(String),
    /// Started and stopped before the end (killed, preempted): a rerun resumes it.
    Interrupted {
        steps_done: usize,
    },
    /// Its Slurm task ended without finishing it (sacct's state, or gone from the queue).
    Failed(String),
    Pending,
}

#[derive(Debug, Clone)]
pub struct CellStatus {
    pub name: String,
    pub steps: usize,
    pub state: CellState,
    /// The array task and its Slurm state (`12_3 RUNNING`), for a `--slurm` sweep.
    pub slurm: Option<String>,
}

/// Every cell of `plan` under `root` (`results/<exp>`).
pub fn status(plan: &Plan, root: &Path) -> Vec<CellStatus> {
    let slurm = slurm_states(&root.join(SLURM_DIR).join(JOBS));
    plan.cells
        .iter()
        .map(|cell| {
            let dir = RunDir::new(root.join(cell.name()));
            let task = slurm.get(cell.name()).cloned();
            CellStatus {
                name: cell.name().to_string(),
                steps: cell.config.steps,
                state: state(&dir, task.as_ref()),
                slurm: task.map(|(id, s)| format!("{id} {s}")),
            }
        })
        .collect()
}

fn state(dir: &RunDir, task: Option<&(String, String)>) -> CellState {
    let summary = dir.read_summary().ok().flatten();
    match summary.as_ref().map(|s| s.status) {
        Some(RunStatus::Complete) => return CellState::Done,
        Some(RunStatus::Diverged) => return CellState::Diverged,
        _ => {}
    }
    if let Some(holder) = live_holder(&dir.path) {
        return CellState::Running(holder);
    }
    if let Some((_, s)) = task {
        let ended = [
            "FAILED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
            "NODE_FAIL",
            "CANCELLED",
            "ENDED",
        ];
        if ended.iter().any(|e| s.starts_with(e)) {
            return CellState::Failed(s.clone());
        }
    }
    match summary {
        Some(s) => CellState::Interrupted {
            steps_done: s.steps_done,
        },
        None => CellState::Pending,
    }
}

/// Cell name → (array task id, Slurm state): `squeue` for queued and running tasks, then
/// `sacct` (if accounting is on) for ended ones; a submitted task in neither is `ENDED` (out of the queue: finished, failed or cancelled).
fn slurm_states(jobs: &Path) -> HashMap<String, (String, String)> {
    let Some(sub) = std::fs::read_to_string(jobs)
        .ok()
        .and_then(|t| serde_json::from_str::<Submitted>(&t).ok())
    else {
        return HashMap::new();
    };
    let Some(array) = sub.array_job.clone() else {
        return HashMap::new();
    };
    let mut by_task: HashMap<usize, String> = HashMap::new();
    let sacct = ["-n", "-P", "-X", "-j", &array, "-o", "JobID,State"];
    for line in lines("sacct", &sacct) {
        let mut f = line.split('|');
        if let (Some(id), Some(s)) = (f.next(), f.next())
            && let Some(task) = id.strip_prefix(&format!("{array}_"))
            && let Ok(t) = task.parse()
        {
            by_task.insert(t, s.to_string());
        }
    }
    let queue = lines("squeue", &["-h", "-r", "-j", &array, "-o", "%K|%T"]);
    let queried = !queue.is_empty() || which("squeue");
    for line in queue {
        if let Some((task, s)) = line.split_once('|')
            && let Ok(t) = task.trim().parse()
        {
            by_task.insert(t, s.trim().to_string());
        }
    }
    sub.cells
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let s = by_task
                .get(&i)
                .cloned()
                .or(queried.then(|| "ENDED".into()))?;
            Some((name.clone(), (format!("{array}_{i}"), s)))
        })
        .collect()
}

/// Stdout lines of a command that succeeded; none if it is missing or failed.
fn lines(cmd: &str, args: &[&str]) -> Vec<String> {
    match Command::new(cmd).args(args).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn which(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
