//! Grouped-query causal self-attention with RoPE and no biases.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::init;
use super::rope::Rope;
use crate::kernels::{fused, matmul};

#[derive(Module, Debug)]
pub struct Attention {
    pub wq: Linear,
    pub wk: Linear,
    pub wv: Linear,
    pub wo: Linear,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    pub fn new(
        d_model: usize,
        n_heads: usize,
        n_kv_heads: usize,
        n_layers: usize,
        device: &Device,
    ) -> Self {
        let head_dim = d_model / n_heads;
        Attention {
            wq: init::linear(d_model, n_heads * head_dim, init::INIT_STD, device),
            wk: init::linear(d_model, n_kv_heads * head_dim, init::INIT_STD, device),
            wv: init::linear(d_model, n_kv_heads * head_dim, init::INIT_STD, device),
            wo: init::linear(
                n_heads * head_dim,
                d_model,
                init::residual_std(n_layers),
                device,
            ),
            n_heads,
            n_kv_heads,
            head_dim,
        }
    }

    /// `x: [B, T, d]` → `[B, T, d]`; position t sees positions ≤ t only.
    pub fn forward(&self, x: Tensor<3>, rope: &Rope) -> Tensor<3> {
        self.forward_probed(x, rope).0
    }

    /// [`forward`](Self::forward), and the largest pre-softmax attention logit `q·k/√d` over the
    /// positions attended to, `[1]` (detached): the proxy whose growth Wortsman et al. (2023)
    /// find precedes attention-entropy collapse and divergence at high learning rates.
    pub fn forward_probed(&self, x: Tensor<3>, rope: &Rope) -> (Tensor<3>, Tensor<1>) {
        let [b, t, _] = x.dims();
        let (h, hkv, dh) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let heads = |y: Tensor<3>, n: usize| y.reshape([b, t, n, dh]).swap_dims(1, 2);
        let q = rope.apply(heads(matmul::linear(&self.wq, x.clone()), h));
        let k = rope.apply(heads(matmul::linear(&self.wk, x.clone()), hkv));
        let v = heads(matmul::linear(&self.wv, x), hkv);
        // Each group of g = h / hkv query heads shares one key/value head: the group's queries
        // are stacked as g·t rows against that head's keys, so k and v are read in place, not
        // repeated g times (query head kv·g + j is row block j of group kv, as `repeat_kv`
        // orders them).
        let g = h / hkv;
        let q = q.reshape([b, hkv, g * t, dh]);
        let scores = matmul::matmul(q, k.swap_dims(2, 3)).reshape([b, h, t, t]);
        let scale = 1.0 / (dh as f32).sqrt();
        let logit_max = fused::causal_logit_max(scores.clone(), scale);
        let weights = fused::causal_softmax(scores, scale).reshape([b, hkv, g * t, t]);
        let out = matmul::matmul(weights, v)
            .reshape([b, h, t, dh])
            .swap_dims(1, 2)
            .reshape([b, t, h * dh]);
        (matmul::linear(&self.wo, out), logit_max)
    }

    /// Attention for the new positions `start..start + n` of `x: [B, n, d]`, given
    /// the keys and values of positions `0..start` in `cache` (`None` when `start` is 0),
    /// which it extends. Equals the rows `start..start + n` of [`forward`](Self::forward) on
    /// the whole sequence (the decoding path of `lab sample`).
    pub fn forward_cached(
        &self,
        x: Tensor<3>,
        rope: &Rope,
        cache: &mut Option<(Tensor<4>, Tensor<4>)>,
        start: usize,
    ) -> Tensor<3> {
        let [b, n, _] = x.dims();
        let (h, hkv, dh) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let heads = |y: Tensor<3>, m: usize| y.reshape([b, n, m, dh]).swap_dims(1, 2);
        let q = rope.apply_at(heads(self.wq.forward(x.clone()), h), start);
        let k = rope.apply_at(heads(self.wk.forward(x.clone()), hkv), start);
        let v = heads(self.wv.forward(x), hkv);
        let (k, v) = match cache.take() {
            Some((kc, vc)) => (Tensor::cat(vec![kc, k], 2), Tensor::cat(vec![vc, v], 2)),
            None => (k, v),
        };
        *cache = Some((k.clone(), v.clone()));
        let t = start + n;
        let device = q.device();
        let (k, v) = (self.repeat_kv(k), self.repeat_kv(v));
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f64).sqrt());
        // New position i (absolute start + i) sees keys 0..=start + i.
        let future: Vec<bool> = (0..n)
            .flat_map(|i| (0..t).map(move |j| j > start + i))
            .collect();
        let future = Tensor::<2, Bool>::from_data(TensorData::new(future, [n, t]), &device)
            .unsqueeze::<4>()
            .expand([b, h, n, t]);
        let weights = softmax(scores.mask_fill(future, f32::NEG_INFINITY), 3);
        let out = weights.matmul(v).swap_dims(1, 2).reshape([b, n, h * dh]);
        self.wo.forward(out)
    }

    fn repeat_kv(&self, x: Tensor<4>) -> Tensor<4> {
        let groups = self.n_heads / self.n_kv_heads;
        if groups == 1 {
            return x;
        }
        let [b, hkv, t, dh] = x.dims();
        x.unsqueeze_dim::<5>(2)
            .expand([b, hkv, groups, t, dh])
            .reshape([b, hkv * groups, t, dh])
    }
}
