//! K SwiGLU experts stored as stacked weights, applied to per-expert token buffers with one
//! batched matmul per projection (no loop over experts).

use burn::module::Param;
use burn::prelude::*;

use super::dispatch::ExpertBatch;
use crate::kernels::grouped_matmul::grouped_matmul;
use crate::kernels::{flop_meter, fused};
use crate::model::init;

#[derive(Module, Debug)]
pub struct Experts {
    /// `[K, d, f]`
    pub w1: Param<Tensor<3>>,
    /// `[K, d, f]`
    pub w3: Param<Tensor<3>>,
    /// `[K, f, d]`
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

    /// The rows a dispatch laid out → the experts' output rows `[rows, d]`, in the
    /// order the dispatch's `Combine` reads them.
    pub fn forward_batch(&self, batch: ExpertBatch) -> Tensor<2> {
        let flat = |y: Tensor<3>| {
            let [b, r, d] = y.dims();
            y.reshape([b * r, d])
        };
        match batch {
            ExpertBatch::Buffers(buffers) => flat(self.forward(buffers)),
            ExpertBatch::Grouped { rows, sizes } => self.forward_grouped(rows, sizes),
        }
    }

    /// `x: [K, rows, d]`, row buffer e going to expert e → `[K, rows, d]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        swiglu(x, self.w1.val(), self.w3.val(), self.w2.val())
    }

    /// `x: [S, d]` rows sorted by expert, `sizes: [K]` rows per expert → `[S, d]`,
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
