//! The data-mix study's report: which mix is best for the target per arm, whether dense and MoE
//! want different mixes, whether the MoE gains more on diverse data, and what is not answered.

use super::figures::{CHECK, FIT, OPTIMUM, RANKS, SLICES};
use super::{ArmMix, MixAnalysis, Trusted, entropy};
use crate::analysis::markdown::{Doc, Table};

pub fn render(a: &MixAnalysis, plots_rel: &str) -> String {
    let mut doc = Doc::default();
    doc.line(&format!("# {} — preset `{}`\n", a.experiment, a.preset));
    doc.para(&format!(
        "Small runs at {} mixtures of {} ({}), each arm on its matched FLOP budget; the target \
         is {}. A law is trusted only where it predicts held-out mixtures better than their \
         mean; the optimum keeps every weight ≥ {}.",
        a.arms.first().map_or(0, |m| m.points.len()),
        a.domains.len(),
        a.domains.join(", "),
        target_text(&a.target),
        a.floor
    ));
    doc.heading("Answers");
    for v in verdicts(a) {
        doc.line(&format!("- {v}"));
    }
    doc.heading("Fits: leave-one-mixture-out error (nats)");
    let mut t = Table::new(&[
        "size",
        "arm",
        "mixing laws",
        "linear law",
        "the mean",
        "trusted",
    ]);
    for m in &a.arms {
        t.row(&[
            m.size.clone(),
            m.arm.clone(),
            rmse_text(&m.loo_law),
            rmse_text(&m.loo_linear),
            rmse_text(&m.loo_mean),
            law_name(m.trusted).into(),
        ]);
    }
    doc.table(t);
    doc.figure(plots_rel, "mix_fit", FIT);
    doc.heading("The optimum");
    optimum_table(&mut doc, a);
    doc.figure(plots_rel, "mix_optimum", OPTIMUM);
    doc.figure(plots_rel, "mix_slices", SLICES);
    doc.figure(plots_rel, "mix_ranks", RANKS);
    doc.figure(plots_rel, "mix_check", CHECK);
    mixtures_table(&mut doc, a);
    doc.finish()
}

/// The target in words: `0.25·knowledge + … (final validation loss)`.
pub fn target_text(t: &crate::run::MixTarget) -> String {
    let parts: Vec<String> = t
        .streams
        .iter()
        .map(|(s, w)| format!("{w:.2}·{s}"))
        .collect();
    let what = match t.measure.as_str() {
        "answer_loss" => "final loss on the answers",
        "exact_match" => "share of answers not reproduced exactly, 1 − exact match",
        _ => "final validation loss",
    };
    format!("{} ({what})", parts.join(" + "))
}

/// A leave-one-out error in nats, "–" where every fit failed.
fn rmse_text(e: &super::loo::LooError) -> String {
    e.rmse().map_or("–".into(), |x| format!("{x:.4}"))
}

fn law_name(t: Option<Trusted>) -> &'static str {
    match t {
        Some(Trusted::MixingLaw) => "mixing laws",
        Some(Trusted::Linear) => "linear law",
        None => "neither",
    }
}

fn weights_text(domains: &[String], w: &[f64], iv: &[(f64, f64)]) -> String {
    let parts = domains.iter().zip(w).zip(iv);
    let each = parts.map(|((d, x), (lo, hi))| format!("{d} {x:.2} [{lo:.2}, {hi:.2}]"));
    each.collect::<Vec<_>>().join(", ")
}

/// The answers, one line each.
pub fn verdicts(a: &MixAnalysis) -> Vec<String> {
    // A check size trains a few mixtures only: it answers the rank question, not this one.
    let checked = |m: &&ArmMix| {
        a.rank_checks
            .iter()
            .any(|c| c.arm == m.arm && c.large == m.size)
    };
    let main = a.arms.iter().filter(|m| !checked(m));
    let mut out: Vec<String> = main.map(|m| best_mix(a, m)).collect();
    out.push(arms_differ(a));
    out.push(diversity(a));
    out.push(specialisation(a));
    out.push(rank_invariance(a));
    out.push(optimum_checked(a));
    out
}

