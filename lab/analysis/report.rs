//! `report.md`: setup, runs, fits, tests and one verdict line per question, worded by the
//! numbers.

use std::fmt::Write;

use super::Analysis;
use super::load::RunData;
use super::stats::{Paired, Verdict};
use crate::sweep::runner::Manifest;

fn mib(b: f64) -> String {
    format!("{:.1}", b / (1024.0 * 1024.0))
}

fn pm(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("± {x:.3}"))
}

/// The figures, relative to `report.md`'s directory, as (file stem, caption).
pub const FIGURES: &[(&str, &str)] = &[
    (
        "paired_diff",
        "The reference arm minus each other arm, paired by seed, per size and pooled (95% intervals); a bar wholly below 0 means the reference arm's loss is lower; inside the grey band, within the equivalence margin",
    ),
    (
        "loss_vs_flops",
        "Validation loss against training FLOPs per arm and size: the line is the mean over seeds, the band the seeds' range. Look at whether two arms' bands separate at the same budget; overlapping bands are what the paired test above resolves",
    ),
    (
        "scaling",
        "Final validation loss against compute, with the fitted L(C) = E + A·C^(−α) per arm (drawn only where an arm has a fit, within its budgets). Look at the vertical gap between curves at one C: the loss difference at matched compute; the horizontal gap at one loss is the compute multiplier",
    ),
    (
        "training_loss",
        "Training loss at the largest size: each arm's seed mean smoothed (thick), every seed raw (faint), loss spikes as ×. Look for crosses and for a thick line that turns upward: instability; the faint lines show how far seeds spread",
    ),
    (
        "spike_rate",
        "Loss and grad-norm spikes per 1k steps, by arm. Read the bars with the counts in the Stability table: a few spikes either way is noise (this sweep trains far from divergence; the lr-stability sweep stresses it)",
    ),
    (
        "memory",
        "Memory per arm and size: parameters, gradients, optimizer state, and the rest of the measured peak. Look at the parameter, gradient and optimizer parts: an MoE holds every expert's, though it computes with only k of them",
    ),
    (
        "router_load",
        "Expert load share per layer (MoE arm, largest size, last evaluation). Look for experts far from an equal share: imbalance that capacity limits would turn into dropped tokens",
    ),
    (
        "router_maxvio",
        "Router load imbalance (MaxVio) over training, MoE runs. Look for curves that settle low; a curve that climbs means balancing is losing",
    ),
    (
        "router_state",
        "Router state per expert over training (e.g. loss-free balancing's bias), one run per arm that keeps any",
    ),
];

pub fn render(a: &Analysis, manifest: &Manifest, runs: &[RunData], plots_rel: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {} — preset `{}`\n", a.experiment, a.preset);
    if !manifest.description.is_empty() {
        let _ = writeln!(s, "{}\n", manifest.description.trim());
    }

    claims_section(&mut s, a);
    verdicts_section(&mut s, a);
    setup_section(&mut s, a, manifest, runs);
    runs_section(&mut s, runs);
    loss_section(&mut s, a);
    fits_section(&mut s, a);
    stability_section(&mut s, a);
    memory_section(&mut s, a);
    inference_section(&mut s, runs);
    router_section(&mut s, a);
    figures_section(&mut s, plots_rel);
    s
}

