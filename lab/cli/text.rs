//! Text the CLI prints: FLOP tables, device lists, run summaries.

use std::fmt::Write;
use std::path::Path;

use crate::compute::relative_gap;
use crate::model::ffn::moe::Dispatch;
use crate::model::{model_shape, model_shape_with};
use crate::run::Summary;
use crate::spec::{FfnSpec, RunConfig, RunSpec, resolve_spec};
use crate::train::device::AdapterInfo;

fn si(x: f64) -> String {
    let (v, unit) = match x.abs() {
        a if a >= 1e12 => (x / 1e12, "T"),
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    format!("{v:.3}{unit}")
}

/// Parameter and FLOP counts of a resolved spec, and for a matched dense arm its gap to the MoE.
pub fn flops_table(path: &Path, c: &RunConfig) -> String {
    let mut s = String::new();
    let p = &c.params;
    let _ = writeln!(s, "{} ({})", c.spec.name, path.display());
    let _ = writeln!(s, "  ffn: {}", c.spec.ffn.summary_line());
    for w in c.spec.warnings() {
        let _ = writeln!(s, "  warning: {w}");
    }
    let _ = writeln!(
        s,
        "  params: total {} ({})  active {} ({})  embedding {}",
        p.total,
        si(p.total as f64),
        p.active,
        si(p.active as f64),
        p.embedding
    );
    flop_lines(&mut s, c);
    dispatch_lines(&mut s, c);
    let mib = |b: u64| format!("{:.1}", b as f64 / 1_048_576.0);
    for (shape, m) in c.step_memories() {
        let at = match c.staged() {
            true => format!(" at {} × {}", shape.batch, shape.seq_len),
            false => String::new(),
        };
        let _ = writeln!(
            s,
            "  memory per step{at} (estimate, MiB): params {} + grads {} + AdamW {} + activations {} = {}; largest tensor {} ({})",
            mib(m.params),
            mib(m.grads),
            mib(m.optimizer),
            mib(m.activations),
            mib(m.total()),
            mib(m.largest_tensor),
            m.largest_kind.describe(),
        );
    }
    let per_step = match c.staged() {
        true => "staged".to_string(),
        false => format!("{} tokens", c.tokens_per_step),
    };
    let _ = writeln!(
        s,
        "  length: {} steps × {per_step} = {} tokens, {:.4e} training FLOPs",
        c.steps,
        c.total_tokens(),
        c.total_train_flops()
    );
    stage_lines(&mut s, c);
    match_line(&mut s, path, c);
    s
}

/// The vocabulary, and forward FLOPs per token by matmul with each one's share.
fn flop_lines(s: &mut String, c: &RunConfig) {
    let f = &c.flops;
    let _ = writeln!(
        s,
        "  vocabulary: {} ({}); the embedding lookup is free, the LM head counted",
        c.spec.model.vocab_size(),
        match &c.spec.data.tokenizer {
            Some(t) => t.display().to_string(),
            None => "bytes".into(),
        }
    );
    let _ = writeln!(
        s,
        "  forward FLOPs/token, by matmul (share of the forward):"
    );
    for (name, v) in [
        ("attention q/k/v/o", f.attention_projections),
        ("attention QKᵀ + AV", f.attention_scores),
        ("dense FFN", f.dense_ffn),
        ("router", f.router),
        ("active experts", f.moe_experts_active),
        ("LM head", f.lm_head),
    ] {
        if v > 0.0 {
            let share = 100.0 * v / f.forward_per_token;
            let _ = writeln!(s, "    {name:<22} {v:>14.0}  {share:>5.1}%");
        }
    }
    let _ = writeln!(
        s,
        "    {:<22} {:>14.0}",
        "forward total", f.forward_per_token
    );
    let _ = writeln!(
        s,
        "  training FLOPs/token (3 × forward): {:.0}",
        f.train_per_token
    );
}

/// A staged run's shapes: each distinct (sequences, length, RoPE base) and its steps.
fn stage_lines(s: &mut String, c: &RunConfig) {
    if !c.staged() {
        return;
    }
    let mut runs: Vec<(usize, usize, crate::spec::stages::StepShape)> = Vec::new();
    for step in 0..c.steps {
        let shape = c.step_shape(step);
        match runs.last_mut() {
            Some((_, end, last)) if *last == shape => *end = step,
            _ => runs.push((step, step, shape)),
        }
    }
    // A ramp has a shape per step: show its first and last, and the stages after it.
    let ramp = c.spec.train.batch_ramp.is_some();
    for (i, (from, to, shape)) in runs.iter().enumerate() {
        let show = !ramp
            || i == 0
            || shape.batch == c.spec.train.batch_size
            || shape.seq_len > c.spec.model.seq_len;
        if show {
            let _ = writeln!(
                s,
                "    steps {from}–{to}: {} × {} tokens, RoPE base {}, {:.0} training FLOPs/token",
                shape.batch,
                shape.seq_len,
                shape.rope_theta,
                c.train_flops_per_token_at(shape.seq_len)
            );
        }
    }
}

/// What the MoE dispatch executes, against the counted active expert FLOPs.
fn dispatch_lines(s: &mut String, c: &RunConfig) {
    let f = &c.flops;
    if f.moe_executed_expert_flops > 0.0 {
        let _ = writeln!(
            s,
            "  dispatch executes {:.0} expert FLOPs/token ({:.2}× the active experts')",
            f.moe_executed_expert_flops,
            f.moe_executed_expert_flops / f.moe_experts_active
        );
        let buffered = model_shape_with(
            &c.spec.model,
            &c.spec.ffn,
            c.tokens_per_step,
            Dispatch::Buffered,
        )
        .flops();
        if buffered.moe_executed_expert_flops != f.moe_executed_expert_flops {
            let _ = writeln!(
                s,
                "    (through the grouped matmul, flex and wgpu; a backend without it would \
                 execute {:.0}, {:.2}×, with per-expert buffers)",
                buffered.moe_executed_expert_flops,
                buffered.moe_executed_expert_flops / buffered.moe_experts_active
            );
        }
    }
}

/// For a dense arm matched to an MoE, how far apart their active FLOPs are.
fn match_line(s: &mut String, path: &Path, c: &RunConfig) {
    let f = &c.flops;
    if let FfnSpec::Dense(dense) = &c.spec.ffn
        && let Some(moe) = &dense.match_moe
    {
        let moe_spec = RunSpec {
            ffn: FfnSpec::Moe(moe.clone()),
            ..c.spec.clone()
        };
        if let Ok(m) = resolve_spec(moe_spec, path, Path::new(".")) {
            let shape = model_shape(&m.spec.model, &m.spec.ffn, m.tokens_per_step);
            let (ours, theirs) = (f.forward_per_token, shape.flops().forward_per_token);
            let _ = writeln!(
                s,
                "  matched to MoE [ffn.match]: dense {ours:.0} vs MoE {theirs:.0} active \
                 FLOPs/token ({:.3}% apart; MoE total params {})",
                100.0 * relative_gap(ours, theirs),
                shape.params().total
            );
        }
    }
}

pub fn devices_table(adapters: &[AdapterInfo]) -> String {
    let mut s = String::from("device     backend  type           max buffer  name\n");
    s.push_str(
        "flex       cpu      Cpu            –           burn flex (pure-Rust CPU backend)\n",
    );
    for a in adapters {
        let choice = if a.is_hardware { "wgpu" } else { "wgpu-cpu" };
        let buffer = format!("{} MiB", a.max_buffer_bytes >> 20);
        let _ = writeln!(
            s,
            "{choice:<10} {:<8} {:<14} {buffer:<11} {}",
            a.backend, a.device_type, a.name
        );
    }
    if !crate::train::device::WGPU_BUILT {
        let _ = writeln!(
            s,
            "(no wgpu: {}; --device auto uses flex)",
            crate::train::device::WGPU_HOWTO
        );
    } else if !adapters.iter().any(|a| a.is_hardware) {
        s.push_str("(no hardware GPU adapter: --device auto uses flex)\n");
    }
    s
}

pub fn summary_line(s: &Summary) -> String {
    format!(
        "{}: {:?} after {}/{} steps; final val loss {}; {:.0} tokens/s; {:.1} s; spikes: {} loss, {} grad-norm",
        s.name,
        s.status,
        s.steps_done,
        s.steps_planned,
        s.final_val_loss.map_or("-".into(), |v| format!("{v:.4}")),
        s.tokens_per_s,
        s.wall_time_s,
        s.spikes.loss_spikes,
        s.spikes.grad_norm_spikes
    )
}

/// The cells of a sweep plan, one line each.
pub fn plan_table(plan: &crate::sweep::Plan) -> String {
    let mut s = format!(
        "{} (preset {}) → results/{}\n{:<24} {:>10} {:>10} {:>8} {:>10} {:>12}\n",
        plan.experiment.name,
        plan.preset,
        plan.results_name,
        "cell",
        "params",
        "active",
        "steps",
        "tokens",
        "train FLOPs"
    );
    let mut total = 0.0;
    for c in &plan.cells {
        let cfg = &c.config;
        total += cfg.total_train_flops();
        let _ = writeln!(
            s,
            "{:<24} {:>10} {:>10} {:>8} {:>10} {:>12.3e}",
            c.name(),
            cfg.params.total,
            cfg.params.active,
            cfg.steps,
            cfg.total_tokens(),
            cfg.total_train_flops()
        );
    }
    let _ = writeln!(
        s,
        "{} cells, {:.3e} training FLOPs in all",
        plan.cells.len(),
        total
    );
    s
}

/// Sample lines of every generated domain, and single-core generation throughput.
pub fn corpus_report(bytes: usize, samples: usize, seed: u64) -> String {
    use crate::data::corpus::{CorpusConfig, Domain, Generator, Split};
    let spec = crate::spec::DataSpec::default();
    let generator = Generator::new(&CorpusConfig {
        seed,
        entities: spec.entities,
        heldout_facts: spec.heldout_facts,
    });
    let mut s = String::new();
    for d in Domain::ALL {
        let split = if d == Domain::KnowledgeHeldout {
            Split::Val
        } else {
            Split::Train
        };
        let text = generator.text(d, split, 2000);
        let _ = writeln!(
            s,
            "{} ({}):",
            d.name(),
            if split == Split::Val {
                "validation only"
            } else {
                "training"
            }
        );
        for line in String::from_utf8_lossy(&text).lines().take(samples) {
            let _ = writeln!(s, "    {line}");
        }
    }
    let _ = writeln!(
        s,
        "\ngeneration speed, one core, {} MB per domain:",
        bytes / 1_000_000
    );
    let mut total_bytes = 0usize;
    let start = std::time::Instant::now();
    for d in Domain::TRAINING {
        let t0 = std::time::Instant::now();
        let n = generator.text(d, Split::Train, bytes).len();
        let secs = t0.elapsed().as_secs_f64();
        total_bytes += n;
        let _ = writeln!(
            s,
            "    {:<13} {:>8.1} MB/s",
            d.name(),
            n as f64 / secs / 1e6
        );
    }
    let _ = writeln!(
        s,
        "    {:<13} {:>8.1} MB/s",
        "all",
        total_bytes as f64 / start.elapsed().as_secs_f64() / 1e6
    );
    s
}

/// What a sweep did: cells run, skipped, diverged, failed and left, and how long it took.
pub fn sweep_outcome(o: &crate::sweep::SweepOutcome) -> String {
    let mut s = format!(
        "ran {} cells, skipped {} finished, {} diverged (non-finite loss), {} failed, {} left for a rerun ({})",
        o.ran.len(),
        o.skipped.len(),
        o.diverged.len(),
        o.failed.len(),
        o.pending.len(),
        crate::sweep::runner::format_duration(o.wall_time_s)
    );
    for d in &o.diverged {
        let _ = write!(s, "\n  diverged: {d} (reported, not retried)");
    }
    for (name, err) in &o.failed {
        let _ = write!(s, "\n  failed: {name}: {err}");
    }
    s
}

/// What a `lab sample` cost: tokens, time, rate, window shifts, peak memory.
pub fn sample_line(s: &crate::sample::SampleStats, device: &str) -> String {
    let peak = crate::train::memory::read_peak_rss()
        .map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1_048_576.0));
    format!(
        "{} tokens in {:.2} s ({:.0} tokens/s) on {device}; context window shifted {} times; \
         peak RSS {peak}",
        s.tokens,
        s.seconds,
        s.tokens as f64 / s.seconds.max(1e-9),
        s.window_shifts
    )
}

