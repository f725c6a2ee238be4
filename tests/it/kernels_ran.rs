//! The flex kernels run where the lab means them to: a short MoE and a short dense training
//! run on flex enter every kernel of a training step (counted by `moe_lab::kernels::entries` on the
//! calling thread). The kernels' values are tested against burn's composed operations in
//! `fused.rs`, `matmul.rs`, `adamw.rs`, `dispatch.rs` and `routing.rs`; since the wrappers fall
//! back to those same operations, only these counts show that a wrapper did not.

use crate::common::{DENSE, MOE, config, flex_options, tiny_spec};
use moe_lab::kernels::entries::{KERNELS, counts};
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

/// The kernels only an MoE step enters: the router's and the dispatch's.
fn moe_only(kernel: &str) -> bool {
    kernel.starts_with("router")
        || kernel.contains("grouped")
        || ["top_k_indices", "slots_to_rows", "rows_to_tokens"].contains(&kernel)
        || kernel.starts_with("combine_rows")
}

#[test]
fn a_moe_training_run_on_flex_enters_every_kernel() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&tiny_spec("ran", MOE, "").replace("steps = 20", "steps = 3"));
    let counts = entered(|| {
        train(&cfg, flex_options(tmp.path(), false, None)).unwrap();
    });
    // Every kernel there is.
    let gone = missing(&counts, &KERNELS);
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
    let expected: Vec<&str> = KERNELS.iter().filter(|k| !moe_only(k)).copied().collect();
    assert_eq!(expected.len(), 12, "{expected:?}");
    let gone = missing(&counts, &expected);
    assert!(
        gone.is_empty(),
        "kernels never entered: {gone:?} ({counts:?})"
    );
}
