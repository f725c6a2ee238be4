//! IsoFLOP experiments (`[isoflop]`): one profile per compute budget, as in Chinchilla's
//! approach 2 (Hoffmann et al. 2022). At each budget every arm trains a window of consecutive
//! sizes from the experiment's ladder, each cell for exactly that budget, so a smaller model
//! sees more tokens. The window is centred on the arm's predicted optimum: the size whose
//! tokens per active parameter at that budget is nearest `tokens_per_param`, counted with the
//! arm's own exact training FLOPs per token.

use std::path::Path;

use super::cells::{CellAt, PlannedCell, UnderPreset, cell_count, resolve_cell};
use super::spec::{ExperimentSpec, IsoflopSpec, PresetSpec, SizeSpec};
use crate::error::{FieldError, SpecError, at_most, check};
use crate::limits;

/// A parabola needs 3 sizes; a profile with fewer has no optimum to find.
pub const MIN_SIZES: usize = 3;

/// The ladder sizes `arm` trains at `budget`: `count` consecutive ones around its predicted
/// optimum, clamped to the ladder's ends. `counts` is each size's (active parameters, training
/// FLOPs per token) for the arm.
pub fn window(counts: &[(u64, f64)], budget: f64, count: usize, tokens_per_param: f64) -> usize {
    let miss = |&(active, per_token): &(u64, f64)| {
        let ratio = budget / per_token / active as f64;
        (ratio / tokens_per_param).ln().abs()
    };
    let best = (0..counts.len())
        .min_by(|&a, &b| miss(&counts[a]).total_cmp(&miss(&counts[b])))
        .unwrap_or(0);
    best.saturating_sub(count / 2).min(counts.len() - count)
}

/// Every (budget, arm, size, seed) cell of an IsoFLOP experiment.
pub(super) struct Profiles<'a> {
    spec: &'a IsoflopSpec,
    budgets: Vec<f64>,
    sizes_per_budget: usize,
    sizes: Vec<&'a SizeSpec>,
    arms: &'a [String],
    seeds: usize,
}

impl<'a> Profiles<'a> {
    /// The profiles of `preset` (its budgets and window size where it sets them).
    pub fn new(
        spec: &'a IsoflopSpec,
        preset: &PresetSpec,
        sizes: Vec<&'a SizeSpec>,
        arms: &'a [String],
        seeds: usize,
    ) -> Self {
        Profiles {
            spec,
            budgets: preset.budgets.clone().unwrap_or(spec.budgets.clone()),
            sizes_per_budget: preset.sizes_per_budget.unwrap_or(spec.sizes_per_budget),
            sizes,
            arms,
            seeds,
        }
    }

    /// Checked, counted against the cell limit, then every cell resolved.
    pub fn expand(
        &self,
        exp: &ExperimentSpec,
        preset: &PresetSpec,
        preset_name: &str,
        file: &Path,
    ) -> Result<Vec<PlannedCell>, SpecError> {
        self.check().map_err(|e| e.in_file(file))?;
        at_most("seeds", self.count(), limits::CELLS)
            .map_err(|e| {
                FieldError::new("seeds", format!("the profiles' cell count {}", e.message))
            })
            .map_err(|e| e.under_preset(preset_name, file))?;
        self.cells(exp, preset, file)
    }

    /// The budgets and window size in force, checked.
    fn check(&self) -> Result<(), FieldError> {
        check(!self.budgets.is_empty(), "isoflop.budgets", || {
            "needs at least one budget".into()
        })?;
        if let Some(b) = self.budgets.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(FieldError::new(
                "isoflop.budgets",
                format!("budgets must be positive FLOPs, got {b}"),
            ));
        }
        let n = self.sizes_per_budget;
        check(n >= MIN_SIZES, "isoflop.sizes_per_budget", || {
            format!("must be at least {MIN_SIZES} (a parabola's three points), got {n}")
        })?;
        check(n <= self.sizes.len(), "isoflop.sizes_per_budget", || {
            format!(
                "{n} is more than the {} sizes of the ladder",
                self.sizes.len()
            )
        })?;
        let t = self.spec.tokens_per_param;
        check(t > 0.0 && t.is_finite(), "isoflop.tokens_per_param", || {
            format!("must be positive, got {t}")
        })
    }

    fn count(&self) -> usize {
        let axes = [self.budgets.len(), self.arms.len(), self.sizes_per_budget];
        cell_count(&axes, self.seeds)
    }

    fn cells(
        &self,
        exp: &ExperimentSpec,
        preset: &PresetSpec,
        file: &Path,
    ) -> Result<Vec<PlannedCell>, SpecError> {
        let mut cells = Vec::new();
        for arm in self.arms {
            let counts = self.counts(exp, preset, arm, file)?;
            ascending(&counts, &self.sizes, arm).map_err(|e| e.in_file(file))?;
            for &budget in &self.budgets {
                let n = self.sizes_per_budget;
                let start = window(&counts, budget, n, self.spec.tokens_per_param);
                for &size in &self.sizes[start..start + n] {
                    for seed in 0..self.seeds as u64 {
                        cells.push(cell(exp, preset, size, arm, seed, budget, file)?);
                    }
                }
            }
        }
        Ok(cells)
    }

    /// Each ladder size's (active parameters, training FLOPs per token) for `arm`.
    fn counts(
        &self,
        exp: &ExperimentSpec,
        preset: &PresetSpec,
        arm: &str,
        file: &Path,
    ) -> Result<Vec<(u64, f64)>, SpecError> {
        (self.sizes.iter())
            .map(|&size| {
                let probe = CellAt::new(size, arm, 0);
                let c = resolve_cell(exp, preset, &probe, None, file)?;
                Ok((c.params.active, c.flops.train_per_token))
            })
            .collect()
    }
}

/// The ladder must grow: a window of consecutive sizes is then a range of model sizes.
fn ascending(counts: &[(u64, f64)], sizes: &[&SizeSpec], arm: &str) -> Result<(), FieldError> {
    match counts.windows(2).position(|w| w[1].0 <= w[0].0) {
        Some(i) => Err(FieldError::new(
            "sizes",
            format!(
                "an IsoFLOP ladder must grow: for arm {arm}, size {} has {} active parameters, \
                 not more than {}'s {}",
                sizes[i + 1].name,
                counts[i + 1].0,
                sizes[i].name,
                counts[i].0
            ),
        )),
        None => Ok(()),
    }
}

fn cell(
    exp: &ExperimentSpec,
    preset: &PresetSpec,
    size: &SizeSpec,
    arm: &str,
    seed: u64,
    budget: f64,
    file: &Path,
) -> Result<PlannedCell, SpecError> {
    let at = CellAt {
        budget: Some(budget),
        ..CellAt::new(size, arm, seed)
    };
    at.plan(exp, preset, budget, file)
}
