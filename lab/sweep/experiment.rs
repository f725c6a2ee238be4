//! Experiment specs (`experiments/<name>.toml`): a base model, a ladder of sizes, arms, seeds,
//! a compute-budget rule and presets, expanded into one [`RunSpec`] per (size, arm, seed) cell.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::arm::arm_ffn;
pub use super::isoflop::IsoflopSpec;
use super::isoflop::Profiles;
use super::recipe::TeacherSpec;
use crate::error::{FieldError, SpecError, at_most, check};
use crate::limits;
use crate::run::Cell;
use crate::spec::{
    DataSpec, ModelSpec, RunConfig, RunSpec, StabilitySpec, TrainSpec, resolve_spec,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub base: BaseSpec,
    pub budget: BudgetRule,
    pub sizes: Vec<SizeSpec>,
    /// Arms by name; every size trains every arm.
    pub arms: BTreeMap<String, ArmSpec>,
    /// Seeds per cell (0, 1, ... seeds−1), unless a preset says otherwise.
    pub seeds: usize,
    #[serde(default)]
    pub presets: BTreeMap<String, PresetSpec>,
    /// The preset used when none is named.
    #[serde(default)]
    pub default_preset: Option<String>,
    #[serde(default)]
    pub analysis: AnalysisSpec,
    /// A learning-rate axis: every (size, arm, seed) trains once at each rate (replacing
    /// `base.train.lr`). Experiments with one are analysed for LR sensitivity
    /// (`analysis::lr`), not for scaling.
    #[serde(default)]
    pub learning_rates: Option<Vec<f64>>,
    /// The model that arms with `recipe = { distill = true }` learn from, trained first.
    #[serde(default)]
    pub teacher: Option<TeacherSpec>,
    /// IsoFLOP profiles: compute budgets, each arm training a window of sizes at each
    /// (replacing `[budget]`'s tokens-per-parameter rule). Analysed for compute-optimal
    /// frontiers (`analysis::isoflop`).
    #[serde(default)]
    pub isoflop: Option<IsoflopSpec>,
}

/// `[analysis]`: how the comparisons are judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisSpec {
    /// A paired difference whose 90% interval lies inside ±this (nats) is reported as
    /// "equivalent within" it (two one-sided tests at 5%).
    pub equivalence_margin: f64,
    /// The results directory beside this experiment's (e.g. `lr-stability`) whose
    /// learning-rate analysis answers the report's stability claim, if any.
    pub stability_from: Option<String>,
}

impl Default for AnalysisSpec {
    fn default() -> Self {
        AnalysisSpec {
            equivalence_margin: crate::run::manifest::DEFAULT_EQUIVALENCE_MARGIN,
            stability_from: None,
        }
    }
}

/// What every cell shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseSpec {
    pub n_heads: usize,
    #[serde(default)]
    pub n_kv_heads: Option<usize>,
    pub seq_len: usize,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub tie_embeddings: bool,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(default)]
    pub stability: StabilitySpec,
    #[serde(default)]
    pub data: DataSpec,
}

fn default_theta() -> f64 {
    10_000.0
}

/// How each size's FLOP budget is set: `tokens_per_active_param` × the reference arm's active
/// parameters gives the tokens; budget = tokens × the reference arm's training FLOPs per token.
/// Every arm at a size gets that same budget (compute-matched), so an arm with more FLOPs per
/// token trains on fewer tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetRule {
    /// Required except in IsoFLOP experiments, whose cells take their `[isoflop]` budgets.
    #[serde(default)]
    pub tokens_per_active_param: f64,
    pub reference_arm: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeSpec {
    pub name: String,
    pub d_model: usize,
    pub n_layers: usize,
    /// Hidden size of each expert of the MoE arms at this size.
    pub d_expert: usize,
    /// Hidden size of dense arms that state `d_ff = "size"`, and of the dense blocks of MoE arms
    /// with `moe_every > 1`.
    #[serde(default)]
    pub d_ff: Option<usize>,
}

/// One arm: an `[ffn]` table in the run-spec schema, of any registered kind (`kind = "moe"`
/// with `experts`, `top_k`, `router = { kind = "…" }`, …; `kind = "dense"` with
/// `d_ff = "size" | "match-active" | "match-total"`), less what each size supplies
/// (`sweep::arm::fill_from_size`: an MoE's `d_expert`, a dense arm's `d_ff = "size"`), plus
/// `match = "<arm>"`: the arm a derived `d_ff` is matched against. The table is checked
/// against the schema when the experiment is expanded, so errors name the arm and the field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArmSpec(pub toml::Table);