/// The seed's four claims about MoE, each with its verdict, effect and interval, and the
/// figure that shows it: what the lab was built to answer.
fn claims_section(s: &mut String, a: &Analysis) {
    let Some(base) = &a.baseline_arm else { return };
    let r = &a.reference_arm;
    let _ = writeln!(
        s,
        "## The claims, answered
"
    );
    let _ = writeln!(s, "| claim | verdict | effect (95% CI) | figure |");
    let _ = writeln!(s, "|---|---|---|---|");
    let better = match a.pooled.get(base) {
        Some(p) => {
            let verdict = match p.verdict() {
                Verdict::Lower => "refuted: lower loss at matched compute".to_string(),
                Verdict::Higher => "supported: higher loss".into(),
                Verdict::Equivalent => format!("supported: equivalent within ±{}", p.margin),
                Verdict::Inconclusive => {
                    format!("inconclusive (smallest detectable {:.4})", p.min_detectable)
                }
            };
            let effect = format!(
                "{r} − {base} = {:+.4} nats [{:+.4}, {:+.4}], {} seed pairs",
                p.mean, p.ci_low, p.ci_high, p.n
            );
            (verdict, effect)
        }
        None => ("not tested (fewer than 2 seed pairs)".into(), "–".into()),
    };
    let _ = writeln!(
        s,
        "| (a) at matched compute, MoE is not better per se | {} | {} | paired_diff |",
        better.0, better.1
    );
    claim_b(s, a, r, base);
    let memory = match &a.memory_paired {
        Some(p) if p.p < 0.05 && p.mean > 0.0 => ("supported", p),
        Some(p) if p.p < 0.05 => ("refuted: less", p),
        Some(p) => ("inconclusive", p),
        None => {
            let _ = writeln!(s, "| (c) MoE needs more memory | not tested | – | memory |");
            return claim_d(s, a, base);
        }
    };
    let _ = writeln!(
        s,
        "| (c) MoE needs more memory | {} | measured peak {r} − {base} = {:+.1} MiB [{:+.1}, {:+.1}], {} seed pairs | memory |",
        memory.0, memory.1.mean, memory.1.ci_low, memory.1.ci_high, memory.1.n
    );
    claim_d(s, a, base);
}

/// (d): the same quality for fewer FLOPs, from the compute multiplier.
fn claim_d(s: &mut String, a: &Analysis, base: &str) {
    let (verdict, effect) = match a.multipliers.get(base) {
        Some(m) if m.extrapolated => (
            "inconclusive: the fits are extrapolated",
            multiplier_text(m),
        ),
        Some(m) => match (m.ci_low, m.multiplier) {
            (Some(lo), Some(_)) if lo > 1.0 => ("supported", multiplier_text(m)),
            _ => ("inconclusive", multiplier_text(m)),
        },
        None => {
            let why = a.fit_notes.get(base).or(a.fit_notes.get(&a.reference_arm));
            let verdict = match why {
                Some(w) => format!("not tested: no scaling fit ({w})"),
                None => "not tested: no scaling fit".into(),
            };
            let _ = writeln!(
                s,
                "| (d) MoE's gain is cost: the same quality for fewer FLOPs | {verdict} | – | scaling |\n"
            );
            return;
        }
    };
    let _ = writeln!(
        s,
        "| (d) MoE's gain is cost: the same quality for fewer FLOPs | {verdict} | {} needs {effect} | scaling |\n",
        base
    );
}

/// (b): from the learning-rate sweep's paired LR sensitivity when it has results; this
/// sweep's own spikes never test it (one rate, far from divergence).
fn claim_b(s: &mut String, a: &Analysis, r: &str, base: &str) {
    let Some(c) = &a.stability_claim else {
        let _ = writeln!(
            s,
            "| (b) MoE trains less stably | not tested: this sweep trains at one learning rate, far from divergence; run `just sweep lr-stability` | this sweep's spikes {} | spike_rate |",
            spikes_effect(a, r, base)
        );
        return;
    };
    let p = &c.sensitivity;
    let verdict = match p.verdict() {
        Verdict::Higher => "supported: more sensitive to the learning rate".to_string(),
        Verdict::Lower => "refuted: less sensitive to the learning rate".into(),
        Verdict::Equivalent => format!("refuted: equally sensitive within ±{}", p.margin),
        Verdict::Inconclusive => {
            format!("inconclusive (smallest detectable {:.3})", p.min_detectable)
        }
    };
    let [(dr, nr), (db, nb)] = c.diverged;
    let _ = writeln!(
        s,
        "| (b) MoE trains less stably | {verdict} | LR sensitivity {} − {} = {:+.3} nats [{:+.3}, {:+.3}], {} seed pairs; diverged runs {dr}/{nr} vs {db}/{nb} (from `{}`) | lr_sensitivity (lr-stability) |",
        c.reference, c.baseline, p.mean, p.ci_low, p.ci_high, p.n, c.source
    );
}

