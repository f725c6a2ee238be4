//! `lab`, the command line: each subcommand's flags as a struct ([`args`]), one function per
//! subcommand (a file each where it is more than a call into the library), the text they print
//! ([`text`]), and the `--until-decisive` driver ([`until_decisive`]). The binary
//! (`lab/main.rs`) only sets up the process and calls [`run`].

pub mod args;
mod bench;
mod data;
mod flops;
mod forecast;
mod mix_check;
mod sample;
mod sweep;
pub mod text;
mod train;
pub mod until_decisive;

pub use args::Cli;

use self::args::*;
use self::text as cli_text;
use crate::train::device::{self, DeviceChoice};

/// Run the parsed command line; the exit code (errors are the caller's to report).
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Train(args) => train::train_cmd(args),
        Command::Sweep(args) => sweep::sweep_cmd(args),
        Command::Analyze(args) => {
            text::print_verdicts(&args.publish(false)?);
            Ok(0)
        }
        Command::Report { results, open } => {
            let published = results.publish(false)?;
            text::print_verdicts(&published);
            if open {
                crate::page::open::in_browser(&published.page);
            }
            Ok(0)
        }
        Command::Plot(args) => {
            for p in &args.publish(true)?.plots {
                println!("{}", p.display());
            }
            Ok(0)
        }
        Command::Flops { specs } => flops::flops_cmd(&specs),
        Command::Sample(args) => sample::sample_cmd(args),
        Command::Export {
            run_dir,
            out,
            averaged,
        } => {
            let device = DeviceChoice::Flex.open()?.device;
            let exported = crate::export::export(&run_dir, &out, averaged, &device)?;
            println!("{}", cli_text::export_line(&exported));
            Ok(0)
        }
        Command::Devices => {
            println!("{}", cli_text::devices_table(&device::adapters()));
            Ok(0)
        }
        Command::Bench(args) => bench::bench_cmd(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Corpus {
            bytes,
            write: Some(dir),
            seed,
            ..
        } => {
            for path in crate::data::corpus::write::write_domains(&dir, bytes, seed)? {
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
