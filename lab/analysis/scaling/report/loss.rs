//! Final validation loss per size and arm, the final evaluation's own error and exact matches,
//! and the comparisons: paired by seed (the primary test), then Welch's unpaired t-test.

use std::collections::BTreeSet;

use super::verdicts::p_value;
use crate::analysis::load::RunData;
use crate::analysis::markdown::{Doc, Table, cells};
use crate::analysis::scaling::Analysis;
use crate::analysis::scaling::figures::{LOSS_VS_FLOPS, PAIRED_DIFF};

pub fn section(doc: &mut Doc, a: &Analysis, plots_rel: &str) {
    doc.heading("Final validation loss by size (mean ± 95% CI over seeds)");
    let mut t = Table::new(&["size", "arm", "seeds", "mean", "sd", "95% CI half-width"]);
    for sa in &a.size_arms {
        match sa.final_val_loss {
            Some((m, sd, hw)) => {
                let half = match hw.is_finite() {
                    true => format!("{hw:.4}"),
                    false => "– (1 seed)".into(),
                };
                let (m, sd) = (format!("{m:.4}"), format!("{sd:.4}"));
                t.row(&cells![sa.size, sa.arm, sa.runs, m, sd, half]);
            }
            None => t.row(&cells![sa.size, sa.arm, 0, "–", "–", "–"]),
        }
    }
    doc.table(t);
    final_eval_table(doc, a);
    paired_table(doc, a);
    doc.figure(plots_rel, "paired_diff", PAIRED_DIFF);
    welch_table(doc, a);
    doc.figure(plots_rel, "loss_vs_flops", LOSS_VS_FLOPS);
}

/// Each (size, arm)'s final validation loss per stream (a generated domain, or a source of a
/// mixture), mean over its runs: where an arm's advantage comes from.
pub fn by_stream(doc: &mut Doc, a: &Analysis, runs: &[RunData]) {
    let streams: BTreeSet<&String> = runs
        .iter()
        .flat_map(|r| r.summary.final_val_loss_by_stream.keys())
        .collect();
    if streams.len() < 2 {
        return;
    }
    doc.line("");
    doc.para(
        "Final validation loss per stream (each domain or source of the mix; mean over seeds):",
    );
    let names: Vec<&str> = streams.iter().map(|n| n.as_str()).collect();
    let headers: Vec<&str> = ["size", "arm"]
        .into_iter()
        .chain(names.iter().copied())
        .collect();
    let mut t = Table::new(&headers);
    for sa in &a.size_arms {
        let mine: Vec<&RunData> = (runs.iter())
            .filter(|r| r.cell.size == sa.size && r.cell.arm == sa.arm)
            .collect();
        let mean = |n: &str| {
            let v: Vec<f64> = (mine.iter())
                .filter_map(|r| r.summary.final_val_loss_by_stream.get(n).copied())
                .collect();
            match v.is_empty() {
                true => "–".to_string(),
                false => format!("{:.4}", v.iter().sum::<f64>() / v.len() as f64),
            }
        };
        let row: Vec<String> = [sa.size.clone(), sa.arm.clone()]
            .into_iter()
            .chain(names.iter().map(|n| mean(n)))
            .collect();
        t.row(&row);
    }
    doc.table(t);
}

/// Each (size, arm)'s final evaluation: its own sampling error and the exact-match rates of
/// greedy answers on the question streams.
fn final_eval_table(doc: &mut Doc, a: &Analysis) {
    let streams: BTreeSet<&String> = a
        .size_arms
        .iter()
        .flat_map(|sa| sa.exact_match.keys())
        .collect();
    if streams.is_empty() {
        return;
    }
    doc.line("");
    doc.para("The final evaluation (mean over seeds): the standard error of one run's final loss from the evaluation's own windows (beside the seeds' spread above), and the share of whole answers that greedy decoding reproduces exactly:");
    let names: Vec<&str> = streams.iter().map(|n| n.as_str()).collect();
    let headers: Vec<&str> = ["size", "arm", "loss SE"]
        .into_iter()
        .chain(names.iter().copied())
        .collect();
    let mut t = Table::new(&headers);
    for sa in &a.size_arms {
        let se = (sa.final_val_loss_se).map_or("–".into(), |x| format!("{x:.4}"));
        let rates = names.iter().map(|n| {
            (sa.exact_match.get(*n)).map_or("–".into(), |r| format!("{:.1}%", 100.0 * r))
        });
        let row: Vec<String> = [sa.size.clone(), sa.arm.clone(), se]
            .into_iter()
            .chain(rates)
            .collect();
        t.row(&row);
    }
    doc.table(t);
}

/// The primary comparisons: paired by seed, per size and pooled over sizes.
fn paired_table(doc: &mut Doc, a: &Analysis) {
    doc.line("");
    doc.para(&format!(
        "Paired by seed (the primary test: at one seed the arms share data order and every weight but the feed-forward's), {} minus baseline; pooled rows take size as a fixed effect; equivalence margin ±{} nats (two one-sided tests):",
        a.reference_arm, a.equivalence_margin
    ));
    let mut t = Table::new(&[
        "size",
        "baseline",
        "pairs",
        "Δ loss",
        "95% CI",
        "p",
        "TOST p",
        "smallest detectable (80% power)",
        "verdict",
    ]);
    let rows = a
        .comparisons
        .iter()
        .map(|c| (c.size.as_str(), c.baseline.as_str(), c.paired))
        .chain((a.pooled.iter()).map(|(b, p)| ("all (pooled)", b.as_str(), Some(*p))));
    let bare = |p: f64| p_value(p).trim_start_matches("p = ").to_string();
    for (size, base, p) in rows {
        match p {
            Some(p) => t.row(&cells![
                size,
                base,
                p.n,
                format!("{:+.4}", p.mean),
                format!("[{:+.4}, {:+.4}]", p.ci_low, p.ci_high),
                bare(p.p),
                bare(p.tost_p),
                format!("{:.4}", p.min_detectable),
                format!("{:?}", p.verdict())
            ]),
            None => t.row(&cells![size, base, "< 2", "–", "–", "–", "–", "–", "–"]),
        }
    }
    doc.table(t);
}

/// Secondary: Welch's unpaired t-test per size.
fn welch_table(doc: &mut Doc, a: &Analysis) {
    doc.line("");
    doc.para(&format!(
        "Secondary: Welch t-tests (unpaired), {} minus baseline (negative = {} lower):",
        a.reference_arm, a.reference_arm
    ));
    let mut t = Table::new(&[
        "size",
        "baseline",
        "Δ loss",
        "95% CI",
        "t",
        "df",
        "p",
        "Hedges' g",
    ]);
    for c in &a.comparisons {
        match &c.welch {
            Some(w) => t.row(&cells![
                c.size,
                c.baseline,
                format!("{:+.4}", w.diff),
                format!("[{:+.4}, {:+.4}]", w.ci_low, w.ci_high),
                format!("{:.2}", w.t),
                format!("{:.1}", w.df),
                format!("{:.3}", w.p),
                format!("{:.2}", w.hedges_g)
            ]),
            None => t.row(&cells![
                c.size,
                c.baseline,
                c.diff.map_or("–".into(), |d| format!("{d:+.4}")),
                "–",
                "–",
                "–",
                "– (needs ≥ 2 seeds per arm)",
                "–"
            ]),
        }
    }
    doc.table(t);
}
