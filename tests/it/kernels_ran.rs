//! The flex kernels run where the lab means them to: a short MoE and a short dense training
//! run on flex enter every kernel of a training step (counted by `moe_lab::entries` on the
//! calling thread). The kernels' values are tested against burn's composed operations in
//! `fused.rs`, `matmul.rs`, `adamw.rs`, `dispatch.rs` and `routing.rs`; since the wrappers fall
//! back to those same operations, only these counts show that a wrapper did not.

use crate::common::{DENSE, MOE, config, flex_options, tiny_spec};
use moe_lab::entries::{KERNELS, counts};
use moe_lab::train::train;

/// Entries of each kernel during `f`, by name.
fn entered(f: impl FnOnce()) -> Vec<(&'static str, u64)> {
    let before = counts();
    f();
    let after = counts();
    (KERNELS.iter().zip(before.iter().zip(after)))
        .map(|(k, (b, a))| (*k, a - b))
        .collect()
}

fn missing(counts: &[(&'static str, u64)], expected: &[&str]) -> Vec<String> {
    (expected.iter())
        .filter(|k| counts.iter().any(|(n, c)| n == *k && *c == 0))
        .map(|k| k.to_string())
        .collect()
}

/// Kernels of any training step: attention, norms, the loss, matmuls, clipping, AdamW.
const EVERY_STEP: [&str; 13] = [
    "swiglu",
    "swiglu_backward",
    "causal_softmax",
    "causal_softmax_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "rms_norm",
    "rms_norm_backward",
    "shared_matmul",
    "sum_squares",
    "adamw_update",
    "causal_logit_max",
    "router_softmax",
];

/// And an MoE step's: the router, the grouped matmul and the slot movements.
const MOE_STEP: [&str; 11] = [
    "router_softmax_backward",
    "router_log_partition",
    "router_log_partition_backward",
    "grouped_matmul",
    "grouped_weight_grad",
    "top_k_indices",
    "grouped_plan",
    "slots_to_rows",
    "rows_to_tokens",
    "combine_rows",
    "combine_rows_backward",
];

#[test]
fn a_moe_training_run_on_flex_enters_every_kernel() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&tiny_spec("ran", MOE, "").replace("steps = 20", "steps = 3"));
    let counts = entered(|| {
        train(&cfg, flex_options(tmp.path(), false, None)).unwrap();
    });
    let expected: Vec<&str> = EVERY_STEP.iter().chain(&MOE_STEP).copied().collect();
    let gone = missing(&counts, &expected);
    assert!(
        gone.is_empty(),
        "kernels never entered: {gone:?} ({counts:?})"
    );
}

#[test]
fn a_dense_training_run_on_flex_enters_the_dense_kernels() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&tiny_spec("ran-dense", DENSE, "").replace("steps = 20", "steps = 3"));
    let counts = entered(|| {
        train(&cfg, flex_options(tmp.path(), false, None)).unwrap();
    });
    let expected: Vec<&str> = EVERY_STEP
        .iter()
        .filter(|k| !k.starts_with("router"))
        .copied()
        .collect();
    let gone = missing(&counts, &expected);
    assert!(
        gone.is_empty(),
        "kernels never entered: {gone:?} ({counts:?})"
    );
}
