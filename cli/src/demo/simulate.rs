//! The simulated day, in simulated time: receipts in emission order onto Kinesis-shaped shards, batches into the
//! ingest handler, S3 notifications of landed objects into the export handler, and the export's 15-minute
//! schedule. Handlers run as tasks on two worker threads while the next hour's receipts are generated; before
//! each scheduled run every batch invoked so far has finished (the schedule sees what a real one would).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};
use indicatif::ProgressBar;
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use salesflow_core::Counts;
use salesflow_export::{ExportConfig, Exporter, MetricsOutput};
use salesflow_ingest::{Ingest, StreamEvent, StreamRecord};
use salesflow_store::{LocalStore, Settings};
use serde::Serialize;
use tokio::task::JoinSet;

use super::DemoArgs;
use super::day::{DayPlan, Hours, Ledger, Pending};
use crate::local::events::{KinesisStream, Origin};
use crate::local::progress;
use crate::local::shards::ShardMap;

/// The event source mapping's batch size (the SAM template's `IngestBatchSize`).
const BATCH_SIZE: usize = 1000;
/// Its batching window (`IngestBatchingWindowSeconds`), in real seconds; stretched by `--speed`.
const BATCHING_WINDOW_SECS: i64 = 5;
/// The export schedule (`CompactionSchedule`: rate(15 minutes)).
const SCHEDULE: SignedDuration = SignedDuration::from_mins(15);

/// The settings the demo runs with: the functions' defaults, whatever the environment says.
pub fn settings() -> Settings {
    Settings::from_vars(&|_| None).expect("the defaults are valid")
}

/// What happened to one day's records, from both ends: what the ingest handler counted and what the stores sent.
#[derive(Debug, Clone, Serialize)]
pub struct DayResult {
    pub label: String,
    pub date: String,
    /// The ingest handler's counts of the day's records, in the summary as `records_in`, `landed`, `filtered`,
    /// `rejected` and `lines`.
    #[serde(flatten, serialize_with = "day_counts")]
    pub counts: Counts,
    #[serde(flatten)]
    pub sent: Ledger,
}

/// The whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// The ingest handler's counts of both days, summed; in the summary as those of a day, with why records were
    /// filtered or rejected.
    #[serde(flatten, serialize_with = "total_counts")]
    pub counts: Counts,
    /// Rows of the compacted `sales_lines` files (the last compaction of each hour).
    pub sales_lines_rows: u64,
    pub batches: u64,
    pub objects_exported: u64,
    pub scheduled_runs: u64,
    pub hours_compacted: u64,
}

/// [`Counts`] as the summary names them: `landed` for the records with at least one line landed (emitted),
/// `lines` for the receipt lines landed (outputs).
#[derive(Serialize)]
struct SummaryCounts<'a> {
    records_in: u64,
    landed: u64,
    filtered: u64,
    rejected: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    filtered_by: Option<&'a BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected_by: Option<&'a BTreeMap<String, u64>>,
    lines: u64,
}

impl SummaryCounts<'_> {
    fn of(c: &Counts, why: bool) -> SummaryCounts<'_> {
        SummaryCounts {
            records_in: c.records_in,
            landed: c.emitted,
            filtered: c.filtered,
            rejected: c.rejected,
            filtered_by: why.then_some(&c.filtered_by),
            rejected_by: why.then_some(&c.rejected_by),
            lines: c.outputs,
        }
    }
}

fn day_counts<S: serde::Serializer>(counts: &Counts, serializer: S) -> Result<S::Ok, S::Error> {
    SummaryCounts::of(counts, false).serialize(serializer)
}

fn total_counts<S: serde::Serializer>(counts: &Counts, serializer: S) -> Result<S::Ok, S::Error> {
    SummaryCounts::of(counts, true).serialize(serializer)
}

struct Shard {
    id: String,
    /// The day (index of the plans) its pending records belong to; days never overlap.
    day: usize,
    next_sequence: u64,
    last_arrival: Timestamp,
    records: Vec<StreamRecord>,
}

/// What one ingest invocation (and the exports of its landed objects) did.
struct Flushed {
    day: usize,
    counts: Counts,
    objects_exported: u64,
}

