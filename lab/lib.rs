//! moe-lab: a workbench for dense-vs-Mixture-of-Experts experiments on small language models.
//!
//! Data flows one way: a spec ([`spec`]) is resolved into a full configuration, the model
//! ([`model`]) is trained on a token source ([`data`]) by the loop in [`train`], which writes a
//! run directory; everything after training reads those files only.

pub mod analysis;
pub mod bench;
pub mod cli;
pub mod compute;
pub mod data;

pub mod error;
pub mod export;
pub mod kernels;
pub mod limits;
pub mod model;
pub mod page;
pub mod plot;
pub mod publish;
pub mod run;
pub mod sample;
pub mod say;
pub mod simd;
pub mod spec;
pub mod sweep;
pub mod train;
