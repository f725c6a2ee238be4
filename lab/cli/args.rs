//! The command line's words: each subcommand's flags as its own struct, parsed by clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::train::device::DeviceChoice;
use crate::{publish, sweep};

#[derive(Parser)]
#[command(
    name = "lab",
    version,
    about = "moe-lab: dense vs Mixture-of-Experts experiments"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
pub enum DataCommand {
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
pub struct TrainArgs {
    #[arg(long)]
    pub spec: PathBuf,
    /// Results root (the run goes to OUT/<experiment>/<name>/).
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// Continue from the run's checkpoint if it has one.
    #[arg(long)]
    pub resume: bool,
    /// Write the run here instead of OUT/<experiment>/<name>/ (used by sweeps).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Override the spec's length (a quick look at a run, e.g. on a slow device).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Stop, as if killed, when the parent process exits (sweeps pass this to their cells).
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
}

// The flags of `lab sweep`.
#[derive(clap::Args)]
pub struct SweepArgs {
    /// Experiment name (experiments/<name>.toml) or path.
    pub experiment: String,
    #[arg(long)]
    pub preset: Option<String>,
    /// Devices to run cells on, comma-separated (auto, wgpu, wgpu-cpu, flex).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "auto")]
    pub devices: Vec<DeviceChoice>,
    /// Cells to run at once (spread over --devices): a number, or `auto`: on CPU devices one
    /// cell per core (each with a core's threads), as many as fit in memory; on GPUs one per
    /// device.
    #[arg(long, default_value = "auto")]
    pub jobs: String,
    /// Stop after running this many cells (the rest run on the next invocation).
    #[arg(long)]
    pub max_cells: Option<usize>,
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    #[arg(long, default_value = "plots")]
    pub plots: PathBuf,
    /// Checkpoint interval (steps) for cells whose spec sets none.
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// List the cells (steps, tokens, FLOPs) and exit without training; with --slurm, write
    /// the Slurm scripts without submitting them.
    #[arg(long)]
    pub dry_run: bool,
    /// Run one cell only (what each task of a --slurm sweep runs).
    #[arg(long, conflicts_with_all = ["slurm", "status"])]
    pub cell: Option<String>,
    /// List the cells as done / running / interrupted / failed / pending (with their Slurm
    /// tasks' states for a --slurm sweep).
    #[arg(long, conflicts_with = "slurm")]
    pub status: bool,
    /// Add seeds in groups until every primary comparison is decided (its repeated 95%
    /// interval excludes 0 or lies inside the equivalence margin) or --max-seeds is reached:
    /// a group-sequential design (O'Brien–Fleming-type α spending), written to
    /// sequential.json and the report.
    #[arg(long, conflicts_with_all = ["slurm", "cell", "status"])]
    pub until_decisive: bool,
    /// With --until-decisive: the cap on seeds per cell (default: 4 × the preset's seeds).
    #[arg(long, requires = "until_decisive")]
    pub max_seeds: Option<usize>,
    /// With --until-decisive: seeds added per look (default: the preset's seeds).
    #[arg(long, requires = "until_decisive")]
    pub seed_group: Option<usize>,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

// `lab sweep --slurm` and the sbatch options it writes.
#[derive(clap::Args)]
pub struct SlurmArgs {
    /// Submit the unfinished cells to Slurm as a job array, and the analysis as a job after it.
    #[arg(long)]
    pub slurm: bool,
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// Time limit per cell task (sbatch --time, e.g. 2:00:00).
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    #[arg(long, requires = "slurm")]
    pub gpus_per_task: Option<u32>,
    #[arg(long, requires = "slurm")]
    pub cpus_per_task: Option<u32>,
    /// Array tasks running at once.
    #[arg(long, requires = "slurm")]
    pub max_parallel: Option<usize>,
    /// Seconds before the time limit at which a cell checkpoints and requeues (SIGUSR1).
    #[arg(long, requires = "slurm", default_value_t = 120)]
    pub warn_seconds: u32,
}

// The flags of `lab sample`.
#[derive(clap::Args)]
pub struct SampleArgs {
    /// A completed run's directory (it holds `model/` and `config.toml`).
    pub run_dir: PathBuf,
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Tokens to generate (bytes for a byte-level run).
    #[arg(long, visible_alias = "max-bytes", default_value_t = 200)]
    pub max_tokens: usize,
    /// 0: greedy.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Sample among the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "flex")]
    pub device: DeviceChoice,
    /// Also write what the generation cost to RUN_DIR/generation.json (read by the report).
    #[arg(long)]
    pub stats: bool,
}

// The flags of `lab bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// `bench`: d 256,512, 4 layers, seq 256 (batch 4 on CPU, 32 on a GPU); `sweep`: the shapes
    /// sweeps train, d 32,64,128, 2 layers, seq 128, batch 16. Flags below override.
    #[arg(long, value_enum, default_value = "bench")]
    pub preset: BenchPreset,
    #[arg(long, value_delimiter = ',')]
    pub d_model: Option<Vec<usize>>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Sequences per step.
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    #[arg(long, default_value = "results/bench")]
    pub out: PathBuf,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum BenchPreset {
    Bench,
    Sweep,
}

/// Where a sweep's results and figures are.
#[derive(clap::Args)]
pub struct ResultsArgs {
    /// Experiment name (experiments/<name>.toml) or path.
    pub experiment: String,
    #[arg(long)]
    pub preset: Option<String>,
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    #[arg(long, default_value = "plots")]
    pub plots: PathBuf,
}

impl ResultsArgs {
    pub fn publish(&self, draw: bool) -> anyhow::Result<publish::Published> {
        let plan = sweep::plan(&self.experiment, self.preset.as_deref())?;
        publish::publish(&self.out.join(&plan.results_name), &self.plots, draw)
    }
}
