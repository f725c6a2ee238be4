//! `lab bench`: step time of the dense arm against MoE arms at matched active FLOPs, and of the
//! MoE layer alone against the dense FFN alone, on one device; MFU against a large-matmul peak
//! measured in the same process. Warm-up steps are excluded (the first step, which on wgpu pays
//! shader compilation and autotune, is reported apart); the device is synchronised before each
//! clock read; the median and interquartile range of the timed steps are reported.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;

use crate::model::ffn::moe::Dispatch;
use crate::model::ffn::{FfnInput, MoeAux};
use crate::run::write_atomic;
use crate::spec::{
    Capacity, DataSpec, DenseSpec, DffSpec, FfnSpec, MatchRule, ModelSpec, MoeSpec, RunConfig,
    RunSpec, StabilitySpec, TrainSpec, resolve_spec,
};
use crate::train::device::LabDevice;
use crate::train::{StepBatch, optimizer, train_step};

pub struct BenchOptions {
    pub d_models: Vec<usize>,
    pub layers: usize,
    pub seq_len: usize,
    pub batch: usize,
    pub warmup: usize,
    pub steps: usize,
    pub out: std::path::PathBuf,
}

/// Median and interquartile range of a set of timings, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub first_s: f64,
    pub median_s: f64,
    pub p25_s: f64,
    pub p75_s: f64,
}

fn summarise(first_s: f64, mut times: Vec<f64>) -> Timing {
    times.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    Timing {
        first_s,
        median_s: q(0.5),
        p25_s: q(0.25),
        p75_s: q(0.75),
    }
}

/// Time `f` (which must leave its work queued on `device`) `warmup + steps` times.
fn time(device: &Device, warmup: usize, steps: usize, mut f: impl FnMut()) -> Timing {
    let mut first = 0.0;
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        device.sync().ok();
        let t0 = Instant::now();
        f();
        device.sync().ok();
        let dt = t0.elapsed().as_secs_f64();
        if i == 0 {
            first = dt;
        }
        if i >= warmup {
            times.push(dt);
        }
    }
    summarise(first, times)
}

/// Peak f32 matmul throughput of the device: an n×n by n×n product, median of 5.
pub fn matmul_peak(device: &Device, n: usize) -> f64 {
    let a = Tensor::<2>::random([n, n], burn::tensor::Distribution::Normal(0.0, 1.0), device);
    let b = Tensor::<2>::random([n, n], burn::tensor::Distribution::Normal(0.0, 1.0), device);
    let t = time(device, 2, 5, || {
        let _ = a.clone().matmul(b.clone());
    });
    2.0 * (n as f64).powi(3) / t.median_s
}

fn arm_spec(d: usize, opts: &BenchOptions, ffn: FfnSpec, name: &str) -> Result<RunConfig> {
    let heads = (d / 64).max(4);
    let spec = RunSpec {
        name: name.into(),
        experiment: "bench".into(),
        seed: 0,
        model: ModelSpec {
            d_model: d,
            n_layers: opts.layers,
            n_heads: heads,
            n_kv_heads: Some(heads / 2),
            seq_len: opts.seq_len,
            rope_theta: 10_000.0,
            tie_embeddings: false,
            norm_eps: 1e-5,
            init: None,
            vocab_size: None,
        },
        ffn,
        train: TrainSpec {
            batch_size: opts.batch,
            steps: Some(opts.warmup + opts.steps),
            ..TrainSpec::default()
        },
        stability: StabilitySpec::default(),
        data: DataSpec::default(),
        distill: None,
    };
    Ok(resolve_spec(spec, Path::new("(bench)"), Path::new("."))?)
}

