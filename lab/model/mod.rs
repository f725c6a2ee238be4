//! The model: token embedding → n_layers × [`Block`] → final RMSNorm → LM head.
//!
//! Every block has the LLaMA-3 shape (pre-RMSNorm, RoPE, grouped-query causal attention) and a
//! swappable feed-forward ([`ffn::FeedForward`]): a dense SwiGLU or a Mixture-of-Experts.

pub mod attention;
pub mod block;
pub mod ffn;
pub mod flop_meter;
pub mod fused;
pub mod init;
pub mod rope;
pub mod shape;
pub mod spec;
pub mod transformer;

pub use block::Block;
pub use ffn::{FeedForward, RouterStats};
pub use shape::{model_shape, model_shape_with};
pub use spec::{InitScheme, ModelSpec, VOCAB_SIZE};
pub use transformer::{ModelOutput, Transformer};
