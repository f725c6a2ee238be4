//! The fused kernels on flex: loops over contiguous f32 slices, each compiled three times
//! (AVX-512, AVX2 + FMA, the baseline) and chosen at run time from the CPU's features, so the
//! binary runs on any x86-64 (and elsewhere on the baseline). `exp` is a polynomial the
//! compiler vectorizes (libm's `expf` is a scalar call per element).
//! Large tensors are split over rayon's threads in row-aligned chunks.

use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::Shape;
use rayon::prelude::*;

use super::FusedOps;
// Outputs allocated with f32's alignment, not through `FlexTensor::empty` (which zero-fills
// bytes and then copies them to an aligned buffer), and left unfilled where the kernel writes
// every element (`written`).
use crate::kernels::flex_ints::indices_below;
use crate::kernels::gemm::{contiguous_f32, f32_slice, written, zeros};
use crate::simd::{LANES, dot_lanes, exp, multiversion};

/// An uninitialised f32 element a kernel writes.
type Out = MaybeUninit<f32>;

/// Elements per parallel task: below this, a tensor is one task.
const CHUNK: usize = 1 << 15;

impl FusedOps for Flex {
    fn swiglu(gate: FlexTensor, up: FlexTensor) -> FlexTensor {
        crate::kernels::entries::enter("swiglu");
        let (gate, up) = (f32s(gate), f32s(up));
        assert_eq!(
            gate.layout().shape(),
            up.layout().shape(),
            "swiglu: shapes differ"
        );
        let (g, u) = (f32_slice(&gate), f32_slice(&up));
        let fill = |out: &mut [Out]| {
            par_zip(out, CHUNK, |at, o| {
                swiglu_kernel(o, &g[at..at + o.len()], &u[at..at + o.len()])
            })
        };
        // SAFETY: the kernel writes every element of each chunk.
        unsafe { written(gate.layout().shape().clone(), fill) }
    }

    fn swiglu_backward(
        gate: FlexTensor,
        up: FlexTensor,
        dy: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        crate::kernels::entries::enter("swiglu_backward");
        let (gate, up, dy) = (f32s(gate), f32s(up), f32s(dy));
        let shape = gate.layout().shape().clone();
        let (g, u, dy) = (f32_slice(&gate), f32_slice(&up), f32_slice(&dy));
        let mut d_up = None;
        let fill = |d_gate: &mut [Out]| {
            let fill_up = |d_up: &mut [Out]| {
                d_gate
                    .par_chunks_mut(CHUNK)
                    .zip(d_up.par_chunks_mut(CHUNK))
                    .enumerate()
                    .for_each(|(c, (dg, du))| {
                        let at = c * CHUNK;
                        let range = at..at + dg.len();
                        let (g, u, dy) = (&g[range.clone()], &u[range.clone()], &dy[range]);
                        swiglu_backward_kernel(dg, du, g, u, dy);
                    })
            };
            // SAFETY: the kernel writes every element of both outputs' chunks.
            d_up = Some(unsafe { written(shape.clone(), fill_up) });
        };
        // SAFETY: as above.
        let d_gate = unsafe { written(shape.clone(), fill) };
        (d_gate, d_up.expect("written"))
    }

    fn causal_softmax(scores: FlexTensor, scale: f32) -> FlexTensor {
        crate::kernels::entries::enter("causal_softmax");
        let scores = f32s(scores);
        let t = square_rows(&scores);
        let s = f32_slice(&scores);
        let fill = |out: &mut [Out]| {
            par_zip(out, rows_chunk(t), |at, o| {
                softmax_rows(o, &s[at..at + o.len()], t, at / t, scale)
            })
        };
        // SAFETY: the kernel writes every element of its rows.
        unsafe { written(scores.layout().shape().clone(), fill) }
    }

    fn causal_softmax_backward(y: FlexTensor, dy: FlexTensor, scale: f32) -> FlexTensor {
        crate::kernels::entries::enter("causal_softmax_backward");
        let (y, dy) = (f32s(y), f32s(dy));
        let t = square_rows(&y);
        let shape = y.layout().shape().clone();
        let (y, dy) = (f32_slice(&y), f32_slice(&dy));
        let fill = |out: &mut [Out]| {
            par_zip(out, rows_chunk(t), |at, o| {
                let range = at..at + o.len();
                softmax_backward_rows(o, &y[range.clone()], &dy[range], t, at / t, scale)
            })
        };
        // SAFETY: the kernel writes every element of its rows.
        unsafe { written(shape, fill) }
    }

