//! The lab's kernels: operations burn composes from several passes, written as one pass each on
//! flex (the CPU backend) as burn backend extensions, with burn's composed operations as the
//! fallback everywhere else (another backend, another dtype) and as the tests' reference.
//!
//! A layer of its own, below the model and the training loop: `model/` and `train/` call these
//! operations by name and never ask which backend runs them. Each kernel is a folder or file:
//! its operation's trait and dispatching wrapper (`mod.rs`), its flex implementation
//! (`flex.rs`), and on wgpu a cubecl kernel where one exists (`grouped_matmul/cube.rs`).
//!
//! - [`gemm`]: products written by gemm straight into outputs the lab allocates; [`matmul`]
//!   the model's matmuls through it, [`flop_meter`] counting the FLOPs they execute;
//! - [`fused`]: SwiGLU, causal softmax, the attention-logit probe, cross-entropy, RMSNorm;
//! - [`router_softmax`]: the router's softmax and log-partition;
//! - [`host_routing`] (top-k indices, the grouped plan) and [`plan`] (the plan as tensors, for
//!   backends without it), [`slots`] (token-slots to expert rows and back), [`grouped_matmul`]
//!   (each expert's rows by its weights);
//! - [`adamw`] (the optimizer's update) and [`clip`] (the gradient's sum of squares);
//! - [`flex_ints`] (reading integer index tensors), [`entries`] (which kernels ran: tests).

pub mod adamw;
pub mod backward;
pub mod clip;
pub mod entries;
pub mod flex_ints;
pub mod flop_meter;
pub mod fused;
pub mod gemm;
pub mod grouped_matmul;
pub mod host_routing;
pub mod matmul;
pub mod plan;
pub mod router_softmax;
pub mod slots;

use burn::backend::DispatchDevice;
use burn::prelude::Device;

/// Whether `device` is flex (with or without autodiff): where the lab's flex kernels run.
pub fn on_flex(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    )
}