impl ArmSpec {
    /// The arm named by `match`, if any.
    pub fn match_arm(&self) -> Option<&str> {
        self.0.get("match").and_then(|v| v.as_str())
    }
    pub(super) fn d_ff_rule(&self) -> Option<&str> {
        self.0.get("d_ff").and_then(|v| v.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PresetSpec {
    #[serde(default)]
    pub description: String,
    /// Size names to run (all if absent).
    pub sizes: Option<Vec<String>>,
    /// Arm names to run (all if absent; the budget's reference arm must be among them).
    pub arms: Option<Vec<String>>,
    pub seeds: Option<usize>,
    pub tokens_per_active_param: Option<f64>,
    pub batch_size: Option<usize>,
    pub eval_every: Option<usize>,
    pub corpus_bytes: Option<usize>,
    pub learning_rates: Option<Vec<f64>>,
    /// IsoFLOP experiments: the budgets and sizes per budget in place of `[isoflop]`'s.
    pub budgets: Option<Vec<f64>>,
    pub sizes_per_budget: Option<usize>,
    /// Expected wall time, stated for the reader (e.g. "≈ 12 min on 2 CPU cores").
    #[serde(default)]
    pub expected_time: String,
}

/// A cell with its resolved run config: what planning produces and the runner runs.
#[derive(Debug, Clone)]
pub struct PlannedCell {
    pub cell: Cell,
    pub config: RunConfig,
}

impl PlannedCell {
    /// The run directory's name.
    pub fn name(&self) -> &str {
        &self.cell.name
    }
}

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
}

impl Plan {
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
    let mut cells = match &exp.isoflop {
        Some(iso) => Profiles::new(iso, &chosen, sizes, &arms, seeds).expand(
            &exp,
            &chosen,
            &preset_name,
            file,
        )?,
        None => {
            let tokens_per_param = chosen
                .tokens_per_active_param
                .unwrap_or(exp.budget.tokens_per_active_param);
            check(
                tokens_per_param > 0.0,
                "budget.tokens_per_active_param",
                || "must be positive (it is required without [isoflop])".into(),
            )
            .map_err(|e| e.in_file(file))?;
            let grid = Grid {
                sizes,
                arms: &arms,
                lrs,
                seeds,
                tokens_per_param,
            };
            // Counted before any cell is built: each resolves a model shape.
            at_most("seeds", grid.count(), limits::CELLS)
                .map_err(|e| {
                    FieldError::new("seeds", format!("the grid's cell count {}", e.message))
                })
                .map_err(|e| e.under_preset(&preset_name, file))?;
            grid.cells(&exp, &chosen, file)?
        }
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
    })
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
    };
    Ok(PlannedCell { cell, config })
}

/// The axes of an expanded experiment.
struct Grid<'a> {
    sizes: Vec<&'a SizeSpec>,
    arms: &'a [String],
    lrs: Vec<Option<f64>>,
    seeds: usize,
    tokens_per_param: f64,
}

impl Grid<'_> {
    /// Cells in the grid.
    fn count(&self) -> usize {
        cell_count(
            &[self.sizes.len(), self.arms.len(), self.lrs.len()],
            self.seeds,
        )
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
            let probe = CellAt::new(size, &exp.budget.reference_arm, 0);
            let reference = resolve_cell(exp, preset, &probe, None, file)?;
            let budget = self.tokens_per_param
                * reference.params.active as f64
                * reference.flops.train_per_token;
            for arm in self.arms {
                for &lr in &self.lrs {
                    for seed in 0..self.seeds as u64 {
                        let at = CellAt {
                            lr,
                            ..CellAt::new(size, arm, seed)
                        };
                        cells.push(at.plan(exp, preset, budget, file)?);
                    }
                }
            }
        }
        Ok(cells)
    }
}

/// Cells in a grid of `axes` × `seeds` (saturating: an absurd product is simply too many).
pub(super) fn cell_count(axes: &[usize], seeds: usize) -> usize {
    (axes.iter().copied().chain([seeds])).fold(1usize, usize::saturating_mul)
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

/// Where in the grid a cell is.
pub(super) struct CellAt<'a> {
    pub size: &'a SizeSpec,
    pub arm: &'a str,
    /// On a learning-rate axis, this cell's rate.
    pub lr: Option<f64>,
    pub seed: u64,
    /// The experiment's teacher (named `teacher-<size>`, trained without the arm's recipe).
    pub teacher: bool,
    /// In an IsoFLOP experiment, the cell's budget (its profile).
    pub budget: Option<f64>,
}

