//! A `--until-decisive` sweep's looks in words: the report's section (procedure, one row per
//! look and comparison, seeds and time spent, the final repeated interval) and the one-line
//! outcome `lab sweep` prints and claim (b) cites.

use crate::analysis::decisive::{Decision, Judged, Record};
use crate::analysis::markdown::{Doc, Table, cells};

/// `## Seeds until decisive`, appended to a sweep's report when its results hold a record
/// whose last look matches the analysed seeds.
pub fn section(r: &Record) -> String {
    let mut doc = Doc::default();
    doc.heading("Seeds until decisive");
    doc.item(&verdict(r));
    doc.line("");
    doc.para(&format!(
        "{}. Outcome: {}. The fixed-sample intervals elsewhere in this report ignore the looks; \
         the repeated intervals here are the ones that hold after looking.",
        capitalised(&r.procedure()),
        outcome(r)
    ));
    let mut t = Table::new(&[
        "look",
        "seeds",
        "comparison",
        "mean",
        "repeated 95% CI",
        "boundary (t)",
        "decision",
        "elapsed",
    ]);
    for (k, look) in r.looks.iter().enumerate() {
        for c in &look.comparisons {
            t.row(&cells![
                format!("{} of {}", k + 1, r.planned_seeds.len()),
                look.seeds,
                c.name,
                format!("{:+.4}", c.mean),
                format!("[{:+.4}, {:+.4}]", c.ci_low, c.ci_high),
                format!("{:.3} (df {:.1})", c.bound, c.df),
                decision_words(c),
                format!("{:.0} s", look.elapsed_s)
            ]);
        }
    }
    doc.table(t);
    doc.finish()
}

/// The verdict line (as `lab sweep` prints it, and as the reports state it).
pub fn verdict(r: &Record) -> String {
    format!("**Seeds until decisive**: {}.", outcome(r))
}

/// The outcome in one clause, with each comparison's last interval.
pub fn outcome(r: &Record) -> String {
    let Some(last) = r.last() else {
        return "no look taken".into();
    };
    let finals: Vec<String> = last.comparisons.iter().map(final_words).collect();
    format!("{}: {}", when(r), finals.join("; "))
}

/// Where the looks ended: decisive at which look, inconclusive at the cap, or stopped early;
/// with the seeds and time spent.
pub fn when(r: &Record) -> String {
    let Some(last) = r.last() else {
        return "no look taken".into();
    };
    let looks = format!("look {} of {}", r.looks.len(), r.planned_seeds.len());
    let spent = format!("{} seeds, {:.0} s", last.seeds, last.elapsed_s);
    if r.decisive() {
        format!("decisive at {looks} ({spent})")
    } else if r.at_cap() {
        format!("inconclusive after {} seeds (cap; {spent})", last.seeds)
    } else {
        format!("stopped at {looks} before a decision ({spent})")
    }
}

fn final_words(c: &Judged) -> String {
    format!(
        "{} {:+.4} [{:+.4}, {:+.4}] {}",
        c.name,
        c.mean,
        c.ci_low,
        c.ci_high,
        decision_words(c)
    )
}

/// A comparison's decision; an undecided one with the effect this look would detect.
pub fn decision_words(c: &Judged) -> String {
    match c.decision {
        Decision::Lower => "lower".into(),
        Decision::Higher => "higher".into(),
        Decision::Equivalent => format!("equivalent within ±{}", c.margin),
        Decision::Continue => format!("undecided (smallest detectable {:.4})", c.min_detectable),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
