//! `salesflow generate`: synthetic receipts for tests, benchmarks and demos.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use flate2::Compression;
use flate2::write::GzEncoder;
use jiff::{SignedDuration, Timestamp};
use salesflow_core::generate::{Generator, spread_times, store_table_csv};

#[derive(Args)]
pub struct GenerateArgs {
    /// Number of stores in the chain.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    stores: u32,
    /// Number of receipts.
    #[arg(long, default_value_t = 1_000)]
    receipts: usize,
    /// Random seed: the same seed gives the same receipts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Opening time of the trading day (RFC 3339 with offset).
    #[arg(long, default_value = "2026-11-23T08:00:00+01:00")]
    start: Timestamp,
    /// Trading hours the receipts spread over.
    #[arg(long, default_value_t = 13, value_parser = clap::value_parser!(i64).range(1..))]
    hours: i64,
    /// Output file (`.gz` compresses); stdout by default.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Also write the stores reference table (stores.csv) for these stores.
    #[arg(long)]
    stores_csv: Option<PathBuf>,
}

pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    // Checked before anything is written: the receipts' times must all be representable.
    let span = args
        .hours
        .checked_mul(3600)
        .map(SignedDuration::from_secs)
        .filter(|span| args.start.checked_add(*span).is_ok())
        .with_context(|| {
            format!(
                "--start {} plus --hours {} ends after {}, the last time salesflow can represent",
                args.start,
                args.hours,
                Timestamp::MAX
            )
        })?;
    if let Some(path) = &args.stores_csv {
        std::fs::write(path, store_table_csv(args.stores))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => {
            let file = BufWriter::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?);
            if path.extension().is_some_and(|e| e == "gz") {
                Box::new(GzEncoder::new(file, Compression::default()))
            } else {
                Box::new(file)
            }
        }
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut generator = Generator::new(args.seed, args.stores);
    for at in spread_times(args.seed, args.start, span, args.receipts) {
        serde_json::to_writer(&mut out, &generator.receipt_at(at))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    drop(out);
    Ok(ExitCode::SUCCESS)
}