/// The bench's arms at one width: K = 8, k = 2 experts of 2·d (so the matched dense d_ff ≈ 4·d),
/// dropless and with capacity factor 1.25, and the dense arm matched on active FLOPs.
fn arms(d: usize, opts: &BenchOptions) -> Result<Vec<RunConfig>> {
    let moe = |capacity| MoeSpec {
        capacity,
        ..MoeSpec::new(8, 2, 2 * d)
    };
    Ok(vec![
        arm_spec(
            d,
            opts,
            FfnSpec::Dense(DenseSpec {
                d_ff: DffSpec::Rule(MatchRule::MatchActive),
                match_moe: Some(moe(Capacity::Dropless)),
            }),
            "dense",
        )?,
        arm_spec(
            d,
            opts,
            FfnSpec::Moe(moe(Capacity::Dropless)),
            "moe-dropless",
        )?,
        arm_spec(
            d,
            opts,
            FfnSpec::Moe(moe(Capacity::Factor(1.25))),
            "moe-cf1.25",
        )?,
    ])
}

pub struct Row {
    pub what: String,
    pub d_model: usize,
    pub timing: Timing,
    pub tokens: usize,
    /// Counted (active) training FLOPs per step.
    pub flops: f64,
    /// MoE arms: share of token-slots dropped for lack of capacity, in one forward after the
    /// timed steps (a capacity arm that drops does less work than its counted FLOPs say).
    pub dropped: Option<f64>,
}

/// Share of token-slots dropped over the MoE layers of one forward (`None` without any).
/// Reads back: call it outside the timed region.
fn dropped_share<'a>(aux: impl IntoIterator<Item = &'a MoeAux>) -> Option<f64> {
    let (mut dropped, mut slots) = (0.0, 0usize);
    for a in aux {
        dropped += a.stats.dropped.clone().into_scalar::<f64>();
        slots += a.stats.slots;
    }
    (slots > 0).then(|| dropped / slots as f64)
}

pub fn run(lab: &LabDevice, opts: &BenchOptions) -> Result<String> {
    let plain = lab.device.clone();
    let peak_n = if lab.backend == "flex" || lab.software {
        2048
    } else {
        8192
    };
    let peak = matmul_peak(&plain, peak_n);
    let mut rows: Vec<Row> = Vec::new();
    for &d in &opts.d_models {
        let arms = arms(d, opts)?;
        for cfg in &arms {
            rows.push(step_row(&plain, cfg, opts));
        }
        rows.extend(ffn_rows(&plain, &arms, opts));
    }
    let (table, csv) = render(lab, peak, peak_n, &rows, opts);
    std::fs::create_dir_all(&opts.out)?;
    let file = opts.out.join(format!("bench-{}.csv", lab.backend));
    write_atomic(&file, csv.as_bytes())?;
    let kind = if lab.backend == "flex" || lab.software {
        "cpu"
    } else {
        "cuda"
    };
    let pytorch = opts.out.join(format!("bench-pytorch-{kind}.csv"));
    let beside = beside_pytorch(&file, &pytorch).unwrap_or_else(|e| format!("{e:#}\n"));
    Ok(format!("{table}\nCSV: {}\n\n{beside}", file.display()))
}

