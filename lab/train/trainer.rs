//! A training run as a small type: [`Trainer::open`] sets it up (or resumes it), then
//! [`step`](Trainer::step), [`evaluate`](Trainer::evaluate) and
//! [`checkpoint`](Trainer::checkpoint) advance it and [`finish`](Trainer::finish) writes its
//! summary. The loop that calls them is `train::train`, one screen long.

use std::time::Instant;

use anyhow::Result;
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use super::checkpoint::{self, LoopState};
use super::distill::Teacher;
use super::evaluate::{evaluate, evaluate_at};
use super::logs::{Progress, RunLogs};
use super::memory;
use super::spikes::SpikeDetector;
use super::step::{StepBatch, StepOutput, optimizer, train_step};
use super::{TrainOptions, schedule};
use crate::data::{Batches, source_for};
use crate::error::SpecError;
use crate::model::Transformer;
use crate::run::RunDir;
use crate::run::dir::{CHECKPOINT, CONFIG};
use crate::run::summary::{
    DeviceSummary, DistillSummary, ExactMatch, MemorySummary, RunStatus, SpikeRecord, Summary,
};
use crate::spec::{RunConfig, RunSpec};

pub struct Trainer {
    config: RunConfig,
    dir: RunDir,
    /// The device without autodiff (evaluation, memory probes) and with it (training).
    plain: Device,
    device: Device,
    batches: Batches,
    /// Taken by each step (a step consumes the model and returns the updated one).
    model: Option<Transformer>,
    /// Checkpoint averaging: the running sum of the snapshots so far (plain device), and the
    /// steps after which one is taken.
    average: Option<Transformer>,
    snapshots: Vec<usize>,
    optim: ModuleOptimizer,
    /// A distilled run's teacher (plain device).
    teacher: Option<Teacher>,
    /// The RoPE base the model's table was built with (a long-context stage may change it).
    rope_theta: f64,
    state: LoopState,
    logs: RunLogs,
    bar: ProgressBar,
    progress: bool,
    /// Wall time of earlier attempts (a resumed run), and when this one started.
    elapsed_before: f64,
    started: Instant,
    /// Start of the current throughput window (reset after each logged row and evaluation).
    since_log: Instant,
}

/// What [`Trainer::step`] saw.
pub enum StepReport {
    Applied,
    /// A non-finite loss or gradient: the update was skipped and the run ends.
    Diverged,
}

impl Trainer {
    /// Set up the run `config` describes in `opts.run_dir` (config, data, model, optimizer,
    /// logs), resuming from its checkpoint when asked and one exists.
    pub fn open(config: &RunConfig, opts: &TrainOptions) -> Result<Trainer> {
        let spec = &config.spec;
        let dir = opts.run_dir.clone();
        let plain = opts.device.device.clone();
        // Before anything is written: a missing or unfit teacher is the spec's fault.
        let teacher = Teacher::load(config, &dir.file(CONFIG), &plain)?;
        dir.create()?;
        if opts.resume && !checkpoint::candidates(&dir.file(CHECKPOINT)).is_empty() {
            same_run(&dir, config)?;
        }
        dir.write_config(config)?;
        plain.seed(spec.seed);
        let device = plain.clone().autodiff();
        // Enough validation text for the final evaluation's windows not to repeat.
        let (t, tokens) = (spec.model.seq_len, spec.train.final_eval_tokens);
        let corpus = source_for(&spec.data, tokens * (t + 1) / t * 5 / 4).load()?;
        let (seq_len, batch) = (spec.model.seq_len, spec.train.batch_size);
        let batches = Batches::new(corpus, seq_len, batch, spec.seed, config.anneal_from())?;
        if config.staged() {
            batches.check_length(config.max_seq_len())?;
        }
        let (model, optim, state, average) = starting_point(config, opts, &device, &plain);
        // Rows after the checkpoint belong to the interrupted attempt; a fresh start drops all.
        dir.truncate_rows(state.summary.steps_done)?;
        // A final model is written when this attempt completes; an earlier one is stale.
        let _ = std::fs::remove_dir_all(dir.file(crate::run::model_file::MODEL_DIR));
        let logs = RunLogs::open(&dir, &batches, !model.router_state().is_empty())?;
        for w in &state.summary.warnings {
            eprintln!("warning ({}): {w}", spec.name);
        }
        dir.write_summary(&state.summary)?;
        let bar = progress_bar(opts.progress, config.steps, state.summary.steps_done);
        Ok(Trainer {
            config: config.clone(),
            elapsed_before: state.summary.wall_time_s,
            dir,
            plain,
            device,
            batches,
            model: Some(model),
            average,
            snapshots: super::average::snapshot_steps(&spec.train, config.steps),
            optim,
            teacher,
            rope_theta: spec.model.rope_theta,
            state,
            logs,
            bar,
            progress: opts.progress,
            started: Instant::now(),
            since_log: Instant::now(),
        })
    }

