//! The training loop's state between steps: its counters, running losses, spike detectors,
//! memory peaks and what the evaluations found, checkpointed with the weights. The run's
//! summary is built from it, the run's config and this attempt's facts in one place
//! ([`LoopState::summary`]); nothing else fills summary fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::distill::Teacher;
use super::evaluate::Evaluation;
use super::spikes::SpikeDetector;
use crate::run::summary::{
    AnalyticMemory, DeviceSummary, DistillSummary, ExactMatch, MemorySummary, RunStatus,
    Specialisation, SpikeSummary, Summary,
};
use crate::spec::RunConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopState {
    pub status: RunStatus,
    pub steps_done: usize,
    /// Tokens trained so far, by sequence length (a long-context stage trains at several).
    /// Counted once per step, for every run alike; the tokens and FLOPs of `metrics.csv` and
    /// the summary are computed from these counts.
    pub tokens_by_seq_len: BTreeMap<usize, u64>,
    pub diverged_at_step: Option<usize>,
    /// Wall time of every attempt so far (a resumed run adds its own).
    pub wall_time_s: f64,
    pub train_loss: TrainLoss,
    /// A distilled run's KL to the teacher at the first and the last step.
    pub initial_kl: Option<f64>,
    pub final_kl: Option<f64>,
    pub spikes: SpikeSummary,
    pub loss_detector: SpikeDetector,
    pub grad_detector: SpikeDetector,
    /// Peaks of the memory readings (the analytic figures come from the config).
    pub memory: MemorySummary,
    pub eval: Evaluated,
    /// Snapshots in checkpoint averaging's running sum so far.
    pub averaged: usize,
    /// The step each attempt after the first resumed from.
    #[serde(default)]
    pub resumed_from: Vec<usize>,
    /// When the run's first attempt started (seconds since the Unix epoch; a resume keeps it).
    #[serde(default)]
    pub started_unix_s: Option<f64>,
}

/// Training losses: the first step's (ℓ0, the loss at initialisation), the last step's, and
/// the largest of any step after the first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainLoss {
    pub initial: Option<f64>,
    pub last: Option<f64>,
    pub peak: Option<f64>,
}

/// What the evaluations found: the last one's results (the final evaluation's once the run
/// completes), the best loss of any, and the averaged model's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Evaluated {
    pub val_loss: Option<f64>,
    pub best_val_loss: Option<f64>,
    pub val_loss_se: Option<f64>,
    pub by_stream: BTreeMap<String, f64>,
    pub se_by_stream: BTreeMap<String, f64>,
    pub answer_by_stream: BTreeMap<String, f64>,
    pub exact_match_by_stream: BTreeMap<String, ExactMatch>,
    pub routing_specialisation: Vec<Specialisation>,
    pub long_context_val_loss: Option<f64>,
    pub averaged_val_loss: Option<f64>,
    pub averaged_by_stream: BTreeMap<String, f64>,
}

impl Evaluated {
    /// Keep an evaluation's results (`names`: its streams, in its order).
    pub fn record(&mut self, names: &[String], ev: Evaluation) {
        let named = |values: Vec<f64>| names.iter().cloned().zip(values).collect();
        self.val_loss = Some(ev.val_loss);
        self.best_val_loss = Some(
            self.best_val_loss
                .map_or(ev.val_loss, |b| b.min(ev.val_loss)),
        );
        self.val_loss_se = Some(ev.val_loss_se);
        self.routing_specialisation = ev.router.specialisation();
        self.by_stream = named(ev.by_stream);
        self.se_by_stream = named(ev.se_by_stream);
        self.answer_by_stream = (names.iter().zip(ev.answer_by_stream))
            .filter_map(|(n, l)| Some((n.clone(), l?)))
            .collect();
        self.exact_match_by_stream = (names.iter().zip(ev.exact_by_stream))
            .filter_map(|(n, e)| {
                let (exact, answers) = e?;
                let rate = exact as f64 / answers as f64;
                let m = ExactMatch {
                    exact,
                    answers,
                    rate,
                };
                Some((n.clone(), m))
            })
            .collect();
    }
}

/// What one attempt of a run knows about itself, not about the run: where it runs and from
/// which code (a resumed run reports its latest attempt's).
#[derive(Debug, Clone)]
pub struct AttemptFacts {
    pub device: DeviceSummary,
    pub git_commit: String,
    pub lab_version: String,
}

