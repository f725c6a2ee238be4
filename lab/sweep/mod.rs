//! Sweeps: expand an experiment into cells, run them (resumably, under a lock), then analyse
//! and plot the results.

pub mod arm;
pub mod cells;
pub mod experiment;
pub mod forecast;
pub mod frozen;
pub mod isoflop;
pub mod lock;
pub mod mix_check;
pub mod mixtures;
pub mod recipe;
pub mod runner;
pub mod slurm;
pub mod spec;
pub mod status;

pub use crate::run::Cell;
pub use experiment::{ExperimentSpec, MixCheck, Plan, PlannedCell, plan, plan_with_seeds};
pub use runner::{SweepOptions, SweepOutcome, run_sweep};