fn spikes_effect(a: &Analysis, r: &str, base: &str) -> String {
    let st = |x: &str| a.stability.iter().find(|s| s.arm == x);
    match (st(r), st(base)) {
        (Some(x), Some(y)) => format!(
            "{:.2} vs {:.2} per 1k steps, diverged {} vs {}",
            x.loss_spikes_per_1k, y.loss_spikes_per_1k, x.diverged, y.diverged
        ),
        _ => "–".into(),
    }
}

/// Verdicts first: what a reader came for.
fn verdicts_section(s: &mut String, a: &Analysis) {
    let _ = writeln!(s, "## Verdicts\n");
    for line in verdicts(a) {
        let _ = writeln!(s, "- {line}");
    }
    if a.runs_found < a.runs_expected {
        let _ = writeln!(
            s,
            "- **Incomplete sweep**: {} of {} runs have results; rerun the sweep to finish.",
            a.runs_found, a.runs_expected
        );
    }
}

/// The device, the arms' feed-forwards, and each cell's size and budget.
fn setup_section(s: &mut String, a: &Analysis, manifest: &Manifest, runs: &[RunData]) {
    let _ = writeln!(s, "\n## Setup\n");
    let first = runs.first();
    if let Some(r) = first {
        let _ = writeln!(
            s,
            "Device: {} ({}); commit {}; spec `{}`; reference (MoE) arm `{}`, baseline `{}`.\n",
            r.summary.device.adapter,
            r.summary.device.backend,
            r.summary.git_commit,
            manifest.source.display(),
            a.reference_arm,
            a.baseline_arm.as_deref().unwrap_or("–")
        );
    }
    // Each arm's feed-forward in words, at the largest size it ran.
    for st in &a.stability {
        if let Some(line) = runs
            .iter()
            .rev()
            .find(|r| r.cell.arm == st.arm)
            .and_then(|r| r.ffn.as_ref())
        {
            let _ = writeln!(s, "- `{}`: {line}", st.arm);
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| size | arm | d_model | layers | params total | params active | FLOPs/token (train) | steps | tokens | budget (FLOPs) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for sa in &a.size_arms {
        if let Some(r) = runs
            .iter()
            .find(|r| r.cell.size == sa.size && r.cell.arm == sa.arm)
        {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {:.3e} |",
                sa.size,
                sa.arm,
                r.cell.d_model,
                r.cell.n_layers,
                r.summary.params.total,
                r.summary.params.active,
                r.summary.flops_per_token.train_per_token,
                r.summary.steps_planned,
                r.summary.steps_planned as u64 * r.summary.tokens
                    / r.summary.steps_done.max(1) as u64,
                r.summary.train_flops
            );
        }
    }
}

/// Every run's status, losses, spikes and speed.
fn runs_section(s: &mut String, runs: &[RunData]) {
    let _ = writeln!(s, "\n## Runs\n");
    let _ = writeln!(
        s,
        "| run | status | steps | final val loss | best val loss | loss spikes | grad spikes | wall (s) | tokens/s |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let m = &r.summary;
        let _ = writeln!(
            s,
            "| {} | {:?} | {}/{} | {} | {} | {} | {} | {:.1} | {:.0} |",
            r.cell.name,
            m.status,
            m.steps_done,
            m.steps_planned,
            m.final_val_loss.map_or("–".into(), |v| format!("{v:.4}")),
            m.best_val_loss.map_or("–".into(), |v| format!("{v:.4}")),
            m.spikes.loss_spikes,
            m.spikes.grad_norm_spikes,
            m.wall_time_s,
            m.tokens_per_s
        );
    }
}

/// Final validation loss per size and arm, and the paired comparisons.
fn loss_section(s: &mut String, a: &Analysis) {
    let _ = writeln!(
        s,
        "\n## Final validation loss by size (mean ± 95% CI over seeds)\n"
    );
    let _ = writeln!(s, "| size | arm | seeds | mean | sd | 95% CI half-width |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for sa in &a.size_arms {
        match sa.final_val_loss {
            Some((m, sd, hw)) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {m:.4} | {sd:.4} | {} |",
                    sa.size,
                    sa.arm,
                    sa.runs,
                    if hw.is_finite() {
                        format!("{hw:.4}")
                    } else {
                        "– (1 seed)".into()
                    }
                );
            }
            None => {
                let _ = writeln!(s, "| {} | {} | 0 | – | – | – |", sa.size, sa.arm);
            }
        }
    }
    final_eval_table(s, a);
    paired_table(s, a);
    let _ = writeln!(
        s,
        "\nSecondary: Welch t-tests (unpaired), {} minus baseline (negative = {} lower):\n",
        a.reference_arm, a.reference_arm
    );
    let _ = writeln!(
        s,
        "| size | baseline | Δ loss | 95% CI | t | df | p | Hedges' g |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for c in &a.comparisons {
        match &c.welch {
            Some(w) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:+.4} | [{:+.4}, {:+.4}] | {:.2} | {:.1} | {:.3} | {:.2} |",
                    c.size, c.baseline, w.diff, w.ci_low, w.ci_high, w.t, w.df, w.p, w.hedges_g
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | – | – | – | – (needs ≥ 2 seeds per arm) | – |",
                    c.size,
                    c.baseline,
                    c.diff.map_or("–".into(), |d| format!("{d:+.4}"))
                );
            }
        }
    }
}

