//! `salesflow dev`: the local event-source runner. LocalStack's Lambda needs Docker, so this runs both
//! handlers in-process against real Kinesis, S3 and SQS (LocalStack's or AWS's), behaving like Lambda's event
//! source mappings:
//!
//! - creates, if missing, the stream, the bucket, the queue and the bucket's `landed/` → queue notification;
//! - reads every shard with GetRecords and builds the `KinesisEvent` Lambda would (base64 data, `eventID` =
//!   `shardId:sequenceNumber`, `approximateArrivalTimestamp`, `eventSourceARN`, `eventSource`, `awsRegion`),
//!   batch size and batching window included; calls the ingest handler; honours `batchItemFailures` (retries from
//!   the reported sequence number, at most `--max-retries` times, then sends the batch's shard and sequence range
//!   to the on-failure destination and moves on); checkpoints each shard in a file so a restart resumes;
//! - receives the S3 notifications and calls the export handler with them, deleting a message only after it
//!   succeeded; runs the export's scheduled compaction every `--schedule`;
//! - shows records/s, lag and rejects; on Ctrl-C finishes the batch in flight, checkpoints and stops (records
//!   read but not yet handled are read again next time: nothing is lost). `--until-idle` stops once everything
//!   is drained, after one last scheduled run, and prints a JSON summary (freshness percentiles included).

use std::collections::{HashMap, VecDeque};
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
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;
use salesflow_export::{ExportConfig, Exporter};
use salesflow_ingest::{Ingest, IngestConfig, MetricsOutput, StreamEvent};
use salesflow_store::S3Store;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::aws;
use crate::produce::parse_duration;

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
    region: String,
    stream_arn: String,
    account: String,
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
    metrics: bool,
}

pub fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(dev(args))
}

/// The spinner both `dev` and `produce` show on a terminal (hidden otherwise or with `--quiet`).
pub fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("valid template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
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
    let account = stream.arn.split(':').nth(4).unwrap_or("000000000000").to_string();
    let ctx = Arc::new(Ctx {
        metrics: args.metrics,
        args,
        region,
        stream_arn: stream.arn,
        account,
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
    });
    ctx.stats.touch();

    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for shard in &stream.shards {
        ctx.idle_shards.lock().expect("not poisoned").insert(shard.shard_id.clone(), false);
        tasks.spawn(read_shard(ctx.clone(), shard.shard_id.clone(), stop_rx.clone()));
    }
    tasks.spawn(export_loop(ctx.clone(), stop_rx.clone()));
    if !ctx.args.schedule.is_zero() {
        tasks.spawn(schedule_loop(ctx.clone(), stop_rx.clone()));
    }
    let progress = progress_bar(ctx.args.quiet);
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
        "{records} records ({:.0}/s) | lag {:.1}s | batches {} | emitted {} | rejects {} | retries {} | failed batches {} | exported {} objects",
        records as f64 / started.elapsed().as_secs_f64().max(0.001),
        stats.lag_ms.load(Relaxed) as f64 / 1000.0,
        stats.batches.load(Relaxed),
        stats.emitted.load(Relaxed),
        stats.rejected.load(Relaxed),
        stats.retries.load(Relaxed),
        stats.failed_batches.load(Relaxed),
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
fn kinesis_event(ctx: &Ctx, shard: &str, records: &[Record]) -> anyhow::Result<StreamEvent> {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let arrival = r.approximate_arrival_timestamp.map_or(0, |t| t.to_millis().unwrap_or(0));
            let arrival: serde_json::Number =
                format!("{}.{:03}", arrival.div_euclid(1000), arrival.rem_euclid(1000)).parse().expect("a decimal");
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": STANDARD.encode(r.data.as_ref()),
                    "approximateArrivalTimestamp": arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard}:{}", r.sequence_number),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": format!("arn:aws:iam::{}:role/salesflow-dev", ctx.account),
                "awsRegion": ctx.region,
                "eventSourceARN": ctx.stream_arn,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).context("building the Kinesis event")
}

