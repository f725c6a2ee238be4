//! Robust spike detection: a value is a spike when it exceeds the median of the previous
//! `window` values by more than `z · σ̂`, with σ̂ = 1.4826 · MAD (the median absolute deviation,
//! scaled to equal σ for Gaussian noise). Medians ignore the spikes' own size, so one spike
//! does not hide the next, unlike a mean-based rule.

use std::collections::VecDeque;

use crate::spec::StabilitySpec;

/// MAD → σ for normally distributed values.
const MAD_TO_SIGMA: f64 = 1.4826;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SpikeDetector {
    window: usize,
    z: f64,
    min_history: usize,
    history: VecDeque<f64>,
}

/// A detected spike: how far above the rolling median, in σ̂ units and as a ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    pub value: f64,
    pub median: f64,
    /// (value − median) / σ̂
    pub score: f64,
}

impl SpikeDetector {
    pub fn new(spec: &StabilitySpec) -> Self {
        SpikeDetector {
            window: spec.window,
            z: spec.z,
            min_history: spec.min_history.max(3),
            history: VecDeque::with_capacity(spec.window),
        }
    }

    /// Test `value` against the history, then add it to the history.
    pub fn observe(&mut self, value: f64) -> Option<Spike> {
        let spike = self.check(value);
        if self.history.len() == self.window {
            self.history.pop_front();
        }
        self.history.push_back(value);
        spike
    }

    fn check(&self, value: f64) -> Option<Spike> {
        if self.history.len() < self.min_history || !value.is_finite() {
            return None;
        }
        let mut sorted: Vec<f64> = self.history.iter().copied().collect();
        let center = median(&mut sorted);
        let mut deviations: Vec<f64> = sorted.iter().map(|v| (v - center).abs()).collect();
        // A floor on σ̂ so a flat history (MAD = 0) does not flag rounding noise.
        let sigma = (MAD_TO_SIGMA * median(&mut deviations)).max(1e-6 * center.abs().max(1.0));
        let score = (value - center) / sigma;
        (score > self.z).then_some(Spike {
            value,
            median: center,
            score,
        })
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}
