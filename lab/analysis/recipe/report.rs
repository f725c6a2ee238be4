//! `report.md` of a recipe experiment: does each lever help small models, by how much at each
//! size and in each domain, and does its gain shrink as models grow (the anti-scale
//! conjecture)? The figure sits beside the slopes it draws.

use crate::analysis::markdown::{Doc, Table, cells};
use crate::analysis::recipe::figures::RECIPE_GAINS;
use crate::analysis::recipe::{AimResult, Lever, RecipeAnalysis, Slope};
use crate::analysis::scaling::report::p_value;
use crate::analysis::stats::{Paired, Verdict};
use crate::run::Manifest;

pub fn render(a: &RecipeAnalysis, manifest: &Manifest, plots_rel: &str) -> String {
    let mut doc = Doc::default();
    doc.line(&format!(
        "# {} — preset `{}`\n",
        manifest.experiment, manifest.preset
    ));
    if !manifest.description.is_empty() {
        doc.para(manifest.description.trim());
    }
    doc.line("## The questions, answered\n");
    for line in verdicts(a) {
        doc.item(&line);
    }
    setup_section(&mut doc, a);
    gains_section(&mut doc, a);
    domains_section(&mut doc, a);
    slopes_section(&mut doc, a);
    doc.figure(plots_rel, "recipe_gains", RECIPE_GAINS);
    doc.finish()
}

fn ci(p: &Paired) -> String {
    format!("{:+.4} [{:+.4}, {:+.4}]", p.mean, p.ci_low, p.ci_high)
}

/// The answer for a gain (lever better = positive): yes / no, it hurts / equivalent /
/// inconclusive.
fn gain_words(p: &Paired) -> String {
    match p.verdict() {
        Verdict::Higher => "**Yes**".into(),
        Verdict::Lower => "**No, it hurts**".into(),
        Verdict::Equivalent => format!("**No effect beyond ±{} nats** (equivalent)", p.margin),
        Verdict::Inconclusive => format!(
            "**Inconclusive** (smallest detectable gain {:.4} nats)",
            p.min_detectable
        ),
    }
}

/// One line per lever (does it help, pooled over sizes? On its aim where it names one) and one
/// per lever on the conjecture.
pub fn verdicts(a: &RecipeAnalysis) -> Vec<String> {
    let mut out = Vec::new();
    for l in &a.levers {
        if let Some(aim) = &l.aim {
            out.push(aim_line(l, aim));
            continue;
        }
        out.push(match &l.pooled {
            Some(p) => format!(
                "**Does {} help small models?** {}: gain {} nats over {} seed pairs at {} sizes ({}); {}.",
                l.arm,
                gain_words(p),
                ci(p),
                p.n,
                p.groups,
                p_value(p.p),
                l.uses
            ),
            None => format!(
                "**Does {} help small models?** Undetermined: fewer than 2 finished seed pairs.",
                l.arm
            ),
        });
    }
    for l in &a.levers {
        out.push(anti_scale_line(l));
    }
    out
}

/// "Does the lever help what it aims at?", on those streams' loss and exact match, with the
/// mixture's loss beside it as the cost.
fn aim_line(l: &Lever, aim: &AimResult) -> String {
    let what = aim.streams.join(" and ");
    let q = format!("**Does {} help {what}, its aim?**", l.arm);
    let Some(g) = &aim.gain else {
        return format!("{q} Undetermined: fewer than 2 finished seed pairs.");
    };
    let rates: Vec<String> = (aim.exact_match.iter())
        .map(|(stream, p)| match p {
            Some(p) => format!(
                "{stream} answers exactly right: {} ({:+.1} [{:+.1}, {:+.1}] points)",
                rate_words(p),
                100.0 * p.mean,
                100.0 * p.ci_low,
                100.0 * p.ci_high
            ),
            None => format!("{stream} answers exactly right: not measured"),
        })
        .collect();
    let cost = match &l.pooled {
        Some(p) => format!(
            "its cost on the mixture's validation loss: {} nats ({})",
            ci(p),
            match p.verdict() {
                Verdict::Lower => "it costs",
                Verdict::Higher => "no cost: it gains there too",
                Verdict::Equivalent => "no cost beyond the margin",
                Verdict::Inconclusive => "inconclusive",
            }
        ),
        None => "its cost on the mixture's loss: undetermined".into(),
    };
    let mut parts = vec![format!(
        "{}: gain {} nats on their mean validation loss over {} seed pairs at {} sizes ({})",
        gain_words(g),
        ci(g),
        g.n,
        g.groups,
        p_value(g.p)
    )];
    parts.extend(rates);
    parts.push(cost);
    format!("{q} {}; {}.", parts.join("; "), l.uses)
}

