//! `salesflow demo`: the whole flow on one machine, no AWS. A chain of stores trades for a day (and for the
//! same weekday of the previous week, so there is something to compare with); every receipt goes the way it
//! goes in production:
//!
//! ```text
//! stores ─ Kinesis-shaped records (base64, partition key = store, MD5 → shard, sequence numbers)
//!        ─ batches per shard (size 1000 or the batching window) → ingest handler ─ raw/ landed/ rejects/
//!        ─ S3 ObjectCreated event per landed object → export handler ─ datasets/ (CSV)
//!        ─ EventBridge schedule every 15 simulated minutes → export handler ─ compaction, manifests/
//! ```
//!
//! The bucket is a local directory (`<out>/<bucket>/...`, the `LocalStore` the functions already write
//! through). At the end the dashboard is built from the CSV datasets the manifests list ([`dashboard`]), and a
//! summary is printed and written to `<out>/summary.json`.

mod dashboard;
mod day;
mod simulate;
mod svg;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Args;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::Serialize;

use day::DayPlan;
use simulate::{DayResult, Totals};

/// The file in a demo directory that says it may be cleared on the next run.
const MARKER: &str = ".salesflow-demo";

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Stores in the chain (the first N of pipelines/stores.csv, all over France).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub stores: u32,
    /// Trading hours, from 08:00 store time (Europe/Paris).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub hours: u8,
    /// Time compression. Stores ring up the seed's 10 receipts a minute (more at lunch and in the evening, less
    /// in the morning), but each simulated hour only carries 60/SPEED minutes of them, spread over the hour;
    /// the stream's 5 s batching window stretches to 5×SPEED simulated seconds. 1 is a real day's volume.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub speed: u32,
    /// Seed of the receipts, the bad records and the stores picked: the same seed gives the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The day to simulate (store time); the same weekday of the week before is simulated too. Default: today.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<Date>,
    /// Kinesis shards the stream has (records go to a shard by the MD5 of their partition key, the store id).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub shards: u16,
    /// Where the bucket (`<out>/salesflow-data/...`), the dashboard and the summary go. Cleared first when it
    /// holds an earlier demo; refused when it holds anything else.
    #[arg(long, value_name = "DIR", default_value = "salesflow-demo")]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `<out>/summary.json`: everything the printed summary says, as numbers.
#[derive(Debug, Serialize)]
pub struct DemoSummary {
    pub stores: u32,
    pub hours: u8,
    pub speed: u32,
    pub seed: u64,
    pub shards: u16,
    pub bucket: String,
    pub days: Vec<DayResult>,
    pub totals: Totals,
    pub seconds: f64,
    pub records_per_second: f64,
    /// Category, today's turnover, last week's (exact decimals), most sold today first.
    pub categories: Vec<(String, Decimal, Decimal)>,
    /// What the dashboard read back from the datasets equals what the stores rang up.
    pub datasets_match: bool,
    pub dashboard: PathBuf,
    pub bucket_dir: PathBuf,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let zone = TimeZone::get(salesflow_core::generate::CHAIN_TIME_ZONE)?;
    let today = match args.date {
        Some(d) => d,
        None => jiff::Timestamp::now().to_zoned_datetime(zone.clone()).date(),
    };
    let last_week = today - jiff::Span::new().days(7);
    prepare_out(&args.out)?;
    let started = Instant::now();
    let plans =
        [DayPlan::new(&args, last_week, "same day last week", &zone)?, DayPlan::new(&args, today, "today", &zone)?];
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (days, totals) = runtime.block_on(simulate::run(&args, &plans))?;
    let seconds = started.elapsed().as_secs_f64();

    let settings = simulate::settings();
    let bucket_dir = args.out.join(&settings.bucket);
    let board = dashboard::Dashboard::load(&bucket_dir, &settings.bucket, &plans[1], &plans[0])
        .context("reading the datasets back through the manifests")?;
    let dashboard_path = args.out.join("dashboard.html");
    std::fs::write(&dashboard_path, board.render(&args, &plans[1], &plans[0]))
        .with_context(|| format!("cannot write {}", dashboard_path.display()))?;

