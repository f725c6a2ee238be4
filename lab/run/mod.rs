//! A run directory's files, as typed values: the interface between training and everything
//! after it. The training loop writes them; the analysis, the sweep and the plots read them
//! back with the same types, so a column or a summary field is declared once.
//!
//! - `config.toml`: the resolved run spec (`spec::RunConfig::spec_toml`);
//! - `metrics.csv`, `evals.csv`, `router.csv`, `router_domains.csv`, `router_state.csv`,
//!   `probes.csv`:
//!   [`rows`], appended and flushed as written ([`log`]);
//! - `summary.json`: [`summary::Summary`], written atomically;
//! - `model/`: the final weights of a completed run ([`model_file`]);
//! - `checkpoint/`: owned by the training loop;
//! - a sweep's `sweep.json`, beside its run directories: [`manifest::Manifest`].

pub mod dir;
pub mod generation;
pub mod log;
pub mod manifest;
pub mod model_file;
pub mod rows;
pub mod summary;

pub use dir::{RunDir, write_atomic};
pub use log::{RowLog, read_rows};
pub use manifest::{Cell, LeverAim, MANIFEST, Manifest, MixTarget, Mixture};
pub use rows::{EvalRow, MetricRow, ProbeRow, RouterDomainRow, RouterRow, RouterStateRow, Row};
pub use summary::{RunStatus, Summary};