    /// The next step to run, or `None` when the run is done.
    pub fn next_step(&self) -> Option<usize> {
        let step = self.state.summary.steps_done;
        (step < self.config.steps).then_some(step)
    }

    pub fn model(&self) -> &Transformer {
        self.model
            .as_ref()
            .expect("the model is back after every step")
    }

    /// Train on step `step`'s batch.
    pub fn step(&mut self, step: usize) -> Result<StepReport> {
        let t = &self.config.spec.train;
        let lr = schedule::learning_rate(t, step, self.config.steps);
        if self.progress && self.batches.anneal_from() == Some(step) {
            let msg = format!("step {step}: data mix switches to the annealing weights");
            self.bar.println(msg);
        }
        let shape = self.config.step_shape(step);
        let batch = match self.config.staged() {
            true => self.batches.train_shaped(step, shape.batch, shape.seq_len),
            false => self.batches.train(step),
        };
        let (inputs, targets) = batch.tensors(&self.device);
        if self.config.staged() {
            // Counted from the batch that runs, at its length's FLOPs per token.
            let [b, t] = inputs.dims();
            let s = &mut self.state.summary;
            s.tokens += (b * t) as u64;
            s.train_flops += self.config.train_flops_per_token_at(t) * (b * t) as f64;
        }
        let distill = (self.teacher.as_ref()).map(|t| t.target(batch.inputs(&self.plain)));
        let batch = StepBatch {
            inputs,
            targets,
            distill,
        };
        let mut model = self
            .model
            .take()
            .expect("the model is back after every step");
        if shape.rope_theta != self.rope_theta {
            // A long-context stage's new RoPE base, from its first step (or on resuming in it).
            model = model.with_rope_theta(shape.rope_theta);
            self.rope_theta = shape.rope_theta;
        }
        let out = train_step(model, &mut self.optim, batch, lr, t.grad_clip, &self.device);
        let report = self.record(step, lr, &out);
        self.model = Some(out.model);
        report
    }

    /// Log step `step` (every `log_every` steps, and a diverged one), watch for spikes.
    fn record(&mut self, step: usize, lr: f64, out: &StepOutput) -> Result<StepReport> {
        if !out.applied {
            let mem = memory::read(&self.plain);
            let progress = self.progress_after(step, 0.0);
            self.logs
                .metric(step, lr, out, &mem, [false; 2], progress)?;
            self.state.summary.status = RunStatus::Diverged;
            self.state.summary.diverged_at_step = Some(step);
            return Ok(StepReport::Diverged);
        }
        let spikes = self.observe_spikes(step, out);
        let done = step + 1;
        if done.is_multiple_of(self.config.spec.train.log_every) || done == self.config.steps {
            self.log_step(step, lr, out, spikes)?;
        }
        Ok(StepReport::Applied)
    }

    /// Feed the step's loss and gradient norm to the spike detectors; record any spike.
    fn observe_spikes(&mut self, step: usize, out: &StepOutput) -> [bool; 2] {
        let state = &mut self.state;
        let loss = state.loss_detector.observe(out.lm_loss);
        let grad = state.grad_detector.observe(out.grad_norm);
        let spikes = &mut state.summary.spikes;
        for (kind, spike) in [("loss", loss), ("grad_norm", grad)] {
            if let Some(s) = spike {
                spikes.events.push(SpikeRecord {
                    step,
                    kind: kind.into(),
                    value: s.value,
                    median: s.median,
                    score: s.score,
                });
            }
        }
        spikes.loss_spikes += loss.is_some() as usize;
        spikes.grad_norm_spikes += grad.is_some() as usize;
        let s = &mut state.summary;
        s.final_train_loss = Some(out.lm_loss);
        if let Some(d) = s.distill.as_mut() {
            d.initial_kl = d.initial_kl.or(out.distill_kl);
            d.final_kl = out.distill_kl;
        }
        if step == 0 {
            s.initial_train_loss = Some(out.lm_loss);
        } else {
            s.peak_train_loss = Some(
                s.peak_train_loss
                    .map_or(out.lm_loss, |p| p.max(out.lm_loss)),
            );
        }
        [loss.is_some(), grad.is_some()]
    }

