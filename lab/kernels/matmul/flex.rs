//! The matmul on flex: gemm writes each batch's product into one output allocated once.
//! Operands are read in place through their strides (a transposed view is not copied). When b
//! is one matrix for every batch and a's rows are evenly spaced, the whole batch is one product
//! of the stacked rows. Batches run in parallel when there are several and the work pays for
//! it, as flex's own matmul does.

use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape};
use rayon::prelude::*;

use super::MatmulOps;
use crate::kernels::gemm::{Operand, Real, gemm_into, parallelism, written};

/// Multiply-adds over all batches from which batches run in parallel (flex's threshold).
const BATCH_PARALLEL_WORK: usize = 128 * 128 * 128;

impl MatmulOps for Flex {
    fn shared_matmul(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        crate::kernels::entries::enter("shared_matmul");
        match a.dtype() {
            DType::F32 => product::<f32>(&a, &b),
            DType::F64 => product::<f64>(&a, &b),
            dtype => panic!("matmul: f32 or f64 expected, got {dtype:?}"),
        }
    }
}

/// The dimensions of one product: `batch` matrices of m × k times k × n, b shared or not.
struct Dims {
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    shared_b: bool,
}

fn dims(a: &Shape, b: &Shape) -> Dims {
    let rank = a.num_dims();
    assert!(
        rank >= 2 && b.num_dims() == rank,
        "matmul: operands of rank {rank} and {}",
        b.num_dims()
    );
    let (m, k, n) = (a[rank - 2], a[rank - 1], b[rank - 1]);
    assert_eq!(b[rank - 2], k, "matmul: [.., {m}, {k}] times {b:?}");
    let shared_b = b[..rank - 2].iter().all(|&d| d == 1);
    assert!(
        shared_b || a[..rank - 2] == b[..rank - 2],
        "matmul: batch dimensions of {a:?} and {b:?} differ"
    );
    Dims {
        batch: a[..rank - 2].iter().product(),
        m,
        k,
        n,
        shared_b,
    }
}

fn product<T: Real>(a: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let (sa, sb) = (a.layout().shape(), b.layout().shape());
    let dims = dims(sa, sb);
    let rank = sa.num_dims();
    let mut out_dims = Vec::from(&sa[..]);
    out_dims[rank - 1] = dims.n;
    let (x, w) = (
        Operand::<T>::of(a, "matmul: a"),
        Operand::<T>::of(b, "matmul: b"),
    );
    // SAFETY: every path below writes each batch's m × n block whole (`gemm_into`).
    unsafe {
        written(Shape::from(out_dims), |rows| {
            write_product(rows, &x, &w, sa, sb, &dims)
        })
    }
}

/// Every batch's product into `rows` (`[batch, m, n]`, row-major): one gemm over the stacked
/// rows where b is shared and a's rows evenly spaced, else one per batch.
fn write_product<T: Real>(
    rows: &mut [MaybeUninit<T>],
    x: &Operand<T>,
    w: &Operand<T>,
    sa: &Shape,
    sb: &Shape,
    &Dims {
        batch,
        m,
        k,
        n,
        shared_b,
    }: &Dims,
) {
    let rank = sa.num_dims();
    let (a_rs, a_cs) = (x.strides[rank - 2], x.strides[rank - 1]);
    let (b_rs, b_cs) = (w.strides[rank - 2], w.strides[rank - 1]);
    if shared_b && rows_evenly_spaced(sa, &x.strides) {
        // SAFETY: a's batch·m rows are a_rs apart (checked), each k wide; b is k × n; both
        // within their storage (`Operand::of`).
        unsafe {
            gemm_into(
                rows,
                (batch * m, n, k),
                (x.at(0), a_cs, a_rs),
                (w.at(0), b_cs, b_rs),
                parallelism(batch * m, n, k),
            )
        };
        return;
    }
    let a_at = batch_offsets(sa, &x.strides);
    let b_at = match shared_b {
        true => vec![0; batch],
        false => batch_offsets(sb, &w.strides),
    };
    let run = |(i, c): (usize, &mut [MaybeUninit<T>]), par| {
        // SAFETY: batch i of a and b starts at its offset and spans m × k and k × n elements
        // through the checked strides.
        unsafe {
            gemm_into(
                c,
                (m, n, k),
                (x.at(a_at[i]), a_cs, a_rs),
                (w.at(b_at[i]), b_cs, b_rs),
                par,
            )
        }
    };
    let chunks = rows.chunks_mut(m * n).enumerate();
    if batch > 1 && batch * m * n * k >= BATCH_PARALLEL_WORK {
        let chunks: Vec<_> = chunks.collect();
        chunks
            .into_par_iter()
            .for_each(|c| run(c, gemm::Parallelism::None));
    } else {
        chunks.for_each(|c| run(c, parallelism(m, n, k)));
    }
}

/// Whether the rows of `a: [.., m, k]` over all batches are evenly spaced (each leading
/// dimension's stride the next one's times its size; dimensions of size 1 do not count), so
/// that they are one `[batch·m, k]` matrix.
fn rows_evenly_spaced(shape: &Shape, strides: &[usize]) -> bool {
    let rank = shape.num_dims();
    let mut step = strides[rank - 2] * shape[rank - 2];
    for i in (0..rank - 2).rev() {
        if shape[i] == 1 {
            continue;
        }
        if strides[i] != step {
            return false;
        }
        step *= shape[i];
    }
    true
}

/// The offset of every batch's first element, batches in row-major order of the leading
/// dimensions.
fn batch_offsets(shape: &Shape, strides: &[usize]) -> Vec<usize> {
    let lead = shape.num_dims() - 2;
    let mut offsets = vec![0usize];
    for i in 0..lead {
        offsets = offsets
            .iter()
            .flat_map(|&o| (0..shape[i]).map(move |j| o + j * strides[i]))
            .collect();
    }
    offsets
}