/// The lab's tokens/s beside eager PyTorch's (`bench/pytorch_moe.py`'s CSV in the same
/// directory) for the rows of the same arm, width and shape (layers, sequence, batch), with
/// the ratio, and how old PyTorch's file is: compare runs of the same hour.
pub fn beside_pytorch(lab_csv: &std::path::Path, pytorch_csv: &std::path::Path) -> Result<String> {
    type Record = std::collections::HashMap<String, String>;
    let read = |p: &std::path::Path| -> Result<Vec<Record>> {
        let mut r = csv::Reader::from_path(p)?;
        Ok(r.deserialize::<Record>().collect::<Result<_, _>>()?)
    };
    if !pytorch_csv.exists() {
        return Ok(format!(
            "No {} here: run bench/pytorch_moe.py with the same shapes (and --out) to see \
             PyTorch beside these.\n",
            pytorch_csv.display()
        ));
    }
    let (ours, theirs) = (read(lab_csv)?, read(pytorch_csv)?);
    let key = |r: &Record| -> Vec<String> {
        ["what", "d_model", "layers", "seq_len", "batch"]
            .iter()
            .map(|k| r.get(*k).cloned().unwrap_or_default())
            .collect()
    };
    let rate = |r: &Record| r.get("tokens_per_s").and_then(|v| v.parse::<f64>().ok());
    let age = std::fs::metadata(pytorch_csv)?
        .modified()?
        .elapsed()
        .map_or(0, |d| d.as_secs() / 60);
    let mut t = format!(
        "Beside eager PyTorch ({}, written {age} min ago; threads: lab {}, PyTorch {}):\n{:<20} \
         {:>7} {:>12} {:>12} {:>10}\n",
        pytorch_csv.display(),
        ours.first()
            .and_then(|r| r.get("threads"))
            .map_or("?", |v| v),
        theirs
            .first()
            .and_then(|r| r.get("threads"))
            .map_or("?", |v| v),
        "what",
        "d_model",
        "lab tok/s",
        "torch tok/s",
        "lab/torch"
    );
    let mut matched = 0;
    for r in &ours {
        let Some(p) = theirs.iter().find(|p| key(p) == key(r)) else {
            continue;
        };
        if let (Some(a), Some(b)) = (rate(r), rate(p)) {
            matched += 1;
            let (what, d) = (&r["what"], &r["d_model"]);
            let _ = writeln!(t, "{what:<20} {d:>7} {a:>12.0} {b:>12.0} {:>10.2}", a / b);
        }
    }
    if matched == 0 {
        t += "no row of the same arm, width, layers, sequence length and batch: rerun \
              bench/pytorch_moe.py with this run's shapes\n";
    }
    Ok(t)
}

/// Training steps of one arm's whole model on a fixed batch.
fn step_row(plain: &Device, cfg: &RunConfig, opts: &BenchOptions) -> Row {
    let device = plain.clone().autodiff();
    let tokens = cfg.tokens_per_step;
    let toks: Vec<i64> = (0..tokens).map(|i| ((i * 7919) % 256) as i64).collect();
    let next: Vec<i64> = toks.iter().map(|t| (t + 1) % 256).collect();
    let shape = [opts.batch, opts.seq_len];
    let x = Tensor::<2, Int>::from_data(TensorData::new(toks, shape), &device);
    let y = Tensor::<2, Int>::from_data(TensorData::new(next, shape), &device);
    let mut model = Some(cfg.init_model(&device));
    let mut optim = optimizer(&cfg.spec.train);
    let timing = time(plain, opts.warmup, opts.steps, || {
        let m = model.take().expect("the model is back after every step");
        let out = train_step(
            m,
            &mut optim,
            StepBatch::new(x.clone(), y.clone()),
            1e-3,
            1.0,
            &device,
        );
        model = Some(out.model);
    });
    let routed = model.as_ref().expect("trained").forward(x);
    Row {
        what: format!("step {}", cfg.spec.name),
        d_model: cfg.spec.model.d_model,
        timing,
        tokens,
        flops: cfg.train_flops_per_step(),
        dropped: dropped_share(routed.moe.iter().flatten()),
    }
}

/// The feed-forwards alone (the dense arm's and the two MoE arms'), forward + backward, on
/// the same tokens. The input requires a gradient, as inside a model: backward then computes
/// input and weight gradients, 2× the forward FLOPs, so fwd + bwd = 3× forward as counted.
fn ffn_rows(plain: &Device, arms: &[RunConfig], opts: &BenchOptions) -> Vec<Row> {
    let device = plain.clone().autodiff();
    let d = arms[0].spec.model.d_model;
    let tokens = opts.batch * opts.seq_len;
    let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
    let x = Tensor::<2>::random([tokens, d], normal, &device).require_grad();
    let ids = Tensor::<1, Int>::zeros([tokens], &device);
    let names = ["ffn dense", "ffn moe-dropless", "ffn moe-cf1.25"];
    let mut rows = Vec::new();
    for (name, cfg) in names.into_iter().zip(arms) {
        let ffn = cfg.spec.ffn.build(0, d, opts.layers, &device);
        let input = || FfnInput {
            x: x.clone().reshape([1, tokens, d]),
            tokens: ids.clone().reshape([1, tokens]),
        };
        let timing = time(plain, opts.warmup, opts.steps, || {
            let out = ffn.forward(input());
            let (balance, z) = match out.moe {
                Some(aux) => (aux.balance_loss, aux.z_loss),
                None => (Tensor::zeros([1], &device), Tensor::zeros([1], &device)),
            };
            let _ = (out.y.sum() + balance + z).backward();
        });
        // The forward FLOPs accounting states for this layer (grouped: the counted active
        // FLOPs do not depend on the dispatch).
        let shape = cfg.spec.ffn.layer_shape(0, d, tokens, Dispatch::Grouped);
        let forward = shape.dense_flops + shape.router_flops + shape.expert_flops_active;
        rows.push(Row {
            what: name.into(),
            d_model: d,
            timing,
            tokens,
            flops: 3.0 * forward * tokens as f64,
            dropped: dropped_share(ffn.forward(input()).moe.iter()),
        });
    }
    rows
}

