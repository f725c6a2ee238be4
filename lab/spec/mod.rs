//! Run specs: the TOML a researcher writes, parsed strictly (unknown fields are errors) and
//! resolved into a [`RunConfig`] in which every default is filled in, the dense arm's `d_ff` is
//! derived where asked, and a FLOP budget is turned into whole steps. The sections' types live
//! with the code they configure (`model`, `model::ffn`, `data`) and are re-exported here, so a
//! run spec reads as one schema.

mod distill;
mod resolve;
pub mod stages;
mod types;

pub use distill::DistillSpec;
pub use resolve::{RunConfig, resolve, resolve_spec, resolve_str, teacher_forward_per_token};
pub use types::*;

pub use crate::data::{DataSpec, DomainWeights, SourceKind};
pub use crate::model::ffn::{
    Capacity, DenseSpec, DffSpec, FfnSpec, MATCH_TOLERANCE, MatchRule, MoeSpec, RouterSpec,
};
pub use crate::model::{BYTE_VOCAB, ModelSpec};
