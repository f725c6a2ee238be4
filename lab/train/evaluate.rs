//! Evaluation on every validation stream's fixed windows: losses with their standard errors,
//! and for question streams the loss on answer bytes and the exact-match rate of greedy
//! answers.

use burn::prelude::*;

use super::router_stats::RouterAccumulator;
use crate::data::{Batch, Batches};
use crate::model::transformer::token_cross_entropy;
use crate::model::{ModelOutput, Transformer};

/// An evaluation: the mixture-weighted validation loss, the loss of every stream, and the
/// router's statistics on the validation batches.
pub struct Evaluation {
    pub val_loss: f64,
    /// Standard error of `val_loss`: from the spread of the windows' losses within each stream
    /// (windows may overlap, so this is a lower bound).
    pub val_loss_se: f64,
    pub by_stream: Vec<f64>,
    pub se_by_stream: Vec<f64>,
    /// Loss on answer bytes only, for streams with answers (`None` for the others).
    pub answer_by_stream: Vec<Option<f64>>,
    /// Share of whole answers that greedy decoding reproduces exactly, for streams with
    /// answers: (exact, answers seen).
    pub exact_by_stream: Vec<Option<(usize, usize)>>,
    pub router: RouterAccumulator,
}

/// Per-stream sums over windows.
#[derive(Default, Clone)]
struct StreamSums {
    /// Each window's mean loss.
    windows: Vec<f64>,
    answer_loss: f64,
    answer_bytes: f64,
    exact: usize,
    answers: usize,
}

/// Evaluate on `count` fixed validation batches of every stream. `val_loss` weights the
/// streams by their base mixture weights (validation-only streams, such as held-out facts, are
/// reported apart).
pub fn evaluate(
    model: &Transformer,
    batches: &Batches,
    count: usize,
    device: &Device,
) -> Evaluation {
    evaluate_at(model, batches, count, None, device)
}

/// [`evaluate`] on windows of `seq_len` (a long-context stage's; `None`: the base length).
pub fn evaluate_at(
    model: &Transformer,
    batches: &Batches,
    count: usize,
    seq_len: Option<usize>,
    device: &Device,
) -> Evaluation {
    let valid = model.valid();
    let mut sums = vec![StreamSums::default(); batches.stream_names().len()];
    let mut router = RouterAccumulator::default();
    let windows = match seq_len {
        Some(t) => batches.validation_at(count, t),
        None => batches.validation(count),
    };
    for vb in windows {
        let (x, y) = vb.batch.tensors(device);
        let out: ModelOutput = valid.forward(x);
        router.add(&out.moe, Some(vb.stream));
        let greedy = vb
            .batch
            .answer_mask
            .is_some()
            .then(|| to_i64(out.logits.clone().argmax(2)));
        let ce: Vec<f32> = token_cross_entropy(out.logits, y)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 losses");
        sums[vb.stream].add(&vb.batch, &ce, greedy.as_deref());
    }
    summarise(&sums, &batches.weights(), router)
}

fn to_i64(t: Tensor<3, Int>) -> Vec<i64> {
    t.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("i64 ids")
}

impl StreamSums {
    /// One batch: `ce` per target position, `greedy` the argmax prediction per position.
    fn add(&mut self, batch: &Batch, ce: &[f32], greedy: Option<&[i64]>) {
        let t = batch.seq_len;
        for row in ce.chunks(t) {
            self.windows
                .push(row.iter().map(|v| *v as f64).sum::<f64>() / t as f64);
        }
        let Some(mask) = &batch.answer_mask else {
            return;
        };
        for (l, m) in ce.iter().zip(mask) {
            self.answer_loss += (*l * *m) as f64;
            self.answer_bytes += *m as f64;
        }
        if let Some(greedy) = greedy {
            for (r, row) in mask.chunks(t).enumerate() {
                let at = r * t;
                for span in whole_answers(row) {
                    let hit = span
                        .clone()
                        .all(|i| greedy[at + i] == batch.targets[at + i]);
                    self.exact += hit as usize;
                    self.answers += 1;
                }
            }
        }
    }
}

/// The runs of answer positions in one window's mask that the window holds whole: not cut by
/// its first or last position (a cut answer cannot be judged).
pub fn whole_answers(mask: &[f32]) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, m) in mask.iter().enumerate() {
        match (start, *m > 0.5) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                if s > 0 {
                    spans.push(s..i);
                }
                start = None;
            }
            _ => {}
        }
    }
    spans
}

fn summarise(sums: &[StreamSums], weights: &[f64], router: RouterAccumulator) -> Evaluation {
    let stat = |s: &StreamSums| {
        let n = s.windows.len().max(1) as f64;
        let mean = s.windows.iter().sum::<f64>() / n;
        let var = s.windows.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        (mean, (var / n).sqrt())
    };
    let (by_stream, se_by_stream): (Vec<f64>, Vec<f64>) = sums.iter().map(stat).unzip();
    let total: f64 = weights.iter().sum();
    let val_loss = by_stream
        .iter()
        .zip(weights)
        .map(|(l, w)| l * w)
        .sum::<f64>()
        / total;
    let val_loss_se = se_by_stream
        .iter()
        .zip(weights)
        .map(|(se, w)| (se * w / total).powi(2))
        .sum::<f64>()
        .sqrt();
    Evaluation {
        val_loss,
        val_loss_se,
        by_stream,
        se_by_stream,
        answer_by_stream: sums
            .iter()
            .map(|s| (s.answer_bytes > 0.0).then(|| s.answer_loss / s.answer_bytes))
            .collect(),
        exact_by_stream: sums
            .iter()
            .map(|s| (s.answers > 0).then_some((s.exact, s.answers)))
            .collect(),
        router,
    }
}
