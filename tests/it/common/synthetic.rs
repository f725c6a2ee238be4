//! Runs made up from numbers, for testing the analysis against hand values without training:
//! a [`RunData`] whose summary is a real one's shape with the fields a test sets, and the
//! manifest of a sweep over them.

use moe_lab::analysis::load::RunData;
use moe_lab::run::{Cell, Manifest, MetricRow, RunStatus, Summary};

/// A complete run's summary, as `lab train` writes it (trimmed to the required fields).
const SUMMARY: &str = r#"{"status": "complete", "name": "x", "experiment": "synthetic", "seed": 1,
 "ffn": "moe", "steps_planned": 100, "steps_done": 100, "tokens": 102400, "train_flops": 1e10,
 "final_val_loss": 2.0, "best_val_loss": 2.0, "final_train_loss": 2.0,
 "initial_train_loss": 5.5, "peak_train_loss": 5.5, "diverged_at_step": null,
 "wall_time_s": 1.0, "tokens_per_s": 1000.0,
 "spikes": {"loss_spikes": 0, "grad_norm_spikes": 0, "events": []},
 "memory": {"peak_bytes_in_use": null, "peak_bytes_reserved": null, "peak_rss_bytes": 1000000,
   "analytic": {"params_bytes": 4000, "grads_bytes": 4000, "optimizer_bytes": 8000}},
 "params": {"total": 1000, "active": 800, "embedding": 100, "buffers": 0},
 "flops_per_token": {"attention_projections": 1.0, "attention_scores": 1.0, "dense_ffn": 0.0,
   "router": 0.0, "moe_experts_active": 1.0, "moe_executed_expert_flops": 1.0, "lm_head": 1.0,
   "forward_per_token": 4.0, "train_per_token": 12.0},
 "device": {"backend": "flex", "adapter": "cpu (flex)", "software": false},
 "git_commit": "test", "lab_version": "0.1.0"}"#;

/// A complete run of `(size, arm, seed)` with final validation loss `loss`.
pub fn run(size: &str, arm: &str, seed: u64, loss: f64) -> RunData {
    let mut summary: Summary = serde_json::from_str(SUMMARY).unwrap();
    summary.name = format!("{size}-{arm}-s{seed}");
    summary.seed = seed;
    summary.final_val_loss = Some(loss);
    RunData {
        cell: Cell {
            name: summary.name.clone(),
            size: size.into(),
            arm: arm.into(),
            seed,
            d_model: 0,
            n_layers: 0,
            lr: None,
            budget: None,
            mixture: None,
        },
        summary,
        evals: vec![],
        metrics: vec![],
        router: vec![],
        router_state: vec![],
        ffn: None,
        vocab_size: 256,
        generation: None,
    }
}

/// The same at learning rate `lr`.
pub fn run_at(size: &str, arm: &str, seed: u64, lr: f64, loss: f64) -> RunData {
    let mut r = run(size, arm, seed, loss);
    r.cell.lr = Some(lr);
    r.cell.name = format!("{size}-{arm}-lr{lr}-s{seed}");
    r
}

/// A run that stopped on a non-finite loss, its last evaluation before that at `last_eval`.
pub fn diverged(mut r: RunData, last_eval: f64) -> RunData {
    r.summary.status = RunStatus::Diverged;
    r.summary.final_val_loss = Some(last_eval);
    r
}

/// A metrics row at `step` with the given attention-logit probe.
pub fn metric(step: usize, attn_logit_max: Option<f64>) -> MetricRow {
    MetricRow {
        step,
        tokens: 0,
        flops: 0.0,
        lr: 0.0,
        loss: 2.0,
        aux_loss: 0.0,
        z_loss: 0.0,
        grad_norm: 1.0,
        tokens_per_s: 0.0,
        mem_in_use: None,
        mem_reserved: None,
        rss: None,
        loss_spike: 0,
        grad_spike: 0,
        attn_logit_max,
        output_log_z: None,
        router_logit_max: None,
        distill_kl: None,
    }
}

/// The manifest of a sweep over `runs`: sizes and arms in first-seen order, `reference` the
/// arm under test and `baseline` its comparison, rates sorted.
pub fn manifest(runs: &[RunData], reference: &str, baseline: &str, margin: f64) -> Manifest {
    let mut sizes: Vec<String> = Vec::new();
    let mut arms: Vec<String> = Vec::new();
    let mut rates: Vec<f64> = Vec::new();
    for r in runs {
        if !sizes.contains(&r.cell.size) {
            sizes.push(r.cell.size.clone());
        }
        if !arms.contains(&r.cell.arm) {
            arms.push(r.cell.arm.clone());
        }
        if let Some(lr) = r.cell.lr.filter(|lr| !rates.contains(lr)) {
            rates.push(lr);
        }
    }
    rates.sort_by(f64::total_cmp);
    Manifest {
        experiment: "synthetic".into(),
        preset: "test".into(),
        source: "synthetic.toml".into(),
        description: String::new(),
        cells: runs.iter().map(|r| r.cell.clone()).collect(),
        arms,
        sizes,
        reference_arm: reference.into(),
        baseline_arm: Some(baseline.into()),
        equivalence_margin: margin,
        domains: Vec::new(),
        mixture_floor: None,
        mixture_target: None,
        learning_rates: rates,
        teacher: None,
        stability_from: None,
        aims: Default::default(),
    }
}
