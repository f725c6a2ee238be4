//! What ran: the device, the arms' feed-forwards, each cell's size and budget, and every
//! run's status, losses, spikes and speed.

use crate::analysis::load::RunData;
use crate::analysis::markdown::{Doc, Table, cells};
use crate::analysis::scaling::Analysis;
use crate::run::Manifest;

pub fn section(doc: &mut Doc, a: &Analysis, manifest: &Manifest, runs: &[RunData]) {
    doc.heading("Setup");
    if let Some(r) = runs.first() {
        doc.para(&format!(
            "Device: {} ({}); commit {}; spec `{}`; reference (MoE) arm `{}`, baseline `{}`.",
            r.summary.device.adapter,
            r.summary.device.backend,
            r.summary.git_commit,
            manifest.source.display(),
            a.reference_arm,
            a.baseline_arm.as_deref().unwrap_or("–")
        ));
    }
    // Each arm's feed-forward in words, at the largest size it ran.
    for st in &a.stability {
        let last = runs.iter().rev().find(|r| r.cell.arm == st.arm);
        if let Some(line) = last.and_then(|r| r.ffn.as_ref()) {
            doc.item(&format!("`{}`: {line}", st.arm));
        }
    }
    doc.line("");
    let mut t = Table::new(&[
        "size",
        "arm",
        "d_model",
        "layers",
        "params total",
        "params active",
        "FLOPs/token (train)",
        "steps",
        "tokens",
        "budget (FLOPs)",
    ]);
    for sa in &a.size_arms {
        let found = runs
            .iter()
            .find(|r| r.cell.size == sa.size && r.cell.arm == sa.arm);
        let Some(r) = found else { continue };
        let m = &r.summary;
        // A planned run's tokens, from the tokens per step it ran so far.
        let tokens = m.steps_planned as u64 * m.tokens / m.steps_done.max(1) as u64;
        t.row(&cells![
            sa.size,
            sa.arm,
            r.cell.d_model,
            r.cell.n_layers,
            m.params.total,
            m.params.active,
            format!("{:.0}", m.flops_per_token.train_per_token),
            m.steps_planned,
            tokens,
            format!("{:.3e}", m.train_flops)
        ]);
    }
    doc.table(t);
}

/// Every run's status, losses, spikes and speed.
pub fn runs(doc: &mut Doc, runs: &[RunData]) {
    doc.heading("Runs");
    let mut t = Table::new(&[
        "run",
        "status",
        "steps",
        "final val loss",
        "best val loss",
        "loss spikes",
        "grad spikes",
        "wall (s)",
        "tokens/s",
    ]);
    let loss = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.4}"));
    for r in runs {
        let m = &r.summary;
        t.row(&cells![
            r.cell.name,
            format!("{:?}", m.status),
            format!("{}/{}", m.steps_done, m.steps_planned),
            loss(m.final_val_loss),
            loss(m.best_val_loss),
            m.spikes.loss_spikes,
            m.spikes.grad_norm_spikes,
            format!("{:.1}", m.wall_time_s),
            format!("{:.0}", m.tokens_per_s)
        ]);
    }
    doc.table(t);
}
