//! A training run as a small type: [`Trainer::open`] sets it up (or resumes it), then
//! [`step`](Trainer::step), [`evaluate`](Trainer::evaluate) and
//! [`checkpoint`](Trainer::checkpoint) advance it and [`finish`](Trainer::finish) writes its
//! summary. The loop that calls them is `train::train`, one screen long.

use std::time::Instant;

use anyhow::Result;
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use super::checkpoint;
use super::distill::Teacher;
use super::evaluate::{evaluate, evaluate_at};
use super::logs::{Progress, RunLogs};
use super::loop_state::{AttemptFacts, LoopState};
use super::memory;
use super::options::TrainOptions;
use super::schedule;
use super::step::{StepBatch, StepOutput, optimizer, train_step};
use crate::data::{Batches, source_for};
use crate::error::SpecError;
use crate::model::Transformer;
use crate::run::RunDir;
use crate::run::dir::{CHECKPOINT, CONFIG};
use crate::run::summary::{DeviceSummary, MemorySummary, RunStatus, SpikeRecord, Summary};
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
    /// Where and from which code this attempt runs.
    attempt: AttemptFacts,
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
        // And the data: a damaged shard or a foreign token id stops the run unwritten.
        // Enough validation text for the final evaluation's windows not to repeat.
        let (t, tokens) = (spec.model.seq_len, spec.train.final_eval_tokens);
        let min_val = tokens * (t + 1) / t * 5 / 4;
        let corpus = source_for(&spec.data, min_val, spec.model.vocab_size()).load()?;
        let (seq_len, batch) = (spec.model.seq_len, spec.train.batch_size);
        let batches = Batches::new(corpus, seq_len, batch, spec.seed, config.anneal_from())?;
        if config.staged() {
            batches.check_length(config.max_seq_len())?;
        }
        dir.create()?;
        if opts.resume && !checkpoint::candidates(&dir.file(CHECKPOINT)).is_empty() {
            same_run(&dir, config)?;
        }
        dir.write_config(config)?;
        plain.seed(spec.seed);
        let device = plain.clone().autodiff();
        let (model, optim, state, average) = starting_point(config, opts, &device, &plain);
        // Rows after the checkpoint belong to the interrupted attempt; a fresh start drops all.
        dir.truncate_rows(state.steps_done)?;
        // A final model is written when this attempt completes; an earlier one is stale.
        let _ = std::fs::remove_dir_all(dir.file(crate::run::model_file::MODEL_DIR));
        let logs = RunLogs::open(&dir, &batches, !model.router_state().is_empty())?;
        for w in &spec.warnings() {
            crate::say!("warning ({}): {w}", spec.name);
        }
        let bar = progress_bar(opts.progress, config.steps, state.steps_done);
        let trainer = Trainer {
            config: config.clone(),
            elapsed_before: state.wall_time_s,
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
            attempt: AttemptFacts {
                device: DeviceSummary {
                    backend: opts.device.backend.clone(),
                    adapter: opts.device.adapter.clone(),
                    software: opts.device.software,
                },
                git_commit: crate::run::summary::git_commit(),
                lab_version: env!("CARGO_PKG_VERSION").into(),
            },
            logs,
            bar,
            progress: opts.progress,
            started: Instant::now(),
            since_log: Instant::now(),
        };
        trainer.dir.write_summary(&trainer.summary())?;
        Ok(trainer)
    }

    /// The run's summary as of now (`LoopState::summary`).
    pub fn summary(&self) -> Summary {
        let (config, attempt) = (&self.config, &self.attempt);
        self.state.summary(config, attempt, self.teacher.as_ref())
    }

    /// The next step to run, or `None` when the run is done.
    pub fn next_step(&self) -> Option<usize> {
        let step = self.state.steps_done;
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
        // Counted from the batch that runs, at its length.
        let [rows, len] = inputs.dims();
        self.state.count_step(rows, len);
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
            let progress = self.progress_after(0.0);
            self.logs
                .metric(step, lr, out, &mem, [false; 2], progress)?;
            self.state.status = RunStatus::Diverged;
            self.state.diverged_at_step = Some(step);
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
        let spikes = &mut state.spikes;
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
        state.observe_losses(step, out.lm_loss, out.distill_kl);
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
        track_peaks(&mut self.state.memory, &mem);
        let progress = self.progress_after(tps);
        self.logs.metric(step, lr, out, &mem, spikes, progress)?;
        self.bar
            .set_message(format!("loss {:.4}  {tps:.0} tok/s", out.lm_loss));
        self.logs.router_state(step, &out.router_state)
    }

    /// Cumulative tokens and training FLOPs after the steps counted so far.
    fn progress_after(&self, tokens_per_s: f64) -> Progress {
        Progress {
            tokens: self.state.tokens(),
            flops: self.state.train_flops(&self.config),
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
        self.logs.evaluation(step, &ev, self.progress_after(0.0))?;
        let names = self.batches.stream_names();
        self.state.eval.record(&names, ev);
        if let (true, Some(l)) = (last, &t.long_context) {
            // The final evaluation again, on windows of the long-context stage's length.
            let long = evaluate_at(
                self.model(),
                &self.batches,
                count,
                Some(l.seq_len),
                &self.plain,
            );
            self.state.eval.long_context_val_loss = Some(long.val_loss);
        }
        self.since_log = Instant::now(); // evaluation time is not training throughput
        Ok(())
    }

    /// Count step `step` as done (after its evaluation, if any).
    pub fn advance(&mut self, step: usize) {
        self.bar.inc(1);
        self.state.steps_done = step + 1;
        self.state.wall_time_s = self.wall_time();
        if self.snapshots.contains(&step) {
            let snapshot = self.model().valid();
            self.average = Some(super::average::add(self.average.take(), &snapshot));
            self.state.averaged += 1;
        }
    }

    /// Whether a checkpoint is due now (every `checkpoint_every` steps, never at the end).
    pub fn checkpoint_due(&self) -> bool {
        let every = self.config.spec.train.checkpoint_every;
        let done = self.state.steps_done;
        every > 0 && done.is_multiple_of(every) && done < self.config.steps
    }

    /// Save model, optimizer and loop state (atomically: the previous checkpoint survives a
    /// kill at any moment).
    pub fn checkpoint(&mut self) -> Result<()> {
        self.state.wall_time_s = self.wall_time();
        let dir = self.dir.file(CHECKPOINT);
        let average = self.average.as_ref();
        checkpoint::save(&dir, self.model(), &self.optim, &self.state, average)
    }

    /// Stop when asked to from outside ([`super::interrupt`]): a checkpoint, and the summary
    /// as it stands (status still `running`), so `--resume` continues and `lab sweep
    /// --status` sees how far it got.
    pub fn interrupt(mut self) -> Result<Summary> {
        self.checkpoint()?;
        self.dir.write_summary(&self.summary())?;
        Ok(self.abandon())
    }

    /// Stop without finishing (as if killed): the summary as it stands, nothing written.
    pub fn abandon(mut self) -> Summary {
        self.bar.abandon();
        self.state.wall_time_s = self.wall_time();
        self.summary()
    }

    /// Write the final summary; a complete run's checkpoint is no longer needed.
    pub fn finish(mut self) -> Result<Summary> {
        self.bar.finish_and_clear();
        let averaged = self.averaged_model();
        if self.state.status == RunStatus::Running {
            self.state.status = RunStatus::Complete;
        }
        self.state.wall_time_s = self.wall_time();
        let summary = self.summary();
        self.dir.write_summary(&summary)?;
        if summary.status == RunStatus::Complete {
            self.dir.save_model(self.model())?;
            if let Some(avg) = &averaged {
                self.dir.save_averaged_model(avg)?;
            }
            checkpoint::remove_all(&self.dir.file(CHECKPOINT));
        }
        Ok(summary)
    }

    /// A completed run with checkpoint averaging: the averaged model, evaluated on the final
    /// evaluation's windows (its loss goes to the summary beside the last model's).
    fn averaged_model(&mut self) -> Option<Transformer> {
        let done =
            self.state.status == RunStatus::Running && self.state.steps_done == self.config.steps;
        let sum = self.average.as_ref().filter(|_| done)?;
        // With the RoPE base the snapshots trained on (a resumed sum is rebuilt at the base one).
        let avg = super::average::mean(sum, self.state.averaged).with_rope_theta(self.rope_theta);
        let t = &self.config.spec.train;
        let count = t.final_eval_batches(self.config.tokens_per_step);
        let ev = evaluate(&avg, &self.batches, count, &self.plain);
        let e = &mut self.state.eval;
        e.averaged_val_loss = Some(ev.val_loss);
        let names = self.batches.stream_names();
        e.averaged_by_stream = names.into_iter().zip(ev.by_stream).collect();
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
        let state = LoopState::fresh(config);
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
        let (model, optim, _, _) = fresh();
        match checkpoint::load(dir, model, optim, config.init_model(plain)) {
            Ok((model, optim, mut state, average)) => {
                crate::say!(
                    "{name}: resuming from the checkpoint at step {}",
                    state.steps_done
                );
                state.resumed_from.push(state.steps_done);
                return (model, optim, state, average);
            }
            Err(e) => crate::say!("warning ({name}): checkpoint not usable: {e:#}"),
        }
    }
    if !found.is_empty() {
        crate::say!("warning ({name}): no usable checkpoint; the run restarts from step 0");
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
