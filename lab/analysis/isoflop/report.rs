//! `report.md` of an IsoFLOP experiment: the answer in one sentence, then the optima per arm
//! and budget, the frontiers, the multiplier along them, and every warning, each table beside
//! its figure.

use crate::analysis::isoflop::figures::{FRONTIERS, LOSS_FRONTIER, PROFILES};
use crate::analysis::isoflop::{
    Ci, FrontierMultiplier, IsoflopAnalysis, MultiplierVerdict, Profile,
};
use crate::analysis::markdown::{Doc, Table, cells};
use crate::run::Manifest;

pub fn render(a: &IsoflopAnalysis, manifest: &Manifest, plots_rel: &str) -> String {
    let mut doc = Doc::default();
    doc.line(&format!("# {} — preset `{}`\n", a.experiment, a.preset));
    if !manifest.description.is_empty() {
        doc.para(manifest.description.trim());
    }
    doc.heading("Verdicts");
    for line in verdicts(a) {
        doc.item(&line);
    }
    setup(&mut doc, a);
    optima(&mut doc, a);
    doc.figure(plots_rel, "isoflop_profiles", PROFILES);
    frontiers(&mut doc, a);
    doc.figure(plots_rel, "isoflop_frontiers", FRONTIERS);
    multipliers(&mut doc, a);
    doc.figure(plots_rel, "isoflop_loss_frontier", LOSS_FRONTIER);
    doc.finish()
}

/// The answer first, then each warning.
pub fn verdicts(a: &IsoflopAnalysis) -> Vec<String> {
    let mut out = vec![answer(a)];
    if a.runs_found < a.runs_expected {
        out.push(format!(
            "**Incomplete sweep**: {} of {} runs have results; rerun the sweep to finish.",
            a.runs_found, a.runs_expected
        ));
    }
    out.extend(a.warnings.iter().map(|w| format!("**Caveat**: {w}.")));
    out
}

/// "Is the reference better at the same compute?" in one sentence, with its interval, or why
/// it has no answer.
fn answer(a: &IsoflopAnalysis) -> String {
    let (r, q) = (
        &a.reference_arm,
        "**At the same compute, each arm at its best size?**",
    );
    let Some(base) = &a.baseline_arm else {
        return format!("{q} No baseline arm to compare {r} with.");
    };
    let read = a.multipliers.iter().rev().find(|m| m.multiplier.is_some());
    let Some(m) = read else {
        return format!("{q} Not answered: {}.", why_no_multiplier(a, base));
    };
    let x = m.multiplier.unwrap_or(f64::NAN);
    let word = match MultiplierVerdict::of(&m.ci) {
        MultiplierVerdict::ReferenceBetter => format!("**{r} is better**"),
        MultiplierVerdict::BaselineBetter => format!("**{base} is better**"),
        MultiplierVerdict::NotDistinguishable => "**Not distinguishable**".into(),
    };
    let optimum = a
        .profiles
        .iter()
        .find(|p| &p.arm == r && p.budget == m.budget);
    let at = optimum.and_then(|p| Some((p.optimum?, p)));
    let n_star = at.map_or(String::new(), |(o, p)| {
        format!(
            " at N* = {} active parameters {}",
            count(o.params),
            ci_count(&p.params_ci)
        )
    });
    format!(
        "{q} {word}: at C = {:.2e} FLOPs, {r}'s compute-optimal loss is L* = {:.4}{n_star}; {base} needs {x:.2}× {} that compute to reach it along its frontier (between its measured optima; {} seeds, {} draws of the seeds' spread{}).",
        m.budget,
        m.target_loss,
        ci_ratio(&m.ci),
        a.seeds,
        a.draws,
        censored(&m.ci, base)
    )
}

/// The share of draws whose target fell beyond the baseline's optima, when any did.
fn censored(ci: &Ci, base: &str) -> String {
    let share = ci.below_share + ci.above_share;
    if share == 0.0 {
        return String::new();
    }
    format!(
        "; in {:.0}% of the draws the target lay beyond {base}'s measured optima, where only a \
         bound is known{open}",
        100.0 * share,
        open = match (ci.open_low, ci.open_high) {
            (false, false) => "",
            _ => ", and the interval is open on that side",
        }
    )
}

