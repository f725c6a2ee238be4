//! The grouped matmul as cubecl kernels (wgpu here; any cubecl runtime): each output element
//! finds its group from the sizes in device memory and multiplies its row by that expert's
//! weights in place. Nothing is padded, no weights are copied, nothing is read back: the
//! host only launches. Under fusion (burn's default for wgpu) both are opaque operations.
//!
//! One thread per output element, strided reads (so a transposed weight view, as the
//! backward passes, needs no copy). Simple rather than tiled: it multiplies exactly the FLOPs
//! the model needs, which the padded block dispatch did not; a shared-memory tiling is the
//! next step for speed on a real GPU (docs/performance.md, "GPU").

use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::{CubeBackend, kernel::untile, tensor::CubeTensor};
use cubecl::prelude::*;
use cubecl::{CubeDim, calculate_cube_count_elemwise};

use burn::backend::TensorMetadata;
use burn::tensor::{DType, Shape};

use super::GroupedMatmulOps;

/// `y[r, j] = Σ_i x[r, i] · w[e(r), i, j]`, e(r) the group row r falls in (`y[r, j] = 0` for a
/// row past every group).
#[cube(launch)]
fn grouped_matmul_kernel(
    x: &Tensor<f32>,
    w: &Tensor<f32>,
    sizes: &Tensor<f32>,
    y: &mut Tensor<f32>,
) {
    let rows = y.shape(0);
    let cols = y.shape(1);
    if ABSOLUTE_POS >= rows * cols {
        terminate!();
    }
    let r = ABSOLUTE_POS / cols;
    let j = ABSOLUTE_POS % cols;
    // The row's group: the first whose running end passes r (`experts` when none does).
    let experts = sizes.shape(0);
    let mut end = 0usize;
    let mut expert = experts;
    for e in 0..experts {
        end += u32::cast_from(sizes[e * sizes.stride(0)]) as usize;
        if expert == experts && r < end {
            expert = e;
        }
    }
    let mut acc = 0.0f32;
    if expert < experts {
        let x_row = r * x.stride(0);
        let w_col = expert * w.stride(0) + j * w.stride(2);
        for i in 0..x.shape(1) {
            acc += x[x_row + i * x.stride(1)] * w[w_col + i * w.stride(1)];
        }
    }
    let at = r * y.stride(0) + j * y.stride(1);
    y[at] = acc;
}

/// `dw[e, i, j] = Σ_{r in group e} x[r, i] · dy[r, j]` (zero for an empty group; a group's
/// rows are clamped to the R rows present, so bad sizes cannot read out of bounds).
#[cube(launch)]
fn grouped_weight_grad_kernel(
    x: &Tensor<f32>,
    dy: &Tensor<f32>,
    sizes: &Tensor<f32>,
    dw: &mut Tensor<f32>,
) {
    let a = dw.shape(1);
    let b = dw.shape(2);
    if ABSOLUTE_POS >= dw.shape(0) * a * b {
        terminate!();
    }
    let e = ABSOLUTE_POS / (a * b);
    let i = (ABSOLUTE_POS / b) % a;
    let j = ABSOLUTE_POS % b;
    let mut start = 0usize;
    for p in 0..e {
        start += u32::cast_from(sizes[p * sizes.stride(0)]) as usize;
    }
    let mut end = start + u32::cast_from(sizes[e * sizes.stride(0)]) as usize;
    let rows = x.shape(0);
    if end > rows {
        end = rows;
    }
    let mut acc = 0.0f32;
    let mut r = start;
    while r < end {
        acc += x[r * x.stride(0) + i * x.stride(1)] * dy[r * dy.stride(0) + j * dy.stride(1)];
        r += 1;
    }
    let at = e * dw.stride(0) + i * dw.stride(1) + j * dw.stride(2);
    dw[at] = acc;
}

impl GroupedMatmulOps for CubeBackend {
    fn grouped_matmul(x: CubeTensor, w: CubeTensor, sizes: CubeTensor) -> CubeTensor {
        let (x, w, sizes) = (rows(x), rows(w), rows(sizes));
        let [r, a] = dims::<2>(&x);
        let [k, wa, b] = dims::<3>(&w);
        assert_eq!(
            a, wa,
            "grouped_matmul: x is [R, {a}] but w is [{k}, {wa}, {b}]"
        );
        assert_eq!(
            dims::<1>(&sizes),
            [k],
            "grouped_matmul: sizes must be [{k}]"
        );
        let y = output(&x, [r, b]);
        launch(&y, |count, dim| {
            grouped_matmul_kernel::launch(
                &y.client,
                count,
                dim,
                x.into_tensor_arg(),
                w.into_tensor_arg(),
                sizes.into_tensor_arg(),
                y.clone().into_tensor_arg(),
            )
        });
        y
    }

    fn grouped_weight_grad(x: CubeTensor, dy: CubeTensor, sizes: CubeTensor) -> CubeTensor {
        let (x, dy, sizes) = (rows(x), rows(dy), rows(sizes));
        let [r, a] = dims::<2>(&x);
        let [dr, b] = dims::<2>(&dy);
        assert_eq!(r, dr, "grouped_weight_grad: x has {r} rows, dy {dr}");
        let [k] = dims::<1>(&sizes);
        let dw = output(&x, [k, a, b]);
        launch(&dw, |count, dim| {
            grouped_weight_grad_kernel::launch(
                &dw.client,
                count,
                dim,
                x.into_tensor_arg(),
                dy.into_tensor_arg(),
                sizes.into_tensor_arg(),
                dw.clone().into_tensor_arg(),
            )
        });
        dw
    }
}

/// A kernel argument is read as rows: un-tile a storage-tiled matmul output first. f32 only
/// (the lab trains in f32; a kernel per dtype is not worth it until it does not).
fn rows(t: CubeTensor) -> CubeTensor {
    assert_eq!(
        t.dtype,
        DType::F32,
        "grouped_matmul: f32 tensors only, got {:?}",
        t.dtype
    );
    untile(t)
}

fn dims<const N: usize>(t: &CubeTensor) -> [usize; N] {
    let shape = t.shape();
    assert_eq!(
        shape.num_dims(),
        N,
        "grouped_matmul: expected {N} dims, got {shape:?}"
    );
    core::array::from_fn(|i| shape[i])
}

fn output<const N: usize>(like: &CubeTensor, shape: [usize; N]) -> CubeTensor {
    empty_device_dtype(
        like.client.clone(),
        like.device.clone(),
        Shape::from(shape),
        like.dtype,
    )
}

/// One thread per element of `out`; nothing to launch for an empty output.
fn launch(out: &CubeTensor, kernel: impl FnOnce(CubeCount, CubeDim)) {
    let total = out.shape().num_elements();
    if total == 0 {
        return;
    }
    let dim = CubeDim::new(&out.client, total);
    kernel(calculate_cube_count_elemwise(&out.client, total, dim), dim);
}
