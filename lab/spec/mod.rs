//! Run specs: the TOML a researcher writes, parsed strictly (unknown fields are errors) and
//! resolved into a [`RunConfig`] in which every default is filled in, the dense arm's `d_ff` is
//! derived where asked, and a FLOP budget is turned into whole steps.

mod resolve;
mod types;

pub use resolve::{
    MATCH_TOLERANCE, RunConfig, capacity_slots, model_shape, model_shape_with, packed_block_rows,
    packed_rows, resolve, resolve_spec, resolve_str,
};
pub use types::*;
