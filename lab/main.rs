//! `lab`: the command-line front. Each subcommand parses its flags into its own struct and is
//! run by one function (`train_cmd`, `sweep_cmd`, ...) that calls into the library; the text
//! they print is built in `cli_text`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[path = "main/data.rs"]
mod data_cmd;
use moe_lab::error::{EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_LOCKED, SpecError};
use moe_lab::run::{RunDir, RunStatus};
use moe_lab::train::device::{self, DeviceChoice};
use moe_lab::{cli_text, publish, spec, sweep, train, until_decisive};

fn print_verdicts(p: &publish::Published) {
    println!("report: {}", p.report.display());
    println!("page:   {}", p.page.display());
    for line in &p.verdicts {
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
    Train(TrainArgs),
    /// Run an experiment's grid (experiments/<name>.toml), then analyse and plot it.
    /// Reruns skip finished cells and resume interrupted ones. Exit 4 if another sweep holds
    /// the experiment.
    Sweep(SweepArgs),
    /// Analyse a sweep's results: writes results/<experiment>/analysis.json and report.md.
    Analyze(ResultsArgs),
    /// Redraw a sweep's figures (and report) from results/ without training.
    Plot(ResultsArgs),
    /// Regenerate a sweep's report.md and report.html from results/ (no training, no figure
    /// redrawn); --open opens the page in the desktop's browser.
    Report {
        #[command(flatten)]
        results: ResultsArgs,
        /// Open report.html in the desktop's browser (xdg-open / open); without a desktop the
        /// page's file:// address is printed instead.
        #[arg(long)]
        open: bool,
    },
    /// Print parameter and FLOP counts of one or more specs, and check matched arms.
    Flops { specs: Vec<PathBuf> },
    /// List the devices this machine offers.
    Devices,
    /// Text from a completed run's final model (streamed to stdout), with a key/value cache.
    Sample(SampleArgs),
    /// Write a completed run's model as a Hugging Face directory (config.json,
    /// model.safetensors, tokenizer, reference logits) that transformers loads; dense runs as
    /// LlamaForCausalLM, top-k MoE runs as MixtralForCausalLM. Exit 2 for a variant with no
    /// exact HF counterpart.
    Export {
        /// A completed run's directory (it holds `model/` and `config.toml`).
        run_dir: PathBuf,
        /// The directory to create (it must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Export the checkpoint-averaged model instead of the last one.
        #[arg(long)]
        averaged: bool,
    },
    /// Time training steps of a dense arm and MoE arms at matched active FLOPs (and their
    /// feed-forward layers alone); writes results/bench/bench-<backend>.csv.
    Bench(BenchArgs),
    /// Subword tokenizers and token shards: train a BPE tokenizer, prepare a corpus.
    #[command(subcommand)]
    Data(DataCommand),
    /// Show sample lines of the generated corpus's domains and measure generation speed; with
    /// --write, write its training domains as JSON Lines files instead.
    Corpus {
        /// Bytes to generate per domain (for the speed measurement, or to write).
        #[arg(long, default_value_t = 8_000_000)]
        bytes: usize,
        /// Write DIR/<domain>.jsonl (documents of a few lines each) and exit.
        #[arg(long)]
        write: Option<PathBuf>,
        /// Sample lines to print per domain.
        #[arg(long, default_value_t = 3)]
        samples: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

// `lab data ...`.
#[derive(Subcommand)]
enum DataCommand {
    /// Train a byte-level BPE tokenizer (GPT-2 / LLaMA-3 style: every byte a token, an
    /// <|endoftext|> special token) on text files, directories and JSON Lines.
    Tokenizer {
        /// Vocabulary size, special token included (at least 257: the 256 bytes and EOT).
        #[arg(long)]
        vocab: usize,
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// The JSON Lines field holding a document's text.
        #[arg(long, default_value = "text")]
        field: String,
        /// The tokenizer.json to write (it must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Tokenize text files, directories and JSON Lines into token shards in llm.c's format,
    /// with a manifest; documents are held out for validation by a seeded draw.
    Prepare {
        /// A tokenizer.json (`lab data tokenizer`, or a GPT-2 / LLaMA-3 file).
        #[arg(long)]
        tokenizer: PathBuf,
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// The corpus directory to create.
        #[arg(long)]
        out: PathBuf,
        /// The JSON Lines field holding a document's text.
        #[arg(long, default_value = "text")]
        field: String,
        /// Each document's chance of going to validation.
        #[arg(long, default_value_t = 0.05)]
        val_fraction: f64,
        /// Seed of the validation draw.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Tokens per shard (llm.c's FineWeb shards: 100 M).
        #[arg(long, default_value_t = 100_000_000)]
        shard_tokens: usize,
    },
}

// The flags of `lab train`.
#[derive(clap::Args)]
struct TrainArgs {
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
}

// The flags of `lab sweep`.
#[derive(clap::Args)]
struct SweepArgs {
    /// Experiment name (experiments/<name>.toml) or path.
    experiment: String,
    #[arg(long)]
    preset: Option<String>,
    /// Devices to run cells on, comma-separated (auto, wgpu, wgpu-cpu, flex).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "auto")]
    devices: Vec<DeviceChoice>,
    /// Cells to run at once (spread over --devices): a number, or `auto`: on CPU devices one
    /// cell per core (each with a core's threads), as many as fit in memory; on GPUs one per
    /// device.
    #[arg(long, default_value = "auto")]
    jobs: String,
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
    /// List the cells (steps, tokens, FLOPs) and exit without training; with --slurm, write
    /// the Slurm scripts without submitting them.
    #[arg(long)]
    dry_run: bool,
    /// Run one cell only (what each task of a --slurm sweep runs).
    #[arg(long, conflicts_with_all = ["slurm", "status"])]
    cell: Option<String>,
    /// List the cells as done / running / interrupted / failed / pending (with their Slurm
    /// tasks' states for a --slurm sweep).
    #[arg(long, conflicts_with = "slurm")]
    status: bool,
    /// Add seeds in groups until every primary comparison is decided (its repeated 95%
    /// interval excludes 0 or lies inside the equivalence margin) or --max-seeds is reached:
    /// a group-sequential design (O'Brien–Fleming-type α spending), written to
    /// sequential.json and the report.
    #[arg(long, conflicts_with_all = ["slurm", "cell", "status"])]
    until_decisive: bool,
    /// With --until-decisive: the cap on seeds per cell (default: 4 × the preset's seeds).
    #[arg(long, requires = "until_decisive")]
    max_seeds: Option<usize>,
    /// With --until-decisive: seeds added per look (default: the preset's seeds).
    #[arg(long, requires = "until_decisive")]
    seed_group: Option<usize>,
    #[command(flatten)]
    slurm: SlurmArgs,
}

// `lab sweep --slurm` and the sbatch options it writes.
#[derive(clap::Args)]
struct SlurmArgs {
    /// Submit the unfinished cells to Slurm as a job array, and the analysis as a job after it.
    #[arg(long)]
    slurm: bool,
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// Time limit per cell task (sbatch --time, e.g. 2:00:00).
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    #[arg(long, requires = "slurm")]
    gpus_per_task: Option<u32>,
    #[arg(long, requires = "slurm")]
    cpus_per_task: Option<u32>,
    /// Array tasks running at once.
    #[arg(long, requires = "slurm")]
    max_parallel: Option<usize>,
    /// Seconds before the time limit at which a cell checkpoints and requeues (SIGUSR1).
    #[arg(long, requires = "slurm", default_value_t = 120)]
    warn_seconds: u32,
}

// The flags of `lab sample`.
#[derive(clap::Args)]
struct SampleArgs {
    /// A completed run's directory (it holds `model/` and `config.toml`).
    run_dir: PathBuf,
    #[arg(long, default_value = "")]
    prompt: String,
    /// Tokens to generate (bytes for a byte-level run).
    #[arg(long, visible_alias = "max-bytes", default_value_t = 200)]
    max_tokens: usize,
    /// 0: greedy.
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    /// Sample among the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, value_enum, default_value = "flex")]
    device: DeviceChoice,
    /// Also write what the generation cost to RUN_DIR/generation.json (read by the report).
    #[arg(long)]
    stats: bool,
}

// The flags of `lab bench`.
#[derive(clap::Args)]
struct BenchArgs {
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// `bench`: d 256,512, 4 layers, seq 256 (batch 4 on CPU, 32 on a GPU); `sweep`: the shapes
    /// sweeps train, d 32,64,128, 2 layers, seq 128, batch 16. Flags below override.
    #[arg(long, value_enum, default_value = "bench")]
    preset: BenchPreset,
    #[arg(long, value_delimiter = ',')]
    d_model: Option<Vec<usize>>,
    #[arg(long)]
    layers: Option<usize>,
    #[arg(long)]
    seq_len: Option<usize>,
    /// Sequences per step.
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value = "results/bench")]
    out: PathBuf,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum BenchPreset {
    Bench,
    Sweep,
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

/// Lets glibc's malloc keep freed tensor buffers for reuse. By default it serves every buffer
/// over a (dynamic) threshold with its own `mmap` and hands freed heap tops back to the
/// kernel, so each training step's tensors fault their pages in afresh: a d 64 step took
/// 1.03 M page faults per 200 steps and ran 24% slower (docs/performance.md). Buffers up to
/// glibc's largest threshold (32 MiB) now come from the heap, and up to 256 MiB of its free
/// top is kept. Peak memory is unchanged: only memory the run already used is retained.
///
/// One arena for every thread: the command runs on a rayon worker ([`on_compute_pool`]), and glibc
/// would give that thread an arena of its own, built from separate `mmap`ed heaps. A 2048³ matmul
/// allocated there ran at 138–144 GFLOP/s against 153–158 from the main heap (one thread;
/// docs/performance.md, "The matmul at the core's peak, and the CPU step"). Threads allocate per
/// tensor, not per element, so sharing the arena's lock costs nothing measurable.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    quiet_window_system_probe();
    let cli = Cli::parse();
    match on_compute_pool(|| run(cli)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            moe_lab::say!("error: {e:#}");
            let code = if e.downcast_ref::<SpecError>().is_some() {
                EXIT_BAD_INPUT
            } else {
                1
            };
            ExitCode::from(code as u8)
        }
    }
}

/// Runs `command` on a worker thread of rayon's global pool rather than on the main thread. flex
/// and gemm split their larger operations over that pool. Called from a thread outside it, each
/// such operation is handed to a worker through the pool's queue and the caller sleeps until it is
/// done: a futex wake-up and a context switch per operation, several hundred per step, even with
/// `RAYON_NUM_THREADS=1`. On a worker, the operation starts on the calling thread and other workers
/// steal its parts (docs/performance.md, "The matmul at the core's peak, and the CPU step").
fn on_compute_pool<R: Send>(command: impl FnOnce() -> R + Send) -> R {
    // The main thread's stack size: burn's autodiff and the data pipeline recurse no deeper on a
    // worker than they did there.
    const STACK: usize = 8 << 20;
    // An error means the pool already exists (it cannot here: nothing ran before main).
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(STACK)
        .build_global();
    rayon::scope(|_| command())
}

/// Probing wgpu adapters loads Mesa's Vulkan drivers, whose Wayland window-system code prints
/// "error: XDG_RUNTIME_DIR is invalid or not set in the environment." on any headless machine
/// where the variable is unset: a user reads "error" on a healthy run. The lab never opens a
/// window, so where the variable does not name a directory it points it at a private one
/// (mode 0700, per user) before anything probes. Child `lab train` processes inherit it.
fn quiet_window_system_probe() {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let set =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if set {
        return;
    }
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let dir = std::env::temp_dir().join(format!("moe-lab-runtime-{uid}"));
    let made = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    if made.is_ok() || dir.is_dir() {
        // SAFETY: called first thing in `main`, before any other thread exists, so nothing
        // reads the environment concurrently.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Train(args) => train_cmd(args),
        Command::Sweep(args) => sweep_cmd(args),
        Command::Analyze(args) => {
            print_verdicts(&args.publish(false)?);
            Ok(0)
        }
        Command::Report { results, open } => {
            let published = results.publish(false)?;
            print_verdicts(&published);
            if open {
                moe_lab::page::open::in_browser(&published.page);
            }
            Ok(0)
        }
        Command::Plot(args) => {
            for p in &args.publish(true)?.plots {
                println!("{}", p.display());
            }
            Ok(0)
        }
        Command::Flops { specs } => flops_cmd(&specs),
        Command::Sample(args) => sample_cmd(args),
        Command::Export {
            run_dir,
            out,
            averaged,
        } => {
            let device = DeviceChoice::Flex.open()?.device;
            let exported = moe_lab::export::export(&run_dir, &out, averaged, &device)?;
            println!("{}", cli_text::export_line(&exported));
            Ok(0)
        }
        Command::Devices => {
            println!("{}", cli_text::devices_table(&device::adapters()));
            Ok(0)
        }
        Command::Bench(args) => bench_cmd(args),
        Command::Data(cmd) => data_cmd::run(cmd),
        Command::Corpus {
            bytes,
            write: Some(dir),
            seed,
            ..
        } => {
            for path in moe_lab::data::corpus::write::write_domains(&dir, bytes, seed)? {
                println!("{}", path.display());
            }
            Ok(0)
        }
        Command::Corpus {
            bytes,
            samples,
            seed,
            write: None,
        } => {
            println!("{}", cli_text::corpus_report(bytes, samples, seed));
            Ok(0)
        }
    }
}

/// `lab train`: one run.
fn train_cmd(args: TrainArgs) -> anyhow::Result<i32> {
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
        moe_lab::say!(
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
    moe_lab::say!(
        "training {} on {} for {} steps ({} tokens, {:.3e} FLOPs) → {}",
        s.name,
        lab_device.adapter,
        config.steps,
        config.total_tokens(),
        config.total_train_flops(),
        run_dir.path.display()
    );
    moe_lab::say!("  ffn: {}", s.ffn.summary_line());
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
        moe_lab::say!(
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

/// `lab flops`: counts of each spec.
fn flops_cmd(specs: &[PathBuf]) -> anyhow::Result<i32> {
    if specs.is_empty() {
        anyhow::bail!("lab flops: give at least one spec file");
    }
    for path in specs {
        let config = spec::resolve(path)?;
        println!("{}", cli_text::flops_table(path, &config));
    }
    Ok(0)
}

/// `lab sample`: stream text from a run's final model; speed and peak memory on stderr.
fn sample_cmd(args: SampleArgs) -> anyhow::Result<i32> {
    use std::io::Write;
    let bad = |field: &str, message: String| SpecError::Field {
        file: args.run_dir.clone(),
        field: field.into(),
        message,
    };
    if !(args.temperature.is_finite() && args.temperature >= 0.0) {
        return Err(bad("--temperature", "must be a number ≥ 0 (0: greedy)".into()).into());
    }
    moe_lab::error::at_most("--max-tokens", args.max_tokens, moe_lab::limits::STEPS)
        .map_err(|e| bad(&e.path, e.message))?;
    let lab_device = args.device.open()?;
    let (config, model) = RunDir::new(&args.run_dir)
        .load_model(&lab_device.device)
        .map_err(|e| bad("model", format!("{e:#}")))?;
    let vocab = moe_lab::data::tokenizer::Vocabulary::of(&config.spec.data)?;
    let opts = moe_lab::sample::SampleOptions {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        seed: args.seed,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(args.prompt.as_bytes())?;
    let seq_len = config.spec.model.seq_len;
    let prompt = moe_lab::sample::encode_prompt(&vocab, &args.prompt)?;
    let mut text = moe_lab::sample::TextStream::new(&vocab);
    let stats =
        moe_lab::sample::generate(&model, seq_len, &prompt, &opts, &lab_device.device, |t| {
            let _ = out.write_all(&text.push(t)).and_then(|()| out.flush());
        });
    writeln!(out)?;
    out.flush()?;
    moe_lab::say!("{}", cli_text::sample_line(&stats, &lab_device.adapter));
    if args.stats {
        let params = config.params.total + config.params.buffers;
        RunDir::new(&args.run_dir).write_generation(&moe_lab::run::generation::Generation {
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

/// `lab sweep`: train the grid's cells, then analyse and plot.
fn sweep_cmd(args: SweepArgs) -> anyhow::Result<i32> {
    let plan = sweep::plan(&args.experiment, args.preset.as_deref())?;
    for w in &plan.warnings {
        moe_lab::say!("warning: {w}");
    }
    let results = args.out.join(&plan.results_name);
    if args.status {
        println!(
            "{}",
            cli_text::status_table(&sweep::status::status(&plan, &results))
        );
        return Ok(0);
    }
    if args.dry_run && !args.slurm.slurm {
        return dry_run(&plan, &args);
    }
    let opts = sweep::SweepOptions {
        results_root: args.out.clone(),
        lab_exe: std::env::current_exe()?,
        devices: args.devices.clone(),
        // One cell per process on a cluster (each task has its own cores).
        jobs: match args.cell.is_some() || args.slurm.slurm {
            true => 1,
            false => jobs_for(&plan, &args)?,
        },
        max_cells: args.max_cells,
        progress: true,
        checkpoint_every: args.checkpoint_every,
    };
    // A stop request (SIGTERM, SIGUSR1) reaches the cells, which checkpoint.
    train::interrupt::install()?;
    let locked = |e: anyhow::Error| match e.downcast_ref::<sweep::lock::LockedError>() {
        Some(_) => {
            moe_lab::say!("error: {e:#}");
            Ok(EXIT_LOCKED)
        }
        None => Err(e),
    };
    if let Some(cell) = &args.cell {
        return sweep::runner::run_one_cell(&plan, &opts, cell).or_else(locked);
    }
    if args.slurm.slurm {
        return slurm_cmd(&plan, &opts, &args);
    }
    moe_lab::say!(
        "sweep {} (preset {}): {} cells → {}",
        plan.experiment.name,
        plan.preset,
        plan.cells.len(),
        results.display()
    );
    if let Some(p) = plan.experiment.presets.get(&plan.preset)
        && !p.expected_time.is_empty()
    {
        moe_lab::say!("expected time: {}", p.expected_time);
    }
    if args.until_decisive {
        return until_decisive_cmd(&args, &opts).or_else(locked);
    }
    let outcome = match sweep::run_sweep(&plan, &opts) {
        Ok(o) => o,
        Err(e) => return locked(e),
    };
    moe_lab::say!("{}", cli_text::sweep_outcome(&outcome));
    if train::interrupt::requested() {
        moe_lab::say!("sweep stopped by a signal; rerun it to resume the interrupted cells");
        return Ok(EXIT_INTERRUPTED);
    }
    if outcome.pending.is_empty() && plan.learning_rates().is_empty() {
        sweep::runner::measure_generation(&plan, &opts);
    }
    let published = publish::publish(&results, &args.plots, true)?;
    print_verdicts(&published);
    Ok(if outcome.failed.is_empty() { 0 } else { 1 })
}

/// `lab sweep --dry-run`: the cells, and with `--until-decisive` the planned looks.
fn dry_run(plan: &sweep::Plan, args: &SweepArgs) -> anyhow::Result<i32> {
    println!("{}", cli_text::plan_table(plan));
    if args.until_decisive {
        let preset = args.preset.as_deref();
        let looks = until_decisive::planned(&args.experiment, preset, growth(args))?;
        println!("until decisive: looks at {looks:?} seeds per cell (the last is the cap)");
    }
    Ok(0)
}

fn growth(args: &SweepArgs) -> until_decisive::Growth {
    until_decisive::Growth {
        max_seeds: args.max_seeds,
        group: args.seed_group,
    }
}

/// `lab sweep --until-decisive`: the looks, then the verdicts of the last.
fn until_decisive_cmd(args: &SweepArgs, opts: &sweep::SweepOptions) -> anyhow::Result<i32> {
    let preset = args.preset.as_deref();
    match until_decisive::run(&args.experiment, preset, opts, &args.plots, growth(args))? {
        until_decisive::Ended::Looked(_, published, _) => {
            print_verdicts(&published);
            Ok(0)
        }
        until_decisive::Ended::Unfinished(outcome) => {
            moe_lab::say!("{}", cli_text::sweep_outcome(&outcome));
            moe_lab::say!("no look on unfinished results: rerun the same command to go on");
            Ok(match train::interrupt::requested() {
                true => EXIT_INTERRUPTED,
                false => 1,
            })
        }
    }
}

/// `--jobs`: a positive number, or `auto` ([`sweep::runner::auto_jobs`]).
fn jobs_for(plan: &sweep::Plan, args: &SweepArgs) -> anyhow::Result<usize> {
    if args.jobs == "auto" {
        let (jobs, why) = sweep::runner::auto_jobs(plan, &args.devices);
        moe_lab::say!("jobs: {jobs} ({why})");
        return Ok(jobs);
    }
    match args.jobs.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(SpecError::Field {
            file: plan.source.clone(),
            field: "--jobs".into(),
            message: format!("must be a positive number or `auto`, got {:?}", args.jobs),
        }
        .into()),
    }
}

/// `lab sweep --slurm`: write the job array and analysis scripts, and submit them.
fn slurm_cmd(
    plan: &sweep::Plan,
    opts: &sweep::SweepOptions,
    args: &SweepArgs,
) -> anyhow::Result<i32> {
    let a = &args.slurm;
    let slurm = sweep::slurm::SlurmOptions {
        partition: a.partition.clone(),
        time: a.time.clone(),
        gpus_per_task: a.gpus_per_task,
        cpus_per_task: a.cpus_per_task,
        max_parallel: a.max_parallel,
        warn_seconds: a.warn_seconds,
        experiment: plan.source.clone(),
        preset: args.preset.clone(),
        plots: args.plots.clone(),
    };
    let scripts = sweep::slurm::write_scripts(plan, opts, &slurm)?;
    if args.dry_run {
        println!("{}", cli_text::slurm_scripts(&scripts, None));
        return Ok(0);
    }
    let submitted = sweep::slurm::submit(&scripts)?;
    println!("{}", cli_text::slurm_scripts(&scripts, Some(&submitted)));
    Ok(0)
}

/// `lab bench`: step and feed-forward timings.
fn bench_cmd(args: BenchArgs) -> anyhow::Result<i32> {
    let lab_device = args.device.open()?;
    let cpu = lab_device.backend == "flex" || lab_device.software;
    let (d, layers, seq, batch) = match args.preset {
        BenchPreset::Bench => (vec![256, 512], 4, 256, if cpu { 4 } else { 32 }),
        BenchPreset::Sweep => (vec![32, 64, 128], 2, 128, 16),
    };
    let opts = moe_lab::bench::BenchOptions {
        d_models: args.d_model.unwrap_or(d),
        layers: args.layers.unwrap_or(layers),
        seq_len: args.seq_len.unwrap_or(seq),
        batch: args.batch.unwrap_or(batch),
        warmup: args.warmup,
        steps: args.steps.max(1),
        out: args.out,
    };
    print!("{}", moe_lab::bench::run(&lab_device, &opts)?);
    Ok(0)
}