/// Why there is no multiplier to read.
fn why_no_multiplier(a: &IsoflopAnalysis, base: &str) -> String {
    if a.multipliers.is_empty() {
        return format!(
            "{} has no optimum inside its sizes at any budget (see the caveats)",
            a.reference_arm
        );
    }
    let notes: Vec<String> = (a.frontiers.iter())
        .filter_map(|f| f.note.clone())
        .chain(a.multipliers.iter().filter_map(|m| m.note.clone()))
        .collect();
    match notes.is_empty() {
        true => format!(
            "{base}'s frontier cannot be read at {}'s optima",
            a.reference_arm
        ),
        false => notes.join("; "),
    }
}

fn setup(doc: &mut Doc, a: &IsoflopAnalysis) {
    doc.heading("Setup");
    let budgets: Vec<String> = a.budgets.iter().map(|b| format!("{b:.2e}")).collect();
    doc.para(&format!(
        "Budgets (training FLOPs per cell): {}. Arms: {}. Seeds: {} per cell, shared by the arms \
         (a seed fixes data order and the shared weights). The intervals are a parametric \
         bootstrap ({} draws): each draw moves every run's final loss by its arm's seed-to-seed \
         spread (σ pooled over the arm's cells: {}) and repeats the analysis; with a few seeds \
         a bootstrap over seeds has too few distinct draws to hold its error rate. At each budget an arm trains a window of sizes; each cell \
         spends the whole budget, so smaller models see more tokens. Per arm and budget, a \
         parabola of final loss in ln N (active parameters) through every seed's point gives \
         the optimum N*, its loss L* and tokens D* = C / (training FLOPs per token at N*) \
         (Hoffmann et al. 2022, approach 2). Runs: {} of {}.",
        budgets.join(", "),
        a.arms.join(", "),
        a.seeds,
        a.draws,
        sigmas(a),
        a.runs_found,
        a.runs_expected
    ));
}

fn sigmas(a: &IsoflopAnalysis) -> String {
    let each: Vec<String> = (a.seed_sigma.iter())
        .map(|(arm, s)| format!("{arm} {s:.4} nats"))
        .collect();
    match each.is_empty() {
        true => "not measured".into(),
        false => each.join(", "),
    }
}

fn optima(doc: &mut Doc, a: &IsoflopAnalysis) {
    doc.heading("Compute-optimal size per arm and budget");
    let mut t = Table::new(&[
        "arm",
        "budget C",
        "sizes (active params)",
        "N* [95% CI]",
        "D* (tokens) [95% CI]",
        "D*/N*",
        "L* [95% CI]",
    ]);
    for p in &a.profiles {
        t.row(&profile_row(p));
    }
    doc.table(t);
}

fn profile_row(p: &Profile) -> [String; 7] {
    let sizes = match (p.points.first(), p.points.last()) {
        (Some(lo), Some(hi)) => format!(
            "{} sizes, {}–{}",
            p.points.len(),
            count(lo.params as f64),
            count(hi.params as f64)
        ),
        _ => "none finished".into(),
    };
    let Some(o) = p.optimum else {
        return cells![
            p.arm,
            format!("{:.2e}", p.budget),
            sizes,
            "no minimum",
            "–",
            "–",
            "–"
        ];
    };
    let edge = if o.interior {
        ""
    } else {
        " (edge: extrapolated)"
    };
    cells![
        p.arm,
        format!("{:.2e}", p.budget),
        sizes,
        format!("{}{edge} {}", count(o.params), ci_count(&p.params_ci)),
        format!("{} {}", count(o.tokens), ci_count(&p.tokens_ci)),
        format!("{:.1}", o.tokens / o.params),
        format!("{:.4} {}", o.loss, ci_plain(&p.loss_ci))
    ]
}

