//! `lab sample`: text from a completed run's final model.

use super::args::*;
use super::text as cli_text;
use crate::error::SpecError;
use crate::run::RunDir;
use crate::train;

/// `lab sample`: stream text from a run's final model; speed and peak memory on stderr.
pub(super) fn sample_cmd(args: SampleArgs) -> anyhow::Result<i32> {
    use std::io::Write;
    let bad = |field: &str, message: String| SpecError::Field {
        file: args.run_dir.clone(),
        field: field.into(),
        message,
    };
    if !(args.temperature.is_finite() && args.temperature >= 0.0) {
        return Err(bad("--temperature", "must be a number ≥ 0 (0: greedy)".into()).into());
    }
    crate::error::at_most("--max-tokens", args.max_tokens, crate::limits::STEPS)
        .map_err(|e| bad(&e.path, e.message))?;
    let lab_device = args.device.open()?;
    let (config, model) = RunDir::new(&args.run_dir)
        .load_model(&lab_device.device)
        .map_err(|e| bad("model", format!("{e:#}")))?;
    let vocab = crate::data::tokenizer::Vocabulary::of(config.spec.data.tokenizer.as_deref())?;
    let opts = crate::sample::SampleOptions {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        seed: args.seed,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(args.prompt.as_bytes())?;
    let seq_len = config.spec.model.seq_len;
    let prompt = crate::sample::encode_prompt(&vocab, &args.prompt)?;
    let mut text = crate::sample::TextStream::new(&vocab);
    let stats = crate::sample::generate(&model, seq_len, &prompt, &opts, &lab_device.device, |t| {
        let _ = out.write_all(&text.push(t)).and_then(|()| out.flush());
    });
    writeln!(out)?;
    out.flush()?;
    crate::say!("{}", cli_text::sample_line(&stats, &lab_device.adapter));
    if args.stats {
        let params = config.params.total + config.params.buffers;
        RunDir::new(&args.run_dir).write_generation(&crate::run::generation::Generation {
            bytes: stats.tokens,
            seconds: stats.seconds,
            bytes_per_s: stats.tokens as f64 / stats.seconds.max(1e-9),
            peak_rss_bytes: train::memory::read_peak_rss(),
            device: lab_device.adapter.clone(),
            params_bytes: 4 * params,
            forward_flops_per_token: config.flops.forward_per_token,
        })?;
    }
    Ok(0)
}
