//! The seed's four claims about MoE, each with its verdict, effect and interval, and the
//! figure that shows it: what the lab was built to answer.

use super::verdicts::multiplier_text;
use crate::analysis::decisive::{Decision, Judged};
use crate::analysis::lr::StabilityClaim;
use crate::analysis::markdown::{Doc, Table, cells};
use crate::analysis::scaling::Analysis;
use crate::analysis::stats::{Paired, Verdict};

pub fn section(doc: &mut Doc, a: &Analysis) {
    let Some(base) = &a.baseline_arm else { return };
    let r = &a.reference_arm;
    doc.heading("The claims, answered");
    let mut t = Table::new(&["claim", "verdict", "effect (95% CI)", "figure"]);
    let (verdict, effect) = claim_a(a, r, base);
    t.row(&cells![
        "(a) at matched compute, MoE is not better per se",
        verdict,
        effect,
        "paired_diff"
    ]);
    t.row(&claim_b(a, r, base));
    t.row(&claim_c(a, r, base));
    t.row(&claim_d(a, base));
    doc.table(t);
    doc.line("");
}

/// (a): the pooled paired loss difference.
fn claim_a(a: &Analysis, r: &str, base: &str) -> (String, String) {
    let Some(p) = a.pooled.get(base) else {
        return ("not tested (fewer than 2 seed pairs)".into(), "–".into());
    };
    let verdict = claim_words(
        p,
        "supported: higher loss",
        "refuted: lower loss at matched compute",
        "supported",
        4,
    );
    let effect = format!(
        "{r} − {base} = {:+.4} nats [{:+.4}, {:+.4}], {} seed pairs",
        p.mean, p.ci_low, p.ci_high, p.n
    );
    (verdict, effect)
}

/// A claim's verdict from a paired comparison, by one rule on every line: a difference inside
/// the equivalence margin is "equivalent within ±m" (significant or not); else a significant
/// one is `higher` or `lower`; else inconclusive with the smallest detectable effect
/// (`digits` decimals).
fn claim_words(p: &Paired, higher: &str, lower: &str, equivalent: &str, digits: usize) -> String {
    match p.practical_verdict() {
        Verdict::Higher => higher.into(),
        Verdict::Lower => lower.into(),
        Verdict::Equivalent => format!("{equivalent}: equivalent within ±{}", p.margin),
        Verdict::Inconclusive => {
            format!(
                "inconclusive (smallest detectable {:.digits$})",
                p.min_detectable
            )
        }
    }
}

/// (b): from the learning-rate sweep's paired LR sensitivity when it has results; this
/// sweep's own spikes never test it (one rate, far from divergence).
fn claim_b(a: &Analysis, r: &str, base: &str) -> [String; 4] {
    let claim = "(b) MoE trains less stably";
    let Some(c) = &a.stability_claim else {
        return cells![
            claim,
            "not tested: this sweep trains at one learning rate, far from divergence; run `just sweep lr-stability`",
            format!("this sweep's spikes {}", spikes_effect(a, r, base)),
            "spike_rate"
        ];
    };
    if let Some((j, outcome)) = &c.sequential {
        return claim_b_sequential(c, j, outcome);
    }
    let p = &c.sensitivity;
    let verdict = claim_words(
        p,
        "supported: more sensitive to the learning rate",
        "refuted: less sensitive to the learning rate",
        "refuted: equally sensitive",
        3,
    );
    let [(dr, nr), (db, nb)] = c.diverged;
    let effect = format!(
        "LR sensitivity {} − {} = {:+.3} nats [{:+.3}, {:+.3}], {} seed pairs; diverged runs {dr}/{nr} vs {db}/{nb} (from `{}`)",
        c.reference, c.baseline, p.mean, p.ci_low, p.ci_high, p.n, c.source
    );
    cells![claim, verdict, effect, "lr_sensitivity (lr-stability)"]
}

/// (b) from a `--until-decisive` learning-rate sweep: its last look's repeated interval.
fn claim_b_sequential(c: &StabilityClaim, j: &Judged, outcome: &str) -> [String; 4] {
    let verdict = match j.decision {
        Decision::Higher => "supported: more sensitive to the learning rate".to_string(),
        Decision::Lower => "refuted: less sensitive to the learning rate".into(),
        Decision::Equivalent => format!(
            "refuted: equally sensitive: equivalent within ±{}",
            j.margin
        ),
        Decision::Continue => format!(
            "inconclusive after {} seed pairs (smallest detectable {:.3})",
            j.n, j.min_detectable
        ),
    };
    let [(dr, nr), (db, nb)] = c.diverged;
    let effect = format!(
        "LR sensitivity {} − {} = {:+.3} nats, repeated 95% CI [{:+.3}, {:+.3}], {} seed pairs (seeds until decisive: {outcome}); diverged runs {dr}/{nr} vs {db}/{nb} (from `{}`)",
        c.reference, c.baseline, j.mean, j.ci_low, j.ci_high, j.n, c.source
    );
    cells![
        "(b) MoE trains less stably",
        verdict,
        effect,
        "lr_sensitivity (lr-stability)"
    ]
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

/// (c): the measured peak, paired by seed.
fn claim_c(a: &Analysis, r: &str, base: &str) -> [String; 4] {
    let claim = "(c) MoE needs more memory";
    let (verdict, p) = match &a.memory_paired {
        Some(p) if p.p < 0.05 && p.mean > 0.0 => ("supported", p),
        Some(p) if p.p < 0.05 => ("refuted: less", p),
        Some(p) => ("inconclusive", p),
        None => return cells![claim, "not tested", "–", "memory"],
    };
    let effect = format!(
        "measured peak {r} − {base} = {:+.1} MiB [{:+.1}, {:+.1}], {} seed pairs",
        p.mean, p.ci_low, p.ci_high, p.n
    );
    cells![claim, verdict, effect, "memory"]
}

/// (d): the same quality for fewer FLOPs, from the compute multiplier.
fn claim_d(a: &Analysis, base: &str) -> [String; 4] {
    let claim = "(d) MoE's gain is cost: the same quality for fewer FLOPs";
    let (verdict, effect) = match a.multipliers.get(base) {
        Some(m) if m.extrapolated => (
            "inconclusive: the fits are extrapolated",
            multiplier_text(m),
        ),
        Some(m) => match (m.ci_low, m.ci_high) {
            (Some(lo), _) if lo > 1.0 => ("supported", multiplier_text(m)),
            (_, Some(hi)) if hi < 1.0 => (
                "refuted: the baseline reaches the same loss with less compute",
                multiplier_text(m),
            ),
            _ => ("inconclusive", multiplier_text(m)),
        },
        None => {
            let why = a.fit_notes.get(base).or(a.fit_notes.get(&a.reference_arm));
            let verdict = match why {
                Some(w) => format!("not tested: no scaling fit ({w})"),
                None => "not tested: no scaling fit".into(),
            };
            return cells![claim, verdict, "–", "scaling"];
        }
    };
    cells![claim, verdict, format!("{base} needs {effect}"), "scaling"]
}