fn arrival(r: &Record) -> Timestamp {
    r.approximate_arrival_timestamp
        .and_then(|t| t.to_millis().ok())
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn set_idle(ctx: &Ctx, shard: &str, idle: bool) {
    ctx.idle_shards.lock().expect("not poisoned").insert(shard.to_string(), idle);
}

/// One shard's event source mapping: read, batch, invoke, checkpoint, retry.
async fn read_shard(ctx: Arc<Ctx>, shard: String, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let args = &ctx.args;
    let checkpoint_file = ctx.checkpoints.join(&shard);
    let mut checkpoint = read_checkpoint(&checkpoint_file);
    let mut iterator = shard_iterator(&ctx, &shard, checkpoint.as_deref()).await?;
    let mut buffer: VecDeque<Record> = VecDeque::new();
    let mut first_buffered: Option<Instant> = None;
    let mut caught_up = false;
    let mut attempts = 0u32;
    let mut errors = 0u32;
    let limit = args.batch_size.clamp(100, 10_000) as i32;
    loop {
        if *stop.borrow() {
            break;
        }
        let window_over = first_buffered.is_none_or(|t| t.elapsed() >= args.batching_window);
        if buffer.len() < args.batch_size && !(caught_up && window_over && !buffer.is_empty()) {
            let Some(it) = iterator.clone() else {
                if buffer.is_empty() {
                    // A closed shard, read to its end.
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
        // A batch: up to batch_size records and Lambda's payload limit.
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
        let batch: Vec<Record> = buffer.iter().take(take).cloned().collect();
        let event = kinesis_event(&ctx, &shard, &batch)?;
        let now = Timestamp::now();
        let report = ctx.ingest.process(event, now).await;
        if ctx.metrics {
            report.metrics.emit(now, MetricsOutput::Stderr);
        }
        let stats = &ctx.stats;
        stats.batches.fetch_add(1, Relaxed);
        {
            let arrivals: Vec<Timestamp> = batch.iter().map(arrival).collect();
            let mut landed = stats.landed_arrivals.lock().expect("not poisoned");
            for key in report.written.iter().filter(|k| k.starts_with(&ctx.landed_prefix)) {
                landed.insert(key.clone(), arrivals.clone());
            }
        }
        let failed_at = report.response.batch_item_failures.first().map(|f| {
            let id = f.item_identifier.clone().unwrap_or_default();
            batch.iter().position(|r| r.sequence_number == id).unwrap_or(0)
        });
        let done = failed_at.unwrap_or(batch.len());
        if failed_at.is_none() {
            stats.records.fetch_add(batch.len() as u64, Relaxed);
            stats.user_records.fetch_add(report.counts.records_in, Relaxed);
            stats.emitted.fetch_add(report.counts.emitted, Relaxed);
            stats.filtered.fetch_add(report.counts.filtered, Relaxed);
            stats.rejected.fetch_add(report.counts.rejected, Relaxed);
        } else {
            stats.records.fetch_add(done as u64, Relaxed);
        }
        if done > 0 {
            checkpoint = Some(batch[done - 1].sequence_number.clone());
            write_checkpoint(&checkpoint_file, checkpoint.as_deref().expect("set"))?;
            buffer.drain(..done);
            attempts = 0;
        }
        if let Some(at) = failed_at {
            attempts += 1;
            let error = report.error.map(|e| e.to_string()).unwrap_or_default();
            if attempts > args.max_retries {
                let rest = &batch[at..];
                let (first, last) = (&rest[0], &rest[rest.len() - 1]);
                let message = json!({
                    "requestContext": {
                        "condition": "RetryAttemptsExhausted",
                        "approximateInvokeCount": attempts,
                        "functionArn": format!("arn:aws:lambda:{}:{}:function:salesflow-dev-ingest", ctx.region, ctx.account),
                    },
                    "responseContext": { "error": error },
                    "timestamp": Timestamp::now().to_string(),
                    "KinesisBatchInfo": {
                        "shardId": shard,
                        "startSequenceNumber": first.sequence_number,
                        "endSequenceNumber": last.sequence_number,
                        "approximateArrivalOfFirstRecord": arrival(first).to_string(),
                        "approximateArrivalOfLastRecord": arrival(last).to_string(),
                        "batchSize": rest.len(),
                        "streamArn": ctx.stream_arn,
                    }
                });
                ctx.destination.send(message).await?;
                eprintln!(
                    "dev: {shard} records {}..{} failed {attempts} times ({error}); sent to {}",
                    first.sequence_number,
                    last.sequence_number,
                    ctx.destination.describe()
                );
                stats.failed_batches.fetch_add(1, Relaxed);
                checkpoint = Some(last.sequence_number.clone());
                write_checkpoint(&checkpoint_file, &last.sequence_number)?;
                buffer.drain(..rest.len());
                attempts = 0;
            } else {
                stats.retries.fetch_add(1, Relaxed);
                eprintln!(
                    "dev: {shard} batch failed from {} ({error}); retry {attempts} of {}",
                    batch[at].sequence_number, args.max_retries
                );
                if sleep_or_stop(&mut stop, backoff(attempts)).await {
                    break;
                }
            }
        }
        if buffer.is_empty() {
            first_buffered = None;
        }
    }
    Ok(())
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
                let key = object.source.splitn(4, '/').nth(3).unwrap_or_default();
                if let Some(arrivals) = landed.remove(key) {
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
    let event = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    let summary = ctx.exporter.handle(&event, Timestamp::now()).await.context("the export's scheduled run")?;
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
