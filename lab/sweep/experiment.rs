//! An experiment expanded into cells: the preset chosen, the grid checked, one planned cell per
//! (size, arm, seed), on a learning-rate axis or IsoFLOP profiles where the experiment has
//! them, and the teacher first where it has one.

use std::path::{Path, PathBuf};

pub use super::cells::PlannedCell;
use super::cells::{CellAt, UnderPreset, cell_count, resolve_cell};
use super::isoflop::Profiles;
pub use super::spec::{
    AnalysisSpec, ArmSpec, BaseSpec, BudgetRule, ExperimentSpec, IsoflopSpec, PresetSpec, SizeSpec,
    TeacherSpec,
};
use crate::error::{FieldError, SpecError, at_most, check};
use crate::limits;
use crate::run::{Cell, Mixture};

/// An experiment after choosing a preset: where it writes and what it runs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub experiment: ExperimentSpec,
    pub preset: String,
    /// `results/<name>` for the default preset, `results/<name>-<preset>` otherwise.
    pub results_name: String,
    pub cells: Vec<PlannedCell>,
    pub source: PathBuf,
    /// The arms the preset runs, in the experiment's order.
    pub arms: Vec<String>,
    /// Fields of the experiment that have no effect (printed by `lab sweep`).
    pub warnings: Vec<String>,
    /// The teacher's cell (first in `cells`), which the distilling cells depend on.
    pub teacher: Option<String>,
    /// A mixture axis' check size, where each arm's predicted optimum trains after the small
    /// runs ([`super::mix_check`]).
    pub mix_check: Option<MixCheck>,
    /// Sizes trained only after the forecast for them is frozen ([`super::forecast`]).
    pub held_out: Vec<String>,
    /// IsoFLOP budgets whose profiles train only after the forecast for them is frozen.
    pub held_out_budgets: Vec<f64>,
}

/// Where and on how many seeds a mixture axis checks each arm's predicted optimum.
#[derive(Debug, Clone, PartialEq)]
pub struct MixCheck {
    pub size: String,
    pub seeds: usize,
    /// Training FLOPs of every cell at the check size (set by the reference arm).
    pub budget: f64,
}

impl Plan {
    /// The plan without the held-out sizes' cells: what trains before their forecast.
    pub fn first_phase(&self) -> Plan {
        let mut first = self.clone();
        first.cells.retain(|c| !self.is_held_out(c));
        first
    }

    /// Whether a cell waits for the forecast: a held-out size, or a held-out budget's profile.
    pub fn is_held_out(&self, c: &PlannedCell) -> bool {
        let budget = |b: f64| (self.held_out_budgets.iter()).any(|h| (h / b - 1.0).abs() < 1e-9);
        self.held_out.contains(&c.cell.size) || c.cell.budget.is_some_and(budget)
    }

    /// Whether anything waits for a forecast.
    pub fn holds_out(&self) -> bool {
        !(self.held_out.is_empty() && self.held_out_budgets.is_empty())
    }

    /// The learning-rate axis of the cells, ascending (empty without one).
    pub fn learning_rates(&self) -> Vec<f64> {
        let mut lrs: Vec<f64> = self.cells.iter().filter_map(|c| c.cell.lr).collect();
        lrs.sort_by(f64::total_cmp);
        lrs.dedup();
        lrs
    }

    /// The dense arm matched on active FLOPs to the reference arm, else the first other arm.
    pub fn baseline_arm(&self) -> Option<String> {
        let reference = &self.experiment.budget.reference_arm;
        let arms = self
            .experiment
            .arms
            .iter()
            .filter(|(name, _)| self.arms.contains(name));
        arms.clone()
            .find(|(_, a)| {
                a.d_ff_rule() == Some("match-active") && a.match_arm() == Some(reference.as_str())
            })
            .or_else(|| arms.clone().find(|(name, _)| *name != reference))
            .map(|(name, _)| name.clone())
    }
}

/// Find `experiments/<name>.toml` (or take a path), parse it and expand it with `preset`.
pub fn plan(name_or_path: &str, preset: Option<&str>) -> Result<Plan, SpecError> {
    plan_with_seeds(name_or_path, preset, None)
}

