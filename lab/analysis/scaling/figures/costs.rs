//! What an arm costs beside its loss: spikes per 1k steps, and memory per size and arm.

use super::inputs::Inputs;
use crate::analysis::figure::{Axis, Color, Figure, Mark, Panel, Series, Slot};
use crate::analysis::scaling::{MemoryRow, Stability};

/// How to read the figure (its caption).
pub const MEMORY: &str = "Memory per arm and size: parameters, gradients, optimizer state, and the rest of the measured peak. Look at the parameter, gradient and optimizer parts: an MoE holds every expert's, though it computes with only k of them";

/// How to read the figure (its caption).
pub const SPIKE_RATE: &str = "Loss and grad-norm spikes per 1k steps, by arm. Read the bars with the counts in the Stability table: a few spikes either way is noise (this sweep trains far from divergence; the lr-stability sweep stresses it)";

/// Loss and grad-norm spikes per 1k steps, a pair of bars per arm (solid: loss, lighter: grad
/// norm), each named by what it counts, "none" where an arm had no spike of a kind.
pub fn spike_rate(d: &Inputs) -> Figure {
    let title = "Spikes per 1k steps by arm: loss spikes (solid), grad-norm spikes (light)";
    let st = &d.analysis.stability;
    if st.is_empty() {
        return Figure::empty("spike_rate", title, "no runs yet");
    }
    let names = st.iter().map(|s| s.arm.clone()).collect();
    let top = (st.iter())
        .map(|s| s.loss_spikes_per_1k.max(s.grad_spikes_per_1k))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.7; // room above the bars for their labels and the legend
    let mut p = Panel::new(
        Axis::categories("arm", names),
        Axis::linear("spikes per 1000 steps").cut(0.0, top),
    );
    let arms = &d.manifest.arms;
    for (i, s) in st.iter().enumerate() {
        for (j, (what, v, alpha)) in bars(s).into_iter().enumerate() {
            let series = Series::arm(arms, &format!("{}: {what}", s.arm), &s.arm, true);
            let color = series.color.alpha(alpha);
            p.push(Mark::Bars {
                series: series.colored(color),
                x: vec![i as f64],
                y: vec![v],
                text: vec![value_label(v)],
                slot: Slot::Beside { index: j, of: 2 },
            });
        }
    }
    Figure::new("spike_rate", title, vec![p])
}

/// An arm's two bars, each named by what it counts: (name, per 1k steps, opacity).
fn bars(s: &Stability) -> [(&'static str, f64, f64); 2] {
    [
        ("loss spikes", s.loss_spikes_per_1k, 1.0),
        ("grad-norm spikes", s.grad_spikes_per_1k, 0.45),
    ]
}

/// A bar's value, "none" when the arm had no spike of that kind (a bar of height 0 is
/// otherwise invisible, and a legend entry beside it would name nothing drawn).
fn value_label(v: f64) -> String {
    match v == 0.0 {
        true => "none".into(),
        false => format!("{v:.2}"),
    }
}

/// The parts of a stacked memory bar and their colours (distinct from the arms' use).
const PARTS: [(&str, Color); 4] = [
    ("parameters", Color::rgb(0, 114, 178)),
    ("gradients", Color::rgb(86, 180, 233)),
    ("AdamW state", Color::rgb(230, 159, 0)),
    ("rest of measured peak", Color::rgb(190, 190, 190)),
];

/// Memory per (size, arm): stacked bars of parameters, gradients, optimizer state and the rest
/// of the measured peak (activations, workspace, and on CPU the whole process).
pub fn memory(d: &Inputs) -> Figure {
    let title = "Memory per size and arm: parameters, gradients, AdamW state, rest of the peak";
    let rows = &d.analysis.memory;
    if rows.is_empty() {
        return Figure::empty("memory", title, "no runs yet");
    }
    let labels = rows
        .iter()
        .map(|m| format!("{} {}", m.size, m.arm))
        .collect();
    let kind = &rows[0].measured_kind;
    let mut p = Panel::new(
        Axis::categories("size / arm", labels),
        Axis::linear(&format!("MiB (measured peak: {kind})")),
    )
    .legend_at(crate::analysis::figure::Corner::UpperLeft);
    let stacks: Vec<[f64; 4]> = rows.iter().map(stack).collect();
    for (i, (name, color)) in PARTS.iter().enumerate() {
        let series = Series {
            name: name.to_string(),
            group: name.to_string(),
            color: *color,
            legend: true,
        };
        p.push(Mark::Bars {
            series,
            x: (0..rows.len()).map(|r| r as f64).collect(),
            y: stacks.iter().map(|s| s[i]).collect(),
            text: Vec::new(),
            slot: Slot::Stacked,
        });
    }
    Figure::new("memory", title, vec![p])
}

/// A row's memory in MiB, split as [`PARTS`]: parameters, gradients, AdamW state, and the rest
/// of the measured peak (never negative).
fn stack(m: &MemoryRow) -> [f64; 4] {
    let mib = |b: f64| b / (1024.0 * 1024.0);
    let (p, g, o) = (
        m.params_bytes as f64,
        m.grads_bytes as f64,
        m.optimizer_bytes as f64,
    );
    let rest = (m.measured_peak_bytes - p - g - o).max(0.0);
    [mib(p), mib(g), mib(o), mib(rest)]
}
