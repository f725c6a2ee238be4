//! Training windows drawn by the mixture, and a fixed set of validation windows per stream.
//!
//! The training batch of step s is a pure function of (seed, s): resuming at step s needs no
//! saved sampler state, and two runs with one seed see the same batches. Each row's stream is
//! chosen by a low-discrepancy sequence (golden-ratio steps), so the realised mixture tracks the
//! weights closely even over few steps; its window inside the stream is uniformly random.

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::stream::Corpus;
use super::tokens::Tokens;

pub struct Batches {
    corpus: Corpus,
    seq_len: usize,
    batch_size: usize,
    seed: u64,
    /// First step that uses the annealing weights (`None`: never).
    anneal_from: Option<usize>,
}

/// One batch as host data: `inputs` and `targets` are `[B, T]`, row-major; `streams[r]`
/// is the stream row r came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub inputs: Vec<i64>,
    pub targets: Vec<i64>,
    pub streams: Vec<usize>,
    /// Validation batches of streams with answers: 1.0 where the target byte is part of an
    /// answer, row-major like `targets`.
    pub answer_mask: Option<Vec<f32>>,
    pub batch_size: usize,
    pub seq_len: usize,
}

/// A validation batch, all rows from one stream.
pub struct ValBatch {
    pub stream: usize,
    pub batch: Batch,
}

impl Batch {
    pub fn tensors(&self, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
        let shape = [self.batch_size, self.seq_len];
        (
            self.inputs(device),
            Tensor::from_data(TensorData::new(self.targets.clone(), shape), device),
        )
    }

    /// The inputs alone (what a distillation teacher reads).
    pub fn inputs(&self, device: &Device) -> Tensor<2, Int> {
        let shape = [self.batch_size, self.seq_len];
        Tensor::from_data(TensorData::new(self.inputs.clone(), shape), device)
    }
}

const GOLDEN: f64 = 0.618_033_988_749_894_9;

impl Batches {
    pub fn new(
        corpus: Corpus,
        seq_len: usize,
        batch_size: usize,
        seed: u64,
        anneal_from: Option<usize>,
    ) -> anyhow::Result<Self> {
        for s in &corpus.streams {
            let trains = s.weight > 0.0 || s.anneal_weight > 0.0;
            if trains && s.train.len() < seq_len + 1 {
                anyhow::bail!(
                    "stream {}: {} training bytes, fewer than one window of seq_len + 1 = {}",
                    s.name,
                    s.train.len(),
                    seq_len + 1
                );
            }
            if s.val.len() < seq_len + 1 {
                anyhow::bail!(
                    "stream {}: {} validation bytes, fewer than one window of {}",
                    s.name,
                    s.val.len(),
                    seq_len + 1
                );
            }
        }
        Ok(Batches {
            corpus,
            seq_len,
            batch_size,
            seed,
            anneal_from,
        })
    }

    pub fn stream_names(&self) -> Vec<String> {
        self.corpus.streams.iter().map(|s| s.name.clone()).collect()
    }

    /// Base mixture weights (validation-only streams have 0).
    pub fn weights(&self) -> Vec<f64> {
        self.corpus.streams.iter().map(|s| s.weight).collect()
    }

    pub fn anneal_from(&self) -> Option<usize> {
        self.anneal_from
    }

    /// The stream of row `row` of step `step`.
    pub fn stream_of(&self, step: usize, row: usize) -> usize {
        let annealing = self.anneal_from.is_some_and(|a| step >= a);
        let w: Vec<f64> = self
            .corpus
            .streams
            .iter()
            .map(|s| if annealing { s.anneal_weight } else { s.weight })
            .collect();
        let total: f64 = w.iter().sum();
        let offset = (self.seed as f64 * GOLDEN).fract();
        let g = (step * self.batch_size + row) as f64;
        let u = (offset + g * GOLDEN).fract() * total;
        let mut acc = 0.0;
        for (i, wi) in w.iter().enumerate() {
            acc += wi;
            if u < acc {
                return i;
            }
        }
        w.iter().rposition(|x| *x > 0.0).unwrap_or(0)
    }

    /// The training batch of `step`.
    pub fn train(&self, step: usize) -> Batch {
        self.train_shaped(step, self.batch_size, self.seq_len)
    }