    fn causal_logit_max(scores: FlexTensor, scale: f32) -> FlexTensor {
        crate::kernels::entries::enter("causal_logit_max");
        let scores = f32s(scores);
        let t = square_rows(&scores);
        let s = f32_slice(&scores);
        let max = s
            .par_chunks(rows_chunk(t))
            .enumerate()
            .map(|(c, x)| causal_max_rows(x, t, c * rows_chunk(t) / t))
            .reduce(|| f32::NEG_INFINITY, nan_max);
        FlexTensor::from_data(burn::tensor::TensorData::new(vec![max * scale], [1]))
    }

    fn cross_entropy(logits: FlexTensor, targets: FlexTensor) -> (FlexTensor, FlexTensor) {
        crate::kernels::entries::enter("cross_entropy");
        let logits = f32s(logits);
        let (n, v) = rows_of(&logits);
        let targets = class_indices(&targets, n, v);
        let (mut loss, mut lse) = (zeros::<f32>(Shape::new([n])), zeros::<f32>(Shape::new([n])));
        let x = f32_slice(&logits);
        let rows = rows_per_task(v);
        loss.storage_mut::<f32>()
            .par_chunks_mut(rows)
            .zip(lse.storage_mut::<f32>().par_chunks_mut(rows))
            .enumerate()
            .for_each(|(c, (loss, lse))| {
                let first = c * rows;
                let x = &x[first * v..(first + loss.len()) * v];
                log_partition_rows(lse, x, v);
                for (r, (l, &z)) in loss.iter_mut().zip(lse.iter()).enumerate() {
                    *l = z - x[r * v + targets[first + r]];
                }
            });
        (loss, lse)
    }

    fn cross_entropy_backward(
        logits: FlexTensor,
        lse: FlexTensor,
        targets: FlexTensor,
        dy: FlexTensor,
    ) -> FlexTensor {
        crate::kernels::entries::enter("cross_entropy_backward");
        let (logits, lse, dy) = (f32s(logits), f32s(lse), f32s(dy));
        let (n, v) = rows_of(&logits);
        let targets = class_indices(&targets, n, v);
        let shape = logits.layout().shape().clone();
        let (x, lse, dy) = (f32_slice(&logits), f32_slice(&lse), f32_slice(&dy));
        let fill = |out: &mut [Out]| {
            par_zip(out, rows_per_task(v) * v, |at, o| {
                let first = at / v;
                let rows = first..first + o.len() / v;
                softmax_minus_onehot_rows(
                    o,
                    &x[at..at + o.len()],
                    &lse[rows.clone()],
                    &dy[rows],
                    v,
                );
                // SAFETY: the kernel wrote every element of the chunk.
                let o = unsafe { o.assume_init_mut() };
                for (r, row) in o.chunks_exact_mut(v).enumerate() {
                    row[targets[first + r]] -= dy[first + r];
                }
            })
        };
        // SAFETY: the kernel writes every element of its rows.
        unsafe { written(shape, fill) }
    }

    fn rms_norm(x: FlexTensor, gamma: FlexTensor, eps: f32) -> (FlexTensor, FlexTensor) {
        crate::kernels::entries::enter("rms_norm");
        let (x, gamma) = (f32s(x), f32s(gamma));
        let (n, d) = norm_rows(&x, &gamma);
        let (mut y, mut inv_rms) = (
            zeros::<f32>(x.layout().shape().clone()),
            zeros::<f32>(Shape::new([n])),
        );
        let (x, g) = (f32_slice(&x), f32_slice(&gamma));
        let rows = rows_per_task(d);
        y.storage_mut::<f32>()
            .par_chunks_mut(rows * d)
            .zip(inv_rms.storage_mut::<f32>().par_chunks_mut(rows))
            .enumerate()
            .for_each(|(c, (y, r))| {
                let at = c * rows * d;
                rms_norm_rows(y, r, &x[at..at + y.len()], g, eps);
            });
        (y, inv_rms)
    }

    fn rms_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        inv_rms: FlexTensor,
        dy: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        crate::kernels::entries::enter("rms_norm_backward");
        let (x, gamma, inv_rms, dy) = (f32s(x), f32s(gamma), f32s(inv_rms), f32s(dy));
        let (_, d) = norm_rows(&x, &gamma);
        let mut dx = zeros::<f32>(x.layout().shape().clone());
        let (x, g, r, dy) = (
            f32_slice(&x),
            f32_slice(&gamma),
            f32_slice(&inv_rms),
            f32_slice(&dy),
        );
        let rows = rows_per_task(d);
        // Each task's share of d_gamma, summed below in task order: the same sum on any number
        // of threads.
        let parts: Vec<Vec<f32>> = dx
            .storage_mut::<f32>()
            .par_chunks_mut(rows * d)
            .enumerate()
            .map(|(c, dx)| {
                let (first, at) = (c * rows, c * rows * d);
                let range = at..at + dx.len();
                let mut dg = vec![0.0; d];
                let r = &r[first..first + dx.len() / d];
                rms_norm_backward_rows(dx, &mut dg, &x[range.clone()], g, r, &dy[range]);
                dg
            })
            .collect();
        let mut d_gamma = zeros::<f32>(Shape::new([d]));
        let total = d_gamma.storage_mut::<f32>();
        for part in &parts {
            total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
        }
        (dx, d_gamma)
    }
}

