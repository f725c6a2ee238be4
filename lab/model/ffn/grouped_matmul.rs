//! Grouped matmul: rows sorted by expert, each contiguous group multiplied by its own expert's
//! weights read in place (MegaBlocks' "grouped GEMM"), as a custom operation of the flex backend
//! with a hand-written backward.
//!
//! Why it exists: without it, a dropless MoE on fixed shapes must pad every expert's rows to
//! whole blocks (a static bound of ≈ 1.5 × the active rows) and copy one expert's weights per
//! block (`Experts::forward_blocks`); on flex those padded rows and weight copies made a dropless
//! MoE step 1.6–2× the dense step at matched FLOPs. Here the group sizes come from the same
//! memory the rows live in (flex *is* the host: reading them is what a GPU kernel does with
//! its offsets in device memory, not a read-back), so each expert multiplies exactly its rows:
//! no padding, no weight copies.
//!
//! `grouped_matmul(x [R, a], w [K, a, b], sizes [K]) -> [R, b]`: rows
//! `[o_e, o_e + sizes_e)` (o_e = sizes before e) are multiplied by `w[e]`; rows past
//! Σ sizes are zero. Backward: `dx = grouped_matmul(dy, w[e]ᵀ)` and `dw[e] = x_eᵀ · dy_e`.
//!
//! Only flex implements it (burn's backend-extension machinery routes it by device); on the
//! cubecl backends (wgpu) the MoE uses its portable dispatches. See [`available`].

use burn::backend::autodiff::{
    Autodiff,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
};
use burn::backend::flex::{FlexTensor, ops::cat::cat, ops::matmul::matmul as flex_matmul};
use burn::backend::{Dispatch, DispatchDevice, Flex, backend_extension, tensor::FloatTensor};
use burn::prelude::*;
use burn::tensor::{DType, Shape};

use crate::model::flop_meter;

