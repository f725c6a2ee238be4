//! Helpers shared by the integration tests: tiny specs and comparisons.
#![allow(dead_code)]

pub mod browser;
pub mod conformance;
pub mod synthetic;

use std::path::Path;

use moe_lab::spec::{RunConfig, resolve_str};

/// Training options for a run on flex into `dir`, without a progress bar.
pub fn flex_options(
    dir: &Path,
    resume: bool,
    stop_after: Option<usize>,
) -> moe_lab::train::TrainOptions {
    moe_lab::train::TrainOptions {
        run_dir: moe_lab::run::RunDir::new(dir),
        device: moe_lab::train::device::DeviceChoice::Flex.open().unwrap(),
        progress: false,
        resume,
        stop_after,
        exit_with_parent: false,
    }
}

/// A tiny spec; `ffn` is the body of the `[ffn]` table, `extra` appended verbatim.
pub fn tiny_spec(name: &str, ffn: &str, extra: &str) -> String {
    format!(
        r#"
name = "{name}"
experiment = "tests"
seed = 7

[model]
d_model = 32
n_layers = 2
n_heads = 4
n_kv_heads = 2
seq_len = 16

[ffn]
{ffn}

[train]
batch_size = 4
steps = 20
lr = 3e-3
warmup_steps = 5
eval_every = 10
eval_batches = 2
final_eval_tokens = 0

[data]
corpus_bytes = 200000
{extra}
"#
    )
}

pub const MOE: &str = "kind = \"moe\"\nexperts = 4\ntop_k = 2\nd_expert = 16";
pub const DENSE: &str = "kind = \"dense\"\nd_ff = 48";

pub fn config(text: &str) -> RunConfig {
    resolve_str(text, Path::new("test.toml"), Path::new(".")).expect("valid test spec")
}

pub fn to_vec<const D: usize>(t: burn::prelude::Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec().unwrap()
}

/// max |a − b| / max |b|: the worst error relative to the reference's scale; NaN where any
/// difference is NaN (`f64::max` would drop it, and a NaN in ours would compare as equal).
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30) as f64;
    let worst = |m: f64, d: f64| {
        if m.is_nan() || d.is_nan() {
            f64::NAN
        } else {
            m.max(d)
        }
    };
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() as f64)
        .fold(0.0, worst)
        / scale
}

/// Every vector of `ours` within `tolerance` of its counterpart in `theirs` (max_rel_diff),
/// as outputs and gradients are compared: the message names `what` and which one differs.
pub fn assert_close(ours: &[Vec<f32>], theirs: &[Vec<f32>], what: &str, tolerance: f64) {
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{what}: how many outputs/gradients"
    );
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        let d = max_rel_diff(o, t);
        assert!(d < tolerance, "{what}: output/gradient {i} differs by {d}");
    }
}

/// A run's `metrics.csv`, read with the lab's own row type.
pub fn metrics(dir: &Path) -> Vec<moe_lab::run::MetricRow> {
    moe_lab::run::read_rows(dir).expect("metrics.csv parses")
}

/// The `loss` column of a run's `metrics.csv`, as written (6 decimals).
pub fn losses(dir: &Path) -> Vec<f64> {
    metrics(dir).iter().map(|r| r.loss).collect()
}

/// The wgpu device to test on: a hardware adapter, else the software one (lavapipe); `None`
/// (after printing why) where wgpu has no adapter at all.
pub fn wgpu_choice() -> Option<moe_lab::train::device::DeviceChoice> {
    use moe_lab::train::device::{DeviceChoice, adapters};
    let found = adapters();
    if found.iter().any(|a| a.is_hardware) {
        Some(DeviceChoice::Wgpu)
    } else if found.iter().any(|a| a.device_type == "Cpu") {
        Some(DeviceChoice::WgpuCpu)
    } else {
        skip_without_wgpu();
        None
    }
}

/// A wgpu test's way out where wgpu has no adapter (or the build has no wgpu backend: the
/// `wgpu` feature, which `just test` turns on): `SKIPPED` printed, or, where
/// `MOE_LAB_REQUIRE_WGPU=1` says an adapter must be there (CI installs lavapipe and sets it),
/// a failure: a test that passes silently proves nothing.
pub fn skip_without_wgpu() {
    let why = if moe_lab::train::device::WGPU_BUILT {
        "no wgpu adapter on this machine (install mesa-vulkan-drivers)"
    } else {
        "built without the wgpu feature (`cargo test --features wgpu`, as `just test` does)"
    };
    if std::env::var("MOE_LAB_REQUIRE_WGPU").is_ok_and(|v| v == "1") {
        panic!("MOE_LAB_REQUIRE_WGPU=1 but {why}");
    }
    println!("SKIPPED: {why}");
}