/// Whether each arm's predicted optimum, trained at the larger size, beats the base mix (and
/// uniform), paired by seed, within the equivalence margin.
fn optimum_checked(a: &MixAnalysis) -> String {
    let head = "**Is the predicted mix better than the base mix at the larger size?**";
    if a.optimum_checks.is_empty() {
        let why = match a.rank_checks.is_empty() {
            true => "this sweep trains one size (`[mixtures] check_size` adds a larger one)",
            false => {
                "no arm's optimum was trained at the larger size (no trusted law, or the check has not run)"
            }
        };
        return format!("{head} Not answered: {why}.");
    }
    let each: Vec<String> = (a.optimum_checks.iter())
        .map(|c| {
            let what = match &c.paired {
                Some(p) => format!(
                    "{:+.4} nats [{:+.4}, {:+.4}] over {} paired seeds: {}",
                    p.mean,
                    p.ci_low,
                    p.ci_high,
                    p.n,
                    check_words(p, a.margin)
                ),
                None => "too few paired seeds for an interval".into(),
            };
            format!("{} at {}, optimum − {}: {what}", c.arm, c.size, c.against)
        })
        .collect();
    format!("{head} {}.", each.join("; "))
}

/// A paired optimum − other difference in words (lower is better).
fn check_words(p: &crate::analysis::stats::Paired, margin: f64) -> String {
    use crate::analysis::stats::Verdict;
    match p.practical_verdict() {
        Verdict::Lower => "the optimum is better".into(),
        Verdict::Higher => "the optimum is worse".into(),
        Verdict::Equivalent => format!("equivalent within ±{margin} nats"),
        Verdict::Inconclusive => format!(
            "inconclusive (smallest detectable effect {:.4} nats)",
            p.min_detectable
        ),
    }
}

fn best_mix(a: &MixAnalysis, m: &ArmMix) -> String {
    let head = format!("**Best mix for {} ({})?**", m.arm, m.size);
    let Some(o) = &m.optimum else {
        return format!(
            "{head} None named: no law predicts held-out mixtures better than their mean (mixing \
             laws {}, linear law {}, the mean {} nats of leave-one-out error).",
            rmse_text(&m.loo_law),
            rmse_text(&m.loo_linear),
            rmse_text(&m.loo_mean)
        );
    };
    let trusted = match m.trusted {
        Some(Trusted::MixingLaw) => &m.loo_law,
        _ => &m.loo_linear,
    };
    let base = o
        .at_base
        .map_or(String::new(), |b| format!(", {b:.4} at the base mix"));
    format!(
        "{head} {} (by the {}: held-out mixtures predicted within {} nats, their mean within {}); \
         predicted loss {:.4}{base} and {:.4} at uniform.",
        weights_text(&a.domains, &o.weights, &o.intervals),
        law_name(m.trusted),
        rmse_text(trusted),
        rmse_text(&m.loo_mean),
        o.predicted,
        o.at_uniform,
    )
}

/// Whether the reference and baseline arms' optima differ by more than their intervals.
fn arms_differ(a: &MixAnalysis) -> String {
    let head = "**Do the arms want different mixes?**";
    let find = |name: &str| a.arms.iter().find(|m| m.arm == name);
    let (Some(r), Some(b)) = (
        find(&a.reference_arm),
        a.baseline_arm.as_deref().and_then(find),
    ) else {
        return format!("{head} Cannot say: the sweep has no baseline arm.");
    };
    let (Some(or), Some(ob)) = (&r.optimum, &b.optimum) else {
        return format!("{head} Cannot say: an arm has no trusted law.");
    };
    let disjoint: Vec<String> = (a.domains.iter().enumerate())
        .filter(|(j, _)| {
            or.intervals[*j].1 < ob.intervals[*j].0 || ob.intervals[*j].1 < or.intervals[*j].0
        })
        .map(|(j, d)| {
            format!(
                "{d} ({} {:.2} vs {} {:.2})",
                r.arm, or.weights[j], b.arm, ob.weights[j]
            )
        })
        .collect();
    match disjoint.is_empty() {
        true => format!(
            "{head} Not distinguishable: every domain's interval of {} overlaps {}'s.",
            r.arm, b.arm
        ),
        false => format!("{head} **Yes**, on {}.", disjoint.join(", ")),
    }
}

/// Whether the reference − baseline gap changes with the mixture's entropy.
fn diversity(a: &MixAnalysis) -> String {
    let base = a.baseline_arm.as_deref().unwrap_or("the baseline");
    let head = format!(
        "**Does {} gain more over {base} on diverse data?**",
        a.reference_arm
    );
    let Some(s) = &a.gap_by_entropy else {
        return format!("{head} Cannot say: fewer than 3 mixtures with both arms.");
    };
    let verdict = if s.ci_high < 0.0 {
        "**Yes**: the gap falls as the mixture grows more diverse".to_string()
    } else if s.ci_low > 0.0 {
        "**No, the opposite**: the gap grows with diversity".to_string()
    } else {
        format!(
            "Inconclusive (smallest detectable slope {:.4})",
            s.min_detectable
        )
    };
    format!(
        "{head} {verdict}: {} − {base} changes by {:+.4} nats per nat of mixture entropy (95% CI \
         [{:+.4}, {:+.4}], {} mixtures).",
        a.reference_arm, s.slope, s.ci_low, s.ci_high, s.n
    )
}