/// The answer for a gain in a rate: more / fewer / equivalent / inconclusive.
fn rate_words(p: &Paired) -> String {
    match p.verdict() {
        Verdict::Higher => "more".into(),
        Verdict::Lower => "fewer".into(),
        Verdict::Equivalent => format!("the same within ±{:.0} point", 100.0 * p.margin),
        Verdict::Inconclusive => format!(
            "inconclusive, smallest detectable change {:.1} points",
            100.0 * p.min_detectable
        ),
    }
}

fn anti_scale_line(l: &Lever) -> String {
    let Some(sl) = &l.slope else {
        return format!(
            "**Does {} help smaller models more?** Undetermined: it needs gains at 3 or more sizes (a line through size means keeps 1 degree of freedom from 3).",
            l.arm
        );
    };
    let answer = if sl.ci_high < 0.0 {
        "**Yes** (anti-scale supported): the gain shrinks as models grow".to_string()
    } else if sl.ci_low > 0.0 {
        "**No, the opposite**: larger models gain more".to_string()
    } else {
        format!(
            "**Inconclusive**: the slope's interval spans 0 (smallest detectable slope {:.4} nats per e-fold)",
            sl.min_detectable
        )
    };
    format!(
        "**Does {} help smaller models more?** {answer}; slope of the gain against ln(parameters) {} nats per e-fold of parameters (through {} size means, {} df, {}), within the sizes run only.",
        l.arm,
        slope_ci(sl),
        sl.n,
        sl.n - 2,
        p_value(sl.p)
    )
}

fn slope_ci(sl: &Slope) -> String {
    format!("{:+.4} [{:+.4}, {:+.4}]", sl.slope, sl.ci_low, sl.ci_high)
}

fn setup_section(doc: &mut Doc, a: &RecipeAnalysis) {
    doc.heading("Setup");
    let sizes: Vec<String> = a
        .sizes
        .iter()
        .map(|(n, p)| format!("{n} ({p} parameters)"))
        .collect();
    doc.line(&format!(
        "Students: {}. Every arm at a size trains on the same FLOP budget as `{}`; a pair is \
         one seed at one size (same initial weights and data order). Gain = {} loss − lever \
         loss on the final evaluation (nats/byte; positive: the lever helps); an arm that \
         averages checkpoints is scored by its averaged model.",
        sizes.join(", "),
        a.baseline_arm,
        a.baseline_arm
    ));
    for l in &a.levers {
        doc.item(&format!("`{}`: {}", l.arm, l.uses));
    }
    if let Some(t) = &a.teacher {
        let loss = t.final_val_loss.map_or("not finished".into(), |v| {
            format!("final validation loss {v:.4}")
        });
        let charged = match t.charged {
            true => "charged to",
            false => "not charged to",
        };
        doc.line("");
        doc.line(&format!(
            "Teacher: `{}` ({} parameters, {loss}), trained first. Its forward passes for the \
             distilling students cost {:.3e} FLOPs in all, {charged} the students' budgets: \
             distillation here buys the teacher's knowledge for free at training time.",
            t.cell, t.params, t.forward_flops_used
        ));
    }
}

