//! `lab train`: one run, checked before anything is written.

use super::args::*;
use super::text as cli_text;
use crate::error::{EXIT_DIVERGED, EXIT_INTERRUPTED, SpecError};
use crate::run::{RunDir, RunStatus};
use crate::train::device::DeviceChoice;
use crate::{spec, train};

/// `lab train`: one run.
pub(super) fn train_cmd(args: TrainArgs) -> anyhow::Result<i32> {
    if args.device == DeviceChoice::Flex && std::env::var_os("BURN_DEVICE").is_none() {
        // burn loads a checkpoint's optimizer state onto its default device, which is wgpu
        // when that feature is built; on a machine without any wgpu adapter that would fail,
        // so a flex run makes flex the default. Set before any thread starts.
        // SAFETY: single-threaded here: no device or thread pool has been created yet.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
    let mut config = spec::resolve(&args.spec)?;
    if let Some(n) = args.steps {
        config = config.with_steps(n);
    }
    let lab_device = args.device.open().map_err(|e| SpecError::Field {
        file: args.spec.clone(),
        field: "--device".into(),
        message: e.to_string(),
    })?;
    if lab_device.software {
        crate::say!(
            "warning: wgpu is running on a software adapter ({}): expect it to be slow",
            lab_device.adapter
        );
    }
    let fits = match train::memory::available_bytes(&lab_device) {
        Some(available) => train::memory::check_fits(&config, available),
        None => Ok(()),
    };
    let buffer = match lab_device.max_buffer_bytes {
        Some(max) => train::memory::check_buffer(&config, max),
        None => Ok(()),
    };
    fits.and(buffer).map_err(|message| SpecError::Field {
        file: args.spec.clone(),
        field: "train.batch_size".into(),
        message,
    })?;
    // A `[distill]` teacher that is missing or unfit is the spec's fault: exit 2, nothing
    // written (the trainer loads it again on its own device).
    train::distill::Teacher::load(&config, &args.spec, &lab_device.device)?;
    let s = &config.spec;
    let dir = args
        .run_dir
        .unwrap_or_else(|| args.out.join(&s.experiment).join(&s.name));
    let run_dir = RunDir::new(dir);
    crate::say!(
        "training {} on {} for {} steps ({} tokens, {:.3e} FLOPs) → {}",
        s.name,
        lab_device.adapter,
        config.steps,
        config.total_tokens(),
        config.total_train_flops(),
        run_dir.path.display()
    );
    crate::say!("  ffn: {}", s.ffn.summary_line());
    let opts = train::TrainOptions {
        run_dir,
        device: lab_device,
        progress: !args.quiet,
        resume: args.resume,
        stop_after: None,
        exit_with_parent: args.exit_with_parent,
    };
    train::interrupt::install()?;
    let summary = train::train(&config, opts)?;
    if summary.status == RunStatus::Running {
        crate::say!(
            "{}: stopped by a signal after {} of {} steps, checkpoint written; `--resume` \
             continues it",
            s.name,
            summary.steps_done,
            config.steps
        );
        return Ok(EXIT_INTERRUPTED);
    }
    println!("{}", cli_text::summary_line(&summary));
    Ok(match summary.status {
        RunStatus::Diverged => EXIT_DIVERGED,
        _ => 0,
    })
}
