//! The training loop: AdamW with decoupled weight decay on matrices only, a warmup + cosine or
//! WSD schedule, global gradient-norm clipping, periodic evaluation, spike detection, memory
//! probes, router statistics and checkpoints, all logged to a run directory.

pub mod checkpoint;
pub mod clip;
pub mod device;
pub mod memory;
pub mod router_stats;
pub mod run_dir;
pub mod schedule;
pub mod spikes;
pub mod summary;

use std::time::Instant;

use anyhow::Result;
use burn::module::ParamGroup;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::{Batches, source_for};
use crate::model::transformer::{cross_entropy, token_cross_entropy};
use crate::model::{ModelOutput, Transformer};
use crate::spec::{RunConfig, TrainSpec};
use checkpoint::LoopState;
use device::LabDevice;
use memory::AnalyticMemory;
use router_stats::RouterAccumulator;
use run_dir::{CsvLog, RunDir, opt, write_atomic};
use spikes::SpikeDetector;
use summary::{DeviceSummary, RunStatus, SpikeRecord, Summary};

/// How to run one training job.
pub struct TrainOptions {
    pub run_dir: RunDir,
    pub device: LabDevice,
    /// Show a progress bar on the terminal.
    pub progress: bool,
    /// Continue from `checkpoint/` if there is one (else start afresh).
    pub resume: bool,
    /// Stop (as if killed) after this many steps: for tests of resumption.
    pub stop_after: Option<usize>,
    /// Stop (as if killed) when the parent process goes away: a sweep's cells must not outlive
    /// the sweep, or a rerun would find a stray process writing the same run directory.
    pub exit_with_parent: bool,
}

/// The optimizer the spec asks for: AdamW, with weight decay on matrices only. Norm gains (the
/// only rank-1 parameters, all named `gamma`) go to a second group without decay.
pub fn optimizer(train: &TrainSpec) -> ModuleOptimizer {
    let adamw = |wd: f64| {
        AdamWConfig::new()
            .with_beta_1(train.beta1 as f32)
            .with_beta_2(train.beta2 as f32)
            .with_epsilon(train.eps as f32)
            .with_weight_decay(wd as f32)
    };
    adamw(train.weight_decay).init().with_group(
        ParamGroup::from_predicate("gamma"),
        adamw(0.0).build(),
        None,
    )
}

/// An evaluation: the mixture-weighted validation loss, the loss of every stream, and the
/// router's statistics on the validation batches.
pub struct Evaluation {
    pub val_loss: f64,
    pub by_stream: Vec<f64>,
    /// Loss on answer bytes only, for streams with answers (`None` for the others).
    pub answer_by_stream: Vec<Option<f64>>,
    pub router: RouterAccumulator,
}

/// Evaluate on every stream's fixed validation batches. `val_loss` weights the streams by their
/// base mixture weights (validation-only streams, such as held-out facts, are reported apart).
pub fn evaluate(
    model: &Transformer,
    batches: &Batches,
    count: usize,
    device: &Device,
) -> Evaluation {
    let valid = model.valid();
    let names = batches.stream_names();
    let mut sums = vec![(0.0f64, 0usize); names.len()];
    let mut answers = vec![(0.0f64, 0.0f64); names.len()];
    let mut router = RouterAccumulator::default();
    for vb in batches.validation(count) {
        let (x, y) = vb.batch.tensors(device);
        let out: ModelOutput = valid.forward(x);
        router.add(&out.moe, Some(vb.stream));
        let ce: Vec<f32> = token_cross_entropy(out.logits, y)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 losses");
        sums[vb.stream].0 += ce.iter().map(|v| *v as f64).sum::<f64>() / ce.len() as f64;
        sums[vb.stream].1 += 1;
        if let Some(mask) = &vb.batch.answer_mask {
            for (l, m) in ce.iter().zip(mask) {
                answers[vb.stream].0 += (*l * *m) as f64;
                answers[vb.stream].1 += *m as f64;
            }
        }
    }
    let by_stream: Vec<f64> = sums.iter().map(|(s, n)| s / (*n).max(1) as f64).collect();
    let answer_by_stream: Vec<Option<f64>> = answers
        .iter()
        .map(|(s, n)| (*n > 0.0).then(|| s / n))
        .collect();
    let weights = batches.weights();
    let total: f64 = weights.iter().sum();
    let val_loss = by_stream
        .iter()
        .zip(&weights)
        .map(|(l, w)| l * w)
        .sum::<f64>()
        / total;
    Evaluation {
        val_loss,
        by_stream,
        answer_by_stream,
        router,
    }
}

