//! An experiment's spec (`experiments/<name>.toml`) as types: the base model, the ladder of
//! sizes, the arms, seeds, the budget rule, presets, and the `[isoflop]` and `[teacher]`
//! sections. Parsing and the sections' own checks only; expanding it into cells is
//! `experiment`'s (which reads these types, as the arm, IsoFLOP and recipe modules do).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, check};
use crate::spec::{DataSpec, StabilitySpec, TrainSpec};

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
    /// A mixture axis: every (size, arm, seed) trains once on each mixture of the data's
    /// domains (the generated corpus's four, or the `[data] sources`), Dirichlet draws around
    /// the base weights and fixed points (`sweep::mixtures`).
    #[serde(default)]
    pub mixtures: Option<MixtureSpec>,
    /// Held-out sizes a scaling sweep forecasts before training them (`analysis::forecast`).
    #[serde(default)]
    pub forecast: Option<ForecastSpec>,
}

/// `[forecast]`: the sizes held out, and the law extrapolated to them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastSpec {
    /// Size names trained only after the forecast for them is written (`presets.<p>.hold_out`
    /// replaces them).
    #[serde(default)]
    pub hold_out: Vec<String>,
    /// IsoFLOP experiments: budgets whose profiles train only after the forecast of each arm's
    /// compute-optimal loss L* there is written (`presets.<p>.hold_out_budgets` replaces them).
    #[serde(default)]
    pub hold_out_budgets: Vec<f64>,
    #[serde(default = "floor_form")]
    pub form: Form,
}

fn floor_form() -> Form {
    Form::Floor
}

/// The functional form of loss against training FLOPs that a forecast extrapolates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// `L = E + A·C^(−α)`: a floor the loss approaches (the lab's scaling law).
    Floor,
    /// `L = A·C^(−α)`, a straight line in log–log: no floor.
    Power,
}

/// `[mixtures]`: the mixture axis (RegMix's design: many small runs, each on one mixture).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureSpec {
    /// Dirichlet draws around the base weights, besides the fixed points.
    pub draws: usize,
    /// The Dirichlet's concentration: α_j = concentration · k · base_j. Small values reach the
    /// corners of the simplex, large ones stay near the base.
    #[serde(default = "one")]
    pub concentration: f64,
    /// Mixtures always trained: `base` (the experiment's `[base.data]` weights: LLaMA-3's
    /// 50/25/17/8 for the generated corpus) and `uniform`.
    #[serde(default = "fixed_mixtures")]
    pub fixed: Vec<String>,
    /// The least weight the optimal mixture may give a domain (at most 1/k).
    #[serde(default = "default_floor")]
    pub floor: f64,
    /// Seed of the draws (independent of the runs' seeds).
    #[serde(default)]
    pub seed: u64,
    /// What the optimum minimises; by default the equal-weight mean of the domains' losses.
    #[serde(default)]
    pub target: Option<TargetSpec>,
    /// A larger size that trains the first `check_mixtures` mixtures too (`base`, `uniform`,
    /// then the first draws), so the report can say whether it ranks them as the small runs do.
    #[serde(default)]
    pub check_size: Option<String>,
    #[serde(default = "six")]
    pub check_mixtures: usize,
    /// Seeds of the check of each arm's predicted optimum at the check size, beside `base`
    /// and `uniform` (paired by seed); by default the preset's seeds.
    #[serde(default)]
    pub check_seeds: Option<usize>,
}

fn six() -> usize {
    6
}

/// `[mixtures.target]`: streams and their weights (normalised), and which loss of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub streams: BTreeMap<String, f64>,
    /// `loss` (the streams' validation loss, the default), `answer_loss` (the loss on the
    /// answer bytes of question streams) or `exact_match` (the share of their answers greedy
    /// decoding reproduces, minimised as 1 − the share).
    #[serde(default = "loss_measure")]
    pub measure: String,
}

fn loss_measure() -> String {
    "loss".into()
}

fn fixed_mixtures() -> Vec<String> {
    vec!["base".into(), "uniform".into()]
}

fn default_floor() -> f64 {
    0.02
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
    #[serde(default = "crate::model::spec::default_rope_theta")]
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
    /// Mixture axes: the check size and its seeds in place of `[mixtures]`'s.
    pub check_size: Option<String>,
    pub check_seeds: Option<usize>,
    /// Scaling sweeps with `[forecast]`: the held-out sizes in place of its `hold_out`.
    pub hold_out: Option<Vec<String>>,
    pub hold_out_budgets: Option<Vec<f64>>,
    /// Expected wall time, stated for the reader (e.g. "≈ 12 min on 2 CPU cores").
    #[serde(default)]
    pub expected_time: String,
}

/// `[isoflop]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsoflopSpec {
    /// Training FLOPs of every cell at each profile (`presets.<p>.budgets` replaces them).
    pub budgets: Vec<f64>,
    /// Sizes per arm per budget (`presets.<p>.sizes_per_budget` replaces it).
    #[serde(default = "default_sizes_per_budget")]
    pub sizes_per_budget: usize,
    /// The predicted optimum's tokens per active parameter (Chinchilla's ≈ 20).
    #[serde(default = "default_tokens_per_param")]
    pub tokens_per_param: f64,
}

fn default_sizes_per_budget() -> usize {
    5
}

fn default_tokens_per_param() -> f64 {
    20.0
}

/// `[teacher]`: the model the distilling arms learn from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherSpec {
    /// A `[[sizes]]` entry (it need not be one the presets train students at).
    pub size: String,
    /// The arm whose feed-forward it has (its recipe, if any, is not applied).
    pub arm: String,
    /// Its budget rule, like `[budget]`'s, at its own size.
    pub tokens_per_active_param: f64,
    #[serde(default = "half")]
    pub weight: f64,
    #[serde(default = "one")]
    pub temperature: f64,
    #[serde(default)]
    pub top_k: usize,
}

fn half() -> f64 {
    0.5
}
fn one() -> f64 {
    1.0
}

impl TeacherSpec {
    /// The teacher's cell (and run directory) name.
    pub fn cell_name(&self) -> String {
        format!("teacher-{}", self.size)
    }

    /// Check the names and the budget (paths from the experiment's root).
    pub fn validate(&self, exp: &ExperimentSpec) -> Result<(), FieldError> {
        check(
            exp.sizes.iter().any(|s| s.name == self.size),
            "teacher.size",
            || format!("no size named {:?}", self.size),
        )?;
        check(exp.arms.contains_key(&self.arm), "teacher.arm", || {
            format!("no arm named {:?}", self.arm)
        })?;
        check(
            self.tokens_per_active_param > 0.0 && self.tokens_per_active_param.is_finite(),
            "teacher.tokens_per_active_param",
            || "must be positive".into(),
        )
    }
}
