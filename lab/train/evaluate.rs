//! Evaluation on every validation stream's fixed batches.

use burn::prelude::*;

use super::router_stats::RouterAccumulator;
use crate::data::Batches;
use crate::model::transformer::token_cross_entropy;
use crate::model::{ModelOutput, Transformer};

/// An evaluation: the mixture-weighted validation loss, the loss of every stream, and the
/// router's statistics on the validation batches.
pub struct Evaluation {
    pub val_loss: f64,
    pub by_stream: Vec<f64>,
    /// Loss on answer bytes only, for streams with answers (`None` for the others).
    pub answer_by_stream: Vec<Option<f64>>,
    pub router: RouterAccumulator,
}

/// Evaluate on every stream's fixed validation batches. `val_loss` weights the streams by their
/// base mixture weights (validation-only streams, such as held-out facts, are reported apart).
pub fn evaluate(
    model: &Transformer,
    batches: &Batches,
    count: usize,
    device: &Device,
) -> Evaluation {
    let valid = model.valid();
    let names = batches.stream_names();
    let mut sums = vec![(0.0f64, 0usize); names.len()];
    let mut answers = vec![(0.0f64, 0.0f64); names.len()];
    let mut router = RouterAccumulator::default();
    for vb in batches.validation(count) {
        let (x, y) = vb.batch.tensors(device);
        let out: ModelOutput = valid.forward(x);
        router.add(&out.moe, Some(vb.stream));
        let ce: Vec<f32> = token_cross_entropy(out.logits, y)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 losses");
        sums[vb.stream].0 += ce.iter().map(|v| *v as f64).sum::<f64>() / ce.len() as f64;
        sums[vb.stream].1 += 1;
        if let Some(mask) = &vb.batch.answer_mask {
            for (l, m) in ce.iter().zip(mask) {
                answers[vb.stream].0 += (*l * *m) as f64;
                answers[vb.stream].1 += *m as f64;
            }
        }
    }
    let by_stream: Vec<f64> = sums.iter().map(|(s, n)| s / (*n).max(1) as f64).collect();
    let answer_by_stream: Vec<Option<f64>> = answers
        .iter()
        .map(|(s, n)| (*n > 0.0).then(|| s / n))
        .collect();
    let weights = batches.weights();
    let total: f64 = weights.iter().sum();
    let val_loss = by_stream
        .iter()
        .zip(&weights)
        .map(|(l, w)| l * w)
        .sum::<f64>()
        / total;
    Evaluation {
        val_loss,
        by_stream,
        answer_by_stream,
        router,
    }
}
