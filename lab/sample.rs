//! Text from a trained model, token by token (bytes, or a subword tokenizer's ids), with a
//! key/value cache: each new token costs one position's forward pass over the cached context,
//! not the whole context's. When the context
//! reaches the model's `seq_len` (its RoPE table and training length), the cache is rebuilt
//! from the last half of the text (a sliding window).

use std::time::Instant;

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::tokenizer::Vocabulary;
use crate::model::Transformer;
use crate::model::transformer::KvCache;

#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub max_tokens: usize,
    /// 0: greedy (the most likely token); else the logits are divided by it before sampling.
    pub temperature: f64,
    /// Sample among the k most likely tokens only (0: all).
    pub top_k: usize,
    pub seed: u64,
}

/// What a generation cost.
#[derive(Debug, Clone, Copy)]
pub struct SampleStats {
    pub tokens: usize,
    pub seconds: f64,
    /// Times the context filled and the cache was rebuilt from its last half.
    pub window_shifts: usize,
}

/// Generate up to `opts.max_tokens` tokens after `prompt` (at least one token: the caller
/// starts an empty prompt with a newline or an end-of-text token), calling `emit` with each
/// as soon as it is chosen.
pub fn generate(
    model: &Transformer,
    seq_len: usize,
    prompt: &[u32],
    opts: &SampleOptions,
    device: &Device,
    mut emit: impl FnMut(u32),
) -> SampleStats {
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut text: Vec<u32> = prompt.to_vec();
    assert!(
        !text.is_empty(),
        "generate needs a prompt of at least one token"
    );
    let mut cache = KvCache::new();
    let window = &text[text.len().saturating_sub(seq_len - 1)..];
    let mut logits = extend(model, window, &mut cache, 0, device);
    let mut pos = window.len();
    let mut shifts = 0;
    for _ in 0..opts.max_tokens {
        let token = pick(&logits, opts, &mut rng);
        emit(token);
        text.push(token);
        if pos == seq_len {
            // The table ends here: restart from the last half of the text.
            cache.clear();
            let keep = &text[text.len() - seq_len / 2..];
            logits = extend(model, keep, &mut cache, 0, device);
            pos = keep.len();
            shifts += 1;
        } else {
            logits = extend(model, &[token], &mut cache, pos, device);
            pos += 1;
        }
    }
    SampleStats {
        tokens: opts.max_tokens,
        seconds: started.elapsed().as_secs_f64(),
        window_shifts: shifts,
    }
}

/// Feed `tokens` at positions `start..`, extending `cache`; the logits after the last one.
pub fn extend(
    model: &Transformer,
    tokens: &[u32],
    cache: &mut KvCache,
    start: usize,
    device: &Device,
) -> Vec<f32> {
    let ids: Vec<i64> = tokens.iter().map(|b| *b as i64).collect();
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

/// The next token: the argmax at temperature 0, else a draw from the top-k softmax.
fn pick(logits: &[f32], opts: &SampleOptions, rng: &mut ChaCha8Rng) -> u32 {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
    if opts.temperature <= 0.0 {
        return order[0] as u32;
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
            return *i as u32;
        }
        u -= w;
    }
    top[k - 1] as u32
}

/// The prompt's tokens; an empty prompt starts a fresh line (bytes) or document (subword).
pub fn encode_prompt(vocab: &Vocabulary, prompt: &str) -> anyhow::Result<Vec<u32>> {
    Ok(match vocab {
        Vocabulary::Bytes if prompt.is_empty() => vec![b'\n' as u32],
        Vocabulary::Bytes => prompt.bytes().map(u32::from).collect(),
        Vocabulary::Subword(t) => {
            let mut ids = vec![t.eot_id];
            ids.extend(t.encode_batch(vec![prompt.to_string()])?.concat());
            ids
        }
    })
}

/// Streams generated tokens as text: bytes as they come; subword tokens by decoding all so
/// far and writing what is new (a token can end inside a UTF-8 character).
pub struct TextStream<'a> {
    vocab: &'a Vocabulary,
    ids: Vec<u32>,
    written: usize,
}

impl<'a> TextStream<'a> {
    pub fn new(vocab: &'a Vocabulary) -> Self {
        TextStream {
            vocab,
            ids: Vec::new(),
            written: 0,
        }
    }

    /// The bytes to write after `token`.
    pub fn push(&mut self, token: u32) -> Vec<u8> {
        match self.vocab {
            Vocabulary::Bytes => vec![token as u8],
            Vocabulary::Subword(t) => {
                self.ids.push(token);
                let text = t.decode(&self.ids).unwrap_or_default();
                // Hold back a trailing replacement character: the next token may complete it.
                let stable = text.trim_end_matches('\u{FFFD}');
                if stable.len() <= self.written || !stable.is_char_boundary(self.written) {
                    return Vec::new();
                }
                let new = stable.as_bytes()[self.written..].to_vec();
                self.written = stable.len();
                new
            }
        }
    }
}