/// [`plan`] with `seeds` seeds per cell in place of the preset's (`lab sweep --until-decisive`
/// adds seeds in groups; the results directory stays the preset's).
pub fn plan_with_seeds(
    name_or_path: &str,
    preset: Option<&str>,
    seeds: Option<usize>,
) -> Result<Plan, SpecError> {
    let path = locate(name_or_path);
    let text = std::fs::read_to_string(&path).map_err(|e| SpecError::Io {
        file: path.clone(),
        message: format!("{e} (experiments are looked up as experiments/<name>.toml)"),
    })?;
    let mut exp: ExperimentSpec = toml::from_str(&text).map_err(|e| SpecError::Parse {
        file: path.clone(),
        message: e.to_string(),
    })?;
    if let Some(n) = seeds {
        exp.seeds = n;
        exp.presets.values_mut().for_each(|p| p.seeds = Some(n));
    }
    expand(exp, &path, preset)
}

pub fn locate(name_or_path: &str) -> PathBuf {
    let p = Path::new(name_or_path);
    if p.extension().is_some() || p.components().count() > 1 {
        p.to_path_buf()
    } else {
        Path::new("experiments").join(format!("{name_or_path}.toml"))
    }
}

/// Check the experiment, choose `preset` (or the default), and resolve every cell.
pub fn expand(exp: ExperimentSpec, file: &Path, preset: Option<&str>) -> Result<Plan, SpecError> {
    check_grid(&exp).map_err(|e| e.in_file(file))?;
    let (preset_name, chosen) = choose_preset(&exp, preset).map_err(|e| e.in_file(file))?;
    let seeds = chosen.seeds.unwrap_or(exp.seeds);
    let sizes = chosen_sizes(&exp, &chosen).map_err(|e| e.under_preset(&preset_name, file))?;
    let arms = chosen_arms(&exp, &chosen).map_err(|e| e.under_preset(&preset_name, file))?;
    check(seeds > 0, "seeds", || "must be at least 1".into())
        .and_then(|()| at_most("seeds", seeds, limits::SEEDS))
        .map_err(|e| e.under_preset(&preset_name, file))?;
    let lrs = chosen_lrs(&exp, &chosen).map_err(|(e, in_preset)| match in_preset {
        true => e.under_preset(&preset_name, file),
        false => e.in_file(file),
    })?;
    let mix_check = plan_mix_check(&exp, (&preset_name, &chosen), &sizes, seeds)
        .map_err(|e| e.in_file(file))?
        .map(|(size, seeds)| {
            let budget = size_budget(&exp, &chosen, size, tokens_per_param(&exp, &chosen), file)?;
            let size = size.name.clone();
            Ok::<_, SpecError>(MixCheck {
                size,
                seeds,
                budget,
            })
        })
        .transpose()?;
    let held_out = super::forecast::held_out(&exp, (&preset_name, &chosen), &sizes, file)?;
    let held_out_budgets = super::forecast::held_out_budgets(&exp, (&preset_name, &chosen), file)?;
    let mut cells = match &exp.isoflop {
        Some(iso) => Profiles::new(iso, &chosen, sizes.clone(), &arms, seeds).expand(
            &exp,
            &chosen,
            &preset_name,
            file,
        )?,
        None => grid_cells(
            &exp,
            &chosen,
            &preset_name,
            (sizes, &arms, lrs, seeds),
            file,
        )?,
    };
    let teacher = match &exp.teacher {
        Some(t) => {
            t.validate(&exp).map_err(|e| e.in_file(file))?;
            cells.insert(0, teacher_cell(&exp, t, &chosen, file)?);
            Some(t.cell_name())
        }
        None => None,
    };
    let is_default =
        exp.default_preset.as_deref() == Some(preset_name.as_str()) || preset_name == "default";
    let results_name = if is_default {
        exp.name.clone()
    } else {
        format!("{}-{preset_name}", exp.name)
    };
    let mut warnings = Vec::new();
    if exp.base.train.steps.is_some() || exp.base.train.flop_budget.is_some() {
        warnings.push(format!(
            "{}: base.train.steps / flop_budget have no effect: each cell's length comes from \
             [budget]",
            file.display()
        ));
    }
    Ok(Plan {
        experiment: exp,
        preset: preset_name,
        results_name,
        cells,
        source: file.to_path_buf(),
        arms,
        warnings,
        teacher,
        mix_check,
        held_out,
        held_out_budgets,
    })
}

