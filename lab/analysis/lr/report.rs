//! `report.md` of a learning-rate sweep: the stability question answered first, then the
//! curves, divergence, spikes and proxies per rate as tables, each figure beside its table.

use crate::analysis::decisive::{Decision, Judged};
use crate::analysis::load::RunData;
use crate::analysis::lr::figures::{LR_PROXIES, LR_SENSITIVITY};
use crate::analysis::lr::{LrAnalysis, LrCurve};
use crate::analysis::markdown::{Doc, Table, cells};
use crate::analysis::scaling::report::p_value;
use crate::analysis::stats::{Paired, Verdict};
use crate::run::Manifest;

pub fn render(a: &LrAnalysis, manifest: &Manifest, runs: &[RunData], plots_rel: &str) -> String {
    let mut doc = Doc::default();
    doc.line(&format!("# {} — preset `{}`\n", a.experiment, a.preset));
    if !manifest.description.is_empty() {
        doc.para(manifest.description.trim());
    }
    doc.line("## The question, answered\n");
    for line in verdicts(a) {
        doc.item(&line);
    }
    setup_section(&mut doc, a, runs);
    arms_section(&mut doc, a);
    doc.figure(plots_rel, "lr_sensitivity", LR_SENSITIVITY);
    for size in sizes(a) {
        per_rate_section(&mut doc, a, &size);
    }
    doc.figure(plots_rel, "lr_proxies", LR_PROXIES);
    definitions_section(&mut doc);
    doc.finish()
}

/// One line per comparison of the reference arm with another: "Is <reference> less stable
/// than <arm>?", answered from the paired LR sensitivities.
pub fn verdicts(a: &LrAnalysis) -> Vec<String> {
    let r = &a.reference_arm;
    let mut others: Vec<&String> = a.sensitivity_paired.keys().collect();
    // The baseline (the FLOP-matched dense arm) first: it is the question the sweep asks.
    others.sort_by_key(|arm| Some(*arm) != a.baseline_arm.as_ref());
    let mut out: Vec<String> = others
        .into_iter()
        .map(|arm| {
            let p = &a.sensitivity_paired[arm];
            if let Some((j, outcome)) = a.sequential_judged(arm) {
                return format!(
                    "**Is {r} less stable than {arm}?** {}: LR sensitivity {r} − {arm} = {:+.3} nats (repeated 95% CI [{:+.3}, {:+.3}] of the sequential design: {outcome}). {}",
                    sequential_answer(&j),
                    j.mean,
                    j.ci_low,
                    j.ci_high,
                    arms_in_numbers(a, r, arm),
                );
            }
            format!(
                "**Is {r} less stable than {arm}?** {}: LR sensitivity {r} − {arm} = {:+.3} nats (95% CI [{:+.3}, {:+.3}], paired by seed over {} pairs at {} size{}, {}). {}",
                answer(p),
                p.mean,
                p.ci_low,
                p.ci_high,
                p.n,
                p.groups,
                if p.groups == 1 { "" } else { "s" },
                p_value(p.p),
                arms_in_numbers(a, r, arm),
            )
        })
        .collect();
    if out.is_empty() {
        out.push(format!(
            "Undetermined: fewer than 2 seeds of {r} and another arm finished at every rate."
        ));
    }
    out.extend(proxies_line(a));
    out
}

fn point_at(c: &LrCurve, lr: f64) -> Option<&crate::analysis::lr::LrPoint> {
    c.points.iter().find(|p| p.lr == lr)
}

/// The proxies at the highest rate, arm by arm (mean over seeds of each run's peak): where
/// they part, the report says so in numbers.
fn proxies_line(a: &LrAnalysis) -> Option<String> {
    let top = *a.learning_rates.last()?;
    let list = |value: fn(&crate::analysis::lr::LrPoint) -> Option<f64>| -> Vec<String> {
        a.curves
            .iter()
            .filter_map(|c| {
                Some(format!(
                    "{} {}",
                    c.arm,
                    num(Some(value(point_at(c, top)?)?))
                ))
            })
            .collect()
    };
    let attn = list(|p| p.attn_logit_peak);
    let router = list(|p| p.router_logit_peak);
    (!attn.is_empty()).then(|| {
        format!(
            "**Proxies at the highest rate** ({top:e}; mean over seeds of each run's peak): attention logit {}; router logit {}.",
            attn.join(", "),
            if router.is_empty() { "–".into() } else { router.join(", ") }
        )
    })
}

/// The answer's first words from a sequential look (see [`answer`]).
fn sequential_answer(j: &Judged) -> String {
    match j.decision {
        Decision::Higher => "**Yes**: it loses more loss away from its best rate".into(),
        Decision::Lower => "**No, the opposite**: it loses less away from its best rate".into(),
        Decision::Equivalent => format!("**No**: equivalent within ±{} nats", j.margin),
        Decision::Continue => format!(
            "**Inconclusive** (smallest detectable difference {:.3} nats)",
            j.min_detectable
        ),
    }
}

/// The answer's first words: a higher sensitivity of the reference arm means less stable; a
/// difference inside the margin is equivalent, significant or not.
fn answer(p: &Paired) -> String {
    match p.practical_verdict() {
        Verdict::Higher => "**Yes**: it loses more loss away from its best rate".into(),
        Verdict::Lower => "**No, the opposite**: it loses less away from its best rate".into(),
        Verdict::Equivalent => format!("**No**: equivalent within ±{} nats", p.margin),
        Verdict::Inconclusive => format!(
            "**Inconclusive** (smallest detectable difference {:.3} nats)",
            p.min_detectable
        ),
    }
}