/// A row's median, p25, p75 and first step (ms), tokens/s, GFLOP/s, MFU against `peak` and
/// ratio to its dense row at the same width: one set of numbers for the table and the CSV.
fn numbers(r: &Row, rows: &[Row], peak: f64) -> [f64; 8] {
    let baseline = if r.what.starts_with("step") {
        "step dense"
    } else {
        "ffn dense"
    };
    let base = rows
        .iter()
        .find(|b| b.d_model == r.d_model && b.what == baseline)
        .map(|b| b.timing.median_s);
    let ratio = base.map_or(f64::NAN, |b| r.timing.median_s / b);
    let flops_s = r.flops / r.timing.median_s;
    [
        1e3 * r.timing.median_s,
        1e3 * r.timing.p25_s,
        1e3 * r.timing.p75_s,
        1e3 * r.timing.first_s,
        r.tokens as f64 / r.timing.median_s,
        flops_s / 1e9,
        flops_s / peak,
        ratio,
    ]
}

fn render(
    lab: &LabDevice,
    peak: f64,
    peak_n: usize,
    rows: &[Row],
    opts: &BenchOptions,
) -> (String, String) {
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let shape = format!("{},{},{},{threads}", opts.layers, opts.seq_len, opts.batch);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "device: {} ({}); measured f32 matmul peak {:.2} GFLOP/s ({peak_n}³)",
        lab.adapter,
        lab.backend,
        peak / 1e9
    );
    let _ = writeln!(
        t,
        "{:<20} {:>7} {:>10} {:>17} {:>11} {:>10} {:>7} {:>9} {:>10} {:>8}",
        "what",
        "d_model",
        "ms (median)",
        "IQR ms",
        "first ms",
        "tokens/s",
        "GFLOP/s",
        "MFU",
        "vs dense",
        "dropped"
    );
    let mut csv = String::from(
        "what,d_model,median_ms,p25_ms,p75_ms,first_ms,tokens_per_s,gflops,mfu,ratio_vs_dense,\
         dropped,layers,seq_len,batch,threads\n",
    );
    for r in rows {
        let v = numbers(r, rows, peak);
        let _ = writeln!(
            t,
            "{:<20} {:>7} {:>10.1} {:>8.1}–{:<8.1} {:>11.1} {:>10.0} {:>7.2} {:>8.1}% {:>9.2}× {:>8}",
            r.what,
            r.d_model,
            v[0],
            v[1],
            v[2],
            v[3],
            v[4],
            v[5],
            100.0 * v[6],
            v[7],
            r.dropped
                .map_or("–".to_string(), |p| format!("{:.1}%", 100.0 * p))
        );
        let numbers: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
        let dropped = r.dropped.map_or(String::new(), |p| format!("{p:.4}"));
        let _ = writeln!(
            csv,
            "{},{},{},{dropped},{}",
            r.what,
            r.d_model,
            numbers.join(","),
            shape
        );
    }
    let _ = writeln!(
        t,
        "FLOPs are the counted active FLOPs (what the arm needs), so GFLOP/s and MFU are model FLOP rates; \
         dropped: token-slots a capacity dropped in one forward after the timed steps."
    );
    (t, csv)
}
