//! The router's softmax kernels on flex: one pass per row over contiguous `[N, K]` f32
//! logits, outputs written whole (not zero-filled first), rows split over rayon's threads in
//! large batches. A row of K = 8 is half a 16-lane vector, so a loop written for any width
//! would leave every row to its scalar tail: each kernel is compiled for the fixed widths in
//! [`by_width!`], where a row is a few whole vectors, and loops for other widths.

use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::Shape;
use rayon::prelude::*;

use super::RouterSoftmaxOps;
use crate::kernels::gemm::{contiguous_f32, f32_slice, written};
use crate::simd::{exp, multiversion};

/// An uninitialised f32 element a kernel writes.
type Out = MaybeUninit<f32>;

/// Elements per parallel task: below this, the rows are one task.
const CHUNK: usize = 1 << 15;

impl RouterSoftmaxOps for Flex {
    fn router_softmax(logits: FlexTensor) -> FlexTensor {
        crate::kernels::entries::enter("router_softmax");
        let logits = f32s(logits);
        let (_, k) = rows_of(&logits);
        let x = f32_slice(&logits);
        let fill = |out: &mut [Out]| {
            by_rows(out, k, k, |first, o| {
                softmax_rows(o, &x[first * k..first * k + o.len()], k)
            })
        };
        // SAFETY: the kernel writes every element of its rows.
        unsafe { written(logits.layout().shape().clone(), fill) }
    }

    fn router_softmax_backward(y: FlexTensor, dy: FlexTensor) -> FlexTensor {
        crate::kernels::entries::enter("router_softmax_backward");
        let (y, dy) = (f32s(y), f32s(dy));
        let (_, k) = rows_of(&y);
        assert_eq!(
            y.layout().shape(),
            dy.layout().shape(),
            "router softmax: shapes differ"
        );
        let (ys, dys) = (f32_slice(&y), f32_slice(&dy));
        let fill = |out: &mut [Out]| {
            by_rows(out, k, k, |first, o| {
                let range = first * k..first * k + o.len();
                softmax_backward_rows(o, &ys[range.clone()], &dys[range], k)
            })
        };
        // SAFETY: the kernel writes every element of its rows.
        unsafe { written(y.layout().shape().clone(), fill) }
    }

    fn router_log_partition(logits: FlexTensor) -> FlexTensor {
        crate::kernels::entries::enter("router_log_partition");
        let logits = f32s(logits);
        let (n, k) = rows_of(&logits);
        let x = f32_slice(&logits);
        let fill = |out: &mut [Out]| {
            by_rows(out, 1, k, |first, o| {
                log_partition_rows(o, &x[first * k..(first + o.len()) * k], k)
            })
        };
        // SAFETY: the kernel writes one element per row, every row.
        unsafe { written(Shape::new([n]), fill) }
    }

    fn router_log_partition_backward(
        logits: FlexTensor,
        lse: FlexTensor,
        dlse: FlexTensor,
    ) -> FlexTensor {
        crate::kernels::entries::enter("router_log_partition_backward");
        let (logits, lse, dlse) = (f32s(logits), f32s(lse), f32s(dlse));
        let (n, k) = rows_of(&logits);
        let (x, z, g) = (f32_slice(&logits), f32_slice(&lse), f32_slice(&dlse));
        assert!(
            z.len() == n && g.len() == n,
            "router log-partition: {n} rows, {} and {} row values",
            z.len(),
            g.len()
        );
        let fill = |out: &mut [Out]| {
            by_rows(out, k, k, |first, o| {
                let rows = first..first + o.len() / k.max(1);
                let x = &x[first * k..first * k + o.len()];
                scaled_softmax_rows(o, x, &z[rows.clone()], &g[rows], k)
            })
        };
        // SAFETY: the kernel writes every element of its rows.
        unsafe { written(logits.layout().shape().clone(), fill) }
    }
}

/// Runs `f(first row, rows' outputs)` over `out` (`per_row` elements a row, rows of `k`
/// logits), in parallel tasks of about [`CHUNK`] logits.
fn by_rows(out: &mut [Out], per_row: usize, k: usize, f: impl Fn(usize, &mut [Out]) + Sync) {
    let rows = (CHUNK / k.max(1)).max(1);
    out.par_chunks_mut(rows * per_row.max(1))
        .enumerate()
        .for_each(|(c, o)| f(c * rows, o));
}

/// Calls `$kernel::<K>` for the row widths routers use, else `$any` (the loop for any width).
macro_rules! by_width {
    ($k:expr, $kernel:ident, $any:ident, ($($arg:expr),*)) => {
        match $k {
            4 => $kernel::<4>($($arg),*),
            8 => $kernel::<8>($($arg),*),
            16 => $kernel::<16>($($arg),*),
            32 => $kernel::<32>($($arg),*),
            64 => $kernel::<64>($($arg),*),
            k => $any($($arg,)* k),
        }
    };
}

multiversion! {
    // Writes all of `out` (as long as `x`, whole rows of `k`).
    fn softmax_rows(out: &mut [Out], x: &[f32], k: usize) {
        assert!(x.len() == out.len() && out.len().is_multiple_of(k.max(1)));
        by_width!(k, softmax_fixed, softmax_any, (out, x))
    }

    // Writes all of `out` (as long as `y` and `dy`, whole rows of `k`).
    fn softmax_backward_rows(out: &mut [Out], y: &[f32], dy: &[f32], k: usize) {
        assert!(y.len() == out.len() && dy.len() == out.len() && out.len().is_multiple_of(k.max(1)));
        by_width!(k, softmax_backward_fixed, softmax_backward_any, (out, y, dy))
    }

    // Writes all of `out` (one per row of `x`).
    fn log_partition_rows(out: &mut [Out], x: &[f32], k: usize) {
        assert!(x.len() == out.len() * k);
        by_width!(k, log_partition_fixed, log_partition_any, (out, x))
    }

    // `g_n · exp(x − z_n)` per row. Writes all of `out` (as long as `x`, rows of `k`, one `z`
    // and `g` per row).
    fn scaled_softmax_rows(out: &mut [Out], x: &[f32], z: &[f32], g: &[f32], k: usize) {
        let rows = out.len() / k.max(1);
        assert!(x.len() == out.len() && out.len().is_multiple_of(k.max(1)) && z.len() == rows && g.len() == rows);
        by_width!(k, scaled_softmax_fixed, scaled_softmax_any, (out, x, z, g))
    }
}