/// What `lab export` wrote, and that it reloads to the same logits.
pub fn export_line(e: &crate::export::Exported) -> String {
    format!(
        "{} ({}): {} tensors, {:.2} MiB of weights, {} reference windows; reloaded through \
         burn-store, logits max |diff| {:.1e}. Check with transformers: \
         python3 scripts/hf-check.py {}",
        e.dir.display(),
        e.architecture.class(),
        e.tensors,
        e.weight_bytes as f64 / 1_048_576.0,
        e.reference_windows,
        e.reload_max_abs_diff,
        e.dir.display()
    )
}

/// What `lab sweep --slurm` wrote and, once submitted, the job ids.
pub fn slurm_scripts(
    s: &crate::sweep::slurm::SlurmScripts,
    submitted: Option<&crate::sweep::slurm::Submitted>,
) -> String {
    let mut out = match &s.teacher {
        Some(t) => format!("the teacher → {}\n", t.display()),
        None => String::new(),
    };
    out += &match &s.array {
        Some(a) => format!("{} cells → {}\n", s.cells.len(), a.display()),
        None => "every cell is finished: no array job\n".to_string(),
    };
    out += &format!("analysis → {}\n", s.analysis.display());
    match submitted {
        Some(sub) => {
            if let Some(id) = &sub.teacher_job {
                out += &format!("submitted teacher job {id} (the array waits for it: afterok)\n");
            }
            if let Some(id) = &sub.array_job {
                out += &format!("submitted array job {id} ({} tasks)\n", sub.cells.len());
            }
            out += &format!(
                "submitted analysis job {} (after the array ends)\nfollow: lab sweep … --status; \
                 logs in {}/logs",
                sub.analysis_job,
                s.dir.display()
            );
        }
        None => {
            let array = s.array.as_ref().map(|a| a.display().to_string());
            out += &format!(
                "not submitted (--dry-run): sbatch --parsable {}, then sbatch \
                 --dependency=afterany:<array id> {}",
                array.unwrap_or_else(|| "(no array)".into()),
                s.analysis.display()
            );
        }
    }
    out
}

