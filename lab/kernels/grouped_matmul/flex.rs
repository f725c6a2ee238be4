//! The grouped matmul on flex: one output allocated once, each group's product written by gemm
//! (`kernels::gemm`) straight into its rows or its expert's slice, reading the rows and the
//! weights in place through their strides. The sizes are read from host memory, which
//! on flex is where the tensor lives: no read-back.
//!
//! Why not flex's own `matmul` per group: each call allocates its output through
//! `FlexTensor::empty` (zero-filled, then copied to an aligned buffer) and the groups were then
//! concatenated, three passes over the output besides the product itself (docs/performance.md, "What the figures depend on"). Groups run in
//! parallel over rayon's threads when the product is large enough to pay for it.

use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape};
use rayon::prelude::*;

use super::GroupedMatmulOps;
use crate::kernels::gemm::{Operand, Real, gemm_into, written};

/// Multiply-adds below which the groups run one after another on the calling thread.
const PARALLEL_WORK: usize = 1 << 18;

impl GroupedMatmulOps for Flex {
    fn grouped_matmul(x: FlexTensor, w: FlexTensor, sizes: FlexTensor) -> FlexTensor {
        crate::kernels::entries::enter("grouped_matmul");
        let sizes = group_sizes(&sizes);
        match x.dtype() {
            DType::F32 => product::<f32>(&x, &w, &sizes),
            DType::F64 => product::<f64>(&x, &w, &sizes),
            dtype => panic!("grouped_matmul: f32 or f64 expected, got {dtype:?}"),
        }
    }

    fn grouped_weight_grad(x: FlexTensor, dy: FlexTensor, sizes: FlexTensor) -> FlexTensor {
        crate::kernels::entries::enter("grouped_weight_grad");
        let sizes = group_sizes(&sizes);
        match x.dtype() {
            DType::F32 => weight_grad::<f32>(&x, &dy, &sizes),
            DType::F64 => weight_grad::<f64>(&x, &dy, &sizes),
            dtype => panic!("grouped_matmul: f32 or f64 expected, got {dtype:?}"),
        }
    }
}

/// `x: [R, a]`, `w: [K, a, b]` → `[R, b]`: rows `[o_e, o_e + sizes_e)` times `w[e]`, the rows
/// past Σ sizes zero.
fn product<T: Real>(x: &FlexTensor, w: &FlexTensor, sizes: &[usize]) -> FlexTensor {
    let (xs, ws) = (operand::<T>(x, 2, "x"), operand::<T>(w, 3, "w"));
    let (r, a) = (x.layout().shape()[0], x.layout().shape()[1]);
    let wshape = w.layout().shape();
    assert!(
        wshape[1] == a,
        "grouped_matmul: x is [R, {a}] but w is {wshape:?}"
    );
    let (k, b) = (wshape[0], wshape[2]);
    check_sizes(sizes, k, r);
    let fill = |out: &mut [MaybeUninit<T>]| {
        // Each expert's rows of the output: disjoint slices, so the groups can run in
        // parallel.
        let mut groups = Vec::with_capacity(k);
        let mut rest = out;
        let mut offset = 0;
        for (e, &c) in sizes.iter().enumerate() {
            let (rows, tail) = rest.split_at_mut(c * b);
            rest = tail;
            if c > 0 {
                groups.push((e, offset, c, rows));
            }
            offset += c;
        }
        rest.fill(MaybeUninit::new(T::ZERO));
        let run = |(e, offset, c, rows): (usize, usize, usize, &mut [MaybeUninit<T>])| {
            // SAFETY: `rows` is c × b, written row-major; x's rows [offset, offset + c)
            // and w[e] lie in their storage (checked by `Operand::of` and `check_sizes`).
            unsafe {
                gemm_into(
                    rows,
                    (c, b, a),
                    (xs.at(offset * xs.strides[0]), xs.strides[1], xs.strides[0]),
                    (ws.at(e * ws.strides[0]), ws.strides[2], ws.strides[1]),
                    gemm::Parallelism::None,
                )
            }
        };
        for_each_group(groups, r * a * b, run);
    };
    // SAFETY: `fill` writes each expert's rows by its gemm and sets the rows past Σ sizes to 0.
    unsafe { written(Shape::new([r, b]), fill) }
}

