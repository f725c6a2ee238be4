//! One sweep per experiment at a time: `results/<experiment>/.lock` holds the owner's pid,
//! host and start time. A lock whose process is gone (same host) is stale and taken over.

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
                    writeln!(
                        f,
                        "pid={} host={} since={since}",
                        std::process::id(),
                        hostname()
                    )?;
                    return Ok(SweepLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = holder.trim().to_string();
                    let pid = holder
                        .split_whitespace()
                        .find_map(|kv| kv.strip_prefix("pid="))
                        .and_then(|p| p.parse::<u32>().ok());
                    let same_host = holder.contains(&format!("host={}", hostname()));
                    if let (Some(pid), true) = (pid, same_host)
                        && !alive(pid)
                    {
                        eprintln!("note: removing stale lock ({holder})");
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
