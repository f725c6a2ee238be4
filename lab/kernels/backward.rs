//! What every hand-written backward pass does around its kernel: take the output's gradient and
//! the state saved by the forward, then register each input's gradient where that input tracks
//! one, computing it only then.

use burn::backend::Backend;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::Ops;
use burn::backend::tensor::FloatTensor;

/// The inputs' node ids (`None` where an input tracks no gradient), the output's gradient and
/// the forward's state.
pub fn take<B: Backend, S, const N: usize>(
    ops: Ops<S, N>,
    grads: &mut Gradients,
) -> ([Option<NodeId>; N], FloatTensor<B>, S) {
    let dy = grads.consume::<B>(&ops.node);
    (ops.parents.map(|p| p.map(|n| n.id)), dy, ops.state)
}

/// Register `grad()` as the gradient of `input`, computed only where the input tracks one.
pub fn give<B: Backend>(
    grads: &mut Gradients,
    input: Option<NodeId>,
    grad: impl FnOnce() -> FloatTensor<B>,
) {
    if let Some(id) = input {
        grads.register::<B>(id, grad());
    }
}