/// Each (size, arm)'s final evaluation: its own sampling error and the exact-match rates of
/// greedy answers on the question streams.
fn final_eval_table(s: &mut String, a: &Analysis) {
    let streams: std::collections::BTreeSet<&String> = a
        .size_arms
        .iter()
        .flat_map(|sa| sa.exact_match.keys())
        .collect();
    if streams.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nThe final evaluation (mean over seeds): the standard error of one run's final loss from the evaluation's own windows (beside the seeds' spread above), and the share of whole answers that greedy decoding reproduces exactly:\n"
    );
    let names: Vec<&str> = streams.iter().map(|n| n.as_str()).collect();
    let _ = writeln!(s, "| size | arm | loss SE | {} |", names.join(" | "));
    let _ = writeln!(s, "|---|---|---|{}", "---|".repeat(names.len()));
    for sa in &a.size_arms {
        let rates: Vec<String> = names
            .iter()
            .map(|n| {
                sa.exact_match
                    .get(*n)
                    .map_or("–".into(), |r| format!("{:.1}%", 100.0 * r))
            })
            .collect();
        let se = sa
            .final_val_loss_se
            .map_or("–".into(), |x| format!("{x:.4}"));
        let _ = writeln!(
            s,
            "| {} | {} | {se} | {} |",
            sa.size,
            sa.arm,
            rates.join(" | ")
        );
    }
}

