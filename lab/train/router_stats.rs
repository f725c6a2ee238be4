//! Router statistics per MoE layer, accumulated over the evaluation batches and written to
//! `router.csv`: load share per expert, MaxVio (max load / mean load − 1), mean routing
//! entropy, dropped-slot fraction and dead experts (load under 1% of uniform).

use crate::model::ffn::MoeAux;

/// Host-side sums per MoE layer.
#[derive(Default)]
pub struct RouterAccumulator {
    /// Per block index with an MoE: (load per expert, dropped, entropy sum, slots, batches).
    layers: Vec<(usize, Vec<f64>, f64, f64, f64, usize)>,
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
    pub fn add(&mut self, moe: &[Option<MoeAux>]) {
        let mut i = 0;
        for (layer, aux) in moe.iter().enumerate() {
            let Some(aux) = aux else { continue };
            let load: Vec<f32> = aux
                .stats
                .load
                .to_data()
                .try_to_vec::<f32>()
                .expect("f32 load");
            let dropped = aux.stats.dropped.clone().into_scalar::<f32>() as f64;
            let entropy = aux.stats.entropy.clone().into_scalar::<f32>() as f64;
            if self.layers.len() <= i {
                self.layers
                    .push((layer, vec![0.0; load.len()], 0.0, 0.0, 0.0, 0));
            }
            let entry = &mut self.layers[i];
            for (sum, l) in entry.1.iter_mut().zip(&load) {
                *sum += *l as f64;
            }
            entry.2 += dropped;
            entry.3 += entropy;
            entry.4 += aux.stats.slots as f64;
            entry.5 += 1;
            i += 1;
        }
    }

    pub fn layers(&self) -> Vec<LayerRouting> {
        self.layers
            .iter()
            .map(|(layer, load, dropped, entropy, slots, batches)| {
                let total: f64 = load.iter().sum();
                let share: Vec<f64> = load.iter().map(|l| l / total.max(1e-12)).collect();
                let k = share.len() as f64;
                let max = share.iter().cloned().fold(0.0, f64::max);
                LayerRouting {
                    layer: *layer,
                    max_vio: max * k - 1.0,
                    entropy: entropy / *batches as f64,
                    dropped_fraction: dropped / slots.max(1.0),
                    dead_experts: share.iter().filter(|s| **s < 0.01 / k).count(),
                    load_share: share,
                }
            })
            .collect()
    }

    /// `router.csv` rows for `step`: one per (layer, expert).
    pub fn rows(&self, step: usize) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        for l in self.layers() {
            for (e, share) in l.load_share.iter().enumerate() {
                rows.push(vec![
                    step.to_string(),
                    l.layer.to_string(),
                    e.to_string(),
                    format!("{share:.6}"),
                    format!("{:.6}", l.max_vio),
                    format!("{:.6}", l.entropy),
                    format!("{:.6}", l.dropped_fraction),
                    l.dead_experts.to_string(),
                ]);
            }
        }
        rows
    }
}