/// What one optimisation step measured.
pub struct StepOutput {
    pub model: Transformer,
    pub lm_loss: f64,
    pub balance_loss: f64,
    pub z_loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// False when the loss or gradient was non-finite: the update was skipped.
    pub applied: bool,
    /// Router state this step routed with (before its update), read in the same read-back
    /// as the scalars: (block, quantity, per-expert values). Empty for most routers.
    pub router_state: Vec<(usize, &'static str, Vec<f64>)>,
}

/// One step: forward, losses, backward, global-norm clipping, AdamW update, the routers'
/// after-step updates. The only host read-back is the four scalars returned (with any router
/// state), read once after the step's work is queued.
pub fn train_step(
    model: Transformer,
    optim: &mut ModuleOptimizer,
    inputs: Tensor<2, Int>,
    targets: Tensor<2, Int>,
    lr: f64,
    grad_clip: f64,
    device: &Device,
) -> StepOutput {
    let out = model.forward(inputs);
    let lm = cross_entropy(out.logits.clone(), targets);
    let (balance, z) = out.aux_losses();
    let loss = lm.clone() + balance.clone() + z.clone();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let norm = clip::global_norm(&model, &grads, device);
    let state = model.router_state();
    let mut logged = vec![
        lm.detach(),
        balance.detach(),
        z.detach(),
        norm.clone().detach(),
    ];
    logged.extend(state.iter().map(|(_, _, t)| t.clone()));
    let scalars: Vec<f32> = Tensor::cat(logged, 0)
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 scalars");
    let mut at = 4;
    let router_state = state
        .iter()
        .map(|(layer, name, t)| {
            let n = t.dims()[0];
            let values = scalars[at..at + n].iter().map(|v| *v as f64).collect();
            at += n;
            (*layer, *name, values)
        })
        .collect();
    let [lm_loss, balance_loss, z_loss, grad_norm] = [0, 1, 2, 3].map(|i| scalars[i] as f64);
    let finite = (lm_loss + balance_loss + z_loss).is_finite() && grad_norm.is_finite();
    if !finite {
        return StepOutput {
            model,
            lm_loss,
            balance_loss,
            z_loss,
            grad_norm,
            applied: false,
            router_state,
        };
    }
    let grads = if grad_clip > 0.0 {
        clip::clip_to(&model, grads, norm, grad_clip)
    } else {
        grads
    };
    let model = optim.step(lr, model, grads).after_step(&out.moe);
    StepOutput {
        model,
        lm_loss,
        balance_loss,
        z_loss,
        grad_norm,
        applied: true,
        router_state,
    }
}

/// Train the run `config` describes; write its run directory; return its summary. A diverged
/// run returns `Ok` with `status = Diverged`.
pub fn train(config: &RunConfig, opts: TrainOptions) -> Result<Summary> {
    let spec = &config.spec;
    let t = &spec.train;
    let dir = &opts.run_dir;
    dir.create()?;
    write_atomic(&dir.file(run_dir::CONFIG), config.spec_toml().as_bytes())?;

    let plain = opts.device.device.clone();
    plain.seed(spec.seed);
    let device = plain.clone().autodiff();
    let corpus = source_for(&spec.data).load()?;
    let batches = Batches::new(
        corpus,
        spec.model.seq_len,
        t.batch_size,
        spec.seed,
        config.anneal_from(),
    )?;
    let stream_names = batches.stream_names();

    let mut model = Transformer::new(config, &device);
    let mut optim = optimizer(t);
    let analytic = AnalyticMemory::for_params(config.params.total);
    let ckpt_dir = dir.file(run_dir::CHECKPOINT);

    let mut state = LoopState {
        next_step: 0,
        elapsed_s: 0.0,
        best_val_loss: None,
        last_val_loss: None,
        last_train_loss: None,
        last_val_by_stream: Default::default(),
        last_answer_by_stream: Default::default(),
        specialisation: vec![],
        loss_detector: SpikeDetector::new(&spec.stability),
        grad_detector: SpikeDetector::new(&spec.stability),
        spikes: Default::default(),
        memory: summary::MemorySummary {
            analytic: Some(analytic),
            ..Default::default()
        },
    };
    let resumed_from = match (opts.resume, checkpoint::find(&ckpt_dir)) {
        (true, Some(found)) => {
            let (m, o, s) = checkpoint::load(&found, model, optim)?;
            (model, optim, state) = (m, o, s);
            Some(state.next_step)
        }
        _ => None,
    };
    // Rows after the checkpoint belong to the interrupted attempt: drop them; a fresh start
    // drops everything.
    let keep_below = resumed_from.unwrap_or(0);
    for name in [
        run_dir::METRICS,
        run_dir::EVALS,
        run_dir::ROUTER,
        run_dir::ROUTER_DOMAINS,
        run_dir::ROUTER_STATE,
    ] {
        truncate_rows(&dir.file(name), keep_below)?;
    }
    let mut metrics = CsvLog::open(&dir.file(run_dir::METRICS), run_dir::METRICS_HEADER)?;
    let evals_header: Vec<String> = run_dir::EVALS_HEADER
        .iter()
        .map(|h| h.to_string())
        .chain(stream_names.iter().map(|n| format!("val_loss_{n}")))
        .chain(
            batches
                .answer_streams()
                .iter()
                .map(|&i| format!("answer_loss_{}", stream_names[i])),
        )
        .collect();
    let mut evals = CsvLog::open(&dir.file(run_dir::EVALS), &evals_header)?;
    let mut router_log = CsvLog::open(&dir.file(run_dir::ROUTER), run_dir::ROUTER_HEADER)?;
    let mut domain_log = CsvLog::open(
        &dir.file(run_dir::ROUTER_DOMAINS),
        run_dir::ROUTER_DOMAINS_HEADER,
    )?;

    let warnings = spec.ffn.warnings();
    for w in &warnings {
        eprintln!("warning ({}): {w}", spec.name);
    }
    let mut state_log = if model.router_state().is_empty() {
        None
    } else {
        Some(CsvLog::open(
            &dir.file(run_dir::ROUTER_STATE),
            run_dir::ROUTER_STATE_HEADER,
        )?)
    };
    let mut summary = Summary {
        status: RunStatus::Running,
        name: spec.name.clone(),
        experiment: spec.experiment.clone(),
        seed: spec.seed,
        ffn: spec.ffn.name().into(),
        ffn_variant: spec.ffn.describe(),
        warnings,
        steps_planned: config.steps,
        steps_done: state.next_step,
        tokens: 0,
        train_flops: 0.0,
        final_val_loss: None,
        best_val_loss: None,
        final_train_loss: None,
        final_val_loss_by_stream: Default::default(),
        final_answer_loss_by_stream: Default::default(),
        anneal_switch_step: config.anneal_from(),
        routing_specialisation: vec![],
        diverged_at_step: None,
        wall_time_s: 0.0,
        tokens_per_s: 0.0,
        spikes: Default::default(),
        memory: Default::default(),
        params: config.params,
        flops_per_token: config.flops,
        device: DeviceSummary {
            backend: opts.device.backend.clone(),
            adapter: opts.device.adapter.clone(),
            software: opts.device.software,
        },
        git_commit: summary::git_commit(),
        lab_version: env!("CARGO_PKG_VERSION").into(),
    };
    write_summary(dir, &summary)?;

    let bar = progress_bar(opts.progress, config.steps, state.next_step);
    let started = Instant::now();
    let elapsed_before = state.elapsed_s;
    let mut since_log = Instant::now();
    let mut status = RunStatus::Complete;
    let tokens_per_step = config.tokens_per_step as u64;
    let flops_per_step = config.train_flops_per_step();

    let parent = std::os::unix::process::parent_id();
    let mut step = state.next_step;
    while step < config.steps {
        let orphaned = opts.exit_with_parent && std::os::unix::process::parent_id() != parent;
        if orphaned || opts.stop_after.is_some_and(|n| step >= n) {
            bar.abandon();
            state.elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
            summary.steps_done = step;
            return Ok(summary);
        }
        let lr = schedule::learning_rate(t, step, config.steps);
        if opts.progress && batches.anneal_from() == Some(step) {
            bar.println(format!(
                "step {step}: data mix switches to the annealing weights"
            ));
        }
        let batch = batches.train(step);
        let (x, y) = batch.tensors(&device);
        let out = train_step(model, &mut optim, x, y, lr, t.grad_clip, &device);
        model = out.model;
        let (lm_v, bal_v, z_v, norm_v) = (out.lm_loss, out.balance_loss, out.z_loss, out.grad_norm);
        if !out.applied {
            status = RunStatus::Diverged;
            summary.diverged_at_step = Some(step);
            metrics.row(&metric_row(
                step,
                tokens_per_step,
                flops_per_step,
                lr,
                [lm_v, bal_v, z_v, norm_v],
                0.0,
                &memory::read(&plain),
                false,
                false,
            ))?;
            break;
        }

        let loss_spike = state.loss_detector.observe(lm_v);
        let grad_spike = state.grad_detector.observe(norm_v);
        for (kind, spike) in [("loss", loss_spike), ("grad_norm", grad_spike)] {
            if let Some(s) = spike {
                state.spikes.events.push(SpikeRecord {
                    step,
                    kind: kind.into(),
                    value: s.value,
                    median: s.median,
                    score: s.score,
                });
            }
        }
        state.spikes.loss_spikes += loss_spike.is_some() as usize;
        state.spikes.grad_norm_spikes += grad_spike.is_some() as usize;
        state.last_train_loss = Some(lm_v);

        let done = step + 1;
        if done % t.log_every == 0 || done == config.steps {
            let steps_in_window = (done - 1) % t.log_every + 1;
            let tps = (steps_in_window as u64 * tokens_per_step) as f64
                / since_log.elapsed().as_secs_f64().max(1e-9);
            since_log = Instant::now();
            let mem = memory::read(&plain);
            track_peaks(&mut state.memory, &mem);
            metrics.row(&metric_row(
                step,
                tokens_per_step,
                flops_per_step,
                lr,
                [lm_v, bal_v, z_v, norm_v],
                tps,
                &mem,
                loss_spike.is_some(),
                grad_spike.is_some(),
            ))?;
            bar.set_message(format!("loss {lm_v:.4}  {tps:.0} tok/s"));
            if let Some(log) = state_log.as_mut() {
                log_router_state(log, step, &out.router_state)?;
            }
        }
        if done % t.eval_every == 0 || done == config.steps {
            let ev = evaluate(&model, &batches, t.eval_batches, &plain);
            let val = ev.val_loss;
            state.last_val_loss = Some(val);
            state.best_val_loss = Some(state.best_val_loss.map_or(val, |b| b.min(val)));
            let mut row = vec![
                step.to_string(),
                (done as u64 * tokens_per_step).to_string(),
                format!("{:.6e}", done as f64 * flops_per_step),
                format!("{val:.6}"),
            ];
            row.extend(ev.by_stream.iter().map(|l| format!("{l:.6}")));
            row.extend(
                batches
                    .answer_streams()
                    .iter()
                    .map(|&i| opt(ev.answer_by_stream[i].map(|l| format!("{l:.6}")))),
            );
            evals.row(&row)?;
            for row in ev.router.rows(step) {
                router_log.row(&row)?;
            }
            for row in ev.router.domain_rows(step, &stream_names) {
                domain_log.row(&row)?;
            }
            state.last_val_by_stream = stream_names
                .iter()
                .cloned()
                .zip(ev.by_stream.iter().cloned())
                .collect();
            state.last_answer_by_stream = stream_names
                .iter()
                .zip(&ev.answer_by_stream)
                .filter_map(|(n, l)| l.map(|l| (n.clone(), l)))
                .collect();
            state.specialisation = ev.router.specialisation();
            since_log = Instant::now(); // evaluation time is not training throughput
        }
        bar.inc(1);
        step = done;
        state.next_step = step;
        if t.checkpoint_every > 0 && step % t.checkpoint_every == 0 && step < config.steps {
            state.elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
            checkpoint::save(&ckpt_dir, &model, &optim, &state)?;
        }
    }
    bar.finish_and_clear();

    let wall = elapsed_before + started.elapsed().as_secs_f64();
    summary.status = status;
    summary.steps_done = step;
    summary.tokens = step as u64 * tokens_per_step;
    summary.train_flops = step as f64 * flops_per_step;
    summary.final_val_loss = state.last_val_loss;
    summary.best_val_loss = state.best_val_loss;
    summary.final_train_loss = state.last_train_loss;
    summary.final_val_loss_by_stream = state.last_val_by_stream.clone();
    summary.final_answer_loss_by_stream = state.last_answer_by_stream.clone();
    summary.routing_specialisation = state.specialisation.clone();
    summary.wall_time_s = wall;
    summary.tokens_per_s = summary.tokens as f64 / wall.max(1e-9);
    summary.spikes = state.spikes;
    summary.memory = state.memory;
    write_summary(dir, &summary)?;
    if status == RunStatus::Complete {
        let _ = std::fs::remove_dir_all(&ckpt_dir);
    }
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn metric_row(
    step: usize,
    tokens_per_step: u64,
    flops_per_step: f64,
    lr: f64,
    [lm, bal, z, norm]: [f64; 4],
    tokens_per_s: f64,
    mem: &memory::MemoryReading,
    loss_spike: bool,
    grad_spike: bool,
) -> Vec<String> {
    let done = step as u64 + 1;
    vec![
        step.to_string(),
        (done * tokens_per_step).to_string(),
        format!("{:.6e}", done as f64 * flops_per_step),
        format!("{lr:.6e}"),
        format!("{lm:.6}"),
        format!("{bal:.6e}"),
        format!("{z:.6e}"),
        format!("{norm:.6e}"),
        format!("{tokens_per_s:.1}"),
        opt(mem.bytes_in_use),
        opt(mem.bytes_reserved),
        opt(mem.rss_bytes),
        (loss_spike as u8).to_string(),
        (grad_spike as u8).to_string(),
    ]
}

fn track_peaks(peaks: &mut summary::MemorySummary, m: &memory::MemoryReading) {
    let max = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    peaks.peak_bytes_in_use = max(peaks.peak_bytes_in_use, m.bytes_in_use);
    peaks.peak_bytes_reserved = max(peaks.peak_bytes_reserved, m.bytes_reserved);
    peaks.peak_rss_bytes = max(peaks.peak_rss_bytes, m.rss_bytes);
}

/// `router_state.csv` rows of one step: a row per (block, quantity, expert).
fn log_router_state(
    log: &mut CsvLog,
    step: usize,
    state: &[(usize, &'static str, Vec<f64>)],
) -> Result<()> {
    for (layer, name, values) in state {
        for (expert, v) in values.iter().enumerate() {
            log.row(&[
                step.to_string(),
                layer.to_string(),
                name.to_string(),
                expert.to_string(),
                format!("{v:.6e}"),
            ])?;
        }
    }
    Ok(())
}

fn write_summary(dir: &RunDir, summary: &Summary) -> Result<()> {
    write_atomic(
        &dir.file(run_dir::SUMMARY),
        serde_json::to_string_pretty(summary)?.as_bytes(),
    )
}

/// Keep the header and the rows whose `step` (first column) is below `below`.
fn truncate_rows(path: &std::path::Path, below: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Ok(());
    };
    let mut kept = format!("{header}\n");
    for line in lines {
        let step: Option<usize> = line.split(',').next().and_then(|s| s.parse().ok());
        if step.is_some_and(|s| s < below) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    write_atomic(path, kept.as_bytes())
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