    /// A `metrics.csv` row (throughput over the steps since the last row) and the router's
    /// state that step routed with.
    fn log_step(
        &mut self,
        step: usize,
        lr: f64,
        out: &StepOutput,
        spikes: [bool; 2],
    ) -> Result<()> {
        let log_every = self.config.spec.train.log_every;
        let steps_in_window = step % log_every + 1;
        let window = step + 1 - steps_in_window..step + 1;
        let tokens: usize = window.map(|s| self.config.step_cost(s).0).sum();
        let tps = tokens as f64 / self.since_log.elapsed().as_secs_f64().max(1e-9);
        self.since_log = Instant::now();
        let mem = memory::read(&self.plain);
        track_peaks(&mut self.state.summary.memory, &mem);
        let progress = self.progress_after(step, tps);
        self.logs.metric(step, lr, out, &mem, spikes, progress)?;
        self.bar
            .set_message(format!("loss {:.4}  {tps:.0} tok/s", out.lm_loss));
        self.logs.router_state(step, &out.router_state)
    }

    /// Cumulative tokens and training FLOPs after step `step`: of a constant shape, `step + 1`
    /// times the step's; of a staged run, the running totals the summary keeps.
    fn progress_after(&self, step: usize, tokens_per_s: f64) -> Progress {
        let s = &self.state.summary;
        let (tokens, flops) = match self.config.staged() {
            true => (s.tokens, s.train_flops),
            false => {
                let done = step + 1;
                let tokens = (done * self.config.tokens_per_step) as u64;
                (tokens, done as f64 * self.config.train_flops_per_step())
            }
        };
        Progress {
            tokens,
            flops,
            tokens_per_s,
        }
    }

    /// Whether step `step` (0-based, just run) is followed by an evaluation.
    pub fn eval_due(&self, step: usize) -> bool {
        let done = step + 1;
        done.is_multiple_of(self.config.spec.train.eval_every) || done == self.config.steps
    }

    /// Evaluate on every validation stream; log `evals.csv`, `router.csv`,
    /// `router_domains.csv`; keep the results in the summary.
    pub fn evaluate(&mut self, step: usize) -> Result<()> {
        let t = &self.config.spec.train;
        let last = step + 1 == self.config.steps;
        let count = if last {
            t.final_eval_batches(self.config.tokens_per_step)
        } else {
            t.eval_batches
        };
        let ev = evaluate(self.model(), &self.batches, count, &self.plain);
        self.logs
            .evaluation(step, &ev, self.progress_after(step, 0.0))?;
        let s = &mut self.state.summary;
        s.final_val_loss = Some(ev.val_loss);
        s.best_val_loss = Some(s.best_val_loss.map_or(ev.val_loss, |b| b.min(ev.val_loss)));
        let names = self.batches.stream_names();
        s.final_val_loss_by_stream = names.iter().cloned().zip(ev.by_stream.clone()).collect();
        s.final_answer_loss_by_stream = names
            .iter()
            .zip(&ev.answer_by_stream)
            .filter_map(|(n, l)| l.map(|l| (n.clone(), l)))
            .collect();
        s.routing_specialisation = ev.router.specialisation();
        if let (true, Some(l)) = (last, &t.long_context) {
            // The final evaluation again, on windows of the long-context stage's length.
            let long = evaluate_at(
                self.model(),
                &self.batches,
                count,
                Some(l.seq_len),
                &self.plain,
            );
            self.state.summary.final_val_loss_long_context = Some(long.val_loss);
        }
        let s = &mut self.state.summary;
        s.final_val_loss_se = Some(ev.val_loss_se);
        s.final_val_loss_se_by_stream = names.iter().cloned().zip(ev.se_by_stream).collect();
        s.final_exact_match_by_stream = names
            .iter()
            .zip(&ev.exact_by_stream)
            .filter_map(|(n, e)| {
                let (exact, answers) = (*e)?;
                let rate = exact as f64 / answers as f64;
                Some((
                    n.clone(),
                    ExactMatch {
                        exact,
                        answers,
                        rate,
                    },
                ))
            })
            .collect();
        self.since_log = Instant::now(); // evaluation time is not training throughput
        Ok(())
    }

    /// Count step `step` as done (after its evaluation, if any).
    pub fn advance(&mut self, step: usize) {
        self.bar.inc(1);
        self.state.summary.steps_done = step + 1;
        self.state.summary.wall_time_s = self.wall_time();
        if self.snapshots.contains(&step) {
            let snapshot = self.model().valid();
            self.average = Some(super::average::add(self.average.take(), &snapshot));
            self.state.averaged += 1;
        }
    }