/// `(N, d)` of an RMSNorm's rows `x: [N, d]` with scale `gamma: [d]`.
fn norm_rows(x: &FlexTensor, gamma: &FlexTensor) -> (usize, usize) {
    let (xs, gs): (&Shape, &Shape) = (x.layout().shape(), gamma.layout().shape());
    assert!(
        xs.num_dims() == 2 && gs.num_dims() == 1 && gs[0] == xs[1],
        "rms_norm: x must be [N, d] and gamma [d], got {xs:?} and {gs:?}"
    );
    (xs[0], xs[1])
}

/// `(N, V)` of logits `[N, V]`.
fn rows_of(t: &FlexTensor) -> (usize, usize) {
    let shape: &Shape = t.layout().shape();
    assert_eq!(
        shape.num_dims(),
        2,
        "cross-entropy: logits must be [N, V], got {shape:?}"
    );
    (shape[0], shape[1])
}

/// Rows per parallel task: about [`CHUNK`] elements.
fn rows_per_task(v: usize) -> usize {
    (CHUNK / v.max(1)).max(1)
}

/// Class indices `[N]` (any integer dtype) as `usize`, each checked against the `V` classes:
/// a wrong index must not read another row's logit.
fn class_indices(t: &FlexTensor, n: usize, v: usize) -> Vec<usize> {
    let ids = indices_below(t, v, "cross-entropy: target");
    assert_eq!(
        ids.len(),
        n,
        "cross-entropy: {n} rows of logits, {} targets",
        ids.len()
    );
    ids
}

/// Runs `f(offset, chunk)` over `out` in chunks of `chunk` elements, in parallel.
fn par_zip<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(c, o)| f(c * chunk, o));
}

/// A chunk of whole rows of `t` (about [`CHUNK`] elements).
fn rows_chunk(t: usize) -> usize {
    (CHUNK / t).max(1) * t
}

/// f32 only: the lab trains in f32 (the tensor-level functions send other dtypes to the
/// composed path). Contiguous, so the kernels read plain slices.
fn f32s(t: FlexTensor) -> FlexTensor {
    contiguous_f32(t, "fused kernels")
}

/// `T` of scores `[.., T, T]`.
fn square_rows(t: &FlexTensor) -> usize {
    let shape: &Shape = t.layout().shape();
    let n = shape.num_dims();
    assert!(
        n >= 2 && shape[n - 1] == shape[n - 2],
        "causal softmax: scores must be [.., T, T], got {shape:?}"
    );
    shape[n - 1]
}

/// Max that keeps a NaN (f32::max would drop it, hiding a diverged run from the probe).
fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() {
        a
    } else if b.is_nan() || b > a {
        b
    } else {
        a
    }
}

multiversion! {
    // Writes all of `out` (the inputs are as long).
    fn swiglu_kernel(out: &mut [Out], g: &[f32], u: &[f32]) {
        assert!(g.len() == out.len() && u.len() == out.len());
        for ((o, &g), &u) in out.iter_mut().zip(g).zip(u) {
            o.write(g * sigmoid(g) * u);
        }
    }

    // Writes all of `dg` and `du` (all five slices are as long).
    fn swiglu_backward_kernel(dg: &mut [Out], du: &mut [Out], g: &[f32], u: &[f32], dy: &[f32]) {
        let n = dg.len();
        assert!(du.len() == n && g.len() == n && u.len() == n && dy.len() == n);
        for ((((dg, du), &g), &u), &dy) in dg.iter_mut().zip(du).zip(g).zip(u).zip(dy) {
            let s = sigmoid(g);
            du.write(dy * g * s);
            dg.write(dy * u * s * (1.0 + g * (1.0 - s)));
        }
    }

    // Rows of `t` keys; the first is query `first % t`, which sees keys 0..=query.
    // Writes all of `out` (as long as `s`, whole rows).
    fn softmax_rows(out: &mut [Out], s: &[f32], t: usize, first: usize, scale: f32) {
        assert!(s.len() == out.len() && out.len().is_multiple_of(t));
        for (r, (o, x)) in out.chunks_exact_mut(t).zip(s.chunks_exact(t)).enumerate() {
            let n = (first + r) % t + 1;
            let (o, future) = o.split_at_mut(n);
            let x = &x[..n];
            let m = max_lanes(x) * scale;
            for (o, &x) in o.iter_mut().zip(x) {
                o.write(exp(x * scale - m));
            }
            // SAFETY: the n elements of `o` were written just above.
            let o = unsafe { o.assume_init_mut() };
            let inv = 1.0 / sum_lanes(o);
            o.iter_mut().for_each(|o| *o *= inv);
            future.fill(Out::new(0.0));
        }
    }

    // Writes all of `out` (as long as `y` and `dy`, whole rows).
    fn softmax_backward_rows(out: &mut [Out], y: &[f32], dy: &[f32], t: usize, first: usize, scale: f32) {
        assert!(y.len() == out.len() && dy.len() == out.len() && out.len().is_multiple_of(t));
        let rows = out.chunks_exact_mut(t).zip(y.chunks_exact(t)).zip(dy.chunks_exact(t));
        for (r, ((o, y), dy)) in rows.enumerate() {
            let n = (first + r) % t + 1;
            let (o, future) = o.split_at_mut(n);
            let dot = dot_lanes(&y[..n], &dy[..n]);
            for ((o, &y), &dy) in o.iter_mut().zip(&y[..n]).zip(&dy[..n]) {
                o.write(scale * y * (dy - dot));
            }
            future.fill(Out::new(0.0));
        }
    }
}

