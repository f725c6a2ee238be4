//! One line per question, worded by the numbers: the report's "Verdicts" section and what
//! `lab sweep` prints at the end.

use crate::analysis::markdown::Doc;
use crate::analysis::scaling::Analysis;
use crate::analysis::stats::{Paired, Verdict};

/// Verdicts first: what a reader came for.
pub fn section(doc: &mut Doc, a: &Analysis) {
    doc.heading("Verdicts");
    for line in verdicts(a) {
        doc.item(&line);
    }
    if a.runs_found < a.runs_expected {
        doc.item(&format!(
            "**Incomplete sweep**: {} of {} runs have results; rerun the sweep to finish.",
            a.runs_found, a.runs_expected
        ));
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
        let p = a.spikes_paired.get(base);
        let answer = match p {
            Some(p) if p.p < 0.05 && p.mean > 0.0 => "**Higher**",
            Some(p) if p.p < 0.05 => "**Lower**",
            _ if r.loss_spikes + b.loss_spikes == 0 => {
                "**Inconclusive**: no spike in either arm (one learning rate, far from divergence; `just sweep lr-stability` stresses stability)"
            }
            _ => "**Inconclusive**",
        };
        out.push(format!(
            "**More loss spikes?** {answer}: {reference} {:.2} vs {base} {:.2} loss spikes per 1k steps ({} vs {} spikes over {} vs {} steps; {}); diverged runs {} vs {}; stable seeds {:.0}% vs {:.0}%.",
            r.loss_spikes_per_1k, b.loss_spikes_per_1k, r.loss_spikes, b.loss_spikes, r.steps, b.steps,
            spike_test(p), r.diverged, b.diverged, 100.0 * r.stable_fraction, 100.0 * b.stable_fraction
        ));
    }
    // 3. Memory at the largest size.
    let mem = |arm: &str| a.memory.iter().rfind(|m| m.arm == arm);
    if let (Some(r), Some(b)) = (mem(reference), mem(base)) {
        let analytic = |m: &crate::analysis::scaling::MemoryRow| {
            (m.params_bytes + m.grads_bytes + m.optimizer_bytes) as f64
        };
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
            "{}: {reference} − {base} = {:+.4} nats over {} seed pairs at {} size{} (paired t, size as a fixed effect: 95% CI [{:+.4}, {:+.4}], {}, df = {:.1}; smallest effect detectable at 80% power {:.4})",
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

/// The per-run spike-rate comparison in words: reference − arm per 1k steps, paired by seed.
fn spike_test(p: Option<&Paired>) -> String {
    match p {
        Some(p) => format!(
            "per run, paired by seed: {:+.2} per 1k steps, 95% CI [{:+.2}, {:+.2}], {}",
            p.mean,
            p.ci_low,
            p.ci_high,
            p_value(p.p)
        ),
        None => "no paired test: fewer than 2 seed pairs, or the same count in every pair".into(),
    }
}

/// `p = 0.046`, or `p < 0.001`.
pub fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

/// The verdict of a paired comparison (treatment − baseline) as its first words.
fn verdict_words(p: &Paired) -> String {
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
            "; loss spikes {:.2} vs {:.2} per 1k steps ({}), diverged {} vs {}",
            s.loss_spikes_per_1k,
            r.loss_spikes_per_1k,
            spike_test(a.spikes_paired.get(arm)),
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

pub(super) fn multiplier_text(m: &crate::analysis::fit::ComputeMultiplier) -> String {
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
    let failed = if m.failed_share > 0.0 {
        format!(
            " ({:.0}% of draws left out: a fit failed on them)",
            100.0 * m.failed_share
        )
    } else {
        String::new()
    };
    let ci = format!("{ci}{failed}");
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

/// Mebibytes, one decimal.
pub(super) fn mib(b: f64) -> String {
    format!("{:.1}", b / (1024.0 * 1024.0))
}