/// An MoE layer from its parts (top-k softmax router), for tests that set weights by hand.
pub struct MoeParts {
    pub d_model: usize,
    pub experts: usize,
    pub top_k: usize,
    pub d_expert: usize,
    pub renormalize: bool,
    pub capacity_factor: Option<f64>,
    pub balance_coef: f64,
    pub z_coef: f64,
    pub n_layers: usize,
}

impl MoeParts {
    pub fn init(&self, device: &burn::prelude::Device) -> moe_lab::model::ffn::MoeLayer {
        use moe_lab::spec::{Capacity, MoeSpec};
        let spec = MoeSpec {
            renormalize: self.renormalize,
            capacity: self
                .capacity_factor
                .map_or(Capacity::Dropless, Capacity::Factor),
            aux_loss_coef: self.balance_coef,
            z_loss_coef: self.z_coef,
            ..MoeSpec::new(self.experts, self.top_k, self.d_expert)
        };
        moe_lab::model::ffn::MoeConfig {
            spec: &spec,
            d_model: self.d_model,
            n_layers: self.n_layers,
        }
        .init(device)
    }
}

/// The top-k router's weight `[d, K]` of a layer built by [`MoeParts`].
pub fn router_weight(
    layer: &mut moe_lab::model::ffn::MoeLayer,
) -> &mut burn::module::Param<burn::prelude::Tensor<2>> {
    match &mut layer.router {
        moe_lab::model::ffn::Router::TopK(r) => &mut r.scores.weight,
        _ => panic!("MoeParts builds top-k routers"),
    }
}

/// Token ids for `x: [N, d]` when routing does not read them: all zero.
pub fn ids(x: &burn::prelude::Tensor<2>) -> burn::prelude::Tensor<1, burn::prelude::Int> {
    burn::prelude::Tensor::zeros([x.dims()[0]], &x.device())
}

/// `lab train --spec SPEC --device flex --quiet`, to add the output flags to.
pub fn lab_train_flex(spec: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.args([
        "train",
        "--spec",
        spec.to_str().unwrap(),
        "--device",
        "flex",
        "--quiet",
    ]);
    cmd
}

/// `lab ARGS` run in `cwd`, its output collected.
pub fn lab_in(args: &[&str], cwd: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// `lab sweep SPEC` on flex in `cwd`, results and plots under it (`results/`, `plots/`).
pub fn sweep_in(spec: &str, cwd: &Path) -> std::process::Output {
    lab_in(&sweep_args(spec, &[]), cwd)
}

/// One size, three arms, one seed: three cells of a few steps each.
pub fn toy_experiment(steps_scale: f64) -> String {
    format!(
        r#"
name = "toy"
description = "A three-cell toy sweep for tests."
seeds = 1

[base]
n_heads = 2
seq_len = 16

[base.train]
batch_size = 4
eval_every = 10
eval_batches = 2
final_eval_tokens = 0
warmup_steps = 2

[base.data]
corpus_bytes = 100000

[budget]
tokens_per_active_param = {steps_scale}
reference_arm = "moe"

[[sizes]]
name = "xs"
d_model = 16
n_layers = 1
d_expert = 16

[arms.moe]
kind = "moe"
experts = 4
top_k = 2

[arms.dense]
kind = "dense"
d_ff = "match-active"
match = "moe"

[arms.dense-total]
kind = "dense"
d_ff = "match-total"
match = "moe"
"#
    )
}

pub fn sweep_args<'a>(spec: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "sweep",
        spec,
        "--devices",
        "flex",
        "--out",
        "results",
        "--plots",
        "plots",
    ];
    v.extend_from_slice(extra);
    v
}

/// The flex device, with the lab's kernels' outputs poisoned from here on (NaN until written:
/// `moe_lab::kernels::gemm::written`), so a kernel that leaves an element unwritten fails a
/// comparison instead of passing on whatever the allocator handed back.
pub fn flex() -> burn::prelude::Device {
    moe_lab::kernels::gemm::poison_outputs();
    burn::prelude::Device::flex()
}
