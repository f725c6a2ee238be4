//! What a sweep's files say, one folder per study: each study has its analysis (written to
//! `analysis.json`), its report (`report.md`) and its figures. Beside them, what the studies
//! share: loading the run files, statistics, fits, sequential tests and Markdown.
//!
//! - [`scaling`]: arms compared at matched compute across sizes, paired by seed;
//! - [`lr`]: loss and stability against the learning rate;
//! - [`recipe`]: recipe levers (distillation, averaging) against a baseline;
//! - [`isoflop`]: compute-optimal frontiers from IsoFLOP profiles;
//! - [`decisive`]: the `--until-decisive` record of sequential looks.

pub mod decisive;
pub mod figure;
pub mod fit;
pub mod isoflop;
pub mod load;
pub mod lr;
pub mod markdown;
pub mod recipe;
pub mod scaling;
pub mod sequential;
pub mod stats;
pub mod study;