    /// Whether a checkpoint is due now (every `checkpoint_every` steps, never at the end).
    pub fn checkpoint_due(&self) -> bool {
        let every = self.config.spec.train.checkpoint_every;
        let done = self.state.summary.steps_done;
        every > 0 && done.is_multiple_of(every) && done < self.config.steps
    }

    /// Save model, optimizer and loop state (atomically: the previous checkpoint survives a
    /// kill at any moment).
    pub fn checkpoint(&mut self) -> Result<()> {
        self.state.summary.wall_time_s = self.wall_time();
        let dir = self.dir.file(CHECKPOINT);
        let average = self.average.as_ref();
        checkpoint::save(&dir, self.model(), &self.optim, &self.state, average)
    }

    /// Stop when asked to from outside ([`super::interrupt`]): a checkpoint, and the summary
    /// as it stands (status still `running`), so `--resume` continues and `lab sweep
    /// --status` sees how far it got.
    pub fn interrupt(mut self) -> Result<Summary> {
        self.checkpoint()?;
        self.dir.write_summary(&self.state.summary)?;
        Ok(self.abandon())
    }

    /// Stop without finishing (as if killed): the summary as it stands, nothing written.
    pub fn abandon(mut self) -> Summary {
        self.bar.abandon();
        self.state.summary.wall_time_s = self.wall_time();
        self.state.summary
    }

    /// Write the final summary; a complete run's checkpoint is no longer needed.
    pub fn finish(mut self) -> Result<Summary> {
        self.bar.finish_and_clear();
        let averaged = self.averaged_model();
        let wall = self.wall_time();
        let tokens_per_step = self.config.tokens_per_step as u64;
        let s = &mut self.state.summary;
        if s.status == RunStatus::Running {
            s.status = RunStatus::Complete;
        }
        if !self.config.staged() {
            s.tokens = s.steps_done as u64 * tokens_per_step;
        }
        if let (Some(d), Some(t)) = (s.distill.as_mut(), &self.teacher) {
            d.teacher_forward_flops = s.tokens as f64 * t.forward_flops_per_token;
        }
        if !self.config.staged() {
            s.train_flops = s.steps_done as f64 * self.config.train_flops_per_step();
        }
        s.wall_time_s = wall;
        s.tokens_per_s = s.tokens as f64 / wall.max(1e-9);
        self.dir.write_summary(s)?;
        if s.status == RunStatus::Complete {
            let model = self
                .model
                .as_ref()
                .expect("the model is back after every step");
            self.dir.save_model(model)?;
            if let Some(avg) = &averaged {
                self.dir.save_averaged_model(avg)?;
            }
            checkpoint::remove_all(&self.dir.file(CHECKPOINT));
        }
        Ok(self.state.summary)
    }

    /// A completed run with checkpoint averaging: the averaged model, evaluated on the final
    /// evaluation's windows (its loss goes to the summary beside the last model's).
    fn averaged_model(&mut self) -> Option<Transformer> {
        let done = self.state.summary.status == RunStatus::Running
            && self.state.summary.steps_done == self.config.steps;
        let sum = self.average.as_ref().filter(|_| done)?;
        // With the RoPE base the snapshots trained on (a resumed sum is rebuilt at the base one).
        let avg = super::average::mean(sum, self.state.averaged).with_rope_theta(self.rope_theta);
        let t = &self.config.spec.train;
        let count = t.final_eval_batches(self.config.tokens_per_step);
        let ev = evaluate(&avg, &self.batches, count, &self.plain);
        let s = &mut self.state.summary;
        s.final_val_loss_averaged = Some(ev.val_loss);
        s.averaged_snapshots = self.state.averaged;
        let names = self.batches.stream_names();
        s.final_val_loss_by_stream_averaged = names.into_iter().zip(ev.by_stream).collect();
        Some(avg)
    }

    fn wall_time(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }
}

/// What the run starts from: the newest intact checkpoint when resuming (a corrupt or
/// unreadable one is reported and the previous one tried), else, or when none is usable, a
/// fresh model at step 0 (and the unusable checkpoints are removed).
fn starting_point(
    config: &RunConfig,
    opts: &TrainOptions,
    device: &Device,
    plain: &Device,
) -> checkpoint::Restored {
    let fresh = || {
        let state = fresh_state(config, opts);
        (
            config.init_model(device),
            optimizer(&config.spec.train),
            state,
            None,
        )
    };
    let root = opts.run_dir.file(CHECKPOINT);
    let found = match opts.resume {
        true => checkpoint::candidates(&root),
        false => Vec::new(),
    };
    let name = &config.spec.name;
    for dir in &found {
        let (model, optim, new, _) = fresh();
        match checkpoint::load(dir, model, optim, config.init_model(plain)) {
            Ok((model, optim, mut state, average)) => {
                // This attempt's own facts, not the interrupted one's.
                let (s, f) = (&mut state.summary, new.summary);
                (s.device, s.git_commit, s.lab_version) = (f.device, f.git_commit, f.lab_version);
                eprintln!(
                    "{name}: resuming from the checkpoint at step {}",
                    s.steps_done
                );
                return (model, optim, state, average);
            }
            Err(e) => eprintln!("warning ({name}): checkpoint not usable: {e:#}"),
        }
    }
    if !found.is_empty() {
        eprintln!("warning ({name}): no usable checkpoint; the run restarts from step 0");
        checkpoint::remove_all(&root);
    }
    fresh()
}

