//! Faults that must not lose or falsify a result: checkpoints cut short or overwritten with
//! garbage are detected before anything is loaded from them; the run falls back to the previous
//! checkpoint, or restarts, and ends with exactly the losses of an uninterrupted run.

use crate::common;

use std::path::Path;

use common::{MOE, config, flex_options, tiny_spec};
use moe_lab::train::train;

/// The `loss` column of a run's `metrics.csv`, as written.
fn losses(dir: &Path) -> Vec<f64> {
    common::losses(dir)
}

/// Overwrite the middle of `file` with garbage, keeping its length.
fn scribble(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b = !*b;
    }
    std::fs::write(file, bytes).unwrap();
}

fn truncate(file: &Path) {
    let bytes = std::fs::read(file).unwrap();
    std::fs::write(file, &bytes[..100.min(bytes.len())]).unwrap();
}

#[test]
fn corrupt_checkpoints_fall_back_or_restart_to_the_uninterrupted_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let text =
        tiny_spec("faults", MOE, "").replace("steps = 20", "steps = 24\ncheckpoint_every = 4");
    let cfg = config(&text);
    let whole_dir = tmp.path().join("whole");
    let whole = train(&cfg, flex_options(&whole_dir, false, None)).unwrap();
    type Fault = fn(&Path);
    // Each fault, and the step the run must resume from (none: it restarts).
    let cases: [(&str, Fault, &[usize]); 4] = [
        // The newest checkpoint's optimizer cut to 100 bytes: fall back to the previous one.
        (
            "truncated",
            |c| truncate(&c.join("checkpoint/optimizer.bpk")),
            &[8],
        ),
        // Same length, different bytes: only the checksum can tell.
        (
            "scribbled",
            |c| scribble(&c.join("checkpoint/model.bpk")),
            &[8],
        ),
        (
            "state",
            |c| std::fs::write(c.join("checkpoint/loop_state.json"), "{").unwrap(),
            &[8],
        ),
        // Both checkpoints bad: restart from step 0.
        (
            "both",
            |c| {
                scribble(&c.join("checkpoint/model.bpk"));
                truncate(&c.join("checkpoint.prev/optimizer.bpk"));
            },
            &[],
        ),
    ];
    for (name, fault, resumed_from) in cases {
        let dir = tmp.path().join(name);
        // "Killed" after 13 steps: checkpoints at 12 (current) and 8 (previous).
        let partial = train(&cfg, flex_options(&dir, true, Some(13))).unwrap();
        assert_eq!(partial.steps_done, 13);
        assert!(
            dir.join("checkpoint.prev").exists(),
            "{name}: previous kept"
        );
        fault(&dir);
        let resumed = train(&cfg, flex_options(&dir, true, None))
            .unwrap_or_else(|e| panic!("{name}: the resume failed: {e:#}"));
        assert_eq!(
            resumed.resumed_from, resumed_from,
            "{name}: where it resumed"
        );
        assert_eq!(resumed.final_val_loss, whole.final_val_loss, "{name}");
        assert_eq!(resumed.steps_done, 24, "{name}");
        assert_eq!(
            losses(&dir),
            losses(&whole_dir),
            "{name}: every step's loss"
        );
        assert!(
            !dir.join("checkpoint").exists() && !dir.join("checkpoint.prev").exists(),
            "{name}: a finished run keeps no checkpoint"
        );
    }
}

/// A healthy run on a headless machine prints no line that says "error" (the wgpu adapter
/// probe's window-system noise is silenced; the variable it wants is unset here on purpose).
#[test]
fn healthy_commands_print_no_error() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("ok.toml");
    std::fs::write(&spec, tiny_spec("ok", MOE, "")).unwrap();
    let spec = spec.to_str().unwrap();
    let out = tmp.path().join("out");
    let out = out.to_str().unwrap();
    let commands: [&[&str]; 2] = [
        &["devices"],
        &[
            "train", "--spec", spec, "--steps", "3", "--quiet", "--out", out,
        ],
    ];
    for args in commands {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{args:?}: {stderr}");
        assert!(
            !stderr.to_lowercase().contains("error"),
            "{args:?} printed:\n{stderr}"
        );
    }
}

/// Where no tmpfs can be mounted (not root, or a sandbox that forbids it) the disk tests
/// skip, saying so; CI sets `MOE_LAB_REQUIRE_MOUNT=1`, which makes that a failure.
fn no_mount() {
    if std::env::var("MOE_LAB_REQUIRE_MOUNT").is_ok_and(|v| v == "1") {
        panic!(
            "mounting a tmpfs failed and MOE_LAB_REQUIRE_MOUNT=1: run as root where mount is allowed"
        );
    }
    eprintln!(
        "SKIPPED: mounting a tmpfs needs root (MOE_LAB_REQUIRE_MOUNT=1 makes this a failure)"
    );
}

