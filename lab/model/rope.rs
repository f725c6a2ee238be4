//! Rotary position embedding in the rotate-half convention of HF Llama:
//! `x' = x · cos(tθ) + rotate_half(x) · sin(tθ)`, `rotate_half([x1, x2]) = [−x2, x1]`, with
//! frequencies θ_i = theta^(−2i/d) for i < d/2, each used for the pair (i, i + d/2).
//!
//! burn's `RotaryEncoding` rotates interleaved pairs (2i, 2i+1) instead, which is a different
//! (though equivalent up to a permutation of weights) convention: weights converted from HF
//! Llama would not line up, so the lab carries its own.

use burn::prelude::*;

#[derive(Module, Debug)]
pub struct Rope {
    /// `[max_len, d_h]` tables; constants, not parameters.
    cos: Tensor<2>,
    sin: Tensor<2>,
}

impl Rope {
    pub fn new(head_dim: usize, max_len: usize, theta: f64, device: &Device) -> Self {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(max_len * head_dim);
        let mut sin = Vec::with_capacity(max_len * head_dim);
        for t in 0..max_len {
            let row: Vec<f64> = (0..half)
                .map(|i| t as f64 * theta.powf(-2.0 * i as f64 / head_dim as f64))
                .collect();
            for _ in 0..2 {
                cos.extend(row.iter().map(|a| a.cos() as f32));
                sin.extend(row.iter().map(|a| a.sin() as f32));
            }
        }
        let table =
            |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [max_len, head_dim]), device);
        Rope {
            cos: table(cos),
            sin: table(sin),
        }
    }

    /// `[max_len, d_h]` of the tables.
    pub fn dims(&self) -> [usize; 2] {
        self.cos.dims()
    }

    /// Rotate `x: [B, H, T, d_h]` by each position's angle.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        self.apply_at(x, 0)
    }

    /// [`apply`](Self::apply) for positions `start..start + seq` (the new positions of a
    /// cached decoding step). `start + seq` must not exceed the table's `max_len`.
    pub fn apply_at(&self, x: Tensor<4>, start: usize) -> Tensor<4> {
        let [b, h, t, d] = x.dims();
        let rows = start..start + t;
        let cos = self
            .cos
            .clone()
            .slice([rows.clone(), 0..d])
            .unsqueeze::<4>();
        let sin = self.sin.clone().slice([rows, 0..d]).unsqueeze::<4>();
        let x1 = x.clone().slice([0..b, 0..h, 0..t, 0..d / 2]);
        let x2 = x.clone().slice([0..b, 0..h, 0..t, d / 2..d]);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * cos + rotated * sin
    }
}