#[inline(always)]
fn softmax_fixed<const K: usize>(out: &mut [Out], x: &[f32]) {
    for (o, x) in out.chunks_exact_mut(K).zip(x.chunks_exact(K)) {
        let x: &[f32; K] = x.try_into().expect("a row of K");
        let m = row_max(x);
        let e: [f32; K] = std::array::from_fn(|j| exp(x[j] - m));
        let s: f32 = e.iter().sum();
        for (o, e) in o.iter_mut().zip(e) {
            o.write(e / s);
        }
    }
}

#[inline(always)]
fn softmax_any(out: &mut [Out], x: &[f32], k: usize) {
    for (o, x) in out.chunks_exact_mut(k).zip(x.chunks_exact(k)) {
        let m = row_max(x);
        for (o, &x) in o.iter_mut().zip(x) {
            o.write(exp(x - m));
        }
        // SAFETY: the row was written whole just above.
        let o = unsafe { o.assume_init_mut() };
        let s: f32 = o.iter().sum();
        o.iter_mut().for_each(|o| *o /= s);
    }
}

#[inline(always)]
fn softmax_backward_fixed<const K: usize>(out: &mut [Out], y: &[f32], dy: &[f32]) {
    let rows = out
        .chunks_exact_mut(K)
        .zip(y.chunks_exact(K))
        .zip(dy.chunks_exact(K));
    for ((o, y), dy) in rows {
        let (y, dy): (&[f32; K], &[f32; K]) = (y.try_into().unwrap(), dy.try_into().unwrap());
        let dot: f32 = (0..K).map(|j| y[j] * dy[j]).sum();
        for (j, o) in o.iter_mut().enumerate() {
            o.write(y[j] * (dy[j] - dot));
        }
    }
}

#[inline(always)]
fn softmax_backward_any(out: &mut [Out], y: &[f32], dy: &[f32], k: usize) {
    let rows = out
        .chunks_exact_mut(k)
        .zip(y.chunks_exact(k))
        .zip(dy.chunks_exact(k));
    for ((o, y), dy) in rows {
        let dot: f32 = y.iter().zip(dy).map(|(y, dy)| y * dy).sum();
        for ((o, &y), &dy) in o.iter_mut().zip(y).zip(dy) {
            o.write(y * (dy - dot));
        }
    }
}

#[inline(always)]
fn log_partition_fixed<const K: usize>(out: &mut [Out], x: &[f32]) {
    for (o, x) in out.iter_mut().zip(x.chunks_exact(K)) {
        let x: &[f32; K] = x.try_into().expect("a row of K");
        o.write(log_sum_exp(x));
    }
}

#[inline(always)]
fn log_partition_any(out: &mut [Out], x: &[f32], k: usize) {
    for (o, x) in out.iter_mut().zip(x.chunks_exact(k)) {
        o.write(log_sum_exp(x));
    }
}

#[inline(always)]
fn scaled_softmax_fixed<const K: usize>(out: &mut [Out], x: &[f32], z: &[f32], g: &[f32]) {
    let rows = out.chunks_exact_mut(K).zip(x.chunks_exact(K)).zip(z).zip(g);
    for (((o, x), &z), &g) in rows {
        let x: &[f32; K] = x.try_into().expect("a row of K");
        for (j, o) in o.iter_mut().enumerate() {
            o.write(g * exp(x[j] - z));
        }
    }
}

#[inline(always)]
fn scaled_softmax_any(out: &mut [Out], x: &[f32], z: &[f32], g: &[f32], k: usize) {
    let rows = out.chunks_exact_mut(k).zip(x.chunks_exact(k)).zip(z).zip(g);
    for (((o, x), &z), &g) in rows {
        for (o, &x) in o.iter_mut().zip(x) {
            o.write(g * exp(x - z));
        }
    }
}

/// `log Σ exp(x)`, stabilised by the row's max (a NaN stays NaN; a row of −∞ gives about −86,
/// as [`exp`] clamps its input, where burn's composed ops give NaN).
#[inline(always)]
fn log_sum_exp(x: &[f32]) -> f32 {
    let m = row_max(x);
    let shift = if m == f32::NEG_INFINITY { 0.0 } else { m };
    let s: f32 = x.iter().map(|&v| exp(v - shift)).sum();
    shift + s.ln()
}

/// The row's largest value; NaN if it has one (a diverged router stays visible).
#[inline(always)]
fn row_max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &v| {
        if m.is_nan() || v.is_nan() {
            f32::NAN
        } else {
            m.max(v)
        }
    })
}

/// `(N, K)` of logits `[N, K]`.
fn rows_of(t: &FlexTensor) -> (usize, usize) {
    let shape = t.layout().shape();
    assert_eq!(
        shape.num_dims(),
        2,
        "router softmax: logits must be [N, K], got {shape:?}"
    );
    (shape[0], shape[1])
}

/// f32, contiguous: the kernels read plain slices.
fn f32s(t: FlexTensor) -> FlexTensor {
    contiguous_f32(t, "router softmax")
}
