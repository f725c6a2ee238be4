//! Training-recipe levers on an arm (LLaMA-3's small-model levers), and an experiment's
//! teacher.
//!
//! An arm's `recipe = { anneal = true, average_checkpoints = 4, distill = true }` changes how
//! that arm trains, not its model: annealing data (the up-sampled mix over the final decay),
//! checkpoint averaging over the decay, distillation from the experiment's `[teacher]`. The
//! teacher is one extra cell, `teacher-<size>`, trained first (a declared dependency of every
//! distilling cell) and reused by later sweeps once finished.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::ExperimentSpec;
use crate::error::FieldError;
use crate::run::LeverAim;
use crate::spec::{DistillSpec, RunSpec};

/// `recipe = { ... }` in an `[arms.<name>]` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArmRecipe {
    /// Switch to `[data] anneal_weights` for the final decay.
    #[serde(default)]
    pub anneal: bool,
    /// Average this many snapshots over the final decay (`train.average_checkpoints`).
    #[serde(default)]
    pub average_checkpoints: usize,
    /// Distil from the experiment's `[teacher]`.
    #[serde(default)]
    pub distill: bool,
    /// What the lever aims to improve; the report answers it there (default: the mixture's
    /// validation loss).
    #[serde(default)]
    pub aims_at: Option<LeverAim>,
}

/// The recipe of `arm` (default: none). Err names `arms.<arm>.recipe`.
pub fn arm_recipe(exp: &ExperimentSpec, arm: &str) -> Result<ArmRecipe, FieldError> {
    let Some(value) = exp.arms[arm].0.get("recipe") else {
        return Ok(ArmRecipe::default());
    };
    let in_arm = |m: String| FieldError::new("recipe", m).under(arm).under("arms");
    let recipe: ArmRecipe = value
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| in_arm(e.message().to_string()))?;
    if recipe.distill && exp.teacher.is_none() {
        return Err(in_arm("distill = true needs a [teacher] section".into()));
    }
    if let Some(aim) = &recipe.aims_at {
        let named = aim.streams.iter().chain(&aim.exact_match);
        if aim.streams.is_empty() || named.clone().any(|s| s.is_empty()) {
            let m = "aims_at.streams names the validation streams the lever aims to improve \
                     (e.g. [\"math\", \"code\"])";
            return Err(in_arm(m.into()));
        }
    }
    Ok(recipe)
}

/// Apply `arm`'s recipe to a cell's spec. A distilling cell's teacher is named by its cell
/// (a relative path): the sweep runner points it at the teacher's run directory under the
/// results root it writes to.
pub fn apply(spec: &mut RunSpec, exp: &ExperimentSpec, arm: &str) -> Result<(), FieldError> {
    let recipe = arm_recipe(exp, arm)?;
    if recipe.anneal {
        spec.data.anneal = true;
    }
    if recipe.average_checkpoints > 0 {
        spec.train.average_checkpoints = recipe.average_checkpoints;
    }
    if let (true, Some(t)) = (recipe.distill, &exp.teacher) {
        spec.distill = Some(DistillSpec {
            teacher: PathBuf::from(t.cell_name()),
            weight: t.weight,
            temperature: t.temperature,
            top_k: t.top_k,
            charge_teacher: false,
        });
    }
    Ok(())
}