/// `x: [R, a]`, `dy: [R, b]` → `dw: [K, a, b]`, `dw[e] = x_eᵀ · dy_e` (zero for an expert
/// without rows; rows past Σ sizes are not read).
fn weight_grad<T: Real>(x: &FlexTensor, dy: &FlexTensor, sizes: &[usize]) -> FlexTensor {
    let (xs, gs) = (operand::<T>(x, 2, "x"), operand::<T>(dy, 2, "dy"));
    let (r, a) = (x.layout().shape()[0], x.layout().shape()[1]);
    let b = dy.layout().shape()[1];
    assert_eq!(
        dy.layout().shape()[0],
        r,
        "grouped_matmul: x and dy have different row counts"
    );
    let k = sizes.len();
    check_sizes(sizes, k, r);
    let offsets = sizes.iter().scan(0, |o, &c| {
        *o += c;
        Some(*o - c)
    });
    let fill = |out: &mut [MaybeUninit<T>]| {
        let mut groups = Vec::with_capacity(k);
        for (dw, (&c, offset)) in out.chunks_mut(a * b).zip(sizes.iter().zip(offsets)) {
            match c {
                0 => dw.fill(MaybeUninit::new(T::ZERO)),
                _ => groups.push((offset, c, dw)),
            }
        }
        let run = |(offset, c, dw): (usize, usize, &mut [MaybeUninit<T>])| {
            // x_eᵀ is [a, c]: its element (i, j) is x[offset + j, i], so its row stride is
            // x's column stride and its column stride x's row stride.
            // SAFETY: `dw` is a × b, row-major; rows [offset, offset + c) of x and dy lie
            // in their storage (checked by `Operand::of` and `check_sizes`).
            unsafe {
                gemm_into(
                    dw,
                    (a, b, c),
                    (xs.at(offset * xs.strides[0]), xs.strides[0], xs.strides[1]),
                    (gs.at(offset * gs.strides[0]), gs.strides[1], gs.strides[0]),
                    gemm::Parallelism::None,
                )
            }
        };
        for_each_group(groups, r * a * b, run);
    };
    // SAFETY: `fill` gives an expert with rows its gemm's a × b product, one without zeros.
    unsafe { written(Shape::new([k, a, b]), fill) }
}

/// Runs every group, in parallel over rayon's threads when the whole product has at least
/// [`PARALLEL_WORK`] multiply-adds.
fn for_each_group<G: Send>(groups: Vec<G>, work: usize, run: impl Fn(G) + Sync) {
    if work >= PARALLEL_WORK && groups.len() > 1 {
        groups.into_par_iter().for_each(&run);
    } else {
        groups.into_iter().for_each(run);
    }
}

/// `t` read in place, which must have `dims` dimensions.
fn operand<'a, T: Real>(t: &'a FlexTensor, dims: usize, what: &str) -> Operand<'a, T> {
    let shape = t.layout().shape();
    assert_eq!(
        shape.num_dims(),
        dims,
        "grouped_matmul: {what} must have {dims} dimensions, got {shape:?}"
    );
    Operand::of(t, &format!("grouped_matmul: {what}"))
}

/// Group sizes must be one per expert and fit in the rows.
fn check_sizes(sizes: &[usize], experts: usize, rows: usize) {
    assert_eq!(
        sizes.len(),
        experts,
        "grouped_matmul: {} sizes for {experts} experts",
        sizes.len()
    );
    let total: usize = sizes.iter().sum();
    assert!(
        total <= rows,
        "grouped_matmul: sizes sum to {total}, past {rows} rows"
    );
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
