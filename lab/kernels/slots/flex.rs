//! The slot movements on flex: row copies and row sums in one pass, split over rayon's threads
//! by output rows. Sums over a token's k choices run in choice order, as burn's `sum_dim` over
//! the composed `[k, N, d]` does.

use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::Shape;
use rayon::prelude::*;

use super::SlotOps;
use crate::kernels::flex_ints::indices_below;
use crate::kernels::gemm::{contiguous_f32, f32_slice, written, zeros};
use crate::simd::{dot_lanes, multiversion};

/// An uninitialised f32 element a kernel writes.
type Out = MaybeUninit<f32>;

/// Output rows per parallel task: at least this many elements in one task.
const CHUNK: usize = 1 << 14;

impl SlotOps for Flex {
    fn slots_to_rows(x: FlexTensor, slot_row: FlexTensor) -> FlexTensor {
        crate::kernels::entries::enter("slots_to_rows");
        let x = f32s(x);
        let (n, d) = dims2(&x);
        let slots = slot_row.layout().shape().num_elements();
        let slot_row = indices_below(&slot_row, slots, "slots: row");
        let slot_of_row = invert(&slot_row);
        let x = f32_slice(&x);
        let per_task = rows_per_task(d);
        let fill = |rows: &mut [Out]| {
            (rows.par_chunks_mut(per_task * d.max(1)))
                .enumerate()
                .for_each(|(c, out)| {
                    for (i, out) in out.chunks_exact_mut(d).enumerate() {
                        let t = slot_of_row[c * per_task + i] % n;
                        out.write_copy_of_slice(&x[t * d..(t + 1) * d]);
                    }
                })
        };
        // SAFETY: every row (one per slot) is copied whole from its token's row.
        unsafe { written(Shape::new([slot_row.len(), d]), fill) }
    }

    fn rows_to_tokens(rows: FlexTensor, slot_row: FlexTensor, top_k: usize) -> FlexTensor {
        crate::kernels::entries::enter("rows_to_tokens");
        gather_sum(rows, slot_row, None, top_k)
    }

    fn combine_rows(
        rows: FlexTensor,
        slot_row: FlexTensor,
        gate: FlexTensor,
        top_k: usize,
    ) -> FlexTensor {
        crate::kernels::entries::enter("combine_rows");
        gather_sum(rows, slot_row, Some(gate), top_k)
    }

    fn combine_rows_backward(
        rows: FlexTensor,
        slot_row: FlexTensor,
        gate: FlexTensor,
        dy: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        crate::kernels::entries::enter("combine_rows_backward");
        let (rows, gate, dy) = (f32s(rows), f32s(gate), f32s(dy));
        let ((s, d), (n, _)) = (dims2(&rows), dims2(&dy));
        let slot_row = indices_below(&slot_row, s, "slots: row");
        let slot_of_row = invert(&slot_row);
        let (r, g, dy) = (f32_slice(&rows), f32_slice(&gate), f32_slice(&dy));
        assert_eq!(g.len(), s, "combine: one gate per slot");
        // d_rows[slot_row[s]] = gate[s] · dy[s mod N], by output row.
        let per_task = rows_per_task(d);
        let fill_rows = |out: &mut [Out]| {
            (out.par_chunks_mut(per_task * d.max(1)))
                .enumerate()
                .for_each(|(c, out)| {
                    scaled_token_rows(out, &slot_of_row[c * per_task..], g, dy, n, d)
                })
        };
        // d_gate[s] = rows[slot_row[s]] · dy[s mod N].
        let fill_gate = |out: &mut [Out]| {
            (out.par_chunks_mut(per_task))
                .enumerate()
                .for_each(|(c, out)| row_token_dots(out, c * per_task, &slot_row, r, dy, n, d))
        };
        // SAFETY: both kernels write every element of their chunks.
        unsafe {
            (
                written(Shape::new([s, d]), fill_rows),
                written(Shape::new([s, 1]), fill_gate),
            )
        }
    }
}

