//! Learning-rate schedules: linear warmup then cosine to `min_lr_ratio · lr`, or WSD
//! (warmup, stable, then linear decay to 0 over the final `decay_fraction` of the steps: the
//! LLaMA-3 "annealing" shape).

use crate::spec::{Schedule, TrainSpec};

/// The learning rate at `step` (0-based) of a run of `total` steps.
pub fn learning_rate(train: &TrainSpec, step: usize, total: usize) -> f64 {
    let warmup = train.warmup(total);
    if step < warmup {
        return train.lr * (step + 1) as f64 / warmup as f64;
    }
    match train.schedule {
        Schedule::Cosine => {
            let span = (total - warmup).max(1) as f64;
            let progress = ((step - warmup) as f64 / span).min(1.0);
            let min = train.lr * train.min_lr_ratio;
            min + 0.5 * (train.lr - min) * (1.0 + (std::f64::consts::PI * progress).cos())
        }
        Schedule::Wsd => {
            let decay_start = train.decay_start(total);
            if step < decay_start {
                train.lr
            } else {
                let left = (total - step) as f64 / (total - decay_start) as f64;
                train.lr * left.clamp(0.0, 1.0)
            }
        }
    }
}
