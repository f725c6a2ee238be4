//! How to run one training job: where, on what device, and the test hooks.

use super::device::LabDevice;
use crate::run::RunDir;

/// How to run one training job.
pub struct TrainOptions {
    pub run_dir: RunDir,
    pub device: LabDevice,
    /// Show a progress bar on the terminal.
    pub progress: bool,
    /// Continue from `checkpoint/` if there is one (else start afresh).
    pub resume: bool,
    /// Stop (as if killed) after this many steps: for tests of resumption.
    pub stop_after: Option<usize>,
    /// Stop (as if killed) when the parent process goes away: a sweep's cells must not outlive
    /// the sweep, or a rerun would find a stray process writing the same run directory.
    pub exit_with_parent: bool,
}