/// The primary comparisons: paired by seed, per size and pooled over sizes.
fn paired_table(s: &mut String, a: &Analysis) {
    let _ = writeln!(
        s,
        "\nPaired by seed (the primary test: at one seed the arms share data order and every weight but the feed-forward's), {} minus baseline; pooled rows take size as a fixed effect; equivalence margin ±{} nats (two one-sided tests):\n",
        a.reference_arm, a.equivalence_margin
    );
    let _ = writeln!(
        s,
        "| size | baseline | pairs | Δ loss | 95% CI | p | TOST p | smallest detectable (80% power) | verdict |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    let rows = a
        .comparisons
        .iter()
        .map(|c| (c.size.as_str(), c.baseline.as_str(), c.paired))
        .chain(
            a.pooled
                .iter()
                .map(|(b, p)| ("all (pooled)", b.as_str(), Some(*p))),
        );
    for (size, base, p) in rows {
        let _ = match p {
            Some(p) => writeln!(
                s,
                "| {size} | {base} | {} | {:+.4} | [{:+.4}, {:+.4}] | {} | {} | {:.4} | {:?} |",
                p.n,
                p.mean,
                p.ci_low,
                p.ci_high,
                p_value(p.p).trim_start_matches("p = "),
                p_value(p.tost_p).trim_start_matches("p = "),
                p.min_detectable,
                p.verdict()
            ),
            None => writeln!(s, "| {size} | {base} | < 2 | – | – | – | – | – | – |"),
        };
    }
}

/// The scaling fits and the compute multipliers.
fn fits_section(s: &mut String, a: &Analysis) {
    let _ = writeln!(s, "\n## Scaling fits: L(C) = E + A·C^(−α)\n");
    let _ = writeln!(
        s,
        "Fitted per arm to every complete run's (training FLOPs, final validation loss) by Levenberg–Marquardt least squares, bounded to 0 ≤ E < the smallest observed loss, A > 0, α > 0; a fit needs at least {} distinct budgets. ± is one standard error from the Gauss–Newton covariance. Curves are compared only inside the budgets that were run.\n",
        super::fit::MIN_BUDGETS
    );
    let _ = writeln!(s, "| arm | points | E | A | α | RMSE | budgets |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for (arm, f) in &a.fits {
        match f {
            Some(f) => {
                let _ = writeln!(
                    s,
                    "| {arm} | {} | {:.3} {} | {:.3e} {} | {:.3} {} | {:.4} | {:.2e} – {:.2e} |",
                    f.n,
                    f.e,
                    pm(f.se_e),
                    f.a,
                    f.se_a.map_or("".into(), |x| format!("± {x:.2e}")),
                    f.alpha,
                    pm(f.se_alpha),
                    f.rmse,
                    f.c_min,
                    f.c_max
                );
            }
            None => {
                let why = a.fit_notes.get(arm).map_or("no fit", String::as_str);
                let _ = writeln!(s, "| {arm} | – | – | – | – | – | no fit: {why} |");
            }
        }
    }
    if !a.multipliers.is_empty() {
        let _ = writeln!(
            s,
            "\nCompute multiplier: how many times {}'s budget each baseline needs to reach {}'s fitted loss, at the largest of {}'s budgets where the baseline's needed budget lies inside its own data (95% interval: {} bootstrap draws resampling each size's seeds and refitting both arms; a draw that never reaches the loss counts as unbounded):\n",
            a.reference_arm,
            a.reference_arm,
            a.reference_arm,
            super::fit::BOOTSTRAP_DRAWS
        );
        for (arm, m) in &a.multipliers {
            let _ = writeln!(s, "- {arm}: {}", multiplier_text(m));
        }
    }
}

/// Generation from each arm's final model (seed 0, largest size): what it holds against what
/// it computes per token, and what that costs measured.
fn inference_section(s: &mut String, runs: &[RunData]) {
    let measured: Vec<&RunData> = runs.iter().filter(|r| r.generation.is_some()).collect();
    if measured.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Inference\n");
    let _ = writeln!(
        s,
        "Greedy generation from each arm's final model (seed 0, largest size; `lab sample --stats` in its own process, with a key/value cache). An MoE computes with the experts a token is routed to but holds all of them:\n"
    );
    let _ = writeln!(
        s,
        "| run | params held (MiB) | forward FLOPs / token | bytes / s | peak RSS (MiB) | device |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for r in measured {
        let g = r.generation.as_ref().expect("filtered");
        let _ = writeln!(
            s,
            "| {} | {} | {:.3e} | {:.0} | {} | {} |",
            r.cell.name,
            mib(g.params_bytes as f64),
            g.forward_flops_per_token,
            g.bytes_per_s,
            g.peak_rss_bytes.map_or("–".into(), |b| mib(b as f64)),
            g.device
        );
    }
}

/// Spike rates, divergences and stable seeds.
fn stability_section(s: &mut String, a: &Analysis) {
    let _ = writeln!(s, "\n## Stability\n");
    let _ = writeln!(
        s,
        "A spike is a value above the median of the previous `window` steps by more than `z` robust σ (σ̂ = 1.4826·MAD). Stable seeds: runs with no loss spike that did not diverge.\n"
    );
    let _ = writeln!(
        s,
        "| arm | runs | steps | loss spikes /1k | grad-norm spikes /1k | diverged | stable seeds |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for st in &a.stability {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.2} | {} | {:.0}% |",
            st.arm,
            st.runs,
            st.steps,
            st.loss_spikes_per_1k,
            st.grad_spikes_per_1k,
            st.diverged,
            100.0 * st.stable_fraction
        );
    }
}

