//! Stop requests from outside: SIGTERM (a scheduler's preemption, `scancel`, `scontrol
//! requeue`, `kill`) and SIGUSR1 (Slurm's warning before a time limit, `--signal`). Once
//! [`install`]ed, either signal only sets a flag; the training loop checks it between steps,
//! writes a checkpoint and stops, so the run resumes (`--resume`) to the same losses. A second
//! signal changes nothing; SIGKILL still kills at once (the previous checkpoint survives).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The signals that ask a run to checkpoint and stop.
pub const SIGNALS: [i32; 2] = [signal_hook::consts::SIGTERM, signal_hook::consts::SIGUSR1];

/// Catch [`SIGNALS`] in this process from now on (idempotent).
pub fn install() -> std::io::Result<()> {
    let flag = REQUESTED.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for signal in SIGNALS {
        signal_hook::flag::register(signal, Arc::clone(flag))?;
    }
    Ok(())
}

/// Whether a stop was asked for since [`install`] (always false without it).
pub fn requested() -> bool {
    REQUESTED.get().is_some_and(|f| f.load(Ordering::SeqCst))
}