impl LoopState {
    /// The state of a run that has not started.
    pub fn fresh(config: &RunConfig) -> LoopState {
        let stability = &config.spec.stability;
        LoopState {
            status: RunStatus::Running,
            steps_done: 0,
            tokens_by_seq_len: BTreeMap::new(),
            diverged_at_step: None,
            wall_time_s: 0.0,
            train_loss: TrainLoss::default(),
            initial_kl: None,
            final_kl: None,
            spikes: SpikeSummary::default(),
            loss_detector: SpikeDetector::new(stability),
            grad_detector: SpikeDetector::new(stability),
            memory: MemorySummary::default(),
            eval: Evaluated::default(),
            averaged: 0,
            resumed_from: Vec::new(),
            started_unix_s: Some(crate::run::summary::now_unix_s()),
        }
    }

    /// Count a step of `batch` sequences of `seq_len` tokens.
    pub fn count_step(&mut self, batch: usize, seq_len: usize) {
        *self.tokens_by_seq_len.entry(seq_len).or_default() += (batch * seq_len) as u64;
    }

    pub fn tokens(&self) -> u64 {
        self.tokens_by_seq_len.values().sum()
    }

    /// Training FLOPs so far: each length's tokens at its FLOPs per token.
    pub fn train_flops(&self, config: &RunConfig) -> f64 {
        self.per_length(|t| config.train_flops_per_token_at(t))
    }

    /// Σ over lengths of `per_token(length)` × the tokens trained at it.
    pub fn per_length(&self, per_token: impl Fn(usize) -> f64) -> f64 {
        (self.tokens_by_seq_len.iter())
            .map(|(t, n)| per_token(*t) * *n as f64)
            .sum()
    }

    /// Record a step's losses (`lm_loss`, and a distilled run's KL).
    pub fn observe_losses(&mut self, step: usize, lm_loss: f64, kl: Option<f64>) {
        let l = &mut self.train_loss;
        l.last = Some(lm_loss);
        match step {
            0 => l.initial = Some(lm_loss),
            _ => l.peak = Some(l.peak.map_or(lm_loss, |p| p.max(lm_loss))),
        }
        self.initial_kl = self.initial_kl.or(kl);
        self.final_kl = kl;
    }

    /// The run's summary as of now; a distilled run's `teacher` prices its forward passes at
    /// each sequence length trained.
    pub fn summary(
        &self,
        config: &RunConfig,
        attempt: &AttemptFacts,
        teacher: Option<&Teacher>,
    ) -> Summary {
        let spec = &config.spec;
        let e = &self.eval;
        let tokens = self.tokens();
        Summary {
            status: self.status,
            name: spec.name.clone(),
            experiment: spec.experiment.clone(),
            seed: spec.seed,
            ffn: spec.ffn.name().into(),
            ffn_variant: spec.ffn.describe(),
            warnings: spec.warnings(),
            steps_planned: config.steps,
            steps_done: self.steps_done,
            tokens,
            train_flops: self.train_flops(config),
            final_val_loss: e.val_loss,
            best_val_loss: e.best_val_loss,
            final_train_loss: self.train_loss.last,
            initial_train_loss: self.train_loss.initial,
            final_val_loss_averaged: e.averaged_val_loss,
            averaged_snapshots: self.averaged,
            final_val_loss_long_context: e.long_context_val_loss,
            final_val_loss_by_stream_averaged: e.averaged_by_stream.clone(),
            distill: spec.distill.as_ref().map(|d| DistillSummary {
                teacher: d.teacher.display().to_string(),
                weight: d.weight,
                temperature: d.temperature,
                top_k: d.top_k,
                teacher_forward_flops: teacher.map_or(0.0, |t| {
                    self.per_length(|len| t.forward_flops_per_token(len))
                }),
                teacher_flops_charged: d.charge_teacher,
                initial_kl: self.initial_kl,
                final_kl: self.final_kl,
            }),
            peak_train_loss: self.train_loss.peak,
            final_val_loss_by_stream: e.by_stream.clone(),
            final_answer_loss_by_stream: e.answer_by_stream.clone(),
            final_val_loss_se: e.val_loss_se,
            final_val_loss_se_by_stream: e.se_by_stream.clone(),
            final_exact_match_by_stream: e.exact_match_by_stream.clone(),
            anneal_switch_step: config.anneal_from(),
            routing_specialisation: e.routing_specialisation.clone(),
            diverged_at_step: self.diverged_at_step,
            resumed_from: self.resumed_from.clone(),
            started_unix_s: self.started_unix_s,
            wall_time_s: self.wall_time_s,
            tokens_per_s: tokens as f64 / self.wall_time_s.max(1e-9),
            spikes: self.spikes.clone(),
            memory: MemorySummary {
                analytic: Some(AnalyticMemory::for_params(config.params.total)),
                ..self.memory.clone()
            },
            params: config.params,
            flops_per_token: config.flops,
            device: attempt.device.clone(),
            git_commit: attempt.git_commit.clone(),
            lab_version: attempt.lab_version.clone(),
        }
    }
}
