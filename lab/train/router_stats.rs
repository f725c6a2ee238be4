//! Router statistics per MoE layer, accumulated over the evaluation batches:
//! - `router.csv`: load share per expert, MaxVio (max load / mean load − 1), mean routing
//!   entropy, dropped-slot fraction and dead experts (load under 1% of uniform);
//! - `router_domains.csv`: for each validation stream (domain), the share of its token-slots
//!   each expert receives, and per layer the mutual information between domain and chosen
//!   expert in bits, with its maximum min(H(domain), log2 K).

use std::collections::BTreeMap;

use crate::model::ffn::MoeAux;
use crate::run::rows::{RouterDomainRow, RouterRow};
use crate::run::summary::Specialisation;

/// Host-side sums for one MoE layer.
#[derive(Default, Clone)]
struct LayerSums {
    load: Vec<f64>,
    dropped: f64,
    entropy: f64,
    slots: f64,
    /// What the dropped counts are out of (token-slots, or tokens for expert choice).
    dropped_of: f64,
    batches: usize,
    /// Slots per expert for each stream.
    by_stream: BTreeMap<usize, Vec<f64>>,
}

/// Sums per MoE layer (keyed by block index).
#[derive(Default)]
pub struct RouterAccumulator {
    layers: BTreeMap<usize, LayerSums>,
}

/// Statistics of one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRouting {
    pub layer: usize,
    pub load_share: Vec<f64>,
    pub max_vio: f64,
    pub entropy: f64,
    pub dropped_fraction: f64,
    pub dead_experts: usize,
}

impl RouterAccumulator {
    /// Add one batch's routing; `stream` is the batch's stream when all its rows share one.
    pub fn add(&mut self, moe: &[Option<MoeAux>], stream: Option<usize>) {
        for (layer, aux) in moe.iter().enumerate() {
            let Some(aux) = aux else { continue };
            let load: Vec<f32> = aux
                .stats
                .load
                .to_data()
                .try_to_vec::<f32>()
                .expect("f32 load");
            let e = self.layers.entry(layer).or_default();
            if e.load.is_empty() {
                e.load = vec![0.0; load.len()];
            }
            for (sum, l) in e.load.iter_mut().zip(&load) {
                *sum += *l as f64;
            }
            if let Some(s) = stream {
                let per = e
                    .by_stream
                    .entry(s)
                    .or_insert_with(|| vec![0.0; load.len()]);
                for (sum, l) in per.iter_mut().zip(&load) {
                    *sum += *l as f64;
                }
            }
            e.dropped += aux.stats.dropped.clone().into_scalar::<f32>() as f64;
            e.entropy += aux.stats.entropy().into_scalar::<f32>() as f64;
            e.slots += aux.stats.slots as f64;
            e.dropped_of += aux.stats.dropped_of as f64;
            e.batches += 1;
        }
    }

    pub fn layers(&self) -> Vec<LayerRouting> {
        self.layers
            .iter()
            .map(|(layer, e)| {
                let total: f64 = e.load.iter().sum();
                let share: Vec<f64> = e.load.iter().map(|l| l / total.max(1e-12)).collect();
                let k = share.len() as f64;
                let max = share.iter().cloned().fold(0.0, f64::max);
                LayerRouting {
                    layer: *layer,
                    max_vio: max * k - 1.0,
                    entropy: e.entropy / e.batches.max(1) as f64,
                    dropped_fraction: e.dropped / e.dropped_of.max(1.0),
                    dead_experts: share.iter().filter(|s| **s < 0.01 / k).count(),
                    load_share: share,
                }
            })
            .collect()
    }

    /// Mutual information between stream and expert per layer (streams weighted by their
    /// slots in the evaluation).
    pub fn specialisation(&self) -> Vec<Specialisation> {
        self.layers
            .iter()
            .filter(|(_, e)| !e.by_stream.is_empty())
            .map(|(layer, e)| {
                let total: f64 = e.by_stream.values().flatten().sum();
                let experts = e.load.len();
                let p_d: Vec<f64> = e
                    .by_stream
                    .values()
                    .map(|v| v.iter().sum::<f64>() / total)
                    .collect();
                let p_e: Vec<f64> = (0..experts)
                    .map(|i| e.by_stream.values().map(|v| v[i]).sum::<f64>() / total)
                    .collect();
                let mut mi = 0.0;
                for (d, v) in e.by_stream.values().enumerate() {
                    for (i, n) in v.iter().enumerate() {
                        let p = n / total;
                        if p > 0.0 {
                            mi += p * (p / (p_d[d] * p_e[i])).log2();
                        }
                    }
                }
                let h_d: f64 = p_d
                    .iter()
                    .filter(|p| **p > 0.0)
                    .map(|p| -p * p.log2())
                    .sum();
                Specialisation {
                    layer: *layer,
                    mutual_information_bits: mi.max(0.0),
                    max_bits: h_d.min((experts as f64).log2()),
                }
            })
            .collect()
    }

    /// `router.csv` rows for `step`: one per (layer, expert).
    pub fn rows(&self, step: usize) -> Vec<RouterRow> {
        let mut rows = Vec::new();
        for l in self.layers() {
            for (expert, share) in l.load_share.iter().enumerate() {
                rows.push(RouterRow {
                    step,
                    layer: l.layer,
                    expert,
                    load_share: *share,
                    max_vio: l.max_vio,
                    entropy: l.entropy,
                    dropped_fraction: l.dropped_fraction,
                    dead_experts: l.dead_experts,
                });
            }
        }
        rows
    }

    /// `router_domains.csv` rows for `step`: one per (layer, stream, expert).
    pub fn domain_rows(&self, step: usize, names: &[String]) -> Vec<RouterDomainRow> {
        let spec: BTreeMap<usize, Specialisation> = self
            .specialisation()
            .into_iter()
            .map(|s| (s.layer, s))
            .collect();
        let mut rows = Vec::new();
        for (layer, e) in &self.layers {
            for (stream, v) in &e.by_stream {
                // Present: a layer with streams has a specialisation.
                let s = &spec[layer];
                let total: f64 = v.iter().sum();
                let domain = names.get(*stream).cloned();
                for (expert, n) in v.iter().enumerate() {
                    rows.push(RouterDomainRow {
                        step,
                        layer: *layer,
                        domain: domain.clone().unwrap_or_else(|| stream.to_string()),
                        expert,
                        share: n / total.max(1e-12),
                        mutual_information_bits: s.mutual_information_bits,
                        max_bits: s.max_bits,
                    });
                }
            }
        }
        rows
    }
}