/// Measured and analytic memory.
fn memory_section(s: &mut String, a: &Analysis) {
    let _ = writeln!(s, "\n## Memory\n");
    let _ = writeln!(
        s,
        "Measured peak: device allocator bytes in use where the backend reports them, else the process's resident set size (which also holds the corpus, the binary and the allocator's slack). Analytic: f32 parameters, gradients and AdamW's two moments.\n"
    );
    let _ = writeln!(
        s,
        "| size | arm | measured peak (MiB) | kind | params (MiB) | grads (MiB) | optimizer (MiB) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for m in &a.memory {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            m.size,
            m.arm,
            mib(m.measured_peak_bytes),
            m.measured_kind,
            mib(m.params_bytes as f64),
            mib(m.grads_bytes as f64),
            mib(m.optimizer_bytes as f64)
        );
    }
}

/// Routing at the last evaluation.
fn router_section(s: &mut String, a: &Analysis) {
    if !a.router.is_empty() {
        let _ = writeln!(
            s,
            "\n## Routing (MoE runs, last evaluation, mean over layers)\n"
        );
        let _ = writeln!(
            s,
            "| run | MaxVio | peak MaxVio | dead experts | dropped fraction | entropy (nats) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for r in &a.router {
            let _ = writeln!(
                s,
                "| {} | {:.3} | {:.3} | {} | {:.4} | {:.3} |",
                r.run,
                r.final_max_vio,
                r.peak_max_vio,
                r.dead_experts,
                r.dropped_fraction,
                r.final_entropy
            );
        }
    }
}

/// Every figure, with its caption.
fn figures_section(s: &mut String, plots_rel: &str) {
    let _ = writeln!(s, "\n## Figures\n");
    for (stem, caption) in FIGURES {
        let _ = writeln!(
            s,
            "![{caption}]({plots_rel}/{stem}.png)\n\n*{caption}* ([SVG]({plots_rel}/{stem}.svg))\n"
        );
    }
}

fn multiplier_text(m: &super::fit::ComputeMultiplier) -> String {
    let ci = match (m.ci_low, m.ci_high) {
        (Some(lo), Some(hi)) => format!("95% interval [{lo:.2}×, {hi:.2}×]"),
        (Some(lo), _) => format!(
            "95% interval [{lo:.2}×, unbounded) ({:.0}% of draws never reach the loss)",
            100.0 * m.unreachable_share
        ),
        _ => format!(
            "95% interval unbounded ({:.0}% of draws never reach the loss)",
            100.0 * m.unreachable_share
        ),
    };
    match m.multiplier {
        Some(x) => format!(
            "{x:.2}× at C = {:.2e} (target loss {:.4}); {ci}{}",
            m.budget,
            m.target_loss,
            if m.extrapolated {
                "; **extrapolated**: at every budget of the reference, the baseline would need a budget outside its data"
            } else {
                ""
            }
        ),
        None => format!(
            "the baseline's fitted curve never reaches {:.4} (below its fitted floor E); {ci}",
            m.target_loss
        ),
    }
}

