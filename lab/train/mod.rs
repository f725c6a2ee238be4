//! The training loop: AdamW with decoupled weight decay on matrices only, a warmup + cosine or
//! WSD schedule, global gradient-norm clipping, periodic evaluation, spike detection, memory
//! probes, router statistics and checkpoints, all logged to a run directory ([`crate::run`]).
//!
//! [`train`] is the loop, one screen long; [`trainer::Trainer`] holds the run's state and does
//! each part.

pub mod average;
pub mod checkpoint;
pub mod device;
pub mod distill;
pub mod evaluate;
pub mod interrupt;
pub mod logs;
pub mod loop_state;
pub mod memory;
mod options;
pub mod router_stats;
pub mod schedule;
pub mod spikes;
pub mod step;
pub mod trainer;

use anyhow::Result;

pub use evaluate::{Evaluation, evaluate};
pub use options::TrainOptions;
pub use step::{StepBatch, StepOutput, optimizer, train_step};

use crate::run::Summary;
use crate::spec::RunConfig;
use trainer::{StepReport, Trainer};

/// Train the run `config` describes; write its run directory; return its summary. A diverged
/// run returns `Ok` with `status = Diverged`; a run stopped by a signal ([`interrupt`])
/// checkpoints and returns `Ok` with `status = Running`.
pub fn train(config: &RunConfig, opts: TrainOptions) -> Result<Summary> {
    let mut run = Trainer::open(config, &opts)?;
    let parent = std::os::unix::process::parent_id();
    while let Some(step) = run.next_step() {
        let orphaned = opts.exit_with_parent && std::os::unix::process::parent_id() != parent;
        if orphaned || opts.stop_after.is_some_and(|n| step >= n) {
            return Ok(run.abandon());
        }
        if interrupt::requested() {
            return run.interrupt();
        }
        if let StepReport::Diverged = run.step(step)? {
            break;
        }
        if run.eval_due(step) {
            run.evaluate(step)?;
        }
        run.advance(step);
        if run.checkpoint_due() {
            run.checkpoint()?;
        }
    }
    run.finish()
}
