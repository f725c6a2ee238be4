//! Checkpoint averaging, as in LLaMA-3's annealing stage: the weights of M snapshots taken
//! evenly over the final decay (the last `decay_fraction` of training, where the rate falls)
//! are averaged into one model, evaluated and kept beside the last one. The running sum is a
//! model of its own, saved with every checkpoint, so a resumed run averages the same
//! snapshots as an uninterrupted one.

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::model::Transformer;
use crate::spec::TrainSpec;

/// The steps (0-based) after which a snapshot is taken: the ends of M equal slices of the
/// decay phase, the last being the final step. Empty when averaging is off.
pub fn snapshot_steps(train: &TrainSpec, total: usize) -> Vec<usize> {
    let m = train.average_checkpoints;
    let start = train.decay_start(total);
    let len = total - start;
    (0..m)
        .map(|i| start + ((i + 1) * len).div_ceil(m) - 1)
        .collect()
}

/// Every float tensor of a module, flattened, in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().flatten::<1>(0, D - 1));
    }
}

/// Each float tensor ← itself + the next addend (in visiting order).
struct Add(std::vec::IntoIter<Tensor<1>>);

impl ModuleMapper for Add {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let add = self.0.next().expect("the same module shape");
        param.map(|t| {
            let dims = t.dims();
            t + add.reshape(dims)
        })
    }
}

/// Each float tensor ← itself × the factor.
struct Scale(f64);

impl ModuleMapper for Scale {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.mul_scalar(self.0))
    }
}

/// `sum + model` (a new snapshot added), or `model` itself for the first.
pub fn add(sum: Option<Transformer>, model: &Transformer) -> Transformer {
    let Some(sum) = sum else {
        return model.clone();
    };
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    sum.map(&mut Add(collect.0.into_iter()))
}

/// `sum / count`: the averaged model.
pub fn mean(sum: &Transformer, count: usize) -> Transformer {
    sum.clone().map(&mut Scale(1.0 / count as f64))
}