/// One line per question: lower loss at matched compute? more loss spikes? more memory?
pub fn verdicts(a: &Analysis) -> Vec<String> {
    let reference = &a.reference_arm;
    let Some(base) = &a.baseline_arm else {
        return vec!["No baseline arm: nothing to compare.".into()];
    };
    let mut out = Vec::new();
    // 1. Loss at matched compute: paired by seed, pooled over sizes; then the largest size.
    out.push(format!(
        "**Lower loss at matched compute?** {}.",
        loss_answer(a, reference, base)
    ));
    if let Some(m) = a.multipliers.get(base) {
        out.push(format!(
            "**Compute multiplier** ({base} vs {reference}): {}",
            multiplier_text(m)
        ));
    }
    // 2. Spikes.
    let st = |arm: &str| a.stability.iter().find(|s| s.arm == arm);
    if let (Some(r), Some(b)) = (st(reference), st(base)) {
        let p = a.spike_rate_p.get(base).copied().unwrap_or(1.0);
        let answer = match (p < 0.05, r.loss_spikes + b.loss_spikes) {
            (true, _) if r.loss_spikes_per_1k > b.loss_spikes_per_1k => "**Higher**",
            (true, _) => "**Lower**",
            (false, 0) => {
                "**Inconclusive**: no spike in either arm (one learning rate, far from divergence; `just sweep lr-stability` stresses stability)"
            }
            (false, _) => "**Inconclusive**",
        };
        out.push(format!(
            "**More loss spikes?** {answer}: {reference} {:.2} vs {base} {:.2} loss spikes per 1k steps ({} vs {} spikes over {} vs {} steps; exact Poisson-rate test p = {:.3}); diverged runs {} vs {}; stable seeds {:.0}% vs {:.0}%.",
            r.loss_spikes_per_1k, b.loss_spikes_per_1k, r.loss_spikes, b.loss_spikes, r.steps, b.steps, p,
            r.diverged, b.diverged, 100.0 * r.stable_fraction, 100.0 * b.stable_fraction
        ));
    }
    // 3. Memory at the largest size.
    let mem = |arm: &str| a.memory.iter().rfind(|m| m.arm == arm);
    if let (Some(r), Some(b)) = (mem(reference), mem(base)) {
        let analytic =
            |m: &super::MemoryRow| (m.params_bytes + m.grads_bytes + m.optimizer_bytes) as f64;
        out.push(format!(
            "**More memory?** At size {}: {reference}/{base} = {:.2}× measured peak ({}: {} vs {} MiB) and {:.2}× analytic training state (params + grads + AdamW: {} vs {} MiB).",
            r.size,
            r.measured_peak_bytes / b.measured_peak_bytes.max(1.0),
            r.measured_kind, mib(r.measured_peak_bytes), mib(b.measured_peak_bytes),
            analytic(r) / analytic(b).max(1.0), mib(analytic(r)), mib(analytic(b))
        ));
    }
    // 4. With more arms than the reference and its baseline (a variants sweep): one line per
    //    other arm against the reference.
    for arm in a.stability.iter().map(|s| &s.arm) {
        if arm == reference || arm == base {
            continue;
        }
        out.push(arm_line(a, arm));
    }
    // 5. Caveats the runs printed.
    for (arm, ws) in &a.warnings {
        for w in ws {
            out.push(format!("**Caveat** ({arm}): {w}."));
        }
    }
    out
}