/// Whether the reference arm's routing specialises more by domain on diverse mixtures.
fn specialisation(a: &MixAnalysis) -> String {
    let head = format!(
        "**Does {}'s routing specialise more on diverse data?**",
        a.reference_arm
    );
    let Some(s) = &a.specialisation_by_entropy else {
        return format!("{head} Cannot say: no routing statistics at 3 mixtures or more.");
    };
    let verdict = if s.ci_low > 0.0 {
        "**Yes**".to_string()
    } else if s.ci_high < 0.0 {
        "**No, the opposite**".to_string()
    } else {
        format!(
            "Inconclusive (smallest detectable slope {:.4})",
            s.min_detectable
        )
    };
    format!(
        "{head} {verdict}: the domain–expert mutual information changes by {:+.4} bits per nat of \
         mixture entropy (95% CI [{:+.4}, {:+.4}], {} mixtures).",
        s.slope, s.ci_low, s.ci_high, s.n
    )
}

/// Whether a larger size ranks the shared mixtures as the small size does (RegMix's rank
/// invariance, on which choosing a mix from small runs rests).
fn rank_invariance(a: &MixAnalysis) -> String {
    let head = "**Do small runs rank mixtures as a larger model does?**";
    if a.rank_checks.is_empty() {
        return format!(
            "{head} Not answered: this sweep trains one size (`[mixtures] check_size` trains a \
             larger one on the first mixtures)."
        );
    }
    let each: Vec<String> = (a.rank_checks.iter())
        .map(|c| {
            let (verdict, iv) = match c.interval {
                Some((lo, hi)) if lo > 0.0 => {
                    ("they agree".to_string(), format!("[{lo:.2}, {hi:.2}]"))
                }
                Some((lo, hi)) => ("inconclusive".to_string(), format!("[{lo:.2}, {hi:.2}]")),
                None => (
                    "too few mixtures for an interval".to_string(),
                    String::new(),
                ),
            };
            format!(
                "{}: Spearman ρ = {:.2} {iv} between {} and {} over {} mixtures, {verdict}",
                c.arm,
                c.rho,
                c.small,
                c.large,
                c.mixtures.len()
            )
        })
        .collect();
    format!("{head} {}.", each.join("; "))
}

fn optimum_table(doc: &mut Doc, a: &MixAnalysis) {
    let mut head = vec!["size".to_string(), "arm".to_string()];
    head.extend(a.domains.iter().map(|d| format!("{d} [95% CI]")));
    head.extend(["predicted".into(), "at base".into(), "at uniform".into()]);
    let mut t = Table::new(&head.iter().map(String::as_str).collect::<Vec<_>>());
    for m in a.arms.iter() {
        let Some(o) = &m.optimum else { continue };
        let mut row = vec![m.size.clone(), m.arm.clone()];
        row.extend(
            (o.weights.iter().zip(&o.intervals))
                .map(|(w, (lo, hi))| format!("{w:.2} [{lo:.2}, {hi:.2}]")),
        );
        row.push(format!("{:.4}", o.predicted));
        row.push(o.at_base.map_or("–".into(), |b| format!("{b:.4}")));
        row.push(format!("{:.4}", o.at_uniform));
        t.row(&row);
    }
    doc.table(t);
}

fn mixtures_table(doc: &mut Doc, a: &MixAnalysis) {
    doc.heading("Mixtures trained (target loss, mean over seeds)");
    let mut head = vec![
        "mixture".to_string(),
        "weights".to_string(),
        "entropy".to_string(),
    ];
    head.extend(a.arms.iter().map(|m| format!("{} {}", m.arm, m.size)));
    let mut t = Table::new(&head.iter().map(String::as_str).collect::<Vec<_>>());
    let Some(first) = a.arms.first() else {
        return doc.table(t);
    };
    for p in &first.points {
        let w: Vec<String> = p.weights.iter().map(|x| format!("{x:.2}")).collect();
        let mut row = vec![
            p.name.clone(),
            w.join(" / "),
            format!("{:.3}", entropy(&p.weights)),
        ];
        for m in &a.arms {
            let q = m.points.iter().find(|q| q.name == p.name);
            row.push(q.map_or("–".into(), |q| format!("{:.4}", q.mean())));
        }
        t.row(&row);
    }
    doc.table(t);
}