/// A checkpoint belongs to the run its directory's `config.toml` describes: resuming it under
/// another spec would splice two runs into one set of files. (Compared as specs, as the sweep
/// does: a field added since the run was written holds its default.)
fn same_run(dir: &RunDir, config: &RunConfig) -> Result<()> {
    let path = dir.file(CONFIG);
    let have = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| toml::from_str::<RunSpec>(&t).ok());
    if have.as_ref() == Some(&config.spec) {
        return Ok(());
    }
    Err(SpecError::Field {
        file: path,
        field: "--resume".into(),
        message: "the checkpoint here belongs to a run with a different configuration than \
                  the spec now asks for (edited spec, or --steps?); resume with the spec in \
                  this config.toml, or move the run directory away to start afresh"
            .into(),
    }
    .into())
}

/// The state of a run that has not started: its summary says `running`, nothing done yet.
fn fresh_state(config: &RunConfig, opts: &TrainOptions) -> LoopState {
    let spec = &config.spec;
    let analytic = crate::run::summary::AnalyticMemory::for_params(config.params.total);
    let summary = Summary {
        status: RunStatus::Running,
        name: spec.name.clone(),
        experiment: spec.experiment.clone(),
        seed: spec.seed,
        ffn: spec.ffn.name().into(),
        ffn_variant: spec.ffn.describe(),
        warnings: spec.warnings(),
        steps_planned: config.steps,
        steps_done: 0,
        tokens: 0,
        train_flops: 0.0,
        final_val_loss: None,
        best_val_loss: None,
        final_train_loss: None,
        initial_train_loss: None,
        final_val_loss_averaged: None,
        final_val_loss_long_context: None,
        averaged_snapshots: 0,
        final_val_loss_by_stream_averaged: Default::default(),
        peak_train_loss: None,
        final_val_loss_by_stream: Default::default(),
        final_answer_loss_by_stream: Default::default(),
        final_val_loss_se: None,
        final_val_loss_se_by_stream: Default::default(),
        final_exact_match_by_stream: Default::default(),
        anneal_switch_step: config.anneal_from(),
        distill: spec.distill.as_ref().map(|d| DistillSummary {
            teacher: d.teacher.display().to_string(),
            weight: d.weight,
            temperature: d.temperature,
            top_k: d.top_k,
            teacher_flops_charged: d.charge_teacher,
            ..Default::default()
        }),
        routing_specialisation: vec![],
        diverged_at_step: None,
        wall_time_s: 0.0,
        tokens_per_s: 0.0,
        spikes: Default::default(),
        memory: MemorySummary {
            analytic: Some(analytic),
            ..Default::default()
        },
        params: config.params,
        flops_per_token: config.flops,
        device: DeviceSummary {
            backend: opts.device.backend.clone(),
            adapter: opts.device.adapter.clone(),
            software: opts.device.software,
        },
        git_commit: crate::run::summary::git_commit(),
        lab_version: env!("CARGO_PKG_VERSION").into(),
    };
    LoopState {
        averaged: 0,
        loss_detector: SpikeDetector::new(&spec.stability),
        grad_detector: SpikeDetector::new(&spec.stability),
        summary,
    }
}

fn track_peaks(peaks: &mut MemorySummary, m: &memory::MemoryReading) {
    let max = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    peaks.peak_bytes_in_use = max(peaks.peak_bytes_in_use, m.bytes_in_use);
    peaks.peak_bytes_reserved = max(peaks.peak_bytes_reserved, m.bytes_reserved);
    peaks.peak_rss_bytes = max(peaks.peak_rss_bytes, m.rss_high_water_bytes.or(m.rss_bytes));
}

fn progress_bar(show: bool, total: usize, at: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} step {pos}/{len} {msg} [{elapsed} < {eta}]")
            .expect("valid template"),
    );
    bar.set_position(at as u64);
    bar
}
