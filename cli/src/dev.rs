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

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, ValueEnum};
use jiff::Timestamp;
use salesflow_export::{ExportConfig, Exporter};
use salesflow_ingest::{Ingest, IngestConfig, MetricsOutput, StreamEvent};
use salesflow_store::S3Store;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::aws;
use crate::local::duration::parse_duration;
use crate::local::events::{KinesisStream, Origin};
use crate::local::progress;

mod mapping;
use mapping::{Action, Outcome, Retries};

/// Lambda's limit on an invocation's payload; a batch is cut before it.
const MAX_PAYLOAD_BYTES: usize = 6 << 20;

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

/// Counters shown live and summed up at the end.
#[derive(Default)]
struct Stats {
    records: AtomicU64,
    user_records: AtomicU64,
    emitted: AtomicU64,
    filtered: AtomicU64,
    rejected: AtomicU64,
    batches: AtomicU64,
    retries: AtomicU64,
    failed_batches: AtomicU64,
    /// Invocations that ended in a function error (a panic, or `batchItemFailures` naming no record of the batch).
    function_errors: AtomicU64,
    /// Batches split in two after a function error.
    bisections: AtomicU64,
    /// Records older than `--max-record-age`, sent to the on-failure destination undelivered.
    expired_records: AtomicU64,
    messages: AtomicU64,
    objects_exported: AtomicU64,
    export_errors: AtomicU64,
    scheduled_runs: AtomicU64,
    /// Largest `MillisBehindLatest` over the shards, last seen.
    lag_ms: AtomicI64,
    /// Milliseconds from a record's arrival in Kinesis to its CSV rows being written.
    freshness_ms: Mutex<Vec<i64>>,
    /// Landed keys not yet exported → arrival times of the records of the batch that wrote them.
    landed_arrivals: Mutex<HashMap<String, Vec<Timestamp>>>,
    /// Last time anything happened (records read, messages received), for `--until-idle`.
    last_activity: Mutex<Option<Instant>>,
}

impl Stats {
    fn touch(&self) {
        *self.last_activity.lock().expect("not poisoned") = Some(Instant::now());
    }
}

/// Where batches go that fail `--max-retries` times: a queue or a file.
enum Destination {
    Queue(aws_sdk_sqs::Client, String),
    File(Mutex<std::fs::File>, PathBuf),
}

impl Destination {
    async fn send(&self, message: Value) -> anyhow::Result<()> {
        match self {
            Destination::Queue(client, url) => {
                client
                    .send_message()
                    .queue_url(url)
                    .message_body(message.to_string())
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!(aws::sdk_error(&e)))
                    .context("cannot send to the on-failure queue")?;
            }
            Destination::File(file, path) => {
                let mut f = file.lock().expect("not poisoned");
                writeln!(f, "{message}").with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        match self {
            Destination::Queue(_, url) => format!("queue {url}"),
            Destination::File(_, path) => format!("file {}", path.display()),
        }
    }
}

/// What every task shares.
struct Ctx {
    args: DevArgs,
    /// The stream's region and account, which the events and on-failure messages name.
    origin: Origin,
    stream: KinesisStream,
    kinesis: aws_sdk_kinesis::Client,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    ingest: Ingest<S3Store>,
    exporter: Exporter<S3Store>,
    landed_prefix: String,
    destination: Destination,
    checkpoints: PathBuf,
    stats: Stats,
    /// Shards caught up with nothing buffered, by shard id.
    idle_shards: Mutex<HashMap<String, bool>>,
    /// The shards as last listed, their parents, and those read to their end.
    shards: Mutex<Shards>,
    /// Shards found after a shard closed (its children), for the main loop to start reading.
    new_shards: tokio::sync::mpsc::UnboundedSender<String>,
    metrics: bool,
}

#[derive(Default)]
struct Shards {
    listed: HashSet<String>,
    parents: HashMap<String, Vec<String>>,
    finished: HashSet<String>,
}

impl Shards {
    /// Adds the shards not known yet; returns their ids.
    fn add(&mut self, shards: &[aws_sdk_kinesis::types::Shard]) -> Vec<String> {
        let mut added = Vec::new();
        for shard in shards {
            if self.listed.insert(shard.shard_id.clone()) {
                let parents = [&shard.parent_shard_id, &shard.adjacent_parent_shard_id];
                self.parents.insert(shard.shard_id.clone(), parents.into_iter().flatten().cloned().collect());
                added.push(shard.shard_id.clone());
            }
        }
        added
    }

