//! K SwiGLU experts stored as stacked weights, applied to per-expert token buffers with one
//! batched matmul per projection (no loop over experts).

// Tensor names carry their shape (x_ND: N tokens × D model width; load_K; x_KCD), as in
// torchtitan; hence the capitals.
#![allow(non_snake_case)]

use burn::module::Param;
use burn::prelude::*;

use super::dispatch::ExpertBatch;
use crate::model::ffn::grouped_matmul::grouped_matmul;
use crate::model::{flop_meter, fused, init};

#[derive(Module, Debug)]
pub struct Experts {
    /// `[K, d_model, d_expert]`
    pub w1: Param<Tensor<3>>,
    /// `[K, d_model, d_expert]`
    pub w3: Param<Tensor<3>>,
    /// `[K, d_expert, d_model]`
    pub w2: Param<Tensor<3>>,
}

impl Experts {
    pub fn new(
        experts: usize,
        d_model: usize,
        d_expert: usize,
        n_layers: usize,
        device: &Device,
    ) -> Self {
        Experts {
            w1: init::normal([experts, d_model, d_expert], init::INIT_STD, device),
            w3: init::normal([experts, d_model, d_expert], init::INIT_STD, device),
            w2: init::normal(
                [experts, d_expert, d_model],
                init::residual_std(n_layers),
                device,
            ),
        }
    }

    pub fn count(&self) -> usize {
        self.w1.dims()[0]
    }

    /// The rows a dispatch laid out → the experts' output rows `[rows, d_model]`, in the
    /// order the dispatch's `Combine` reads them.
    pub fn forward_batch(&self, batch: ExpertBatch) -> Tensor<2> {
        let flat = |y: Tensor<3>| {
            let [b, r, d] = y.dims();
            y.reshape([b * r, d])
        };
        match batch {
            ExpertBatch::Buffers(x_KCD) => flat(self.forward(x_KCD)),
            ExpertBatch::Blocks { x_BRD, expert_B } => flat(self.forward_blocks(x_BRD, expert_B)),
            ExpertBatch::Grouped { x_SD, sizes_K } => self.forward_grouped(x_SD, sizes_K),
        }
    }

    /// `x: [K, rows, d_model]`, row buffer e going to expert e → `[K, rows, d_model]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        swiglu(x, self.w1.val(), self.w3.val(), self.w2.val())
    }

    /// `x: [B, rows, d_model]` where block b goes to expert `ids[b]` → `[B, rows, d_model]`.
    /// Each block's weights are picked by a one-hot matmul `[B, K] × [K, d·h]` rather than
    /// `select`: its backward is another matmul, where `select`'s is a scatter-add
    /// (`select_assign`), serial along the expert axis in burn's kernels. (Data movement,
    /// not model FLOPs: not counted by the FLOP meter.)
    pub fn forward_blocks(&self, x: Tensor<3>, ids: Tensor<1, Int>) -> Tensor<3> {
        let [k, _, _] = self.w1.dims();
        let b = ids.dims()[0];
        let one_hot = ids
            .reshape([b, 1])
            .expand([b, k])
            .equal(
                Tensor::<1, Int>::arange(0..k as i64, &x.device())
                    .reshape([1, k])
                    .expand([b, k]),
            )
            .float();
        let pick = |w: Tensor<3>| {
            let [_, r, c] = w.dims();
            one_hot
                .clone()
                .matmul(w.reshape([k, r * c]))
                .reshape([b, r, c])
        };
        swiglu(
            x,
            pick(self.w1.val()),
            pick(self.w3.val()),
            pick(self.w2.val()),
        )
    }

    /// `x: [S, d_model]` rows sorted by expert, `sizes: [K]` rows per expert → `[S, d_model]`,
    /// each row group through its own expert's weights in place (the grouped matmul).
    pub fn forward_grouped(&self, x: Tensor<2>, sizes: Tensor<1>) -> Tensor<2> {
        let gate = grouped_matmul(x.clone(), self.w1.val(), sizes.clone());
        let up = grouped_matmul(x, self.w3.val(), sizes.clone());
        grouped_matmul(fused::swiglu(gate, up), self.w2.val(), sizes)
    }
}

fn swiglu(x: Tensor<3>, w1: Tensor<3>, w3: Tensor<3>, w2: Tensor<3>) -> Tensor<3> {
    let gate = flop_meter::matmul(x.clone(), w1);
    let up = flop_meter::matmul(x, w3);
    flop_meter::matmul(fused::swiglu(gate, up), w2)
}