struct Engine {
    ingest: Arc<Ingest<LocalStore>>,
    exporter: Arc<Exporter<LocalStore>>,
    bucket: String,
    bucket_dir: std::path::PathBuf,
    /// Which shard a partition key goes to; `shards` in the same order.
    routes: ShardMap,
    shards: Vec<Shard>,
    /// The example account the events name, and its stream.
    origin: Origin,
    stream: KinesisStream,
    window: SignedDuration,
    next_flush: Timestamp,
    next_tick: Timestamp,
    tasks: JoinSet<anyhow::Result<Flushed>>,
    day_counts: Vec<Counts>,
    /// Sales lines rows of the last compaction of each hour.
    hour_rows: BTreeMap<String, u64>,
    totals: Totals,
    progress: ProgressBar,
    rejected: Arc<AtomicU64>,
    lag_rng: ChaCha8Rng,
}

/// Simulates the days of `plans` (in order, they never overlap) into the bucket directory; what each day sent
/// and what the handlers counted, checked against each other, and the run's totals.
pub async fn run(args: &DemoArgs, plans: &[DayPlan; 2]) -> anyhow::Result<(Vec<DayResult>, Totals)> {
    let mut engine = Engine::new(args, plans);
    let mut ledgers = Vec::new();
    for (day, plan) in plans.iter().enumerate() {
        ledgers.push(engine.stream_day(day, plan, args.stores).await?);
    }
    engine.progress.finish_and_clear();
    let mut days = Vec::new();
    for ((plan, ledger), counts) in plans.iter().zip(ledgers).zip(&engine.day_counts) {
        let sent = ledger.records();
        if sent != counts.records_in || !counts.balanced() {
            bail!("{}: {sent} records sent but the ingest handler counted {counts}", plan.label);
        }
        engine.totals.counts.merge(counts);
        days.push(DayResult {
            label: plan.label.to_string(),
            date: plan.date.to_string(),
            counts: counts.clone(),
            sent: ledger,
        });
    }
    let t = &mut engine.totals;
    t.sales_lines_rows = engine.hour_rows.values().sum();
    t.hours_compacted = engine.hour_rows.len() as u64;
    Ok((days, engine.totals))
}

impl Engine {
    /// The handlers on the bucket directory, the shards empty, the clock at the first day's opening.
    fn new(args: &DemoArgs, plans: &[DayPlan; 2]) -> Engine {
        let settings = settings();
        let config = ExportConfig {
            bucket: settings.bucket.clone(),
            layout: settings.layout.clone(),
            ..ExportConfig::default()
        };
        let bucket = settings.bucket.clone();
        // The embedded pipeline names its zone; the default zone is the demo settings' one, like the function's.
        let pipeline = salesflow_core::defaults::sales_pipeline_with(&settings.time_zone);
        let ingest = Ingest::new(LocalStore::new(&args.out), settings, pipeline);
        let exporter = Exporter::new(LocalStore::new(&args.out), config).with_metrics_output(MetricsOutput::Off);
        let total: usize = plans.iter().map(DayPlan::total_receipts).sum();
        let progress = progress::records_bar(args.quiet, total as u64);
        progress.set_message("0 rejected");
        let window = SignedDuration::from_secs(BATCHING_WINDOW_SECS * i64::from(args.speed));
        let routes = ShardMap::even(args.shards);
        let origin = Origin::example();
        Engine {
            ingest: Arc::new(ingest),
            exporter: Arc::new(exporter),
            bucket_dir: args.out.join(&bucket),
            bucket,
            shards: routes
                .ranges()
                .iter()
                .map(|range| Shard {
                    id: range.id.clone(),
                    day: 0,
                    next_sequence: 1,
                    last_arrival: Timestamp::UNIX_EPOCH,
                    records: Vec::new(),
                })
                .collect(),
            routes,
            stream: origin.stream("salesflow-receipts"),
            origin,
            window,
            next_flush: plans[0].open + window,
            next_tick: plans[0].open + SCHEDULE,
            tasks: JoinSet::new(),
            day_counts: vec![Counts::default(); plans.len()],
            hour_rows: BTreeMap::new(),
            totals: Totals::default(),
            progress,
            rejected: Arc::new(AtomicU64::new(0)),
            lag_rng: ChaCha8Rng::seed_from_u64(args.seed ^ 0x1A6),
        }
    }

    /// Streams one day, hour by hour, then the last batches and the schedule after closing; the day's books.
    async fn stream_day(&mut self, day: usize, plan: &DayPlan, stores: u32) -> anyhow::Result<Ledger> {
        self.progress.set_prefix(format!("{} {}", plan.label, plan.date));
        self.next_flush = plan.open + self.window;
        self.next_tick = plan.open + SCHEDULE;
        let mut hours = Hours::new(plan, stores);
        let mut ledger = Ledger::default();
        while let Some((records, hour_ledger)) = hours.next().await? {
            ledger.merge(hour_ledger);
            for record in records {
                self.advance_to(record.at).await?;
                self.push(day, record);
            }
        }
        // After closing: the last batches, then the schedule compacts the last hour and cleans up.
        self.advance_to(plan.close + SCHEDULE * 2).await?;
        self.drain().await?;
        Ok(ledger)
    }