/// `lab sweep --status`: one line per cell and the counts.
pub fn status_table(cells: &[crate::sweep::status::CellStatus]) -> String {
    use crate::sweep::status::CellState;
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut out = format!(
        "{:<28} {:<12} {:<14} {}\n",
        "cell", "state", "steps", "slurm"
    );
    for c in cells {
        let (state, steps, note) = match &c.state {
            CellState::Done => ("done", format!("{0}/{0}", c.steps), String::new()),
            CellState::Diverged => ("diverged", "-".into(), String::new()),
            CellState::Running(h) => ("running", "-".into(), h.clone()),
            CellState::Interrupted { steps_done } => (
                "interrupted",
                format!("{steps_done}/{}", c.steps),
                String::new(),
            ),
            CellState::Failed(s) => ("failed", "-".into(), s.clone()),
            CellState::Pending => ("pending", format!("0/{}", c.steps), String::new()),
        };
        *counts.entry(state).or_default() += 1;
        let slurm = c.slurm.clone().unwrap_or(note);
        out += &format!("{:<28} {:<12} {:<14} {slurm}\n", c.name, state, steps);
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    out + &summary.join(", ")
}

/// Where the report and page are, and the verdict lines.
pub(super) fn print_verdicts(p: &crate::publish::Published) {
    println!("report: {}", p.report.display());
    println!("page:   {}", p.page.display());
    for line in &p.verdicts {
        println!("- {line}");
    }
}