    let (ours, theirs) = (&days[1], &days[0]);
    let mut categories: Vec<(String, Decimal, Decimal)> = ours
        .sent
        .by_category
        .iter()
        .map(|(c, t)| (c.clone(), *t, theirs.sent.by_category.get(c).copied().unwrap_or_default()))
        .collect();
    categories.sort_by_key(|(_, t, _)| std::cmp::Reverse(*t));
    let datasets_match = board.matches(&days[1], &days[0]);
    let summary = DemoSummary {
        stores: args.stores,
        hours: args.hours,
        speed: args.speed,
        seed: args.seed,
        shards: args.shards,
        bucket: settings.bucket.clone(),
        records_per_second: totals.counts.records_in as f64 / seconds.max(1e-9),
        days,
        totals,
        seconds,
        categories,
        datasets_match,
        dashboard: dashboard_path,
        bucket_dir,
    };
    std::fs::write(args.out.join("summary.json"), serde_json::to_vec_pretty(&summary)?)?;
    print_summary(&summary, &plans);
    if !summary.datasets_match {
        bail!("the datasets do not add up to what the stores sent (see the summary above)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Clears an earlier demo in `out` (it has the marker file), refuses a directory with anything else in it.
fn prepare_out(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        let is_demo = out.join(MARKER).exists();
        let empty = std::fs::read_dir(out)?.next().is_none();
        if !is_demo && !empty {
            bail!("{} exists and is not a salesflow demo directory: choose another --out", out.display());
        }
        if is_demo {
            for entry in std::fs::read_dir(out)? {
                let path = entry?.path();
                if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) }
                    .with_context(|| format!("cannot clear {}", path.display()))?;
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(out.join(MARKER), "salesflow demo output: `salesflow demo` clears this directory\n")?;
    Ok(())
}

/// `1234567.891` → `1,234,567.89`
pub(crate) fn money(d: Decimal) -> String {
    let rounded = d.round_dp(2);
    let negative = rounded.is_sign_negative() && !rounded.is_zero();
    let text = format!("{:.2}", rounded.abs());
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "00"));
    format!("{}{}.{cents}", if negative { "-" } else { "" }, group(whole))
}

/// `1234567` → `1,234,567`
pub(crate) fn group(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn count(n: u64) -> String {
    group(&n.to_string())
}

pub(crate) fn change(now: Decimal, before: Decimal) -> String {
    if before.is_zero() {
        return "n/a".into();
    }
    let pct = (now - before) / before * Decimal::from(100);
    format!("{}{:.1}%", if pct.is_sign_negative() { "" } else { "+" }, pct.round_dp(1))
}

fn print_summary(s: &DemoSummary, plans: &[DayPlan; 2]) {
    let t = &s.totals.counts;
    let today = &plans[1];
    println!();
    println!(
        "salesflow demo: {} stores, {} trading hours ({}), {}× compressed, seed {}, {} shards",
        count(s.stores.into()),
        s.hours,
        today.hours_label(),
        s.speed,
        s.seed,
        s.shards
    );
    println!("  days: {} (today) and {} (same day last week)", today.describe(), plans[0].describe());
    println!();
    println!(
        "records in      {:>10}  = landed {} + filtered {} + rejected {}",
        count(t.records_in),
        count(t.emitted),
        count(t.filtered),
        count(t.rejected)
    );
    let mut why: Vec<String> = t.filtered_by.iter().map(|(k, v)| format!("{k} {}", count(*v))).collect();
    why.extend(t.rejected_by.iter().map(|(k, v)| format!("{k} {}", count(*v))));
    println!("                             (filtered/rejected by: {})", why.join(", "));
    println!(
        "receipt lines   {:>10}  landed → {} rows in datasets/sales_lines after compaction",
        count(t.outputs),
        count(s.totals.sales_lines_rows)
    );
    println!(
        "throughput      {:>10}  records/s ({} records in {:.1} s: {} ingest batches, {} landed objects exported, \
         {} scheduled runs, {} hours compacted)",
        count(s.records_per_second as u64),
        count(t.records_in),
        s.seconds,
        count(s.totals.batches),
        count(s.totals.objects_exported),
        count(s.totals.scheduled_runs),
        count(s.totals.hours_compacted)
    );
    println!();
    println!("turnover (EUR)  {:<22} {:>15} {:>17} {:>8}", "category", "today", "same day last wk", "change");
    for (category, now, before) in s.categories.iter().take(5) {
        println!(
            "                {category:<22} {:>15} {:>17} {:>8}",
            money(*now),
            money(*before),
            change(*now, *before)
        );
    }
    let (now, before) = (s.days[1].sent.turnover, s.days[0].sent.turnover);
    println!(
        "                {:<22} {:>15} {:>17} {:>8}",
        format!("all {} categories", s.categories.len()),
        money(now),
        money(before),
        change(now, before)
    );
    println!(
        "                {}",
        if s.datasets_match {
            "the CSV datasets (read back through the manifests) add up to exactly what the stores rang up"
        } else {
            "MISMATCH: the CSV datasets do not add up to what the stores rang up"
        }
    );
    println!();
    let b = s.bucket_dir.display();
    println!("files           {b}/raw/        the stream as it arrived (zstd NDJSON per batch)");
    println!("                {b}/landed/     one record per receipt line, per event hour");
    println!("                {b}/rejects/    bad records with the reason");
    println!("                {b}/datasets/   CSV: sales_lines, hourly_sales (what QuickSight imports)");
    println!("                {b}/manifests/  QuickSight S3 manifests");
    println!("                {}/summary.json", s.bucket_dir.parent().unwrap_or(Path::new(".")).display());
    println!("dashboard       {}  (open it in a browser)", s.dashboard.display());
}