/// The backend extension: flex computes it, autodiff wraps it with its backward.
#[backend_extension(Flex, Autodiff)]
pub trait GroupedMatmulOps: burn::backend::Backend {
    /// `x: [R, a]`, `w: [K, a, b]`, `sizes: [K]` (row counts, as floats) → `[R, b]`.
    fn grouped_matmul(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        sizes: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Whether `device` runs the grouped matmul (flex, with or without autodiff).
pub fn available(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    )
}

/// `x: [R, a]` rows grouped by expert, `w: [K, a, b]`, `sizes: [K]` rows per expert (summing
/// to at most R) → `[R, b]`. Counted by the FLOP meter as `2·R·a·b`: exact when the sizes sum
/// to R (dropless), an upper bound otherwise (rows past the groups are zero-filled, not
/// multiplied).
pub fn grouped_matmul(x: Tensor<2>, w: Tensor<3>, sizes: Tensor<1>) -> Tensor<2> {
    let [r, a] = x.dims();
    let [_, _, b] = w.dims();
    flop_meter::record(2.0 * (r * a * b) as f64);
    Tensor::from_dispatch(<Dispatch as GroupedMatmulOps>::grouped_matmul(
        x.into_dispatch(),
        w.into_dispatch(),
        sizes.into_dispatch(),
    ))
}

impl GroupedMatmulOps for Flex {
    fn grouped_matmul(x: FlexTensor, w: FlexTensor, sizes: FlexTensor) -> FlexTensor {
        let sizes = group_sizes(&sizes);
        let x = contiguous(x);
        let [r, a] = dims2(&x);
        let ws = w.layout().shape();
        assert!(
            ws.num_dims() == 3 && ws[1] == a,
            "grouped_matmul: x is [R, {a}] but w is {ws:?}"
        );
        let (k, b) = (ws[0], ws[2]);
        assert_eq!(
            sizes.len(),
            k,
            "grouped_matmul: {} sizes for {k} experts",
            sizes.len()
        );
        let mut parts = Vec::with_capacity(k + 1);
        let mut offset = 0;
        for (e, &c) in sizes.iter().enumerate() {
            if c == 0 {
                continue;
            }
            assert!(offset + c <= r, "grouped_matmul: sizes sum past {r} rows");
            let xe = x.narrow(0, offset, c).reshape(Shape::from(vec![1, c, a]));
            let ye = flex_matmul(xe, w.narrow(0, e, 1));
            parts.push(contiguous(ye).reshape(Shape::from(vec![c, b])));
            offset += c;
        }
        if offset < r {
            parts.push(FlexTensor::zeros(
                Shape::from(vec![r - offset, b]),
                x.dtype(),
            ));
        }
        cat(parts, 0)
    }
}

/// `dw[e] = x_eᵀ · dy_e` for every expert (zero for an expert without rows) → `[K, a, b]`.
fn weight_grad(x: FlexTensor, dy: FlexTensor, sizes: &[usize]) -> FlexTensor {
    let (x, dy) = (contiguous(x), contiguous(dy));
    let [_, a] = dims2(&x);
    let [_, b] = dims2(&dy);
    let mut offset = 0;
    let parts = sizes
        .iter()
        .map(|&c| {
            let part = if c == 0 {
                FlexTensor::zeros(Shape::from(vec![1, a, b]), x.dtype())
            } else {
                let xe = x
                    .narrow(0, offset, c)
                    .reshape(Shape::from(vec![1, c, a]))
                    .transpose(1, 2);
                let ge = dy.narrow(0, offset, c).reshape(Shape::from(vec![1, c, b]));
                contiguous(flex_matmul(xe, ge))
            };
            offset += c;
            part
        })
        .collect();
    cat(parts, 0)
}

impl<C: CheckpointStrategy> GroupedMatmulOps for Autodiff<Flex, C> {
    fn grouped_matmul(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        sizes: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct GroupedBackward;

        impl Backward<Flex, 2> for GroupedBackward {
            type State = (FlexTensor, FlexTensor, FlexTensor);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_w] = ops.parents;
                let dy = grads.consume::<Flex>(&ops.node);
                let (x, w, sizes) = ops.state;
                if let Some(node) = node_w {
                    let dw = weight_grad(x, dy.clone(), &group_sizes(&sizes));
                    grads.register::<Flex>(node.id, dw);
                }
                if let Some(node) = node_x {
                    let dx = Flex::grouped_matmul(dy, w.transpose(1, 2), sizes);
                    grads.register::<Flex>(node.id, dx);
                }
            }
        }

        let sizes = sizes.into_primitive();
        match GroupedBackward
            .prepare::<C>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, w) = (x.primitive().clone(), w.primitive().clone());
                let y = Flex::grouped_matmul(x.clone(), w.clone(), sizes.clone());
                prep.finish((x, w, sizes), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::grouped_matmul(
                x.into_primitive(),
                w.into_primitive(),
                sizes,
            )),
        }
    }
}

/// The `[K]` row counts, read where they live (f32 or f64 counts of whole rows).
fn group_sizes(sizes: &FlexTensor) -> Vec<usize> {
    let sizes = sizes.to_contiguous();
    let as_count = |v: f64| {
        assert!(
            v >= 0.0 && v.fract() == 0.0,
            "grouped_matmul: size {v} is not a row count"
        );
        v as usize
    };
    match sizes.dtype() {
        DType::F32 => sizes
            .as_slice::<f32>()
            .unwrap()
            .iter()
            .map(|&v| as_count(v as f64))
            .collect(),
        DType::F64 => sizes
            .as_slice::<f64>()
            .unwrap()
            .iter()
            .map(|&v| as_count(v))
            .collect(),
        dtype => panic!("grouped_matmul: sizes must be f32 or f64, got {dtype:?}"),
    }
}

fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() {
        t
    } else {
        t.to_contiguous()
    }
}

fn dims2(t: &FlexTensor) -> [usize; 2] {
    let d = t.layout().shape();
    assert_eq!(
        d.num_dims(),
        2,
        "grouped_matmul: expected a matrix, got {d:?}"
    );
    [d[0], d[1]]
}