    /// Runs every batching-window end and schedule tick up to `at`, in time order.
    async fn advance_to(&mut self, at: Timestamp) -> anyhow::Result<()> {
        loop {
            let next = self.next_flush.min(self.next_tick);
            if next > at {
                return Ok(());
            }
            if self.next_flush == next {
                for shard in 0..self.shards.len() {
                    self.flush(shard, next);
                }
                self.next_flush = next + self.window;
            }
            if self.next_tick == next {
                self.tick(next).await?;
                self.next_tick = next + SCHEDULE;
            }
        }
    }

    /// Puts a record on its shard; a full batch is invoked at once.
    fn push(&mut self, day: usize, record: Pending) {
        let index = self.routes.route(&record.partition_key);
        let lag = SignedDuration::from_millis(self.lag_rng.random_range(80..1500));
        let shard = &mut self.shards[index];
        let arrival = (record.at + lag).max(shard.last_arrival);
        shard.last_arrival = arrival;
        let sequence = format!("49{index:04}{:050}", shard.next_sequence);
        shard.next_sequence += 1;
        shard.records.push(self.stream.record(&shard.id, &sequence, &record.partition_key, arrival, record.data));
        self.progress.inc(1);
        shard.day = day;
        if shard.records.len() >= BATCH_SIZE {
            self.flush(index, arrival);
        }
    }

    /// Invokes the ingest handler on a shard's pending records, then the export handler on each landed object.
    fn flush(&mut self, shard: usize, now: Timestamp) {
        let day = self.shards[shard].day;
        let records = std::mem::take(&mut self.shards[shard].records);
        if records.is_empty() {
            return;
        }
        self.totals.batches += 1;
        let ingest = Arc::clone(&self.ingest);
        let exporter = Arc::clone(&self.exporter);
        let bucket = self.bucket.clone();
        let origin = self.origin.clone();
        let bucket_dir = self.bucket_dir.clone();
        let progress = self.progress.clone();
        let rejected = Arc::clone(&self.rejected);
        let landed_prefix = ingest.settings().layout.landed.clone();
        self.tasks.spawn(async move {
            let report = ingest.process(StreamEvent { records }, now).await;
            if let Some(e) = report.error {
                bail!("the ingest handler could not store a batch: {e}");
            }
            let counts = report.metrics.counts;
            let all = rejected.fetch_add(counts.rejected, Ordering::Relaxed) + counts.rejected;
            progress.set_message(format!("{} rejected", super::count(all)));
            let mut objects_exported = 0;
            let export_time = now + SignedDuration::from_millis(700);
            for key in report.written.iter().filter(|k| k.starts_with(&landed_prefix)) {
                let size = std::fs::metadata(bucket_dir.join(key)).map(|m| m.len()).unwrap_or_default();
                let event = origin.object_created(&bucket, key, size, export_time);
                let summary = exporter
                    .handle(&event, export_time)
                    .await
                    .with_context(|| format!("the export handler failed on {key}"))?;
                objects_exported += summary.objects.len() as u64;
            }
            Ok(Flushed { day, counts, objects_exported })
        });
    }

    /// Waits for every invocation started so far.
    async fn drain(&mut self) -> anyhow::Result<()> {
        while let Some(done) = self.tasks.join_next().await {
            let flushed = done.context("an ingest task panicked")??;
            self.day_counts[flushed.day].merge(&flushed.counts);
            self.totals.objects_exported += flushed.objects_exported;
        }
        Ok(())
    }

    /// The EventBridge schedule fires: compaction and manifests as of `now`.
    async fn tick(&mut self, now: Timestamp) -> anyhow::Result<()> {
        self.drain().await?;
        let summary =
            self.exporter.handle(&self.origin.scheduled(now), now).await.context("the scheduled export failed")?;
        self.totals.scheduled_runs += 1;
        if let Some(s) = summary.scheduled {
            if !s.hours_skipped.is_empty() {
                bail!("compaction skipped hours: {}", s.hours_skipped.join("; "));
            }
            for hour in s.hours_compacted {
                self.hour_rows.insert(hour.hour, hour.sales_lines_rows);
            }
        }
        Ok(())
    }
}
