//! `salesflow dev`: the local event-source runner. LocalStack's Lambda needs Docker, so this runs both
//! handlers in-process against real Kinesis, S3 and SQS (LocalStack's or AWS's), behaving like Lambda's event
//! source mappings:
//!
//! - creates, if missing, the stream, the bucket, the queue and the bucket's `landed/` → queue notification;
//! - reads every shard with GetRecords and builds the `KinesisEvent` Lambda would (base64 data, `eventID` =
//!   `shardId:sequenceNumber`, `approximateArrivalTimestamp`, `eventSourceARN`, `eventSource`, `awsRegion`),
//!   batch size and batching window included; calls the ingest handler; honours `batchItemFailures` (retries from
//!   the reported sequence number, at most `--max-retries` times, then sends the batch's shard and sequence range
//!   to the on-failure destination and moves on); on a function error (the handler panics, or names no record
//!   of the batch) bisects the batch (`BisectBatchOnFunctionError`), the halves counting against
//!   `--max-retries`; sends records older than `--max-record-age` to the on-failure destination instead of
//!   the handler (`MaximumRecordAgeInSeconds`); reads a child shard only once its parents are read to their end,
//!   and picks up the children of a shard that closes; checkpoints each shard in a file so a restart resumes;
//! - receives the S3 notifications and calls the export handler with them, deleting a message only after it
//!   succeeded; runs the export's scheduled compaction every `--schedule`;
//! - shows records/s, lag and rejects; on Ctrl-C finishes the batch in flight, checkpoints and stops (records
//!   read but not yet handled are read again next time: nothing is lost). `--until-idle` stops once everything
//!   is drained, after one last scheduled run, and prints a JSON summary (freshness percentiles included).
//!
//! Each shard's mapping decides in [`mapping`] (no I/O) and talks to Kinesis and the handler in [`reader`];
//! [`export`] is the notification queue and the schedule, [`destination`] the on-failure destination,
//! [`shards`] the shards' lineage, [`stats`] what is counted. This module sets up and supervises the tasks.

mod destination;
mod export;
mod mapping;
mod reader;
mod shards;
mod stats;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use salesflow_export::{ExportConfig, Exporter};
use salesflow_ingest::{Ingest, IngestConfig};
use salesflow_store::S3Store;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::aws;
use crate::local::duration::parse_duration;
use crate::local::events::{KinesisStream, Origin};
use crate::local::progress;
use destination::Destination;
use shards::Shards;
use stats::Stats;

#[derive(Args)]
pub struct DevArgs {
    /// The Kinesis stream (created with `--shards` shards when missing).
    #[arg(long, default_value = "salesflow-receipts")]
    stream: String,
    /// The bucket (created when missing); default `SALESFLOW_BUCKET`, else `salesflow-data`.
    #[arg(long, env = "SALESFLOW_BUCKET", default_value = "salesflow-data")]
    bucket: String,
    /// The queue the bucket notifies of landed objects (default `<bucket>-landed`).
    #[arg(long)]
    queue: Option<String>,
    /// Shards of a stream this command creates.
    #[arg(long, default_value_t = 1)]
    shards: i32,
    /// Records per ingest invocation, at most (the template's `IngestBatchSize`).
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// How long to gather records before invoking with a partial batch (`MaximumBatchingWindowInSeconds`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    batching_window: Duration,
    /// Where a shard without a checkpoint starts.
    #[arg(long, value_enum, default_value_t = StartingPosition::TrimHorizon)]
    starting_position: StartingPosition,
    /// Retries of a batch whose records keep failing, before it goes to the on-failure destination.
    #[arg(long, default_value_t = 5)]
    max_retries: u32,
    /// Records older than this (from their `approximateArrivalTimestamp`) are not delivered but sent to the
    /// on-failure destination (the template's `IngestMaximumRecordAgeSeconds`); `0` no limit.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    max_record_age: Duration,
    /// On a function error, retry the whole batch instead of splitting it in two (`BisectBatchOnFunctionError`
    /// false; the template sets it true).
    #[arg(long)]
    no_bisect: bool,
    /// Append failed batches (shard, sequence range) to this NDJSON file instead of the
    /// `<stream>-ingest-failures` queue.
    #[arg(long, value_name = "FILE")]
    on_failure_file: Option<PathBuf>,
    /// Checkpoints live in `DIR/checkpoints/<stream>/<shard>`; delete them to read the stream again.
    #[arg(long, value_name = "DIR", default_value = ".salesflow-dev")]
    state_dir: PathBuf,
    /// How often the export's scheduled run (compaction, manifests) runs; `0` never.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    schedule: Duration,
    /// How long to wait between GetRecords calls on a caught-up shard.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    poll: Duration,
    /// Stop once every shard is caught up and the queue has been empty for `--idle` (after one last scheduled
    /// run unless `--schedule 0`); print a JSON summary.
    #[arg(long, alias = "exit-when-drained")]
    until_idle: bool,
    /// How long everything must stay quiet for `--until-idle`.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    idle: Duration,
    /// Also write the summary to this file.
    #[arg(long, value_name = "FILE")]
    stats: Option<PathBuf>,
    /// Print the handlers' EMF metric lines on stderr.
    #[arg(long)]
    metrics: bool,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum StartingPosition {
    TrimHorizon,
    Latest,
}

/// What every task shares.
struct Ctx {
    args: DevArgs,
    /// The stream's region and account, which the events and on-failure messages name.
    origin: Origin,
    stream: KinesisStream,
    kinesis: aws_sdk_kinesis::Client,
    sqs: aws_sdk_sqs::Client,
    /// The queue the bucket notifies of landed objects.
    queue_url: String,
    ingest: Ingest<S3Store>,
    exporter: Exporter<S3Store>,
    destination: Destination,
    /// `<state dir>/checkpoints/<stream>/`.
    checkpoints: PathBuf,
    stats: Stats,
    /// The shards as last listed, their parents, those read to their end, those idle.
    shards: Mutex<Shards>,
    /// Shards found after a shard closed (its children), for the main loop to start reading.
    new_shards: mpsc::UnboundedSender<String>,
}

pub fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(dev(args))
}

