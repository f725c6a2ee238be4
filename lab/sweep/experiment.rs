//! Experiment specs (`experiments/<name>.toml`): a base model, a ladder of sizes, arms, seeds,
//! a compute-budget rule and presets, expanded into one [`RunSpec`] per (size, arm, seed) cell.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::SpecError;
use crate::model::ffn::SizeFields;
use crate::spec::{
    DataSpec, FfnSpec, ModelSpec, RunConfig, RunSpec, StabilitySpec, TrainSpec, resolve_spec,
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
/// (`FfnSpec::fill_from_size`: an MoE's `d_expert`, a dense arm's `d_ff = "size"`), plus
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
    fn d_ff_rule(&self) -> Option<&str> {
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
    pub seeds: Option<usize>,
    pub tokens_per_active_param: Option<f64>,
    pub batch_size: Option<usize>,
    pub eval_every: Option<usize>,
    pub corpus_bytes: Option<usize>,
    /// Expected wall time, stated for the reader (e.g. "≈ 12 min on 2 CPU cores").
    #[serde(default)]
    pub expected_time: String,
}

/// One (size, arm, seed) run of an expanded experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// `<size>-<arm>-s<seed>`: the run directory's name.
    pub name: String,
    pub size: String,
    pub arm: String,
    pub seed: u64,
    /// Model shape, for reports (absent in manifests of older versions: 0).
    #[serde(default)]
    pub d_model: usize,
    #[serde(default)]
    pub n_layers: usize,
    #[serde(skip)]
    pub config: Option<RunConfig>,
}

/// An experiment after choosing a preset: where it writes and what it runs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub experiment: ExperimentSpec,
    pub preset: String,
    /// `results/<name>` for the default preset, `results/<name>-<preset>` otherwise.
    pub results_name: String,
    pub cells: Vec<Cell>,
    pub source: PathBuf,
}

impl Plan {
    /// The dense arm matched on active FLOPs to the reference arm, else the first other arm.
    pub fn baseline_arm(&self) -> Option<String> {
        let reference = &self.experiment.budget.reference_arm;
        let arms = &self.experiment.arms;
        arms.iter()
            .find(|(_, a)| {
                a.d_ff_rule() == Some("match-active") && a.match_arm() == Some(reference.as_str())
            })
            .or_else(|| arms.iter().find(|(name, _)| *name != reference))
            .map(|(name, _)| name.clone())
    }
}