/// A tmpfs of `kib` KiB mounted at `dir` for the life of the value (root only).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, kib: usize) -> Option<SmallDisk> {
        Self::mount_with(dir, &format!("size={kib}k"))
    }

    fn mount_with(dir: &Path, options: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).ok()?;
        let size = options;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", size, "tmpfs", dir.to_str()?])
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?
            .success();
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A disk that fills up mid-run: `lab train` exits 1 with the reason, `config.toml` and
/// `summary.json` are whole or absent (never half-written), and the run, moved to a disk with
/// room, resumes to the losses of a run that never failed.
#[test]
fn a_full_disk_fails_cleanly_and_the_run_resumes_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&tmp.path().join("small"), 24) else {
        return no_mount();
    };
    let text =
        tiny_spec("full", MOE, "").replace("steps = 20", "steps = 40\ncheckpoint_every = 100");
    let spec = tmp.path().join("full.toml");
    std::fs::write(&spec, &text).unwrap();
    let lab = |run_dir: &Path, resume: bool| {
        let mut cmd = common::lab_train_flex(&spec);
        cmd.args(["--run-dir", run_dir.to_str().unwrap()]);
        if resume {
            cmd.arg("--resume");
        }
        cmd.output().unwrap()
    };
    let run = disk.0.join("run");
    let out = lab(&run, false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    if let Ok(t) = std::fs::read_to_string(run.join("config.toml")) {
        toml::from_str::<toml::Table>(&t).expect("config.toml whole");
    }
    if let Ok(t) = std::fs::read_to_string(run.join("summary.json")) {
        serde_json::from_str::<serde_json::Value>(&t).expect("summary.json whole");
    }
    // Moved to a disk with room, the run resumes (here from the start: no checkpoint yet).
    let moved = tmp.path().join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    for e in std::fs::read_dir(&run).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), moved.join(e.file_name())).unwrap();
    }
    drop(disk);
    assert!(lab(&moved, true).status.success());
    let whole = tmp.path().join("whole");
    assert!(lab(&whole, false).status.success());
    let loss = |d: &Path| {
        let s = std::fs::read_to_string(d.join("summary.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&s).unwrap()["final_val_loss"].as_f64()
    };
    assert_eq!(loss(&moved), loss(&whole));
}

/// A read-only results directory: exit 1 with the reason, nothing written.
#[test]
fn a_read_only_results_directory_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount_with(&tmp.path().join("ro"), "ro,size=64k") else {
        return no_mount();
    };
    let spec = tmp.path().join("ro.toml");
    std::fs::write(&spec, tiny_spec("ro", MOE, "")).unwrap();
    let out = common::lab_train_flex(&spec)
        .args(["--out", disk.0.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&disk.0).unwrap().count(),
        0,
        "nothing written"
    );
}

/// Rows in `metrics.csv` so far (0 before it exists).
fn rows(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .map_or(0, |t| t.lines().count().saturating_sub(1))
}

/// SIGUSR1 (Slurm's time-limit warning) and then SIGTERM (preemption, `scancel`) each stop a
/// `lab train` at a step boundary with a checkpoint and exit 5; `--resume` then finishes it
/// with exactly the losses of an uninterrupted run.
#[test]
fn signals_checkpoint_and_the_run_resumes_to_the_same_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tiny_spec("sig", MOE, "").replace("steps = 20", "steps = 400");
    let reference = tmp.path().join("reference");
    train(&config(&text), flex_options(&reference, false, None)).unwrap();
    let spec = tmp.path().join("sig.toml");
    std::fs::write(&spec, &text).unwrap();
    let dir = tmp.path().join("run");
    let mut stopped_at = Vec::new();
    for (signal, at_rows) in [(libc::SIGUSR1, 40), (libc::SIGTERM, 120)] {
        let mut child = common::lab_train_flex(&spec)
            .arg("--run-dir")
            .arg(&dir)
            .arg("--resume")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        while rows(&dir) < at_rows {
            assert!(
                child.try_wait().unwrap().is_none(),
                "finished before the signal"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // SAFETY: signalling a child this test started and has not yet reaped.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{err}");
        assert!(err.contains("checkpoint written"), "{err}");
        assert!(dir.join("checkpoint").exists());
        let summary = moe_lab::run::RunDir::new(&dir)
            .read_summary()
            .unwrap()
            .unwrap();
        assert!(summary.steps_done >= at_rows && summary.steps_done < 400);
        stopped_at.push(summary.steps_done);
    }
    let status = common::lab_train_flex(&spec)
        .arg("--run-dir")
        .arg(&dir)
        .arg("--resume")
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(losses(&dir), losses(&reference));
    // Each later attempt resumed where the signal stopped the one before.
    let summary = moe_lab::run::RunDir::new(&dir)
        .read_summary()
        .unwrap()
        .unwrap();
    assert_eq!(summary.resumed_from, stopped_at);
}