    fn waiting_for(&self, shard: &str) -> Vec<String> {
        let parents: Vec<&str> = self.parents.get(shard).into_iter().flatten().map(String::as_str).collect();
        mapping::unfinished_parents(&parents, &self.listed, &self.finished).into_iter().map(String::from).collect()
    }
}

pub fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(dev(args))
}

async fn dev(args: DevArgs) -> anyhow::Result<ExitCode> {
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
    let landed_prefix = ingest_config.settings.layout.landed.clone();
    eprintln!("dev: stream {} and bucket {bucket} on {}", args.stream, aws::describe_endpoint(&config));

    let stream = aws::ensure_stream(&kinesis, &args.stream, args.shards).await?;
    aws::ensure_bucket(&s3, &bucket, &region).await?;
    let queue_name = args.queue.clone().unwrap_or_else(|| format!("{bucket}-landed"));
    let queue = aws::ensure_queue(&sqs, &queue_name, Some(&bucket)).await?;
    aws::ensure_notification(&s3, &bucket, &landed_prefix, &queue.arn).await?;
    let destination = match &args.on_failure_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            Destination::File(Mutex::new(file), path.clone())
        }
        None => {
            let q = aws::ensure_queue(&sqs, &format!("{}-ingest-failures", args.stream), None).await?;
            Destination::Queue(sqs.clone(), q.url)
        }
    };
    let checkpoints = args.state_dir.join("checkpoints").join(&args.stream);
    std::fs::create_dir_all(&checkpoints).with_context(|| format!("cannot create {}", checkpoints.display()))?;
    let store = S3Store::new(s3.clone());
    let ingest =
        Ingest::new(store.clone(), ingest_config.settings, pipeline).with_metrics_output(MetricsOutput::Stderr);
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
    let (new_shards, mut found_shards) = tokio::sync::mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        metrics: args.metrics,
        args,
        stream: KinesisStream { arn: stream.arn, region },
        origin,
        kinesis,
        sqs,
        queue_url: queue.url,
        ingest,
        exporter,
        landed_prefix,
        destination,
        checkpoints,
        stats: Stats::default(),
        idle_shards: Mutex::new(HashMap::new()),
        shards: Mutex::new(shards),
        new_shards,
    });
    ctx.stats.touch();

    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for shard in shard_ids {
        ctx.idle_shards.lock().expect("not poisoned").insert(shard.clone(), false);
        tasks.spawn(read_shard(ctx.clone(), shard, stop_rx.clone()));
    }
    tasks.spawn(export_loop(ctx.clone(), stop_rx.clone()));
    if !ctx.args.schedule.is_zero() {
        tasks.spawn(schedule_loop(ctx.clone(), stop_rx.clone()));
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
                tasks.spawn(read_shard(ctx.clone(), shard, stop_rx.clone()));
            }
            done = tasks.join_next() => {
                match done {
                    Some(Ok(Ok(()))) => continue,
                    Some(Ok(Err(e))) => { failure = Some(e); break; }
                    Some(Err(e)) => { failure = Some(anyhow::anyhow!("a task panicked: {e}")); break; }
                    None => break,
                }
            }
            _ = ticker.tick() => {
                let line = status_line(&ctx.stats, started);
                progress.set_message(line.clone());
                if plain_progress && last_print.elapsed() >= Duration::from_secs(10) {
                    eprintln!("dev: {line}");
                    last_print = Instant::now();
                }
                if ctx.args.until_idle && is_idle(&ctx).await { break; }
            }
        }
    }
    if interrupted {
        progress.println("dev: stopping: finishing the batches in flight and checkpointing");
    }
    let _ = stop_tx.send(true);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(anyhow::anyhow!("a task panicked: {e}"))),
        }
    }
    progress.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }
    if ctx.args.until_idle && !interrupted && !ctx.args.schedule.is_zero() {
        scheduled_run(&ctx).await?;
    }
    let summary = summary(&ctx.stats, started);
    println!("{summary}");
    if let Some(path) = &ctx.args.stats {
        std::fs::write(path, format!("{summary:#}\n")).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn status_line(stats: &Stats, started: Instant) -> String {
    let records = stats.records.load(Relaxed);
    format!(
        "{records} records ({:.0}/s) | lag {:.1}s | batches {} | emitted {} | rejects {} | retries {} | failed batches {} | expired {} | exported {} objects",
        records as f64 / started.elapsed().as_secs_f64().max(0.001),
        stats.lag_ms.load(Relaxed) as f64 / 1000.0,
        stats.batches.load(Relaxed),
        stats.emitted.load(Relaxed),
        stats.rejected.load(Relaxed),
        stats.retries.load(Relaxed),
        stats.failed_batches.load(Relaxed),
        stats.expired_records.load(Relaxed),
        stats.objects_exported.load(Relaxed),
    )
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn summary(stats: &Stats, started: Instant) -> Value {
    let elapsed = started.elapsed().as_secs_f64();
    let mut freshness = stats.freshness_ms.lock().expect("not poisoned").clone();
    freshness.sort_unstable();
    let records = stats.records.load(Relaxed);
    json!({
        "records": records,
        "user_records": stats.user_records.load(Relaxed),
        "emitted": stats.emitted.load(Relaxed),
        "filtered": stats.filtered.load(Relaxed),
        "rejected": stats.rejected.load(Relaxed),
        "batches": stats.batches.load(Relaxed),
        "retries": stats.retries.load(Relaxed),
        "failed_batches": stats.failed_batches.load(Relaxed),
        "function_errors": stats.function_errors.load(Relaxed),
        "bisections": stats.bisections.load(Relaxed),
        "expired_records": stats.expired_records.load(Relaxed),
        "messages": stats.messages.load(Relaxed),
        "objects_exported": stats.objects_exported.load(Relaxed),
        "export_errors": stats.export_errors.load(Relaxed),
        "scheduled_runs": stats.scheduled_runs.load(Relaxed),
        "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
        "records_per_s": (records as f64 / elapsed.max(0.001)).round(),
        "freshness_ms": {
            "samples": freshness.len(),
            "p50": percentile(&freshness, 50.0),
            "p95": percentile(&freshness, 95.0),
            "max": freshness.last(),
        },
    })
}

/// Every shard caught up, nothing happened for `--idle`, and the queue is empty.
async fn is_idle(ctx: &Ctx) -> bool {
    if !ctx.idle_shards.lock().expect("not poisoned").values().all(|idle| *idle) {
        return false;
    }
    let quiet_since = ctx.stats.last_activity.lock().expect("not poisoned").map(|t| t.elapsed());
    if quiet_since.is_some_and(|q| q < ctx.args.idle) {
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

fn read_checkpoint(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Writes the checkpoint atomically (a file renamed over the old one).
fn write_checkpoint(path: &Path, sequence: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{sequence}\n")).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

async fn shard_iterator(ctx: &Ctx, shard: &str, after: Option<&str>) -> anyhow::Result<Option<String>> {
    let request = ctx.kinesis.get_shard_iterator().stream_name(&ctx.args.stream).shard_id(shard);
    let request = match (after, ctx.args.starting_position) {
        (Some(seq), _) => {
            request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).starting_sequence_number(seq)
        }
        (None, StartingPosition::TrimHorizon) => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        (None, StartingPosition::Latest) => request.shard_iterator_type(ShardIteratorType::Latest),
    };
    let out = request
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(aws::sdk_error(&e)))
        .with_context(|| format!("GetShardIterator {shard}"))?;
    Ok(out.shard_iterator)
}

/// The event Lambda would deliver for these records of `shard`.
fn kinesis_event(ctx: &Ctx, shard: &str, records: &[Record]) -> StreamEvent {
    let records = records
        .iter()
        .map(|r| {
            let data = STANDARD.encode(r.data.as_ref());
            ctx.stream.record(
                shard,
                &r.sequence_number,
                r.partition_key.as_deref().unwrap_or_default(),
                arrival(r),
                data,
            )
        })
        .collect();
    StreamEvent { records }
}

fn arrival(r: &Record) -> Timestamp {
    r.approximate_arrival_timestamp
        .and_then(|t| t.to_millis().ok())
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Marks a closed shard read to its end, and lists the shards again to start reading its children.
async fn shard_finished(ctx: &Ctx, shard: &str) {
    ctx.shards.lock().expect("not poisoned").finished.insert(shard.to_string());
    match aws::list_shards(&ctx.kinesis, &ctx.args.stream).await {
        Ok(listed) => {
            let added = ctx.shards.lock().expect("not poisoned").add(&listed);
            for child in added {
                eprintln!("dev: {shard} is closed and read to its end; new shard {child} found");
                set_idle(ctx, &child, false);
                let _ = ctx.new_shards.send(child);
            }
        }
        Err(e) => eprintln!("dev: {shard} is closed, but listing the shards again failed: {e:#}"),
    }
}

fn set_idle(ctx: &Ctx, shard: &str, idle: bool) {
    ctx.idle_shards.lock().expect("not poisoned").insert(shard.to_string(), idle);
}

/// One shard's event source mapping: read, batch, invoke, checkpoint, retry.
async fn read_shard(ctx: Arc<Ctx>, shard: String, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let args = &ctx.args;
    // A child shard (after a split or a merge) is read only once its parents are read to their end, so a
    // partition key's records stay in order.
    let mut announced = false;
    loop {
        let waiting = ctx.shards.lock().expect("not poisoned").waiting_for(&shard);
        if waiting.is_empty() {
            break;
        }
        if !announced {
            eprintln!("dev: {shard} waits for its parent shard(s) {} to be read to their end", waiting.join(", "));
            announced = true;
        }
        if sleep_or_stop(&mut stop, args.poll).await {
            return Ok(());
        }
    }
    let checkpoint_file = ctx.checkpoints.join(&shard);
    let mut checkpoint = read_checkpoint(&checkpoint_file);
    let mut iterator = shard_iterator(&ctx, &shard, checkpoint.as_deref()).await?;
    let mut buffer: VecDeque<Record> = VecDeque::new();
    let mut first_buffered: Option<Instant> = None;
    let mut caught_up = false;
    let mut retries = Retries::default();
    let mut errors = 0u32;
    let limit = args.batch_size.clamp(100, 10_000) as i32;
    loop {
        if *stop.borrow() {
            break;
        }
        let window_over = first_buffered.is_none_or(|t| t.elapsed() >= args.batching_window);
        let read_more = buffer.len() < args.batch_size && !retries.bisecting();
        if read_more && !(caught_up && window_over && !buffer.is_empty()) {
            let Some(it) = iterator.clone() else {
                if buffer.is_empty() {
                    // A closed shard, read to its end: its children may start.
                    shard_finished(&ctx, &shard).await;
                    set_idle(&ctx, &shard, true);
                    break;
                }
                caught_up = true;
                continue;
            };
            match ctx.kinesis.get_records().shard_iterator(&it).limit(limit).send().await {
                Ok(out) => {
                    errors = 0;
                    iterator = out.next_shard_iterator;
                    let behind = out.millis_behind_latest.unwrap_or(0);
                    ctx.stats.lag_ms.store(behind, Relaxed);
                    let got = out.records.len();
                    caught_up = behind == 0 || got == 0;
                    if got > 0 {
                        ctx.stats.touch();
                        set_idle(&ctx, &shard, false);
                        first_buffered.get_or_insert_with(Instant::now);
                        buffer.extend(out.records);
                    } else if buffer.is_empty() {
                        set_idle(&ctx, &shard, true);
                        if sleep_or_stop(&mut stop, args.poll).await {
                            break;
                        }
                        continue;
                    }
                    if caught_up && !buffer.is_empty() && buffer.len() < args.batch_size {
                        // Wait for the window to fill the batch, polling meanwhile.
                        let left =
                            args.batching_window.saturating_sub(first_buffered.map_or(Duration::ZERO, |t| t.elapsed()));
                        if !left.is_zero() {
                            if sleep_or_stop(&mut stop, left.min(args.poll)).await {
                                break;
                            }
                            continue;
                        }
                    } else if !caught_up {
                        continue;
                    }
                }
                Err(e) => {
                    let service = e.as_service_error();
                    if service.is_some_and(|s| s.is_expired_iterator_exception()) {
                        let after = buffer.back().map(|r| r.sequence_number.clone()).or(checkpoint.clone());
                        iterator = shard_iterator(&ctx, &shard, after.as_deref()).await?;
                        continue;
                    }
                    errors += 1;
                    let throttled = service.is_some_and(|s| s.is_provisioned_throughput_exceeded_exception());
                    if !throttled {
                        eprintln!("dev: GetRecords on {shard} failed (try {errors}): {}", aws::sdk_error(&e));
                        if errors >= 10 {
                            anyhow::bail!("GetRecords on {shard} failed 10 times in a row: {}", aws::sdk_error(&e));
                        }
                    }
                    if sleep_or_stop(&mut stop, backoff(errors)).await {
                        break;
                    }
                    continue;
                }
            }
        }
        if buffer.is_empty() {
            first_buffered = None;
            continue;
        }
        // Records too old to deliver (`MaximumRecordAgeInSeconds`) go to the on-failure destination instead.
        let expired = mapping::expired_prefix(
            buffer.iter().map(|r| arrival(r).as_millisecond()),
            Timestamp::now().as_millisecond(),
            args.max_record_age,
        );
        if expired > 0 {
            let n = expired.min(args.batch_size.max(1));
            let records: Vec<Record> = buffer.iter().take(n).cloned().collect();
            let reason = format!("record age exceeds --max-record-age ({} s)", args.max_record_age.as_secs());
            let attempts = retries.discard_front(n);
            send_failed(&ctx, &shard, &records, "RecordAgeExceeded", attempts, &reason).await?;
            ctx.stats.expired_records.fetch_add(n as u64, Relaxed);
            checkpoint = Some(records[n - 1].sequence_number.clone());
            write_checkpoint(&checkpoint_file, checkpoint.as_deref().expect("set"))?;
            buffer.drain(..n);
            if buffer.is_empty() {
                first_buffered = None;
            }
            continue;
        }
        // A batch: up to batch_size records and Lambda's payload limit (and, while bisecting, the span).
        let mut take = 0;
        let mut bytes = 0;
        for r in buffer.iter().take(args.batch_size) {
            let size = r.data.as_ref().len() * 4 / 3 + 400;
            if take > 0 && bytes + size > MAX_PAYLOAD_BYTES {
                break;
            }
            bytes += size;
            take += 1;
        }
        let take = retries.batch_len(take);
        let batch: Vec<Record> = buffer.iter().take(take).cloned().collect();
        let event = kinesis_event(&ctx, &shard, &batch);
        let now = Timestamp::now();
        // In a task of its own so that a panic is caught: it is this runner's function error.
        let handler = ctx.clone();
        let invoked = tokio::spawn(async move { handler.ingest.process(event, now).await }).await;
        let stats = &ctx.stats;
        stats.batches.fetch_add(1, Relaxed);
        let (outcome, error) = match invoked {
            Ok(report) => {
                if ctx.metrics {
                    report.metrics.emit(now, MetricsOutput::Stderr);
                }
                {
                    let arrivals: Vec<Timestamp> = batch.iter().map(arrival).collect();
                    let mut landed = stats.landed_arrivals.lock().expect("not poisoned");
                    for key in report.written.iter().filter(|k| k.starts_with(&ctx.landed_prefix)) {
                        landed.insert(key.clone(), arrivals.clone());
                    }
                }
                let sequences: Vec<&str> = batch.iter().map(|r| r.sequence_number.as_str()).collect();
                let failures: Vec<Option<&str>> =
                    report.response.batch_item_failures.iter().map(|f| f.item_identifier.as_deref()).collect();
                let outcome = mapping::outcome(&sequences, &failures);
                match outcome {
                    Outcome::Done => {
                        stats.records.fetch_add(batch.len() as u64, Relaxed);
                        stats.user_records.fetch_add(report.metrics.counts.records_in, Relaxed);
                        stats.emitted.fetch_add(report.metrics.counts.emitted, Relaxed);
                        stats.filtered.fetch_add(report.metrics.counts.filtered, Relaxed);
                        stats.rejected.fetch_add(report.metrics.counts.rejected, Relaxed);
                    }
                    Outcome::RetryFrom(at) => {
                        stats.records.fetch_add(at as u64, Relaxed);
                    }
                    Outcome::FunctionError(_) => {}
                }
                (outcome, report.error.map(|e| e.to_string()).unwrap_or_default())
            }
            Err(e) => {
                let message = panic_message(e);
                (Outcome::FunctionError(message.clone()), message)
            }
        };
        let error = match &outcome {
            Outcome::FunctionError(reason) => {
                stats.function_errors.fetch_add(1, Relaxed);
                format!("function error: {reason}")
            }
            _ => error,
        };
        let step = retries.after(batch.len(), &outcome, args.max_retries, !args.no_bisect);
        let handled = step.delivered + step.discarded;
        if step.discarded > 0 {
            let rest = &batch[step.delivered..handled];
            send_failed(&ctx, &shard, rest, "RetryAttemptsExhausted", step.attempts, &error).await?;
            eprintln!(
                "dev: {shard} records {}..{} failed {} times ({error}); sent to {}",
                rest[0].sequence_number,
                rest[rest.len() - 1].sequence_number,
                step.attempts,
                ctx.destination.describe()
            );
            stats.failed_batches.fetch_add(1, Relaxed);
        }
        if handled > 0 {
            checkpoint = Some(batch[handled - 1].sequence_number.clone());
            write_checkpoint(&checkpoint_file, checkpoint.as_deref().expect("set"))?;
            buffer.drain(..handled);
        }
        let retry = match step.action {
            Action::Continue | Action::GiveUp => false,
            Action::Retry => {
                eprintln!(
                    "dev: {shard} batch failed from {} ({error}); retry {} of {}",
                    batch[step.delivered].sequence_number, step.attempts, args.max_retries
                );
                true
            }
            Action::Split(first, second) => {
                stats.bisections.fetch_add(1, Relaxed);
                eprintln!(
                    "dev: {shard} batch of {} from {} failed ({error}); bisected into {first} + {second} records, \
                     retry {} of {}",
                    batch.len(),
                    batch[0].sequence_number,
                    step.attempts,
                    args.max_retries
                );
                true
            }
        };
        if retry {
            stats.retries.fetch_add(1, Relaxed);
            if sleep_or_stop(&mut stop, backoff(step.attempts)).await {
                break;
            }
        }
        if buffer.is_empty() {
            first_buffered = None;
        }
    }
    Ok(())
}

/// Sends `records` of `shard` (a range, first to last) to the on-failure destination, as Lambda's on-failure
/// message: `condition` is `RetryAttemptsExhausted` or `RecordAgeExceeded`, `reason` the error or why.
async fn send_failed(
    ctx: &Ctx,
    shard: &str,
    records: &[Record],
    condition: &str,
    invoke_count: u32,
    reason: &str,
) -> anyhow::Result<()> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else { return Ok(()) };
    let message = json!({
        "requestContext": {
            "condition": condition,
            "approximateInvokeCount": invoke_count,
            "functionArn": format!(
                "arn:aws:lambda:{}:{}:function:salesflow-dev-ingest",
                ctx.origin.region, ctx.origin.account
            ),
        },
        "responseContext": { "error": reason },
        "timestamp": Timestamp::now().to_string(),
        "KinesisBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": first.sequence_number,
            "endSequenceNumber": last.sequence_number,
            "approximateArrivalOfFirstRecord": arrival(first).to_string(),
            "approximateArrivalOfLastRecord": arrival(last).to_string(),
            "batchSize": records.len(),
            "streamArn": ctx.stream.arn,
        }
    });
    ctx.destination.send(message).await?;
    if condition == "RecordAgeExceeded" {
        eprintln!(
            "dev: {shard} records {}..{} ({}) not delivered: {reason}; sent to {}",
            first.sequence_number,
            last.sequence_number,
            records.len(),
            ctx.destination.describe()
        );
    }
    Ok(())
}

/// What a handler task that did not finish says: its panic message.
fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .map_or_else(|| "the handler panicked".into(), |m| format!("the handler panicked: {m}"))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5_000))
}