impl<'a> CellAt<'a> {
    /// A plain cell: no rate axis, not the teacher, no profile.
    pub fn new(size: &'a SizeSpec, arm: &'a str, seed: u64) -> Self {
        CellAt {
            size,
            arm,
            lr: None,
            seed,
            teacher: false,
            budget: None,
        }
    }

    /// This cell resolved with `budget` training FLOPs, as the runner runs it.
    pub fn plan(
        &self,
        exp: &ExperimentSpec,
        preset: &PresetSpec,
        budget: f64,
        file: &Path,
    ) -> Result<PlannedCell, SpecError> {
        let config = resolve_cell(exp, preset, self, Some(budget), file)?;
        let cell = Cell {
            name: config.spec.name.clone(),
            size: self.size.name.clone(),
            arm: self.arm.into(),
            seed: self.seed,
            d_model: self.size.d_model,
            n_layers: self.size.n_layers,
            lr: self.lr,
            budget: self.budget,
        };
        Ok(PlannedCell { cell, config })
    }

    /// `<size>-<arm>-s<seed>`, `<size>-<arm>-lr<rate>-s<seed>` on a learning-rate axis, or
    /// `c<budget>-<size>-<arm>-s<seed>` in an IsoFLOP profile.
    fn name(&self) -> String {
        if self.teacher {
            return format!("teacher-{}", self.size.name);
        }
        match (self.lr, self.budget) {
            (Some(lr), _) => format!("{}-{}-lr{lr:e}-s{}", self.size.name, self.arm, self.seed),
            (None, Some(c)) => format!("c{c:e}-{}-{}-s{}", self.size.name, self.arm, self.seed),
            (None, None) => format!("{}-{}-s{}", self.size.name, self.arm, self.seed),
        }
    }
}

pub(super) trait UnderPreset {
    fn under_preset(self, preset: &str, file: &Path) -> SpecError;
}

impl UnderPreset for FieldError {
    /// `sizes` in preset `small` is `presets.small.sizes`.
    fn under_preset(self, preset: &str, file: &Path) -> SpecError {
        self.under(preset).under("presets").in_file(file)
    }
}

pub(super) fn resolve_cell(
    exp: &ExperimentSpec,
    preset: &PresetSpec,
    cell: &CellAt,
    budget: Option<f64>,
    file: &Path,
) -> Result<RunConfig, SpecError> {
    let (size, arm_name) = (cell.size, cell.arm);
    let ffn = arm_ffn(exp, arm_name, size).map_err(|e| e.in_file(file))?;
    let base = &exp.base;
    let mut train = base.train.clone();
    if let Some(lr) = cell.lr {
        train.lr = lr;
    }
    // The budget probe (no budget yet) only needs counts: one step will do.
    (train.steps, train.flop_budget) = match budget {
        Some(b) => (None, Some(b)),
        None => (Some(1), None),
    };
    if let Some(b) = preset.batch_size {
        train.batch_size = b;
    }
    if let Some(e) = preset.eval_every {
        train.eval_every = e;
    }
    let mut data = base.data.clone();
    if let Some(c) = preset.corpus_bytes {
        data.corpus_bytes = c;
    }
    let mut spec = RunSpec {
        name: cell.name(),
        experiment: exp.name.clone(),
        seed: cell.seed,
        model: ModelSpec {
            d_model: size.d_model,
            n_layers: size.n_layers,
            n_heads: base.n_heads,
            n_kv_heads: base.n_kv_heads,
            seq_len: base.seq_len,
            rope_theta: base.rope_theta,
            tie_embeddings: base.tie_embeddings,
            norm_eps: 1e-5,
            init: None,
            vocab_size: None,
        },
        ffn,
        train,
        stability: base.stability.clone(),
        data,
        distill: None,
    };
    if !cell.teacher {
        super::recipe::apply(&mut spec, exp, arm_name).map_err(|e| e.in_file(file))?;
    }
    let base_dir = file.parent().unwrap_or(Path::new("."));
    resolve_spec(spec, file, base_dir).map_err(|e| match e {
        SpecError::Field {
            file,
            field,
            message,
        } => SpecError::Field {
            file,
            field: format!("{field} (size {}, arm {arm_name})", size.name),
            message,
        },
        other => other,
    })
}
