//! One cell of an expanded experiment: where it sits in the grid ([`CellAt`]), its run spec
//! resolved from the experiment's base, size, arm and recipe ([`resolve_cell`]), and the
//! planned cell the runner runs ([`PlannedCell`]).

use std::path::Path;

use super::arm::arm_ffn;
use super::spec::{ExperimentSpec, PresetSpec, SizeSpec};
use crate::error::{FieldError, SpecError};
use crate::run::{Cell, Mixture};
use crate::spec::{ModelSpec, RunConfig, RunSpec, resolve_spec};

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

/// Cells in a grid of `axes` × `seeds` (saturating: an absurd product is simply too many).
pub(super) fn cell_count(axes: &[usize], seeds: usize) -> usize {
    (axes.iter().copied().chain([seeds])).fold(1usize, usize::saturating_mul)
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
    /// On a mixture axis, the cell's training mixture.
    pub mixture: Option<&'a Mixture>,
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
            mixture: None,
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
            mixture: self.mixture.cloned(),
        };
        Ok(PlannedCell { cell, config })
    }

    /// `<size>-<arm>-s<seed>`, `<size>-<arm>-lr<rate>-s<seed>` on a learning-rate axis,
    /// `<size>-<arm>-mix<name>-s<seed>` on a mixture axis, or `c<budget>-<size>-<arm>-s<seed>`
    /// in an IsoFLOP profile.
    fn name(&self) -> String {
        if self.teacher {
            return format!("teacher-{}", self.size.name);
        }
        if let Some(m) = self.mixture {
            let (size, arm) = (&self.size.name, self.arm);
            return format!("{size}-{arm}-mix{}-s{}", m.name, self.seed);
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
    if let Some(m) = cell.mixture {
        super::mixtures::set_weights(&mut data, &m.weights);
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
