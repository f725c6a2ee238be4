//! A per-thread count of the matmul FLOPs the model code executes, so tests can check the
//! accounting in `compute` against what actually runs (not against itself).
//!
//! The feed-forward code multiplies through [`matmul`], which records `2·batch·m·k·n` (a
//! multiply-add is 2 FLOPs) from the operands' shapes and then multiplies. Counting
//! is a few integer operations per matmul, so it stays on in every build. A variant that
//! calls `Tensor::matmul` directly is not counted, and the conformance suite then reports its
//! FLOP formula as wrong: use this function for every matmul of a feed-forward.

use std::cell::Cell;

use burn::prelude::*;

thread_local! {
    static EXECUTED_FLOPS: Cell<f64> = const { Cell::new(0.0) };
}

/// `a.matmul(b)`, counted, through [`kernels::matmul`](super::matmul). Leading (batch)
/// dimensions broadcast as in burn.
pub fn matmul<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    let (da, db) = (a.dims(), b.dims());
    let (m, k, n) = (da[D - 2], da[D - 1], db[D - 1]);
    let batch: usize = (0..D - 2).map(|i| da[i].max(db[i])).product();
    EXECUTED_FLOPS.with(|c| c.set(c.get() + 2.0 * (batch * m * k * n) as f64));
    super::matmul::matmul(a, b)
}

/// Record `flops` executed by a matmul-like operation the meter cannot see through [`matmul`]
/// (the grouped matmul: one call multiplies every row group by its own weights).
pub fn record(flops: f64) {
    EXECUTED_FLOPS.with(|c| c.set(c.get() + flops));
}

/// Run `f` and return its result with the matmul FLOPs it executed on this thread.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let before = EXECUTED_FLOPS.with(Cell::get);
    let out = f();
    let after = EXECUTED_FLOPS.with(Cell::get);
    (out, after - before)
}