/// `arm` against the reference arm: loss at the largest size with data, spikes, balance.
/// `reference − base` in words: the pooled paired verdict with its interval, then the largest
/// size alone (paired, with Welch's unpaired test beside it).
fn loss_answer(a: &Analysis, reference: &str, base: &str) -> String {
    let largest = a
        .comparisons
        .iter()
        .rfind(|c| c.baseline == base && c.diff.is_some());
    let pooled = match a.pooled.get(base) {
        Some(p) => format!(
            "{}: {reference} − {base} = {:+.4} nats over {} seed pairs at {} size{} (paired t, size as a fixed effect: 95% CI [{:+.4}, {:+.4}], {}, df = {}; smallest effect detectable at 80% power {:.4})",
            verdict_words(p),
            p.mean,
            p.n,
            p.groups,
            if p.groups == 1 { "" } else { "s" },
            p.ci_low,
            p.ci_high,
            p_value(p.p),
            p.df,
            p.min_detectable
        ),
        None => format!("Undetermined: fewer than 2 complete seed pairs of {reference} and {base}"),
    };
    let at_largest = largest.map_or(String::new(), |c| {
        let welch = c
            .welch
            .map_or(String::new(), |w| format!("; unpaired Welch p = {:.3}", w.p));
        match &c.paired {
            Some(p) => format!(
                ". At the largest size, {}: {:+.4} nats (95% CI [{:+.4}, {:+.4}], paired {}, n = {}{welch})",
                c.size, p.mean, p.ci_low, p.ci_high, p_value(p.p), p.n
            ),
            None => format!(
                ". At the largest size, {}: {:+.4} nats (too few seed pairs for a test{welch})",
                c.size,
                c.diff.unwrap_or(f64::NAN)
            ),
        }
    });
    format!("{pooled}{at_largest}")
}

/// `p = 0.046`, or `p < 0.001`.
pub(super) fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

/// The verdict of a paired comparison (treatment − baseline) as its first words.
pub(super) fn verdict_words(p: &Paired) -> String {
    match p.verdict() {
        Verdict::Lower if p.tost_p < 0.05 => format!(
            "**Lower**, by less than the ±{} nats equivalence margin",
            p.margin
        ),
        Verdict::Lower => "**Lower**".into(),
        Verdict::Higher if p.tost_p < 0.05 => format!(
            "**Higher**, by less than the ±{} nats equivalence margin",
            p.margin
        ),
        Verdict::Higher => "**Higher**".into(),
        Verdict::Equivalent => format!(
            "**Equivalent within ±{} nats** (two one-sided tests p = {:.3})",
            p.margin, p.tost_p
        ),
        Verdict::Inconclusive => format!(
            "**Inconclusive** (smallest detectable effect {:.4} nats; not equivalent within ±{})",
            p.min_detectable, p.margin
        ),
    }
}

fn arm_line(a: &Analysis, arm: &str) -> String {
    let reference = &a.reference_arm;
    let loss = loss_answer(a, reference, arm);
    let st = |x: &str| a.stability.iter().find(|s| s.arm == x);
    let spikes = match (st(arm), st(reference)) {
        (Some(s), Some(r)) => format!(
            "; loss spikes {:.2} vs {:.2} per 1k steps (p = {:.3}), diverged {} vs {}",
            s.loss_spikes_per_1k,
            r.loss_spikes_per_1k,
            a.spike_rate_p.get(arm).copied().unwrap_or(1.0),
            s.diverged,
            r.diverged
        ),
        _ => String::new(),
    };
    let max_vio = |x: &str| {
        let v: Vec<f64> = a
            .router
            .iter()
            .filter(|r| r.arm == x)
            .map(|r| r.final_max_vio)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let balance = match (max_vio(arm), max_vio(reference)) {
        (Some(m), Some(r)) => format!("; final load imbalance MaxVio {m:.3} vs {r:.3}"),
        _ => String::new(),
    };
    format!("**{reference} vs {arm}?** {loss}{spikes}{balance}.")
}
