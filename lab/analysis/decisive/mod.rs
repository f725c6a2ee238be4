//! Seeds until the answer is decisive (`lab sweep --until-decisive`): what each look of a
//! group-sequential sweep says about its primary comparisons, and the record of the looks.
//!
//! A look reads each comparison by its **repeated confidence interval** (Jennison & Turnbull
//! 1989): `mean ± c_k · se`, with `c_k` the look's boundary of the group-sequential design
//! ([`sequential::Plan`], α spent over the looks) as a Student-t value at the comparison's
//! degrees of freedom. These intervals cover the true effect at every look at once with
//! probability ≥ 1 − α, so stopping at the first look where each interval excludes zero
//! ("lower"/"higher") or lies inside ±margin ("equivalent") keeps both false calls at ≤ α,
//! however many looks come before (checked by simulation in `tests/it/sequential.rs`).

pub mod report;

use std::path::Path;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::analysis::sequential::{Plan, Spending};
use crate::analysis::stats::Paired;
use crate::error::SpecError;

/// The record's file in a sweep's results directory.
pub const RECORD: &str = "sequential.json";

/// What one look says about one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The repeated interval lies below zero (and not inside ±margin).
    Lower,
    Higher,
    /// The repeated interval lies inside ±margin.
    Equivalent,
    /// Neither: more seeds, or inconclusive at the cap.
    Continue,
}

/// One comparison at one look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    /// E.g. `LR sensitivity moe − dense (nats)`.
    pub name: String,
    /// Seed pairs.
    pub n: usize,
    pub mean: f64,
    pub se: f64,
    pub df: f64,
    /// `c_k` at `df`: the repeated interval is `mean ± bound · se`.
    pub bound: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub margin: f64,
    /// The effect this look would detect with 80% power: `(bound + t₀.₈₀) · se`.
    pub min_detectable: f64,
    pub decision: Decision,
}

/// Comparison `p` at look `k` of `design`.
pub fn judge(design: &Plan, k: usize, name: &str, p: &Paired) -> Judged {
    let bound = design.t_bound_at(k, p.df);
    let (ci_low, ci_high) = (p.mean - bound * p.se, p.mean + bound * p.se);
    let decision = if -p.margin <= ci_low && ci_high <= p.margin {
        Decision::Equivalent
    } else if ci_high < 0.0 {
        Decision::Lower
    } else if ci_low > 0.0 {
        Decision::Higher
    } else {
        Decision::Continue
    };
    let t80 = StudentsT::new(0.0, 1.0, p.df).map_or(0.84, |t| t.inverse_cdf(0.80));
    Judged {
        name: name.into(),
        n: p.n,
        mean: p.mean,
        se: p.se,
        df: p.df,
        bound,
        ci_low,
        ci_high,
        margin: p.margin,
        min_detectable: (bound + t80) * p.se,
        decision,
    }
}

/// One look: the seeds it saw and its comparisons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Look {
    pub seeds: usize,
    pub comparisons: Vec<Judged>,
    /// Seconds since the first look's sweep began, when this look was taken.
    pub elapsed_s: f64,
}

impl Look {
    /// Every comparison decided (and there is at least one).
    pub fn decisive(&self) -> bool {
        !self.comparisons.is_empty()
            && (self.comparisons.iter()).all(|c| c.decision != Decision::Continue)
    }
}

/// The looks of one `--until-decisive` sweep, written after each look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub spending: Spending,
    /// Two-sided.
    pub alpha: f64,
    /// Seeds per cell at each planned look; the last is the cap.
    pub planned_seeds: Vec<usize>,
    pub looks: Vec<Look>,
}

impl Record {
    /// The procedure in words, for the report.
    pub fn procedure(&self) -> String {
        let spending = match self.spending {
            Spending::OBrienFleming => "an O'Brien–Fleming-type",
            Spending::Pocock => "a Pocock-type",
        };
        format!(
            "group-sequential paired comparison: seeds added in groups, looks at {} seeds, \
             two-sided α = {} spent over the looks by {spending} Lan–DeMets function; each \
             look reads the repeated {:.0}% confidence interval (mean ± the look's boundary × se), \
             and stops when every primary comparison's interval excludes 0 or lies inside its \
             equivalence margin",
            list(&self.planned_seeds),
            self.alpha,
            100.0 * (1.0 - self.alpha)
        )
    }

    pub fn last(&self) -> Option<&Look> {
        self.looks.last()
    }

    /// Stopped because every comparison was decided.
    pub fn decisive(&self) -> bool {
        self.last().is_some_and(Look::decisive)
    }

    /// Ended at the cap without a decision on every comparison.
    pub fn at_cap(&self) -> bool {
        !self.decisive() && self.last().map(|l| l.seeds) == self.planned_seeds.last().copied()
    }

    /// The record in `dir`: `None` where there is none; Err naming the file where it does
    /// not read (a report must not drop its section silently).
    pub fn read(dir: &Path) -> Result<Option<Record>, SpecError> {
        let path = dir.join(RECORD);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SpecError::Io {
                    file: path,
                    message: e.to_string(),
                });
            }
        };
        let record = serde_json::from_str(&text).map_err(|e| SpecError::Parse {
            file: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Some(record))
    }

    /// The record as JSON; Err naming the comparison where a number is not finite (JSON has
    /// no such number: it would be written as `null` and the record would not read back).
    pub fn to_json(&self) -> anyhow::Result<String> {
        for (k, look) in self.looks.iter().enumerate() {
            for c in &look.comparisons {
                let fields = [
                    ("mean", c.mean),
                    ("se", c.se),
                    ("df", c.df),
                    ("bound", c.bound),
                    ("ci_low", c.ci_low),
                    ("ci_high", c.ci_high),
                    ("margin", c.margin),
                    ("min_detectable", c.min_detectable),
                ];
                if let Some((field, v)) = fields.iter().find(|f| !f.1.is_finite()) {
                    anyhow::bail!(
                        "look {} of the sequential record, {}: {field} = {v} is not finite",
                        k + 1,
                        c.name
                    );
                }
            }
        }
        Ok(serde_json::to_string_pretty(self)?)
    }
}

fn list(xs: &[usize]) -> String {
    let s: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
    s.join(", ")
}
