//! The model: token embedding → n_layers × [`Block`] → final RMSNorm → LM head.
//!
//! Every block has the LLaMA-3 shape (pre-RMSNorm, RoPE, grouped-query causal attention) and a
//! swappable feed-forward ([`ffn::FeedForward`]): a dense SwiGLU or a Mixture-of-Experts.
//!
//! Shapes, one notation throughout the model: in the doc comment of the function or field,
//! in brackets, with these letters (variables stay plain snake_case; the shape is written
//! once where the tensor enters, not carried in every name, and rustc's naming lint stays
//! on):
//! - `B` sequences in a batch, `T` positions, `N = B·T` tokens, `d` model width, `V` the
//!   vocabulary;
//! - `H` query heads, `H_kv` key/value heads, `d_h` head width;
//! - `K` experts, `k` experts per token, `S = N·k` token-slots, `C` slots per expert, `f` an
//!   feed-forward's hidden width (`d_ff`, or an expert's `d_expert`).
//!
//! E.g. `x: [B, T, d]`, `scores: [B, H, T, T]`, `chosen: [N, k]`, `buffers: [K, C, d]`.

pub mod attention;
pub mod block;
pub mod ffn;
pub mod init;
pub mod rope;
pub mod shape;
pub mod spec;
pub mod transformer;

pub use block::Block;
pub use ffn::{FeedForward, RouterStats};
pub use shape::{model_shape, model_shape_with};
pub use spec::{BYTE_VOCAB, InitScheme, ModelSpec};
pub use transformer::{ModelOutput, Transformer};
