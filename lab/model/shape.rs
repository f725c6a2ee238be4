//! The accounting view of a model: its [`ModelShape`] (parameter and FLOP counts come from
//! `compute`), built from the model's and the feed-forward's specs.

use super::ffn::FfnSpec;
use super::ffn::moe::Dispatch;
use super::spec::ModelSpec;
use crate::compute::ModelShape;

/// The shape of a (validated) model for steps of `tokens_per_step` tokens, token-choice MoE
/// layers counted as the grouped matmul executes them, on flex and on wgpu alike: the routed
/// rows (kept rows under a capacity, as an upper bound). Other dispatches: [`model_shape_with`].
pub fn model_shape(model: &ModelSpec, ffn: &FfnSpec, tokens_per_step: usize) -> ModelShape {
    model_shape_with(model, ffn, tokens_per_step, Dispatch::Grouped)
}

/// [`model_shape`] with token-choice MoE layers dispatched by `dispatch`.
pub fn model_shape_with(
    model: &ModelSpec,
    ffn: &FfnSpec,
    tokens_per_step: usize,
    dispatch: Dispatch,
) -> ModelShape {
    let layers = (0..model.n_layers)
        .map(|layer| ffn.layer_shape(layer, model.d_model, tokens_per_step, dispatch))
        .collect();
    ModelShape {
        d_model: model.d_model,
        n_heads: model.n_heads,
        n_kv_heads: model.kv_heads(),
        head_dim: model.head_dim(),
        seq_len: model.seq_len,
        vocab_size: model.vocab_size(),
        tie_embeddings: model.tie_embeddings,
        layers,
    }
}
