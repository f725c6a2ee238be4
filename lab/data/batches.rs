//! Random training windows and a fixed set of validation windows.
//!
//! The training batch of step s is a pure function of (seed, s): resuming at step s needs no
//! saved sampler state, and two runs with one seed see the same batches.

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Corpus;

pub struct Batches {
    corpus: Corpus,
    seq_len: usize,
    batch_size: usize,
    seed: u64,
}

/// One batch as host data: `inputs` and `targets` are `[batch, seq]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub inputs: Vec<i64>,
    pub targets: Vec<i64>,
    pub batch_size: usize,
    pub seq_len: usize,
}

impl Batch {
    pub fn tensors(&self, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
        let shape = [self.batch_size, self.seq_len];
        (
            Tensor::from_data(TensorData::new(self.inputs.clone(), shape), device),
            Tensor::from_data(TensorData::new(self.targets.clone(), shape), device),
        )
    }
}

impl Batches {
    pub fn new(
        corpus: Corpus,
        seq_len: usize,
        batch_size: usize,
        seed: u64,
    ) -> anyhow::Result<Self> {
        for (name, part) in [("training", &corpus.train), ("validation", &corpus.val)] {
            if part.len() < seq_len + 1 {
                anyhow::bail!(
                    "the {name} split has {} bytes, fewer than one window of seq_len + 1 = {}",
                    part.len(),
                    seq_len + 1
                );
            }
        }
        Ok(Batches {
            corpus,
            seq_len,
            batch_size,
            seed,
        })
    }

    pub fn train_bytes(&self) -> usize {
        self.corpus.train.len()
    }

    /// The training batch of `step`.
    pub fn train(&self, step: usize) -> Batch {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(step as u64 + 1);
        let last = self.corpus.train.len() - (self.seq_len + 1);
        let starts: Vec<usize> = (0..self.batch_size)
            .map(|_| rng.random_range(0..=last))
            .collect();
        self.windows(&self.corpus.train, &starts)
    }

    /// `count` validation batches at fixed, evenly spaced offsets (the same at every eval).
    pub fn validation(&self, count: usize) -> Vec<Batch> {
        let n = count * self.batch_size;
        let last = self.corpus.val.len() - (self.seq_len + 1);
        let starts: Vec<usize> = (0..n).map(|i| i * last / n.max(1)).collect();
        starts
            .chunks(self.batch_size)
            .map(|chunk| self.windows(&self.corpus.val, chunk))
            .collect()
    }

    fn windows(&self, bytes: &[u8], starts: &[usize]) -> Batch {
        let t = self.seq_len;
        let mut inputs = Vec::with_capacity(starts.len() * t);
        let mut targets = Vec::with_capacity(starts.len() * t);
        for &s in starts {
            inputs.extend(bytes[s..s + t].iter().map(|&b| b as i64));
            targets.extend(bytes[s + 1..s + t + 1].iter().map(|&b| b as i64));
        }
        Batch {
            inputs,
            targets,
            batch_size: starts.len(),
            seq_len: t,
        }
    }
}