/// The cells of an experiment without IsoFLOP profiles: sizes × arms × rates × mixtures × seeds,
/// each size's budget set by the reference arm.
fn grid_cells(
    exp: &ExperimentSpec,
    chosen: &PresetSpec,
    preset_name: &str,
    (sizes, arms, lrs, seeds): (Vec<&SizeSpec>, &[String], Vec<Option<f64>>, usize),
    file: &Path,
) -> Result<Vec<PlannedCell>, SpecError> {
    let tokens_per_param = tokens_per_param(exp, chosen);
    check(
        tokens_per_param > 0.0,
        "budget.tokens_per_active_param",
        || "must be positive (it is required without [isoflop])".into(),
    )
    .map_err(|e| e.in_file(file))?;
    let mixtures = chosen_mixtures(exp).map_err(|e| e.in_file(file))?;
    let check = check_size(exp, chosen, &sizes, mixtures.len()).map_err(|e| e.in_file(file))?;
    let grid = Grid {
        sizes,
        arms,
        lrs,
        mixtures: match mixtures.is_empty() {
            true => vec![None],
            false => mixtures.iter().map(Some).collect(),
        },
        seeds,
        tokens_per_param,
        check,
    };
    // Counted before any cell is built: each resolves a model shape.
    at_most("seeds", grid.count(), limits::CELLS)
        .map_err(|e| FieldError::new("seeds", format!("the grid's cell count {}", e.message)))
        .map_err(|e| e.under_preset(preset_name, file))?;
    grid.cells(exp, chosen, file)
}

/// The grid's tokens per active parameter: the preset's, else `[budget]`'s.
fn tokens_per_param(exp: &ExperimentSpec, chosen: &PresetSpec) -> f64 {
    chosen
        .tokens_per_active_param
        .unwrap_or(exp.budget.tokens_per_active_param)
}

/// Training FLOPs of every cell at `size`: `tokens_per_param` tokens per active parameter of
/// the reference arm, at its FLOPs per token.
pub(super) fn size_budget(
    exp: &ExperimentSpec,
    preset: &PresetSpec,
    size: &SizeSpec,
    tokens_per_param: f64,
    file: &Path,
) -> Result<f64, SpecError> {
    let probe = CellAt::new(size, &exp.budget.reference_arm, 0);
    let reference = resolve_cell(exp, preset, &probe, None, file)?;
    Ok(tokens_per_param * reference.params.active as f64 * reference.flops.train_per_token)
}

/// The teacher's cell: its size and arm's feed-forward, seed 0, its own budget rule, no recipe.
fn teacher_cell(
    exp: &ExperimentSpec,
    t: &TeacherSpec,
    preset: &PresetSpec,
    file: &Path,
) -> Result<PlannedCell, SpecError> {
    let size = exp
        .sizes
        .iter()
        .find(|s| s.name == t.size)
        .expect("validated: the teacher's size exists");
    let at = CellAt {
        teacher: true,
        ..CellAt::new(size, &t.arm, 0)
    };
    let probe = resolve_cell(exp, preset, &at, None, file)?;
    let budget =
        t.tokens_per_active_param * probe.params.active as f64 * probe.flops.train_per_token;
    let config = resolve_cell(exp, preset, &at, Some(budget), file)?;
    let cell = Cell {
        name: t.cell_name(),
        size: size.name.clone(),
        arm: "teacher".into(),
        seed: 0,
        d_model: size.d_model,
        n_layers: size.n_layers,
        lr: None,
        budget: None,
        mixture: None,
    };
    Ok(PlannedCell { cell, config })
}

/// The axes of an expanded experiment.
struct Grid<'a> {
    sizes: Vec<&'a SizeSpec>,
    arms: &'a [String],
    lrs: Vec<Option<f64>>,
    /// `[None]` without a mixture axis.
    mixtures: Vec<Option<&'a Mixture>>,
    /// A larger size that trains only the first n mixtures (`[mixtures] check_size`).
    check: Option<(&'a SizeSpec, usize)>,
    seeds: usize,
    tokens_per_param: f64,
}

impl<'a> Grid<'a> {
    /// The check size's cells: every arm and seed on the first `n` mixtures.
    fn check_cells(
        &self,
        exp: &ExperimentSpec,
        preset: &PresetSpec,
        size: &SizeSpec,
        n: usize,
        file: &Path,
    ) -> Result<Vec<PlannedCell>, SpecError> {
        let budget = size_budget(exp, preset, size, self.tokens_per_param, file)?;
        let mut cells = Vec::new();
        for arm in self.arms {
            for &mixture in self.mixtures.iter().take(n) {
                for seed in 0..self.seeds as u64 {
                    let at = CellAt {
                        mixture,
                        ..CellAt::new(size, arm, seed)
                    };
                    cells.push(at.plan(exp, preset, budget, file)?);
                }
            }
        }
        Ok(cells)
    }

    /// Every (rate, mixture) pair of the axes.
    fn axis(&self) -> Vec<(&Option<f64>, &Option<&'a Mixture>)> {
        let pairs = self
            .lrs
            .iter()
            .map(|lr| self.mixtures.iter().map(move |m| (lr, m)));
        pairs.flatten().collect()
    }