    /// The training batch of `step` in another shape (a stage's `batch` sequences of
    /// `seq_len`; see [`Batches::check_length`]). The rows' streams and the random draws are
    /// those of [`Batches::train`], so a step's data is a function of the step alone.
    pub fn train_shaped(&self, step: usize, batch: usize, seq_len: usize) -> Batch {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(step as u64 + 1);
        let rows: Vec<(usize, usize)> = (0..batch)
            .map(|r| {
                let s = self.stream_of(step, r);
                let last = self.corpus.streams[s].train.len() - (seq_len + 1);
                (s, rng.random_range(0..=last))
            })
            .collect();
        self.windows(&rows, |s| &self.corpus.streams[s].train, false, seq_len)
    }

    /// Err unless every stream holds a training and a validation window of `seq_len` (a
    /// long-context stage's length).
    pub fn check_length(&self, seq_len: usize) -> anyhow::Result<()> {
        for s in &self.corpus.streams {
            let trains = s.weight > 0.0 || s.anneal_weight > 0.0;
            let short = (trains && s.train.len() < seq_len + 1) || s.val.len() < seq_len + 1;
            if short {
                anyhow::bail!(
                    "stream {}: {} training and {} validation bytes, fewer than one window of \
                     seq_len + 1 = {} (the long-context stage's)",
                    s.name,
                    s.train.len(),
                    s.val.len(),
                    seq_len + 1
                );
            }
        }
        Ok(())
    }

    /// Indices of the streams whose validation batches carry answer masks.
    pub fn answer_streams(&self) -> Vec<usize> {
        (0..self.corpus.streams.len())
            .filter(|&i| self.corpus.streams[i].val_answers.is_some())
            .collect()
    }

    /// `count` validation batches per stream at fixed offsets (the same at every eval).
    pub fn validation(&self, count: usize) -> Vec<ValBatch> {
        self.validation_at(count, self.seq_len)
    }

    /// [`Batches::validation`] with windows of `seq_len` (a long-context evaluation).
    pub fn validation_at(&self, count: usize, seq_len: usize) -> Vec<ValBatch> {
        let mut out = Vec::new();
        for (si, s) in self.corpus.streams.iter().enumerate() {
            let n = count * self.batch_size;
            let last = s.val.len() - (seq_len + 1);
            let starts: Vec<usize> = if let Some(val) = s.val.as_bytes()
                && s.line_aligned_val
            {
                let lines: Vec<usize> = std::iter::once(0)
                    .chain(
                        val.iter()
                            .enumerate()
                            .filter(|(_, b)| **b == b'\n')
                            .map(|(i, _)| i + 1),
                    )
                    .filter(|&i| i <= last)
                    .collect();
                (0..n)
                    .map(|i| lines[i * lines.len() / n.max(1) % lines.len()])
                    .collect()
            } else {
                (0..n).map(|i| i * last / n.max(1)).collect()
            };
            for chunk in starts.chunks(self.batch_size) {
                let rows: Vec<(usize, usize)> = chunk.iter().map(|&st| (si, st)).collect();
                out.push(ValBatch {
                    stream: si,
                    batch: self.windows(&rows, |s| &self.corpus.streams[s].val, true, seq_len),
                });
            }
        }
        out
    }

    fn windows<'a>(
        &'a self,
        rows: &[(usize, usize)],
        tokens: impl Fn(usize) -> &'a Tokens,
        val: bool,
        t: usize,
    ) -> Batch {
        let mut inputs = Vec::with_capacity(rows.len() * t);
        let mut targets = Vec::with_capacity(rows.len() * t);
        let mut mask: Option<Vec<f32>> = None;
        let mut window = Vec::with_capacity(t + 1);
        for &(s, start) in rows {
            // One copy of the t + 1 tokens: inputs are its first t, targets its last t.
            window.clear();
            tokens(s).copy_into(start, t + 1, &mut window);
            inputs.extend_from_slice(&window[..t]);
            targets.extend_from_slice(&window[1..]);
            if val && let Some(answers) = &self.corpus.streams[s].val_answers {
                let m = mask.get_or_insert_with(Vec::new);
                m.extend(
                    answers[start + 1..start + t + 1]
                        .iter()
                        .map(|&a| a as u8 as f32),
                );
            }
        }
        Batch {
            inputs,
            targets,
            answer_mask: mask,
            streams: rows.iter().map(|r| r.0).collect(),
            batch_size: rows.len(),
            seq_len: t,
        }
    }
}
