//! `lab bench`: step and feed-forward timings.

use super::args::*;

/// `lab bench`: step and feed-forward timings.
pub(super) fn bench_cmd(args: BenchArgs) -> anyhow::Result<i32> {
    let lab_device = args.device.open()?;
    let cpu = lab_device.backend == "flex" || lab_device.software;
    let (d, layers, seq, batch) = match args.preset {
        BenchPreset::Bench => (vec![256, 512], 4, 256, if cpu { 4 } else { 32 }),
        BenchPreset::Sweep => (vec![32, 64, 128], 2, 128, 16),
    };
    let opts = crate::bench::BenchOptions {
        d_models: args.d_model.unwrap_or(d),
        layers: args.layers.unwrap_or(layers),
        seq_len: args.seq_len.unwrap_or(seq),
        batch: args.batch.unwrap_or(batch),
        warmup: args.warmup,
        steps: args.steps.max(1),
        out: args.out,
    };
    print!("{}", crate::bench::run(&lab_device, &opts)?);
    Ok(0)
}
