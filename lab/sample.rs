//! Text from a trained model, byte by byte, with a key/value cache: each new byte costs one
//! position's forward pass over the cached context, not the whole context's. When the context
//! reaches the model's `seq_len` (its RoPE table and training length), the cache is rebuilt
//! from the last half of the text (a sliding window).

use std::time::Instant;

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::Transformer;
use crate::model::transformer::KvCache;

#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub max_bytes: usize,
    /// 0: greedy (the most likely byte); else the logits are divided by it before sampling.
    pub temperature: f64,
    /// Sample among the k most likely bytes only (0: all).
    pub top_k: usize,
    pub seed: u64,
}

/// What a generation cost.
#[derive(Debug, Clone, Copy)]
pub struct SampleStats {
    pub bytes: usize,
    pub seconds: f64,
    /// Times the context filled and the cache was rebuilt from its last half.
    pub window_shifts: usize,
}

/// Generate up to `opts.max_bytes` bytes after `prompt` (a newline if empty), calling `emit`
/// with each as soon as it is chosen.
pub fn generate(
    model: &Transformer,
    seq_len: usize,
    prompt: &[u8],
    opts: &SampleOptions,
    device: &Device,
    mut emit: impl FnMut(u8),
) -> SampleStats {
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut text: Vec<u8> = if prompt.is_empty() {
        b"\n".to_vec()
    } else {
        prompt.to_vec()
    };
    let mut cache = KvCache::new();
    let window = &text[text.len().saturating_sub(seq_len - 1)..];
    let mut logits = extend(model, window, &mut cache, 0, device);
    let mut pos = window.len();
    let mut shifts = 0;
    for _ in 0..opts.max_bytes {
        let byte = pick(&logits, opts, &mut rng);
        emit(byte);
        text.push(byte);
        if pos == seq_len {
            // The table ends here: restart from the last half of the text.
            cache.clear();
            let keep = &text[text.len() - seq_len / 2..];
            logits = extend(model, keep, &mut cache, 0, device);
            pos = keep.len();
            shifts += 1;
        } else {
            logits = extend(model, &[byte], &mut cache, pos, device);
            pos += 1;
        }
    }
    SampleStats {
        bytes: opts.max_bytes,
        seconds: started.elapsed().as_secs_f64(),
        window_shifts: shifts,
    }
}

/// Feed `bytes` at positions `start..`, extending `cache`; the logits after the last one.
pub fn extend(
    model: &Transformer,
    bytes: &[u8],
    cache: &mut KvCache,
    start: usize,
    device: &Device,
) -> Vec<f32> {
    let ids: Vec<i64> = bytes.iter().map(|b| *b as i64).collect();
    let n = ids.len();
    let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), device);
    let logits = model.forward_cached(tokens, cache, start);
    let [_, _, v] = logits.dims();
    logits
        .slice([0..1, n - 1..n, 0..v])
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 logits")
}

/// The next byte: the argmax at temperature 0, else a draw from the top-k softmax.
fn pick(logits: &[f32], opts: &SampleOptions, rng: &mut ChaCha8Rng) -> u8 {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
    if opts.temperature <= 0.0 {
        return order[0] as u8;
    }
    let k = if opts.top_k == 0 {
        order.len()
    } else {
        opts.top_k.min(order.len())
    };
    let top = &order[..k];
    let max = logits[top[0]] as f64;
    let weights: Vec<f64> = top
        .iter()
        .map(|&i| ((logits[i] as f64 - max) / opts.temperature).exp())
        .collect();
    let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (i, w) in top.iter().zip(&weights) {
        if u < *w {
            return *i as u8;
        }
        u -= w;
    }
    top[k - 1] as u8
}