multiversion! {
    // Rows of `g.len()` features: `y = x · r · g`, `r = 1 / √(mean(x²) + eps)` kept per row.
    fn rms_norm_rows(y: &mut [f32], inv_rms: &mut [f32], x: &[f32], g: &[f32], eps: f32) {
        let d = g.len();
        for ((y, r), x) in y.chunks_exact_mut(d).zip(inv_rms.iter_mut()).zip(x.chunks_exact(d)) {
            *r = 1.0 / (dot_lanes(x, x) / d as f32 + eps).sqrt();
            for ((y, &x), &g) in y.iter_mut().zip(x).zip(g) {
                *y = x * *r * g;
            }
        }
    }

    // `dx = r · (dy·g − x̂ · mean(dy·g·x̂))`, `x̂ = x · r`, row by row; `dg += dy · x̂`.
    fn rms_norm_backward_rows(dx: &mut [f32], dg: &mut [f32], x: &[f32], g: &[f32], inv_rms: &[f32], dy: &[f32]) {
        let d = g.len();
        let rows = dx.chunks_exact_mut(d).zip(x.chunks_exact(d)).zip(dy.chunks_exact(d));
        for (((dx, x), dy), &r) in rows.zip(inv_rms) {
            for ((dx, &dy), &g) in dx.iter_mut().zip(dy).zip(g) {
                *dx = dy * g;
            }
            let mean = dot_lanes(dx, x) * r / d as f32;
            for (((dx, dg), &x), &dy) in dx.iter_mut().zip(dg.iter_mut()).zip(x).zip(dy) {
                let xh = x * r;
                *dg += dy * xh;
                *dx = r * (*dx - xh * mean);
            }
        }
    }
}

multiversion! {
    // Each row's `log Σ exp(x)`, stabilised by its max (NaN kept: a diverged run stays visible).
    fn log_partition_rows(out: &mut [f32], x: &[f32], v: usize) {
        for (o, row) in out.iter_mut().zip(x.chunks_exact(v)) {
            let m = max_lanes(row);
            let m = if m == f32::NEG_INFINITY { 0.0 } else { m };
            *o = m + exp_sum_lanes(row, m).ln();
        }
    }

    // `dy · exp(x − lse)` per row; the caller subtracts `dy` at the target. Writes all of
    // `out` (as long as `x`, one `lse` and `dy` per row).
    fn softmax_minus_onehot_rows(out: &mut [Out], x: &[f32], lse: &[f32], dy: &[f32], v: usize) {
        let rows = out.len() / v.max(1);
        assert!(x.len() == out.len() && out.len().is_multiple_of(v) && lse.len() == rows && dy.len() == rows);
        let rows = out.chunks_exact_mut(v).zip(x.chunks_exact(v)).zip(lse).zip(dy);
        for (((o, x), &z), &g) in rows {
            for (o, &x) in o.iter_mut().zip(x) {
                o.write(g * exp(x - z));
            }
        }
    }
}

/// `Σ exp(x − m)` in [`LANES`] independent sums.
#[inline(always)]
fn exp_sum_lanes(x: &[f32], m: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| exp(v - m)).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += exp(v - m);
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn causal_max_rows(x: &[f32], t: usize, first: usize) -> f32 {
    x.chunks_exact(t)
        .enumerate()
        .map(|(r, row)| max_lanes(&row[..(first + r) % t + 1]))
        .fold(f32::NEG_INFINITY, nan_max)
}

#[inline(always)]
fn sum_lanes(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The largest element; NaN if there is one.
#[inline(always)]
fn max_lanes(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| nan_max(m, v));
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = nan_max(*a, v);
        }
    }
    acc.iter().fold(tail, |m, &v| nan_max(m, v))
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}
