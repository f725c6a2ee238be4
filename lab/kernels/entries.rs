//! How many times each flex kernel was entered on this thread. Every kernel sits behind a
//! wrapper that falls back to burn's composed operations where it does not apply (another
//! backend, another dtype), and the fallback computes the same values, so outputs alone cannot
//! show that the kernel ran: tests read these counts (`tests/it/kernels_ran.rs`). A
//! thread-local counter costs a few nanoseconds per operation and needs no synchronisation.

use std::cell::RefCell;

/// The kernels counted, by the name of their backend-extension method.
pub const KERNELS: [&str; 24] = [
    "swiglu",
    "swiglu_backward",
    "causal_softmax",
    "causal_softmax_backward",
    "causal_logit_max",
    "cross_entropy",
    "cross_entropy_backward",
    "rms_norm",
    "rms_norm_backward",
    "router_softmax",
    "router_softmax_backward",
    "router_log_partition",
    "router_log_partition_backward",
    "shared_matmul",
    "grouped_matmul",
    "grouped_weight_grad",
    "top_k_indices",
    "grouped_plan",
    "slots_to_rows",
    "rows_to_tokens",
    "combine_rows",
    "combine_rows_backward",
    "sum_squares",
    "adamw_update",
];

thread_local! {
    static COUNTS: RefCell<[u64; KERNELS.len()]> = const { RefCell::new([0; KERNELS.len()]) };
}

fn index(kernel: &str) -> usize {
    (KERNELS.iter().position(|k| *k == kernel))
        .unwrap_or_else(|| panic!("`{kernel}` is not in entries::KERNELS"))
}

/// Count one entry of `kernel` on this thread.
pub fn enter(kernel: &'static str) {
    let i = index(kernel);
    COUNTS.with(|c| c.borrow_mut()[i] += 1);
}

/// Entries of `kernel` on this thread so far.
pub fn count(kernel: &str) -> u64 {
    let i = index(kernel);
    COUNTS.with(|c| c.borrow()[i])
}

/// Every kernel's entries on this thread so far, in [`KERNELS`] order.
pub fn counts() -> [u64; KERNELS.len()] {
    COUNTS.with(|c| *c.borrow())
}
