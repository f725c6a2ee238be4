//! `summary.json`: the one file that says how a run ended and what it measured. While a run
//! trains, its summary is also its loop state (checkpointed with the weights).

use serde::{Deserialize, Serialize};

use crate::compute::{FlopCount, ParamCount};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started, not finished (or killed).
    Running,
    Complete,
    /// A non-finite loss or gradient ended the run.
    Diverged,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpikeRecord {
    pub step: usize,
    /// `loss` or `grad_norm`
    pub kind: String,
    pub value: f64,
    pub median: f64,
    /// Height above the rolling median in robust σ units.
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SpikeSummary {
    pub loss_spikes: usize,
    pub grad_norm_spikes: usize,
    pub events: Vec<SpikeRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct MemorySummary {
    pub peak_bytes_in_use: Option<u64>,
    pub peak_bytes_reserved: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub analytic: Option<AnalyticMemory>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceSummary {
    pub backend: String,
    pub adapter: String,
    pub software: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DistillSummary {
    pub teacher: String,
    pub weight: f64,
    pub temperature: f64,
    pub top_k: usize,
    pub teacher_forward_flops: f64,
    pub teacher_flops_charged: bool,
    /// The KL to the teacher at the first and the last logged step.
    pub initial_kl: Option<f64>,
    pub final_kl: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub status: RunStatus,
    pub name: String,
    pub experiment: String,
    pub seed: u64,
    pub ffn: String,
    /// The variant in full, e.g. `moe/loss-free`.
    #[serde(default)]
    pub ffn_variant: String,
    /// What the lab warned about when the run started (e.g. a router that is not causal).
    #[serde(default)]
    pub warnings: Vec<String>,
    pub steps_planned: usize,
    pub steps_done: usize,
    pub tokens: u64,
    pub train_flops: f64,
    pub final_val_loss: Option<f64>,
    pub best_val_loss: Option<f64>,
    pub final_train_loss: Option<f64>,
    /// Training loss of the first step (ℓ0: the loss at initialisation), and the largest
    /// finite training loss of any later step: a run whose loss rose back above ℓ0 has
    /// diverged, even if it later recovered (the lr-stability experiment's rule).
    #[serde(default)]
    pub initial_train_loss: Option<f64>,
    /// Checkpoint averaging: the averaged model's final validation loss (on the same windows
    /// as `final_val_loss`) and how many snapshots it averages.
    #[serde(default)]
    pub final_val_loss_averaged: Option<f64>,
    #[serde(default)]
    pub averaged_snapshots: usize,
    /// With a long-context stage: the final evaluation on windows of its `seq_len`
    /// (`final_val_loss` is on the base length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_val_loss_long_context: Option<f64>,
    /// The averaged model's final validation loss per stream.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub final_val_loss_by_stream_averaged: std::collections::BTreeMap<String, f64>,
    /// A distilled run's teacher (its run directory), the teacher's forward FLOPs over the
    /// run (at the student's tokens), and whether they were charged to the student's budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<DistillSummary>,
    #[serde(default)]
    pub peak_train_loss: Option<f64>,
    /// Final validation loss of each stream (domain).
    #[serde(default)]
    pub final_val_loss_by_stream: std::collections::BTreeMap<String, f64>,
    /// Final loss on answer bytes only (the objects of stated facts), per stream with answers.
    #[serde(default)]
    pub final_answer_loss_by_stream: std::collections::BTreeMap<String, f64>,
    /// Standard error of `final_val_loss` (from the final evaluation's windows).
    #[serde(default)]
    pub final_val_loss_se: Option<f64>,
    #[serde(default)]
    pub final_val_loss_se_by_stream: std::collections::BTreeMap<String, f64>,
    /// Per question stream: whole answers greedy decoding reproduces exactly, at the final
    /// evaluation.
    #[serde(default)]
    pub final_exact_match_by_stream: std::collections::BTreeMap<String, ExactMatch>,
    /// Step from which the data mix used the annealing weights.
    #[serde(default)]
    pub anneal_switch_step: Option<usize>,
    /// Domain–expert mutual information per MoE layer at the final evaluation.
    #[serde(default)]
    pub routing_specialisation: Vec<Specialisation>,
    /// Step at which a non-finite loss or gradient appeared.
    pub diverged_at_step: Option<usize>,
    /// The step each later attempt resumed from (its checkpoint's `steps_done`): empty for a
    /// run trained in one go, or one that restarted because no checkpoint was usable.
    #[serde(default)]
    pub resumed_from: Vec<usize>,
    /// When the run's first attempt started (seconds since the Unix epoch).
    #[serde(default)]
    pub started_unix_s: Option<f64>,
    pub wall_time_s: f64,
    pub tokens_per_s: f64,
    pub spikes: SpikeSummary,
    pub memory: MemorySummary,
    pub params: ParamCount,
    pub flops_per_token: FlopCount,
    pub device: DeviceSummary,
    pub git_commit: String,
    pub lab_version: String,
}

/// Analytic bytes of what training holds besides activations (f32 everywhere).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct AnalyticMemory {
    pub params_bytes: u64,
    pub grads_bytes: u64,
    /// AdamW's two moments.
    pub optimizer_bytes: u64,
}

impl AnalyticMemory {
    pub fn for_params(total_params: u64) -> Self {
        let bytes = 4 * total_params;
        AnalyticMemory {
            params_bytes: bytes,
            grads_bytes: bytes,
            optimizer_bytes: 2 * bytes,
        }
    }
    pub fn total(&self) -> u64 {
        self.params_bytes + self.grads_bytes + self.optimizer_bytes
    }
}

/// How much the choice of expert tells about the domain, for one layer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Specialisation {
    pub layer: usize,
    /// I(domain; expert) in bits.
    pub mutual_information_bits: f64,
    /// Its largest possible value here: min(H(domain), log2 K).
    pub max_bits: f64,
}

/// Answers judged and answered exactly (greedy decoding reproduces every byte).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ExactMatch {
    pub exact: usize,
    pub answers: usize,
    /// exact / answers.
    pub rate: f64,
}

/// The commit of the working tree the lab runs from, if it is a git checkout.
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Seconds since the Unix epoch, with sub-second resolution.
pub fn now_unix_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