/// `out[t] = Σ_j gate[j·N + t] · rows[slot_row[j·N + t]]` (no gate: a plain sum), j in order.
fn gather_sum(
    rows: FlexTensor,
    slot_row: FlexTensor,
    gate: Option<FlexTensor>,
    top_k: usize,
) -> FlexTensor {
    let rows = f32s(rows);
    let (s, d) = dims2(&rows);
    let slot_row = indices_below(&slot_row, s, "slots: row");
    assert!(
        top_k > 0 && slot_row.len() == s && s.is_multiple_of(top_k),
        "combine: {} slots for {s} rows at k = {top_k}",
        slot_row.len()
    );
    let n = s / top_k;
    let gate = gate.map(f32s);
    let g = gate.as_ref().map(f32_slice);
    let r = f32_slice(&rows);
    let mut out = zeros::<f32>(Shape::new([n, d]));
    let per_task = rows_per_task(d);
    (out.storage_mut::<f32>().par_chunks_mut(per_task * d.max(1)))
        .enumerate()
        .for_each(|(c, out)| sum_slot_rows(out, c * per_task, &slot_row, r, g, (n, top_k, d)));
    out
}

multiversion! {
    // Tokens `first..` of `out`: `Σ_j gate[s] · rows[slot_row[s]]` over s = j·N + t, j in
    // order (each product rounded before the sum, as composed); no gate: the plain sum.
    // `shape`: (N tokens, k, d).
    fn sum_slot_rows(
        out: &mut [f32],
        first: usize,
        slot_row: &[usize],
        r: &[f32],
        g: Option<&[f32]>,
        shape: (usize, usize, usize),
    ) {
        let (n, top_k, d) = shape;
        for (i, out) in out.chunks_exact_mut(d).enumerate() {
            for j in 0..top_k {
                let slot = j * n + first + i;
                let row = &r[slot_row[slot] * d..(slot_row[slot] + 1) * d];
                match g {
                    Some(g) => {
                        for (o, &x) in out.iter_mut().zip(row) {
                            *o += x * g[slot];
                        }
                    }
                    None => {
                        for (o, &x) in out.iter_mut().zip(row) {
                            *o += x;
                        }
                    }
                }
            }
        }
    }

    // Rows of `out`, one per entry of `slots`: `gate[s] · dy[s mod N]`. Writes all of `out`
    // (whole rows, no more than there are slots).
    fn scaled_token_rows(out: &mut [Out], slots: &[usize], g: &[f32], dy: &[f32], n: usize, d: usize) {
        assert!(out.len().is_multiple_of(d.max(1)) && out.len() / d.max(1) <= slots.len());
        for (out, &slot) in out.chunks_exact_mut(d).zip(slots) {
            let (gate, t) = (g[slot], slot % n);
            for (o, &dy) in out.iter_mut().zip(&dy[t * d..(t + 1) * d]) {
                o.write(gate * dy);
            }
        }
    }

    // Slots `first..` of `out`: `rows[slot_row[s]] · dy[s mod N]`.
    fn row_token_dots(
        out: &mut [Out],
        first: usize,
        slot_row: &[usize],
        r: &[f32],
        dy: &[f32],
        n: usize,
        d: usize,
    ) {
        for (i, o) in out.iter_mut().enumerate() {
            let slot = first + i;
            let (row, t) = (slot_row[slot], slot % n);
            o.write(dot_lanes(&r[row * d..(row + 1) * d], &dy[t * d..(t + 1) * d]));
        }
    }
}

/// Rows per parallel task for rows of `d` elements.
fn rows_per_task(d: usize) -> usize {
    (CHUNK / d.max(1)).max(1)
}

/// `slot_of_row[slot_row[s]] = s`, checking that `slot_row` is a permutation of `0..S`.
fn invert(slot_row: &[usize]) -> Vec<usize> {
    let mut slot_of_row = vec![usize::MAX; slot_row.len()];
    for (s, &row) in slot_row.iter().enumerate() {
        assert!(
            row < slot_row.len() && slot_of_row[row] == usize::MAX,
            "slots: row {row} is not one of a permutation of the {} slots",
            slot_row.len()
        );
        slot_of_row[row] = s;
    }
    slot_of_row
}

/// f32, contiguous: the kernels read plain slices.
fn f32s(t: FlexTensor) -> FlexTensor {
    contiguous_f32(t, "slots")
}

fn dims2(t: &FlexTensor) -> (usize, usize) {
    let shape = t.layout().shape();
    assert_eq!(
        shape.num_dims(),
        2,
        "slots: [rows, d] expected, got {shape:?}"
    );
    (shape[0], shape[1])
}
