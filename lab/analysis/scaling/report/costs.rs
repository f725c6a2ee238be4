//! What an arm costs besides its loss: stability (spikes, divergence), memory, generation
//! speed, and routing balance.

use super::verdicts::mib;
use crate::analysis::load::RunData;
use crate::analysis::markdown::{Doc, Table, cells};
use crate::analysis::scaling::Analysis;
use crate::analysis::scaling::figures::{
    MEMORY, ROUTER_LOAD, ROUTER_MAXVIO, ROUTER_STATE, SPIKE_RATE, TRAINING_LOSS,
};

/// Spike rates, divergences and stable seeds.
pub fn stability(doc: &mut Doc, a: &Analysis, plots_rel: &str) {
    doc.heading("Stability");
    doc.para("A spike is a value above the median of the previous `window` steps by more than `z` robust σ (σ̂ = 1.4826·MAD). Stable seeds: runs with no loss spike that did not diverge.");
    let mut t = Table::new(&[
        "arm",
        "runs",
        "steps",
        "loss spikes /1k",
        "grad-norm spikes /1k",
        "diverged",
        "stable seeds",
    ]);
    for st in &a.stability {
        t.row(&cells![
            st.arm,
            st.runs,
            st.steps,
            format!("{:.2}", st.loss_spikes_per_1k),
            format!("{:.2}", st.grad_spikes_per_1k),
            st.diverged,
            format!("{:.0}%", 100.0 * st.stable_fraction)
        ]);
    }
    doc.table(t);
    doc.figure(plots_rel, "training_loss", TRAINING_LOSS);
    doc.figure(plots_rel, "spike_rate", SPIKE_RATE);
}

/// Measured and analytic memory.
pub fn memory(doc: &mut Doc, a: &Analysis, plots_rel: &str) {
    doc.heading("Memory");
    doc.para("Measured peak: device allocator bytes in use where the backend reports them, else the process's resident set size (which also holds the corpus, the binary and the allocator's slack). Analytic: f32 parameters, gradients and AdamW's two moments.");
    let mut t = Table::new(&[
        "size",
        "arm",
        "measured peak (MiB)",
        "kind",
        "params (MiB)",
        "grads (MiB)",
        "optimizer (MiB)",
    ]);
    for m in &a.memory {
        t.row(&cells![
            m.size,
            m.arm,
            mib(m.measured_peak_bytes),
            m.measured_kind,
            mib(m.params_bytes as f64),
            mib(m.grads_bytes as f64),
            mib(m.optimizer_bytes as f64)
        ]);
    }
    doc.table(t);
    doc.figure(plots_rel, "memory", MEMORY);
}

/// Generation from each arm's final model (seed 0, largest size): what it holds against what
/// it computes per token, and what that costs measured.
pub fn inference(doc: &mut Doc, runs: &[RunData]) {
    let measured: Vec<_> = runs
        .iter()
        .filter_map(|r| Some((r, r.generation.as_ref()?)))
        .collect();
    if measured.is_empty() {
        return;
    }
    doc.heading("Inference");
    doc.para("Greedy generation from each arm's final model (seed 0, largest size; `lab sample --stats` in its own process, with a key/value cache). An MoE computes with the experts a token is routed to but holds all of them:");
    let mut t = Table::new(&[
        "run",
        "params held (MiB)",
        "forward FLOPs / token",
        "tokens / s",
        "peak RSS (MiB)",
        "device",
    ]);
    for (r, g) in measured {
        t.row(&cells![
            r.cell.name,
            mib(g.params_bytes as f64),
            format!("{:.3e}", g.forward_flops_per_token),
            format!("{:.0}", g.bytes_per_s),
            g.peak_rss_bytes.map_or("–".into(), |b| mib(b as f64)),
            g.device
        ]);
    }
    doc.table(t);
}

/// Routing at the last evaluation, and the routers' figures.
pub fn routing(doc: &mut Doc, a: &Analysis, plots_rel: &str) {
    doc.heading("Routing (MoE runs, last evaluation, mean over layers)");
    if !a.router.is_empty() {
        let mut t = Table::new(&[
            "run",
            "MaxVio",
            "peak MaxVio",
            "dead experts",
            "dropped fraction",
            "entropy (nats)",
        ]);
        for r in &a.router {
            t.row(&cells![
                r.run,
                format!("{:.3}", r.final_max_vio),
                format!("{:.3}", r.peak_max_vio),
                r.dead_experts,
                format!("{:.4}", r.dropped_fraction),
                format!("{:.3}", r.final_entropy)
            ]);
        }
        doc.table(t);
    }
    doc.figure(plots_rel, "router_load", ROUTER_LOAD);
    doc.figure(plots_rel, "router_maxvio", ROUTER_MAXVIO);
    doc.figure(plots_rel, "router_state", ROUTER_STATE);
}
