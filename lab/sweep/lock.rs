//! One sweep per experiment at a time: `results/<experiment>/.lock` holds the owner's pid,
//! host and start time; and one process per cell: `results/<experiment>/<cell>/.lock`. A lock
//! whose process is gone (same host) is stale and taken over, and so is one held by the same
//! Slurm array task (`slurm=<job>_<task>`): a requeued task is its own successor, possibly on
//! another node.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Held for as long as this value lives; removed on drop.
pub struct SweepLock {
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: another sweep holds this experiment ({holder}); wait for it or stop it")]
pub struct LockedError {
    pub path: PathBuf,
    pub holder: String,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// This process's Slurm array task (`<array job>_<task>`) or job id, if Slurm started it.
fn slurm_task() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// Whether the holder line `holder` belongs to a process that is gone, or to this same Slurm
/// task in an earlier attempt.
fn stale(holder: &str) -> bool {
    let field = |key: &str| {
        holder
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).map(str::to_string))
    };
    if let (Some(theirs), Some(ours)) = (field("slurm="), slurm_task())
        && theirs == ours
    {
        return true;
    }
    let pid = field("pid=").and_then(|p| p.parse::<u32>().ok());
    let same_host = field("host=").as_deref() == Some(hostname().as_str());
    matches!((pid, same_host), (Some(pid), true) if !alive(pid))
}

/// The holder of `dir`'s lock if one is held by a live process (as far as this host can
/// tell: a holder on another host counts as live).
pub fn live_holder(dir: &Path) -> Option<String> {
    let holder = std::fs::read_to_string(dir.join(".lock")).ok()?;
    let holder = holder.trim().to_string();
    (!stale(&holder)).then_some(holder)
}

impl SweepLock {
    pub fn acquire(dir: &Path) -> anyhow::Result<SweepLock> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(".lock");
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let since = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    let slurm = slurm_task().map_or(String::new(), |t| format!(" slurm={t}"));
                    writeln!(
                        f,
                        "pid={} host={} since={since}{slurm}",
                        std::process::id(),
                        hostname()
                    )?;
                    return Ok(SweepLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = holder.trim().to_string();
                    if stale(&holder) {
                        crate::say!("note: removing stale lock ({holder})");
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    return Err(LockedError { path, holder }.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("{}: could not take the lock", path.display())
    }
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
