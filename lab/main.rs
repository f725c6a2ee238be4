//! `lab`: the command-line front. Each subcommand parses its flags and calls into the library;
//! no logic lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use moe_lab::error::{EXIT_BAD_INPUT, EXIT_DIVERGED, SpecError};
use moe_lab::train::device::{self, DeviceChoice};
use moe_lab::{publish, report, spec, sweep, train};

fn print_verdicts(p: &publish::Published) {
    println!("report: {}", p.report.display());
    for line in moe_lab::analysis::report::verdicts(&p.analysis) {
        println!("- {line}");
    }
}

#[derive(Parser)]
#[command(
    name = "lab",
    version,
    about = "moe-lab: dense vs Mixture-of-Experts experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train one run from a spec; writes results/<experiment>/<name>/.
    /// Exit codes: 0 complete, 2 bad input, 3 diverged (files intact), 1 other failure.
    Train {
        #[arg(long)]
        spec: PathBuf,
        /// Results root (the run goes to OUT/<experiment>/<name>/).
        #[arg(long, default_value = "results")]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
        /// Continue from the run's checkpoint if it has one.
        #[arg(long)]
        resume: bool,
        /// Write the run here instead of OUT/<experiment>/<name>/ (used by sweeps).
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Override the spec's length (a quick look at a run, e.g. on a slow device).
        #[arg(long)]
        steps: Option<usize>,
        /// Stop, as if killed, when the parent process exits (sweeps pass this to their cells).
        #[arg(long, hide = true)]
        exit_with_parent: bool,
    },
    /// Run an experiment's grid (experiments/<name>.toml), then analyse and plot it.
    /// Reruns skip finished cells and resume interrupted ones. Exit 4 if another sweep holds
    /// the experiment.
    Sweep {
        /// Experiment name (experiments/<name>.toml) or path.
        experiment: String,
        #[arg(long)]
        preset: Option<String>,
        /// Devices to run cells on, comma-separated (auto, wgpu, wgpu-cpu, flex).
        #[arg(long, value_enum, value_delimiter = ',', default_value = "auto")]
        devices: Vec<DeviceChoice>,
        /// Cells to run at once (spread over --devices).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Stop after running this many cells (the rest run on the next invocation).
        #[arg(long)]
        max_cells: Option<usize>,
        #[arg(long, default_value = "results")]
        out: PathBuf,
        #[arg(long, default_value = "plots")]
        plots: PathBuf,
        /// Checkpoint interval (steps) for cells whose spec sets none.
        #[arg(long, default_value_t = 100)]
        checkpoint_every: usize,
        /// List the cells (steps, tokens, FLOPs) and exit without training.
        #[arg(long)]
        dry_run: bool,
    },
    /// Analyse a sweep's results: writes results/<experiment>/analysis.json and report.md.
    Analyze(ResultsArgs),
    /// Redraw a sweep's figures (and report) from results/ without training.
    Plot(ResultsArgs),
    /// Print parameter and FLOP counts of one or more specs, and check matched arms.
    Flops { specs: Vec<PathBuf> },
    /// List the devices this machine offers.
    Devices,
    /// Time training steps of a dense arm and MoE arms at matched active FLOPs (and their
    /// feed-forward layers alone); writes results/bench/bench-<backend>.csv.
    Bench {
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
        #[arg(long, value_delimiter = ',', default_value = "256,512")]
        d_model: Vec<usize>,
        #[arg(long, default_value_t = 4)]
        layers: usize,
        #[arg(long, default_value_t = 256)]
        seq_len: usize,
        /// Sequences per step (default: 4 on CPU backends, 32 on a GPU).
        #[arg(long)]
        batch: Option<usize>,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        #[arg(long, default_value = "results/bench")]
        out: PathBuf,
    },
    /// Show sample lines of the generated corpus's domains and measure generation speed.
    Corpus {
        /// Bytes to generate per domain for the speed measurement.
        #[arg(long, default_value_t = 8_000_000)]
        bytes: usize,
        /// Sample lines to print per domain.
        #[arg(long, default_value_t = 3)]
        samples: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// Where a sweep's results and figures are.
#[derive(clap::Args)]
struct ResultsArgs {
    /// Experiment name (experiments/<name>.toml) or path.
    experiment: String,
    #[arg(long)]
    preset: Option<String>,
    #[arg(long, default_value = "results")]
    out: PathBuf,
    #[arg(long, default_value = "plots")]
    plots: PathBuf,
}

impl ResultsArgs {
    fn publish(&self, draw: bool) -> anyhow::Result<publish::Published> {
        let plan = sweep::plan(&self.experiment, self.preset.as_deref())?;
        publish::publish(&self.out.join(&plan.results_name), &self.plots, draw)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            let code = if e.downcast_ref::<SpecError>().is_some() {
                EXIT_BAD_INPUT
            } else {
                1
            };
            ExitCode::from(code as u8)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Train {
            spec: path,
            out,
            device: choice,
            resume,
            run_dir,
            quiet,
            steps,
            exit_with_parent,
        } => {
            if choice == DeviceChoice::Flex && std::env::var_os("BURN_DEVICE").is_none() {
                // burn loads a checkpoint's optimizer state onto its default device, which is
                // wgpu when that feature is built; on a machine without any wgpu adapter that
                // would fail, so a flex run makes flex the default. Set before any thread starts.
                // SAFETY: single-threaded here: no device or thread pool has been created yet.
                unsafe { std::env::set_var("BURN_DEVICE", "flex") };
            }
            let mut config = spec::resolve(&path)?;
            if let Some(n) = steps {
                config = config.with_steps(n);
            }
            let lab_device = choice.open().map_err(|e| SpecError::Field {
                file: path.clone(),
                field: "--device".into(),
                message: e.to_string(),
            })?;
            if lab_device.software {
                eprintln!(
                    "warning: wgpu is running on a software adapter ({}): expect it to be slow",
                    lab_device.adapter
                );
            }
            let run_dir = train::run_dir::RunDir::new(
                run_dir
                    .unwrap_or_else(|| out.join(&config.spec.experiment).join(&config.spec.name)),
            );
            eprintln!(
                "training {} on {} for {} steps ({} tokens, {:.3e} FLOPs) → {}",
                config.spec.name,
                lab_device.adapter,
                config.steps,
                config.total_tokens(),
                config.total_train_flops(),
                run_dir.path.display()
            );
            eprintln!("  ffn: {}", config.spec.ffn.summary_line());
            let summary = train::train(
                &config,
                train::TrainOptions {
                    run_dir,
                    device: lab_device,
                    progress: !quiet,
                    resume,
                    stop_after: None,
                    exit_with_parent,
                },
            )?;
            println!("{}", report::summary_line(&summary));
            Ok(match summary.status {
                train::summary::RunStatus::Diverged => EXIT_DIVERGED,
                _ => 0,
            })
        }
        Command::Flops { specs } => {
            if specs.is_empty() {
                anyhow::bail!("lab flops: give at least one spec file");
            }
            for path in &specs {
                let config = spec::resolve(path)?;
                println!("{}", report::flops_table(path, &config));
            }
            Ok(0)
        }
        Command::Sweep {
            experiment,
            preset,
            devices,
            jobs,
            max_cells,
            out,
            plots,
            checkpoint_every,
            dry_run,
        } => {
            let plan = sweep::plan(&experiment, preset.as_deref())?;
            if dry_run {
                println!("{}", report::plan_table(&plan));
                return Ok(0);
            }
            eprintln!(
                "sweep {} (preset {}): {} cells → {}",
                plan.experiment.name,
                plan.preset,
                plan.cells.len(),
                out.join(&plan.results_name).display()
            );
            if let Some(p) = plan.experiment.presets.get(&plan.preset)
                && !p.expected_time.is_empty()
            {
                eprintln!("expected time: {}", p.expected_time);
            }
            let result = sweep::run_sweep(
                &plan,
                &sweep::SweepOptions {
                    results_root: out.clone(),
                    lab_exe: std::env::current_exe()?,
                    devices,
                    jobs,
                    max_cells,
                    progress: true,
                    checkpoint_every,
                },
            );
            let outcome = match result {
                Ok(o) => o,
                Err(e) if e.is::<sweep::lock::LockedError>() => {
                    eprintln!("error: {e:#}");
                    return Ok(moe_lab::error::EXIT_LOCKED);
                }
                Err(e) => return Err(e),
            };
            eprintln!(
                "ran {} cells, skipped {} finished, {} diverged, {} failed, {} left for a rerun ({})",
                outcome.ran.len(),
                outcome.skipped.len(),
                outcome.diverged.len(),
                outcome.failed.len(),
                outcome.pending.len(),
                sweep::runner::format_duration(outcome.wall_time_s)
            );
            for d in &outcome.diverged {
                eprintln!("  diverged: {d} (reported, not retried)");
            }
            for (name, err) in &outcome.failed {
                eprintln!("  failed: {name}: {err}");
            }
            let published = publish::publish(&out.join(&plan.results_name), &plots, true)?;
            print_verdicts(&published);
            Ok(if outcome.failed.is_empty() { 0 } else { 1 })
        }
        Command::Analyze(args) => {
            print_verdicts(&args.publish(false)?);
            Ok(0)
        }
        Command::Plot(args) => {
            for p in &args.publish(true)?.plots {
                println!("{}", p.display());
            }
            Ok(0)
        }
        Command::Corpus {
            bytes,
            samples,
            seed,
        } => {
            println!("{}", report::corpus_report(bytes, samples, seed));
            Ok(0)
        }
        Command::Bench {
            device: choice,
            d_model,
            layers,
            seq_len,
            batch,
            warmup,
            steps,
            out,
        } => {
            let lab_device = choice.open()?;
            let cpu = lab_device.backend == "flex" || lab_device.software;
            let opts = moe_lab::bench::BenchOptions {
                d_models: d_model,
                layers,
                seq_len,
                batch: batch.unwrap_or(if cpu { 4 } else { 32 }),
                warmup,
                steps: steps.max(1),
                out,
            };
            print!("{}", moe_lab::bench::run(&lab_device, &opts)?);
            Ok(0)
        }
        Command::Devices => {
            println!("{}", report::devices_table(&device::adapters()));
            Ok(0)
        }
    }
}
