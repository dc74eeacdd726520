//! `salesflow`: the command users run. Glue only: argument parsing here, the work in `salesflow-core` and the
//! function crates.

mod aws;
mod demo;
mod dev;
mod generate;
mod input;
mod invoke;
mod jsonpath;
mod local;
mod logs;
mod pipeline;
mod produce;
mod replay;
mod transform;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "salesflow", version, about = "Real-time sales analytics: receipts in, QuickSight-ready datasets out")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream NDJSON receipts (files, .gz too, or stdin) through a pipeline; NDJSON out, counts to stderr.
    Transform(transform::TransformArgs),
    /// Evaluate an RFC 9535 JSONPath query on a JSON document and print the nodelist as a JSON array.
    Jsonpath(jsonpath::JsonpathArgs),
    /// Pipeline files.
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// Generate realistic synthetic receipts (NDJSON), deterministic for a seed.
    Generate(generate::GenerateArgs),
    /// Run a function's handler in-process on a Lambda event file, against S3 or a local directory.
    Invoke(invoke::InvokeArgs),
    /// The whole flow on this machine, no AWS: a simulated trading day through the ingest and export handlers
    /// into a local bucket directory, a summary, and a self-contained dashboard.html.
    Demo(demo::DemoArgs),
    /// Run both handlers against Kinesis, S3 and SQS (LocalStack or AWS) like Lambda's event sources would.
    Dev(dev::DevArgs),
    /// Re-run `raw/` objects (an arrival-time range or a list of keys) through the current pipeline with the
    /// ingest function's code: same landed keys, same bytes when nothing changed; the next scheduled export folds
    /// the changes into the datasets, compacted hours included.
    Replay(replay::ReplayArgs),
    /// Send generated receipts to a Kinesis stream at a steady rate (optionally KPL-aggregated).
    Produce(produce::ProduceArgs),
}

#[derive(Subcommand)]
enum PipelineCommand {
    /// Validate a pipeline file and print its compiled plan and whether it ends in the export's contract (exit
    /// 1 when not: ingest would reject its records), or every error with where it is.
    Check {
        /// Pipeline file (YAML or JSON).
        file: PathBuf,
        /// Receipts (NDJSON) to check the export's contract with, instead of generated ones (needed when the
        /// pipeline's lookups use another stores table than the embedded one).
        #[arg(long)]
        sample: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Transform(args) => transform::run(args),
        Command::Jsonpath(args) => jsonpath::run(args),
        Command::Pipeline { command: PipelineCommand::Check { file, sample } } => {
            pipeline::check(&file, sample.as_deref())
        }
        Command::Generate(args) => generate::run(args),
        Command::Invoke(args) => invoke::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Dev(args) => dev::run(args),
        Command::Produce(args) => produce::run(args),
        Command::Replay(args) => replay::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
