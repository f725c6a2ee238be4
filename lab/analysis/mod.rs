//! What a sweep's files say, one folder per study: each study has its analysis (written to
//! `analysis.json`), its report (`report.md`) and its figures. Beside them, what the studies
//! share: loading the run files, statistics, fits, sequential tests and Markdown.
//!
//! - [`scaling`]: arms compared at matched compute across sizes, paired by seed;
//! - [`lr`]: loss and stability against the learning rate;
//! - [`recipe`]: recipe levers (distillation, averaging) against a baseline;
//! - [`isoflop`]: compute-optimal frontiers from IsoFLOP profiles;
//! - [`mix`]: the loss against the training mixture, and the mixture that minimises it;
//! - [`decisive`]: the `--until-decisive` record of sequential looks.
//!
//! A new study is one folder and one line in [`STUDIES`].

pub mod decisive;
pub mod figure;
pub mod fit;
pub mod forecast;
pub mod isoflop;
pub mod load;
pub mod lr;
pub mod markdown;
pub mod mix;
pub mod recipe;
pub mod scaling;
pub mod sequential;
pub mod stats;
pub mod study;

use crate::error::SpecError;
use study::{Opener, Study, Sweep};

/// The studies, the first that claims a manifest wins: a learning-rate axis, budgets on the
/// cells, a `[teacher]`, a mixture axis, and else the scaling comparison.
pub const STUDIES: [Opener; 5] = [
    lr::study::open,
    isoflop::study::open,
    recipe::study::open,
    mix::study::open,
    scaling::study::open,
];

/// The study a sweep's manifest asks for.
pub fn for_manifest<'a>(sweep: &Sweep<'a>) -> Result<Box<dyn Study + 'a>, SpecError> {
    for open in STUDIES {
        if let Some(study) = open(sweep)? {
            return Ok(study);
        }
    }
    unreachable!("the scaling study opens on any manifest")
}