/// Find `experiments/<name>.toml` (or take a path), parse it and expand it with `preset`.
pub fn plan(name_or_path: &str, preset: Option<&str>) -> Result<Plan, SpecError> {
    let path = locate(name_or_path);
    let text = std::fs::read_to_string(&path).map_err(|e| SpecError::Io {
        file: path.clone(),
        message: format!("{e} (experiments are looked up as experiments/<name>.toml)"),
    })?;
    let exp: ExperimentSpec = toml::from_str(&text).map_err(|e| SpecError::Parse {
        file: path.clone(),
        message: e.to_string(),
    })?;
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

pub fn expand(exp: ExperimentSpec, file: &Path, preset: Option<&str>) -> Result<Plan, SpecError> {
    let err = |field: &str, msg: String| SpecError::field(file, field, msg);
    if exp.sizes.is_empty() {
        return Err(err("sizes", "needs at least one size".into()));
    }
    if exp.arms.is_empty() {
        return Err(err("arms", "needs at least one arm".into()));
    }
    if exp.seeds == 0 {
        return Err(err("seeds", "must be at least 1".into()));
    }
    let preset_name = preset
        .map(str::to_string)
        .or(exp.default_preset.clone())
        .unwrap_or_else(|| "default".into());
    let chosen = match exp.presets.get(&preset_name) {
        Some(p) => p.clone(),
        None if preset.is_none() && exp.default_preset.is_none() => PresetSpec::default(),
        None => {
            let known: Vec<&String> = exp.presets.keys().collect();
            return Err(err(
                "presets",
                format!("unknown preset {preset_name:?}; this experiment has {known:?}"),
            ));
        }
    };
    let seeds = chosen.seeds.unwrap_or(exp.seeds);
    if seeds == 0 {
        return Err(err(
            &format!("presets.{preset_name}.seeds"),
            "must be at least 1".into(),
        ));
    }
    let sizes: Vec<&SizeSpec> = match &chosen.sizes {
        None => exp.sizes.iter().collect(),
        Some(names) => {
            let mut v = Vec::new();
            for n in names {
                match exp.sizes.iter().find(|s| &s.name == n) {
                    Some(s) => v.push(s),
                    None => {
                        return Err(err(
                            &format!("presets.{preset_name}.sizes"),
                            format!("no size named {n:?}"),
                        ));
                    }
                }
            }
            v
        }
    };
    if !exp.arms.contains_key(&exp.budget.reference_arm) {
        return Err(err(
            "budget.reference_arm",
            format!("no arm named {:?}", exp.budget.reference_arm),
        ));
    }
    let tokens_per_param = chosen
        .tokens_per_active_param
        .unwrap_or(exp.budget.tokens_per_active_param);
    if !(tokens_per_param > 0.0) {
        return Err(err(
            "budget.tokens_per_active_param",
            "must be positive".into(),
        ));
    }

    let mut cells = Vec::new();
    for size in &sizes {
        // The budget of this size, from the reference arm.
        let reference = resolve_cell(
            &exp,
            &chosen,
            size,
            &exp.budget.reference_arm,
            0,
            None,
            file,
        )?;
        let budget =
            tokens_per_param * reference.params.active as f64 * reference.flops.train_per_token;
        for arm in exp.arms.keys() {
            for seed in 0..seeds as u64 {
                let config = resolve_cell(&exp, &chosen, size, arm, seed, Some(budget), file)?;
                cells.push(Cell {
                    name: config.spec.name.clone(),
                    size: size.name.clone(),
                    arm: arm.clone(),
                    seed,
                    d_model: size.d_model,
                    n_layers: size.n_layers,
                    config: Some(config),
                });
            }
        }
    }
    let results_name = if exp.default_preset.as_deref() == Some(preset_name.as_str())
        || preset_name == "default"
    {
        exp.name.clone()
    } else {
        format!("{}-{preset_name}", exp.name)
    };
    Ok(Plan {
        experiment: exp,
        preset: preset_name,
        results_name,
        cells,
        source: file.to_path_buf(),
    })
}

/// The `[ffn]` of `arm_name` at `size`: the arm's table with the size's fields filled in, parsed
/// through the variant registry, and matched to the arm its `match` names.
fn arm_ffn(
    exp: &ExperimentSpec,
    arm_name: &str,
    size: &SizeSpec,
    file: &Path,
) -> Result<FfnSpec, SpecError> {
    let field = |f: &str| format!("arms.{arm_name}{f}");
    let mut table = exp.arms[arm_name].0.clone();
    let target = table.remove("match");
    FfnSpec::fill_from_size(
        &mut table,
        &SizeFields {
            d_expert: size.d_expert,
            d_ff: size.d_ff,
        },
    )
    .map_err(|m| SpecError::field(file, &format!("sizes.{}.d_ff", size.name), m))?;
    let ffn: FfnSpec = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| SpecError::field(file, &field(""), e.message()))?;
    let Some(target) = target else {
        return Ok(ffn);
    };
    let target = match target.as_str() {
        Some(t) if t != arm_name && exp.arms.contains_key(t) => t.to_string(),
        _ => {
            return Err(SpecError::field(
                file,
                &field(".match"),
                format!("{target} is not another arm of this experiment"),
            ));
        }
    };
    if exp.arms[&target].match_arm().is_some() {
        return Err(SpecError::field(
            file,
            &field(".match"),
            format!("arm {target:?} is itself matched to another arm; match a routed arm"),
        ));
    }
    let matched = arm_ffn(exp, &target, size, file)?;
    ffn.matched_to(matched)
        .map_err(|m| SpecError::field(file, &field(".match"), m))
}

fn resolve_cell(
    exp: &ExperimentSpec,
    preset: &PresetSpec,
    size: &SizeSpec,
    arm_name: &str,
    seed: u64,
    budget: Option<f64>,
    file: &Path,
) -> Result<RunConfig, SpecError> {
    let ffn = arm_ffn(exp, arm_name, size, file)?;
    let base = &exp.base;
    let mut train = base.train.clone();
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
    let spec = RunSpec {
        name: format!("{}-{}-s{}", size.name, arm_name, seed),
        experiment: exp.name.clone(),
        seed,
        model: ModelSpec {
            d_model: size.d_model,
            n_layers: size.n_layers,
            n_heads: base.n_heads,
            n_kv_heads: base.n_kv_heads,
            seq_len: base.seq_len,
            rope_theta: base.rope_theta,
            tie_embeddings: base.tie_embeddings,
            norm_eps: 1e-5,
        },
        ffn,
        train,
        stability: base.stability.clone(),
        data,
    };
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