/// Both arms' optimal rate, sensitivity and divergences, pooled over sizes.
fn arms_in_numbers(a: &LrAnalysis, r: &str, arm: &str) -> String {
    let of = |name: &str| {
        let curves: Vec<&LrCurve> = a.curves.iter().filter(|c| c.arm == name).collect();
        let (div, runs) = a.diverged_runs(name);
        let optimal: Vec<String> = curves
            .iter()
            .map(|c| c.optimal_lr.map_or("–".into(), |l| format!("{l:.3}")))
            .collect();
        (div, runs, optimal.join("/"))
    };
    let ((dr, nr, or), (da, na, oa)) = (of(r), of(arm));
    format!("Diverged runs {r} {dr}/{nr} vs {arm} {da}/{na}; optimal rate {r} {or} vs {arm} {oa}.")
}

fn sizes(a: &LrAnalysis) -> Vec<String> {
    let mut sizes: Vec<String> = Vec::new();
    for c in &a.curves {
        if !sizes.contains(&c.size) {
            sizes.push(c.size.clone());
        }
    }
    sizes
}

fn setup_section(doc: &mut Doc, a: &LrAnalysis, runs: &[RunData]) {
    let lrs: Vec<String> = a.learning_rates.iter().map(|l| format!("{l:e}")).collect();
    let seeds = runs.iter().map(|r| r.cell.seed).max().map_or(0, |m| m + 1);
    let wall: f64 = runs.iter().map(|r| r.summary.wall_time_s).sum();
    doc.heading("Setup");
    doc.para(&format!(
        "{} of {} runs found: arms {}, sizes {}, {} learning rates ({}), seeds 0–{}. Every arm at a size trains on the same FLOP budget; at one seed all arms start from the same non-feed-forward weights and see the same batches, so arms pair by seed. Training time summed over runs: {:.0} s.",
        a.runs_found,
        a.runs_expected,
        a.curves
            .iter()
            .map(|c| c.arm.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", "),
        sizes(a).join(", "),
        lrs.len(),
        lrs.join(", "),
        seeds.saturating_sub(1),
        wall
    ));
}

fn arms_section(doc: &mut Doc, a: &LrAnalysis) {
    doc.heading("Per arm");
    let mut t = Table::new(&[
        "size",
        "arm",
        "ℓ0",
        "optimal rate",
        "best loss (mean)",
        "LR sensitivity, nats (mean ± 95% CI over seeds)",
        "diverged runs",
        "first diverging rate",
    ]);
    for c in &a.curves {
        let (div, runs) = c.diverged_runs();
        let sensitivity = c.sensitivity.as_ref().map_or("–".into(), |m| {
            format!("{:.3} ± {:.3} (n = {})", m.mean, m.half_width, m.n)
        });
        t.row(&cells![
            c.size,
            c.arm,
            format!("{:.3}", c.loss_at_init),
            c.optimal_lr.map_or("–".into(), |l| format!("{l:e}")),
            c.best_loss.map_or("–".into(), |l| format!("{l:.4}")),
            sensitivity,
            format!("{div}/{runs}"),
            c.first_diverging_lr
                .map_or("none".into(), |l| format!("{l:e}"))
        ]);
    }
    doc.table(t);
}

/// Loss, divergence, spikes and proxies per rate at one size: one table, arms side by side.
fn per_rate_section(doc: &mut Doc, a: &LrAnalysis, size: &str) {
    let curves: Vec<&LrCurve> = a.curves.iter().filter(|c| c.size == size).collect();
    doc.heading(&format!("Per learning rate, size {size}"));
    doc.para("Each cell: final loss mean [min, max] over seeds (capped at ℓ0) · diverged/runs · loss spikes per 1k steps · peak attention logit · final output log Z · peak router logit.");
    let header: Vec<&str> = std::iter::once("rate")
        .chain(curves.iter().map(|c| c.arm.as_str()))
        .collect();
    let mut t = Table::new(&header);
    for lr in &a.learning_rates {
        let arms = curves
            .iter()
            .map(|c| match c.points.iter().find(|p| p.lr == *lr) {
                Some(p) => format!(
                    "{:.3} [{:.3}, {:.3}] · {}/{} · {:.0} · {} · {} · {}",
                    p.mean_loss,
                    p.min_loss,
                    p.max_loss,
                    p.diverged,
                    p.runs,
                    p.loss_spikes_per_1k,
                    num(p.attn_logit_peak),
                    num(p.output_log_z_final),
                    num(p.router_logit_peak)
                ),
                None => "–".into(),
            });
        let row: Vec<String> = std::iter::once(format!("{lr:e}")).chain(arms).collect();
        t.row(&row);
    }
    doc.table(t);
}

/// A proxy value: 3 significant figures, scientific beyond 10⁴.
fn num(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v.abs() >= 1e4 => format!("{v:.2e}"),
        Some(v) => format!("{v:.3}"),
    }
}

fn definitions_section(doc: &mut Doc) {
    doc.heading("Definitions");
    doc.line(&format!(
        "- **LR sensitivity** (Wortsman et al. 2023, §3.1): the mean over the rates of `min(ℓ(η), ℓ0) − ℓ*`, where ℓ(η) is the final validation loss at rate η, ℓ0 the loss at initialisation and ℓ* the best loss over the rates; computed per seed, then averaged. 0 means the arm does equally well at every rate.\n\
- **Diverged**: the training loss became non-finite, or rose more than {} nats above ℓ0 at any step after the first (even if it later recovered).\n\
- **Loss spikes**: the lab's robust rule (a loss above the rolling median by more than z·1.4826·MAD).\n\
- **Proxies**, logged every step (`metrics.csv`, per layer in `probes.csv`): the largest pre-softmax attention logit `q·k/√d` over layers, the output logits' mean log-partition `log Σ exp(logits)`, the largest router logit over MoE layers.",
        crate::analysis::lr::DIVERGENCE_MARGIN
    ));
}