    /// Cells in the grid.
    fn count(&self) -> usize {
        let check = self
            .check
            .map_or(0, |(_, n)| cell_count(&[self.arms.len(), n], self.seeds));
        cell_count(
            &[
                self.sizes.len(),
                self.arms.len(),
                self.lrs.len(),
                self.mixtures.len(),
            ],
            self.seeds,
        )
        .saturating_add(check)
    }

    /// Every (size, arm, rate, seed) cell, resolved; each size's budget is set by the
    /// reference arm.
    fn cells(
        &self,
        exp: &ExperimentSpec,
        preset: &PresetSpec,
        file: &Path,
    ) -> Result<Vec<PlannedCell>, SpecError> {
        let mut cells = Vec::new();
        for &size in &self.sizes {
            let budget = size_budget(exp, preset, size, self.tokens_per_param, file)?;
            for arm in self.arms {
                for (&lr, &mixture) in self.axis() {
                    for seed in 0..self.seeds as u64 {
                        let at = CellAt {
                            lr,
                            mixture,
                            ..CellAt::new(size, arm, seed)
                        };
                        cells.push(at.plan(exp, preset, budget, file)?);
                    }
                }
            }
        }
        if let Some((size, n)) = self.check {
            cells.extend(self.check_cells(exp, preset, size, n, file)?);
        }
        Ok(cells)
    }
}

/// The grid needs sizes, arms and seeds, and its budget a reference arm among the arms.
fn check_grid(exp: &ExperimentSpec) -> Result<(), FieldError> {
    check(!exp.sizes.is_empty(), "sizes", || {
        "needs at least one size".into()
    })?;
    check(!exp.arms.is_empty(), "arms", || {
        "needs at least one arm".into()
    })?;
    check(exp.seeds > 0, "seeds", || "must be at least 1".into())?;
    at_most("seeds", exp.seeds, limits::SEEDS)?;
    let reference = &exp.budget.reference_arm;
    check(
        exp.arms.contains_key(reference),
        "budget.reference_arm",
        || format!("no arm named {reference:?}"),
    )?;
    let margin = exp.analysis.equivalence_margin;
    check(
        margin > 0.0 && margin.is_finite(),
        "analysis.equivalence_margin",
        || format!("must be a positive number of nats, got {margin}"),
    )
}

/// The preset asked for, else the experiment's default one, else the built-in defaults.
fn choose_preset(
    exp: &ExperimentSpec,
    asked: Option<&str>,
) -> Result<(String, PresetSpec), FieldError> {
    let name = asked
        .map(str::to_string)
        .or(exp.default_preset.clone())
        .unwrap_or_else(|| "default".into());
    match exp.presets.get(&name) {
        Some(p) => Ok((name, p.clone())),
        None if asked.is_none() && exp.default_preset.is_none() => {
            Ok((name, PresetSpec::default()))
        }
        None => {
            let known: Vec<&String> = exp.presets.keys().collect();
            Err(FieldError::new(
                "presets",
                format!("unknown preset {name:?}; this experiment has {known:?}"),
            ))
        }
    }
}

/// The sizes a preset runs (all when it names none); errors relative to the preset's table.
fn chosen_sizes<'a>(
    exp: &'a ExperimentSpec,
    preset: &PresetSpec,
) -> Result<Vec<&'a SizeSpec>, FieldError> {
    let Some(names) = &preset.sizes else {
        return Ok(exp.sizes.iter().collect());
    };
    names
        .iter()
        .map(|n| {
            exp.sizes
                .iter()
                .find(|s| &s.name == n)
                .ok_or_else(|| FieldError::new("sizes", format!("no size named {n:?}")))
        })
        .collect()
}

/// The arms a preset runs (all when it names none), in the experiment's order; errors
/// relative to the preset's table.
fn chosen_arms(exp: &ExperimentSpec, preset: &PresetSpec) -> Result<Vec<String>, FieldError> {
    let Some(names) = &preset.arms else {
        return Ok(exp.arms.keys().cloned().collect());
    };
    if let Some(n) = names.iter().find(|n| !exp.arms.contains_key(*n)) {
        return Err(FieldError::new("arms", format!("no arm named {n:?}")));
    }
    let reference = &exp.budget.reference_arm;
    check(names.contains(reference), "arms", || {
        format!("must include the budget's reference arm {reference:?}")
    })?;
    Ok(exp
        .arms
        .keys()
        .filter(|a| names.contains(a))
        .cloned()
        .collect())
}