async fn dev(args: DevArgs) -> anyhow::Result<ExitCode> {
    let (ctx, shard_ids, found_shards) = Ctx::connect(args).await?;
    let started = Instant::now();
    let interrupted = supervise(&ctx, shard_ids, found_shards, started).await?;
    if ctx.args.until_idle && !interrupted && !ctx.args.schedule.is_zero() {
        export::scheduled_run(&ctx).await?;
    }
    let summary = ctx.stats.summary(started);
    println!("{summary}");
    if let Some(path) = &ctx.args.stats {
        std::fs::write(path, format!("{summary:#}\n")).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

impl Ctx {
    /// Compiles the handlers' configuration, creates what is missing (the stream, the bucket, the queue and the
    /// bucket's `landed/` → queue notification, the on-failure destination, the checkpoint folder). Returns the
    /// context, the shards to read and where their children will be announced.
    async fn connect(args: DevArgs) -> anyhow::Result<(Arc<Ctx>, Vec<String>, mpsc::UnboundedReceiver<String>)> {
        let config = aws::sdk_config().await;
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
        let kinesis = aws_sdk_kinesis::Client::new(&config);
        let s3 = aws::s3_client(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let bucket = args.bucket.clone();
        let env = |name: &str| {
            if name == "SALESFLOW_BUCKET" { Some(bucket.clone()) } else { std::env::var(name).ok() }
        };
        let ingest_config = IngestConfig::from_vars(&env)?;
        let pipeline = ingest_config.compile_pipeline()?;
        let export_config = ExportConfig::from_vars(&env)?;
        let landed_prefix = &ingest_config.settings.layout.landed;
        eprintln!("dev: stream {} and bucket {bucket} on {}", args.stream, aws::describe_endpoint(&config));

        let stream = aws::ensure_stream(&kinesis, &args.stream, args.shards).await?;
        aws::ensure_bucket(&s3, &bucket, &region).await?;
        let queue_name = args.queue.clone().unwrap_or_else(|| format!("{bucket}-landed"));
        let queue = aws::ensure_queue(&sqs, &queue_name, Some(&bucket)).await?;
        aws::ensure_notification(&s3, &bucket, landed_prefix, &queue.arn).await?;
        let destination = Destination::open(args.on_failure_file.as_ref(), &sqs, &args.stream).await?;
        let checkpoints = args.state_dir.join("checkpoints").join(&args.stream);
        std::fs::create_dir_all(&checkpoints).with_context(|| format!("cannot create {}", checkpoints.display()))?;
        let store = S3Store::new(s3);
        // The ingest's metrics are `dev`'s to emit (`--metrics`): `process` emits none.
        let ingest = Ingest::new(store.clone(), ingest_config.settings, pipeline);
        let exporter = Exporter::new(store, export_config).with_metrics_output(if args.metrics {
            salesflow_export::MetricsOutput::Stderr
        } else {
            salesflow_export::MetricsOutput::Off
        });
        eprintln!(
            "dev: {} shard(s), batches of {} within {:?}, failures to {}, checkpoints in {}",
            stream.shards.len(),
            args.batch_size,
            args.batching_window,
            destination.describe(),
            checkpoints.display()
        );
        let origin = Origin { region: region.clone(), account: Origin::of_arn(&stream.arn).account };
        let mut shards = Shards::default();
        let shard_ids = shards.add(&stream.shards);
        let (new_shards, found_shards) = mpsc::unbounded_channel();
        let ctx = Ctx {
            args,
            origin,
            stream: KinesisStream { arn: stream.arn, region },
            kinesis,
            sqs,
            queue_url: queue.url,
            ingest,
            exporter,
            destination,
            checkpoints,
            stats: Stats::default(),
            shards: Mutex::new(shards),
            new_shards,
        };
        ctx.stats.touch();
        Ok((Arc::new(ctx), shard_ids, found_shards))
    }

    /// How each shard's mapping batches and retries.
    fn mapping_settings(&self) -> mapping::Settings {
        let a = &self.args;
        mapping::Settings {
            batch_size: a.batch_size,
            batching_window: a.batching_window,
            max_record_age: a.max_record_age,
            max_retries: a.max_retries,
            bisect: !a.no_bisect,
            poll: a.poll,
        }
    }
}

/// Runs a reader per shard (and per child shard found), the export loop and the schedule, showing the status,
/// until Ctrl-C / SIGTERM, a task's failure, or (`--until-idle`) everything is drained; then lets the tasks
/// finish what they are doing. Returns whether it was interrupted.
async fn supervise(
    ctx: &Arc<Ctx>,
    shard_ids: Vec<String>,
    mut found_shards: mpsc::UnboundedReceiver<String>,
    started: Instant,
) -> anyhow::Result<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for shard in shard_ids {
        tasks.spawn(reader::read_shard(ctx.clone(), shard, stop_rx.clone()));
    }
    tasks.spawn(export::export_loop(ctx.clone(), stop_rx.clone()));
    if !ctx.args.schedule.is_zero() {
        tasks.spawn(export::schedule_loop(ctx.clone(), stop_rx.clone()));
    }
    let progress = progress::spinner(ctx.args.quiet);
    let plain_progress = !ctx.args.quiet && !std::io::stderr().is_terminal();
    let mut last_print = Instant::now();
    let mut interrupted = false;
    let mut failure: Option<anyhow::Error> = None;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { interrupted = true; break; }
            _ = sigterm.recv() => { interrupted = true; break; }
            Some(shard) = found_shards.recv() => {
                tasks.spawn(reader::read_shard(ctx.clone(), shard, stop_rx.clone()));
            }
            done = tasks.join_next() => match done {
                Some(Ok(Ok(()))) => continue,
                Some(done) => { failure = task_failure(done); break; }
                None => break,
            },
            _ = ticker.tick() => {
                let line = ctx.stats.status_line(started);
                progress.set_message(line.clone());
                if plain_progress && last_print.elapsed() >= Duration::from_secs(10) {
                    eprintln!("dev: {line}");
                    last_print = Instant::now();
                }
                if ctx.args.until_idle && is_idle(ctx).await { break; }
            }
        }
    }
    if interrupted {
        progress.println("dev: stopping: finishing the batches in flight and checkpointing");
    }
    let _ = stop_tx.send(true);
    while let Some(done) = tasks.join_next().await {
        failure = failure.or_else(|| task_failure(done));
    }
    progress.finish_and_clear();
    failure.map_or(Ok(interrupted), Err)
}

/// A task's error, or its panic.
fn task_failure(done: Result<anyhow::Result<()>, tokio::task::JoinError>) -> Option<anyhow::Error> {
    match done {
        Ok(result) => result.err(),
        Err(e) => Some(anyhow::anyhow!("a task panicked: {e}")),
    }
}

/// Every shard caught up, nothing happened for `--idle`, and the queue is empty.
async fn is_idle(ctx: &Ctx) -> bool {
    if !ctx.shards.lock().expect("not poisoned").all_idle() {
        return false;
    }
    if ctx.stats.quiet_for().is_some_and(|q| q < ctx.args.idle) {
        return false;
    }
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let Ok(out) = ctx
        .sqs
        .get_queue_attributes()
        .queue_url(&ctx.queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
    else {
        return false;
    };
    let attributes = out.attributes.unwrap_or_default();
    let count = |a: A| attributes.get(&a).and_then(|v| v.parse::<u64>().ok()).unwrap_or(1);
    count(A::ApproximateNumberOfMessages) == 0 && count(A::ApproximateNumberOfMessagesNotVisible) == 0
}

/// Sleeps, or returns `true` at once when asked to stop.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(duration) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