/// The S3 notifications: export each, delete the message once it succeeded.
async fn export_loop(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let mut errors = 0u32;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let received = ctx
            .sqs
            .receive_message()
            .queue_url(&ctx.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await;
        let messages = match received {
            Ok(out) => {
                errors = 0;
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                errors += 1;
                eprintln!("dev: ReceiveMessage failed (try {errors}): {}", aws::sdk_error(&e));
                if errors >= 10 {
                    anyhow::bail!("ReceiveMessage failed 10 times in a row: {}", aws::sdk_error(&e));
                }
                if sleep_or_stop(&mut stop, backoff(errors)).await {
                    return Ok(());
                }
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        ctx.stats.touch();
        let mut running = tokio::task::JoinSet::new();
        for message in messages {
            let ctx = ctx.clone();
            running.spawn(async move { export_message(&ctx, message).await });
        }
        while let Some(done) = running.join_next().await {
            done.context("export task")??;
        }
        ctx.stats.touch();
    }
}

async fn export_message(ctx: &Ctx, message: aws_sdk_sqs::types::Message) -> anyhow::Result<()> {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let stats = &ctx.stats;
    stats.messages.fetch_add(1, Relaxed);
    let receipt = message.receipt_handle.clone().unwrap_or_default();
    let body = message.body.clone().unwrap_or_default();
    let receive_count: u32 = message
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let delete = || async {
        ctx.sqs
            .delete_message()
            .queue_url(&ctx.queue_url)
            .receipt_handle(&receipt)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(aws::sdk_error(&e)))
            .context("DeleteMessage")
    };
    let payload: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "dev: a queue message is not JSON ({e}); dropped: {}",
                body.chars().take(200).collect::<String>()
            );
            delete().await?;
            return Ok(());
        }
    };
    let now = Timestamp::now();
    match ctx.exporter.handle(&payload, now).await {
        Ok(summary) => {
            delete().await?;
            let done = Timestamp::now();
            let exported = summary.objects.iter().filter(|o| o.status == "exported").count() as u64;
            stats.objects_exported.fetch_add(exported, Relaxed);
            let mut landed = stats.landed_arrivals.lock().expect("not poisoned");
            let mut samples = Vec::new();
            for object in &summary.objects {
                if let Some(arrivals) = landed.remove(&object.source.key) {
                    samples.extend(arrivals.iter().map(|a| done.as_millisecond() - a.as_millisecond()));
                }
            }
            drop(landed);
            stats.freshness_ms.lock().expect("not poisoned").extend(samples);
        }
        Err(e) => {
            stats.export_errors.fetch_add(1, Relaxed);
            if receive_count > ctx.args.max_retries {
                ctx.destination
                    .send(json!({"condition": "RetryAttemptsExhausted", "error": e.to_string(), "event": payload}))
                    .await?;
                eprintln!(
                    "dev: export failed {receive_count} times ({e}); event sent to {}",
                    ctx.destination.describe()
                );
                delete().await?;
            } else {
                eprintln!("dev: export failed (attempt {receive_count}, the message comes back): {e}");
                let _ = ctx
                    .sqs
                    .change_message_visibility()
                    .queue_url(&ctx.queue_url)
                    .receipt_handle(&receipt)
                    .visibility_timeout(backoff(receive_count).as_secs().max(1) as i32)
                    .send()
                    .await;
            }
        }
    }
    Ok(())
}

async fn scheduled_run(ctx: &Ctx) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let summary = ctx.exporter.handle(&ctx.origin.scheduled(now), now).await.context("the export's scheduled run")?;
    ctx.stats.scheduled_runs.fetch_add(1, Relaxed);
    if let Some(s) = summary.scheduled {
        eprintln!(
            "dev: scheduled run: {} hour(s) compacted, {} manifest(s) written, {} file(s) deleted",
            s.hours_compacted.len(),
            s.manifests_written.len(),
            s.files_deleted.len()
        );
    }
    Ok(())
}

async fn schedule_loop(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    loop {
        if sleep_or_stop(&mut stop, ctx.args.schedule).await {
            return Ok(());
        }
        if let Err(e) = scheduled_run(&ctx).await {
            eprintln!("dev: {e:#} (retried at the next tick)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn checkpoints_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shardId-000000000000");
        assert_eq!(read_checkpoint(&file), None);
        write_checkpoint(&file, "4959").unwrap();
        write_checkpoint(&file, "4960").unwrap();
        assert_eq!(read_checkpoint(&file).as_deref(), Some("4960"));
    }
}
