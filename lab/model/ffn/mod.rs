//! Swappable feed-forwards, and the registry the rest of the lab goes through.
//!
//! Two feed-forward kinds (`[ffn] kind = ...`): `dense` (one SwiGLU, [`dense`]) and `moe`
//! (experts behind a router, [`moe`]); an MoE's router is itself a registered variant
//! ([`router`]: top-k, sigmoid, loss-free, expert-choice, ...), and its experts may be
//! fine-grained and shared. The block, the FLOP and parameter counts, logging and sweeps use
//! the methods below and never match on a kind themselves; each kind's own logic lives in its
//! file.

pub mod dense;
mod layer;
mod matching;
pub mod moe;
mod output;
pub mod router;
pub mod spec;

pub use dense::SwiGlu;
pub use dense::spec::{DenseSpec, DffSpec, MATCH_TOLERANCE, MatchRule};
pub use layer::FeedForward;
pub use moe::{Capacity, Experts, MoeConfig, MoeLayer, MoeSpec};
pub use output::{FfnInput, FfnOutput, MoeAux, RouterStats};
pub use router::{Router, RouterSpec, Routing};
pub use spec::FfnSpec;