/// The mixtures of the axis (`[]`: none). Err names the field; a mixture axis beside a
/// learning-rate axis, IsoFLOP profiles or a teacher is refused (one question per sweep).
fn chosen_mixtures(exp: &ExperimentSpec) -> Result<Vec<Mixture>, FieldError> {
    let Some(spec) = &exp.mixtures else {
        return Ok(Vec::new());
    };
    let other = [
        (exp.learning_rates.is_some(), "learning_rates"),
        (exp.isoflop.is_some(), "[isoflop]"),
        (exp.teacher.is_some(), "[teacher]"),
    ];
    if let Some((_, name)) = other.iter().find(|o| o.0) {
        let m = format!("a mixture axis cannot be combined with {name} in one sweep");
        return Err(FieldError::new("mixtures", m));
    }
    super::mixtures::target(spec, &exp.base.data)?;
    super::mixtures::axis(spec, &exp.base.data)
}

/// The mixture axis' check size (the preset's, else `[mixtures]`'s) and how many mixtures it
/// trains (`None`: no check, or the preset trains that size on every mixture already).
fn check_size<'a>(
    exp: &'a ExperimentSpec,
    preset: &PresetSpec,
    sizes: &[&SizeSpec],
    mixtures: usize,
) -> Result<Option<(&'a SizeSpec, usize)>, FieldError> {
    let Some(spec) = &exp.mixtures else {
        return Ok(None);
    };
    let Some(name) = preset.check_size.as_ref().or(spec.check_size.as_ref()) else {
        return Ok(None);
    };
    let field = |f: &str, m: String| FieldError::new(f, m).under("mixtures");
    let Some(size) = exp.sizes.iter().find(|s| &s.name == name) else {
        return Err(field(
            "check_size",
            format!("{name:?} is not one of [[sizes]]"),
        ));
    };
    let n = spec.check_mixtures;
    if n < 4 || n > mixtures {
        let m = format!(
            "must be from 4 (a rank correlation's interval needs n − 3 ≥ 1) to the {mixtures} mixtures, got {n}"
        );
        return Err(field("check_mixtures", m));
    }
    Ok((!sizes.iter().any(|s| s.name == size.name)).then_some((size, n)))
}

/// The check size and the seeds of each arm's optimum check (the preset's `check_seeds`, else
/// `[mixtures]`'s, else the preset's seeds: at least 2, since the verdict pairs them).
fn plan_mix_check<'a>(
    exp: &'a ExperimentSpec,
    (preset_name, preset): (&str, &PresetSpec),
    sizes: &[&SizeSpec],
    seeds: usize,
) -> Result<Option<(&'a SizeSpec, usize)>, FieldError> {
    let Some(spec) = &exp.mixtures else {
        return Ok(None);
    };
    let mixtures = spec.draws + spec.fixed.len();
    let Some((size, _)) = check_size(exp, preset, sizes, mixtures)? else {
        return Ok(None);
    };
    let n = (preset.check_seeds.or(spec.check_seeds)).unwrap_or(seeds);
    check(n >= 2, "check_seeds", || {
        format!("must be at least 2 (the check pairs seeds), got {n}")
    })
    .and_then(|()| at_most("check_seeds", n, limits::SEEDS))
    .map_err(|e| match preset.check_seeds {
        // Named where it was set.
        Some(_) => e.under(preset_name).under("presets"),
        None => e.under("mixtures"),
    })?;
    Ok(Some((size, n)))
}

/// The learning rates of the axis, ascending (`[None]`: no axis, each cell keeps
/// `base.train.lr`). Err: the error and whether it is the preset's field.
fn chosen_lrs(
    exp: &ExperimentSpec,
    preset: &PresetSpec,
) -> Result<Vec<Option<f64>>, (FieldError, bool)> {
    let (lrs, in_preset) = match (&preset.learning_rates, &exp.learning_rates) {
        (Some(l), _) => (l, true),
        (None, Some(l)) => (l, false),
        (None, None) => return Ok(vec![None]),
    };
    let fail = |m: String| Err((FieldError::new("learning_rates", m), in_preset));
    if let Err(e) = at_most("learning_rates", lrs.len(), limits::LEARNING_RATES) {
        return fail(format!("has {} rates; {}", lrs.len(), e.message));
    }
    if lrs.len() < 2 {
        return fail("needs at least 2 rates (leave it out for one)".into());
    }
    if let Some(bad) = lrs.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
        return fail(format!("rates must be positive, got {bad}"));
    }
    let mut sorted = lrs.clone();
    sorted.sort_by(f64::total_cmp);
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return fail("rates must be distinct".into());
    }
    Ok(sorted.into_iter().map(Some).collect())
}
