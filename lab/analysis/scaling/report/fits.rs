//! The scaling fits L(C) = E + A·C^(−α) per arm, and the compute multipliers between arms.

use super::verdicts::multiplier_text;
use crate::analysis::fit::{BOOTSTRAP_DRAWS, MIN_BUDGETS};
use crate::analysis::markdown::{Doc, Table, cells};
use crate::analysis::scaling::Analysis;
use crate::analysis::scaling::figures::SCALING;

pub fn section(doc: &mut Doc, a: &Analysis, plots_rel: &str) {
    doc.heading("Scaling fits: L(C) = E + A·C^(−α)");
    doc.para(&format!(
        "Fitted per arm to every complete run's (training FLOPs, final validation loss) by Levenberg–Marquardt least squares, bounded to 0 ≤ E < the smallest observed loss, A > 0, α > 0; a fit needs at least {MIN_BUDGETS} distinct budgets. ± is one standard error from the Gauss–Newton covariance. Curves are compared only inside the budgets that were run."
    ));
    let mut t = Table::new(&["arm", "points", "E", "A", "α", "RMSE", "budgets"]);
    let pm = |v: Option<f64>| v.map_or("–".into(), |x| format!("± {x:.3}"));
    for (arm, f) in &a.fits {
        match f {
            Some(f) => t.row(&cells![
                arm,
                f.n,
                format!("{:.3} {}", f.e, pm(f.se_e)),
                format!(
                    "{:.3e} {}",
                    f.a,
                    f.se_a.map_or("".into(), |x| format!("± {x:.2e}"))
                ),
                format!("{:.3} {}", f.alpha, pm(f.se_alpha)),
                format!("{:.4}", f.rmse),
                format!("{:.2e} – {:.2e}", f.c_min, f.c_max)
            ]),
            None => {
                let why = a.fit_notes.get(arm).map_or("no fit", String::as_str);
                t.row(&cells![
                    arm,
                    "–",
                    "–",
                    "–",
                    "–",
                    "–",
                    format!("no fit: {why}")
                ]);
            }
        }
    }
    doc.table(t);
    if !a.multipliers.is_empty() {
        let r = &a.reference_arm;
        doc.line("");
        doc.para(&format!(
            "Compute multiplier: how many times {r}'s budget each baseline needs to reach {r}'s fitted loss, at the largest of {r}'s budgets where the baseline's needed budget lies inside its own data (95% interval: {BOOTSTRAP_DRAWS} bootstrap draws resampling each size's seeds and refitting both arms; a draw that never reaches the loss counts as unbounded):"
        ));
        for (arm, m) in &a.multipliers {
            doc.item(&format!("{arm}: {}", multiplier_text(m)));
        }
    }
    doc.figure(plots_rel, "scaling", SCALING);
}