fn frontiers(doc: &mut Doc, a: &IsoflopAnalysis) {
    doc.heading("Frontiers");
    doc.para(
        "Log-log lines through the budgets whose optimum lies inside their sizes: N* ∝ C^a and \
         L* ∝ C^(−β). With 2 budgets a line passes through both exactly; nothing is read \
         beyond the budgets fitted.",
    );
    let mut t = Table::new(&[
        "arm",
        "budgets fitted",
        "a (N* ∝ C^a) [95% CI]",
        "−β (L* ∝ C^−β) [95% CI]",
    ]);
    for f in &a.frontiers {
        match &f.frontier {
            Some(fr) => t.row(&cells![
                f.arm,
                fr.budgets.len(),
                format!("{:.3} {}", fr.params.slope, ci_plain(&f.params_exponent_ci)),
                format!("{:.4} {}", fr.loss.slope, ci_plain(&f.loss_slope_ci))
            ]),
            None => t.row(&cells![f.arm, "–", f.note.clone().unwrap_or_default(), "–"]),
        }
    }
    doc.table(t);
}

fn multipliers(doc: &mut Doc, a: &IsoflopAnalysis) {
    let Some(base) = &a.baseline_arm else { return };
    doc.heading("Compute multiplier along the frontiers");
    doc.para(&format!(
        "At each budget where {r}'s optimum is interior: the compute {base} needs to reach {r}'s \
         L* along {base}'s frontier, over the budget (> 1: {r} reaches that loss with less \
         compute): the budget at which {base}'s optima reach that loss, interpolated in log-log \
         between the two budgets whose L* bracket it; not read when none do. A draw whose \
         target lies beyond {base}'s optima gives only a bound (below the smallest budget's \
         ratio, or above the largest's): an interval end among such draws is open (\"< x\", \
         \"> x\"), and no winner is named across an open end.",
        r = a.reference_arm
    ));
    if a.multipliers.is_empty() {
        doc.para(&format!(
            "None: {} has no optimum inside its sizes at any budget.",
            a.reference_arm
        ));
        return;
    }
    let mut t = Table::new(&[
        "budget C",
        "target L*",
        "multiplier [95% CI]",
        "draws beyond the optima",
        "note",
    ]);
    for m in &a.multipliers {
        t.row(&multiplier_row(m));
    }
    doc.table(t);
}

fn multiplier_row(m: &FrontierMultiplier) -> [String; 5] {
    let value = m
        .multiplier
        .map_or("not read".into(), |x| format!("{x:.2}×"));
    cells![
        format!("{:.2e}", m.budget),
        format!("{:.4}", m.target_loss),
        format!("{value} {}", ci_ratio(&m.ci)),
        format!(
            "{:.0}% below, {:.0}% above",
            100.0 * m.ci.below_share,
            100.0 * m.ci.above_share
        ),
        m.note.clone().unwrap_or_default()
    ]
}

/// `12.3k`, `1.45M`.
fn count(x: f64) -> String {
    match x {
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

fn ends(ci: &Ci, f: impl Fn(f64) -> String) -> String {
    let end = |v: Option<f64>| v.map_or("?".into(), &f);
    let failed = if ci.failed_share >= 0.005 {
        format!(", {:.0}% of draws without one", 100.0 * ci.failed_share)
    } else {
        String::new()
    };
    format!("[{}, {}{failed}]", end(ci.low), end(ci.high))
}

fn ci_count(ci: &Ci) -> String {
    ends(ci, count)
}

fn ci_plain(ci: &Ci) -> String {
    ends(ci, |v| format!("{v:.4}"))
}

fn ci_ratio(ci: &Ci) -> String {
    let open = |v: f64, open: bool, sign: &str| match open {
        true => format!("{sign} {v:.2}×"),
        false => format!("{v:.2}×"),
    };
    let end = |v: Option<f64>, o: bool, sign: &str| v.map_or("?".into(), |v| open(v, o, sign));
    let failed = if ci.failed_share >= 0.005 {
        format!(", {:.0}% of draws without one", 100.0 * ci.failed_share)
    } else {
        String::new()
    };
    format!(
        "[{}, {}{failed}]",
        end(ci.low, ci.open_low, "<"),
        end(ci.high, ci.open_high, ">")
    )
}