fn gains_section(doc: &mut Doc, a: &RecipeAnalysis) {
    doc.heading(&format!("Gain over `{}` per size", a.baseline_arm));
    let header: Vec<&str> = std::iter::once("lever")
        .chain(a.sizes.iter().map(|(n, _)| n.as_str()))
        .chain(std::iter::once("all sizes"))
        .collect();
    let mut t = Table::new(&header);
    for l in &a.levers {
        let per_size = (l.by_size.iter())
            .map(|at| (at.gain.as_ref()).map_or("–".into(), |p| format!("{} ({})", ci(p), p.n)));
        let pooled = l.pooled.as_ref().map_or("–".into(), ci);
        let row: Vec<String> = std::iter::once(l.arm.clone())
            .chain(per_size)
            .chain(std::iter::once(pooled))
            .collect();
        t.row(&row);
        if l.by_size.iter().any(|at| at.gain_last.is_some()) {
            let last = (l.by_size.iter()).map(|at| at.gain_last.as_ref().map_or("–".into(), ci));
            let row: Vec<String> = std::iter::once(format!("{} (last model, not averaged)", l.arm))
                .chain(last)
                .chain(std::iter::once(String::new()))
                .collect();
            t.row(&row);
        }
    }
    doc.table(t);
    doc.line("");
    doc.para(
        "Mean gain in nats/byte [95% interval] (pairs). The averaged rows against the last-model \
         rows show what checkpoint averaging adds on its own.",
    );
}

fn domains_section(doc: &mut Doc, a: &RecipeAnalysis) {
    let domains: Vec<&String> = a
        .levers
        .first()
        .map(|l| l.by_domain.keys().collect())
        .unwrap_or_default();
    if domains.is_empty() {
        return;
    }
    doc.heading("Gain per validation domain (all sizes)");
    let header: Vec<&str> = std::iter::once("lever")
        .chain(domains.iter().map(|d| d.as_str()))
        .collect();
    let mut t = Table::new(&header);
    for l in &a.levers {
        let gains = domains
            .iter()
            .map(|d| match l.by_domain.get(*d).and_then(|p| p.as_ref()) {
                Some(p) => {
                    let mark = match p.verdict() {
                        Verdict::Higher => " ✓",
                        Verdict::Lower => " ✗",
                        _ => "",
                    };
                    format!("{}{mark}", ci(p))
                }
                None => "–".into(),
            });
        let row: Vec<String> = std::iter::once(l.arm.clone()).chain(gains).collect();
        t.row(&row);
    }
    doc.table(t);
    doc.line("");
    doc.para(
        "✓ / ✗: a significant gain / loss (p < 0.05, sizes as fixed effects). The annealing mix \
         up-samples math and code (at the expense of knowledge), so the annealing arms should gain \
         there and may lose on knowledge; the headline loss weights the domains by the base mix, \
         knowledge first. knowledge_heldout holds facts never stated in training.",
    );
}

fn slopes_section(doc: &mut Doc, a: &RecipeAnalysis) {
    doc.heading("The anti-scale conjecture");
    doc.para(
        "LLaMA-3 conjectures that the smaller the model, the more distillation and annealing data \
         help. Each lever's mean gain per size is regressed on ln(parameters) (sizes − 2 degrees of \
         freedom: the seeds of a size are replicates, not new sizes); a negative slope whose \
         interval excludes 0 supports the conjecture over the sizes run (nothing is said beyond \
         them).",
    );
    let mut t = Table::new(&["lever", "slope (nats per e-fold) [95% CI]", "sizes", "p"]);
    for l in &a.levers {
        match &l.slope {
            Some(sl) => t.row(&cells![l.arm, slope_ci(sl), sl.n, p_value(sl.p)]),
            None => t.row(&cells![l.arm, "–", "–", "–"]),
        }
    }
    doc.table(t);
}
