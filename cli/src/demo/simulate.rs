//! The simulated day, in simulated time: receipts in emission order onto Kinesis-shaped shards, batches into the
//! ingest handler, S3 notifications of landed objects into the export handler, and the export's 15-minute
//! schedule. Handlers run as tasks on two worker threads while the next hour's receipts are generated; before
//! each scheduled run every batch invoked so far has finished (the schedule sees what a real one would).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use indicatif::ProgressBar;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use salesflow_core::Counts;
use salesflow_core::generate::{Generator, spread_times};
use salesflow_core::receipt::Receipt;
use salesflow_export::{ExportConfig, Exporter, MetricsOutput};
use salesflow_ingest::{Ingest, StreamEvent, StreamRecord};
use salesflow_store::{LocalStore, Settings};
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinSet;

use super::DemoArgs;
use crate::local::events::{KinesisStream, Origin};
use crate::local::progress;
use crate::local::shards::ShardMap;

/// The hour the stores open, store time.
pub const OPENING_HOUR: i8 = 8;
/// The seed's rate: receipts per store per minute (on average over the day).
const RECEIPTS_PER_MINUTE: f64 = 10.0;
/// The event source mapping's batch size (the SAM template's `IngestBatchSize`).
const BATCH_SIZE: usize = 1000;
/// Its batching window (`IngestBatchingWindowSeconds`), in real seconds; stretched by `--speed`.
const BATCHING_WINDOW_SECS: i64 = 5;
/// The export schedule (`CompactionSchedule`: rate(15 minutes)).
const SCHEDULE: SignedDuration = SignedDuration::from_mins(15);
/// Last week's traffic relative to today's: the chain grew.
const LAST_WEEK_VOLUME: f64 = 0.95;
/// Receipts from the training tills of store S00000 (the sample pipeline filters them out).
const TRAINING_SHARE: f64 = 0.004;
/// Bad records: broken JSON, invalid fields, data that is not base64.
const BAD_SHARE: f64 = 0.003;

/// The kinds of bad records mixed in.
const BAD_KINDS: [&str; 5] = ["not JSON", "no UTC offset", "bad price", "no store", "not base64"];

/// How busy stores are at each hour of the day (store time), relative: a morning start, a lunch peak, an
/// evening peak.
fn traffic(hour: i8) -> f64 {
    match hour {
        8 => 0.55,
        9 => 0.75,
        10 => 0.95,
        11 => 1.2,
        12 => 1.4,
        13 => 1.15,
        14 => 0.85,
        15 => 0.8,
        16 => 0.95,
        17 => 1.3,
        18 => 1.5,
        19 => 1.2,
        20 => 0.8,
        21 => 0.6,
        22 => 0.45,
        _ => 0.3,
    }
}

/// What differs between the two weeks, per category: the share of lines kept in that week's receipts. This week
/// has a wine fair and a toy promotion; it rained, so the garden sold less; fish was short.
fn lines_kept(today: bool, category: &str) -> f64 {
    match (today, category) {
        (true, "Garden") => 0.78,
        (true, "Fish") => 0.9,
        (false, "Wine & Spirits") => 0.76,
        (false, "Toys") => 0.86,
        (false, "Baby") => 0.93,
        _ => 1.0,
    }
}

/// The settings the demo runs with: the functions' defaults, whatever the environment says.
pub fn settings() -> Settings {
    Settings::from_vars(&|_| None).expect("the defaults are valid")
}

/// One simulated day.
#[derive(Debug, Clone)]
pub struct DayPlan {
    pub date: Date,
    pub label: &'static str,
    pub today: bool,
    pub seed: u64,
    pub open: Timestamp,
    pub close: Timestamp,
    pub hours: u8,
    /// Receipts emitted in each trading hour (index 0 is the opening hour).
    pub receipts_per_hour: Vec<usize>,
}

impl DayPlan {
    pub fn new(args: &DemoArgs, date: Date, label: &'static str, zone: &TimeZone) -> anyhow::Result<DayPlan> {
        let today = label == "today";
        let open = zone.to_timestamp(date.at(OPENING_HOUR, 0, 0, 0))?;
        let close = open + SignedDuration::from_hours(args.hours.into());
        let weights: Vec<f64> = (0..args.hours as i8).map(|h| traffic(OPENING_HOUR + h)).collect();
        let mean = weights.iter().sum::<f64>() / weights.len() as f64;
        let volume = if today { 1.0 } else { LAST_WEEK_VOLUME };
        let per_hour = f64::from(args.stores) * RECEIPTS_PER_MINUTE * 60.0 / f64::from(args.speed) * volume;
        let receipts_per_hour = weights.iter().map(|w| (per_hour * w / mean).round().max(1.0) as usize).collect();
        let seed = if today { args.seed } else { args.seed ^ 0x1A57_3EEC_u64.rotate_left(32) };
        Ok(DayPlan { date, label, today, seed, open, close, hours: args.hours, receipts_per_hour })
    }

    pub fn total_receipts(&self) -> usize {
        self.receipts_per_hour.iter().sum()
    }

    /// `08:00–20:00 Europe/Paris`
    pub fn hours_label(&self) -> String {
        let end = i32::from(OPENING_HOUR) + i32::from(self.hours);
        format!("{OPENING_HOUR:02}:00–{end:02}:00 {CHAIN_ZONE_NAME}")
    }

    /// `Thursday 2026-06-11`
    pub fn describe(&self) -> String {
        format!("{} {}", self.date.strftime("%A"), self.date)
    }

    /// The local hour of the last trading hour.
    pub fn last_hour(&self) -> i8 {
        OPENING_HOUR + self.hours as i8 - 1
    }
}

pub const CHAIN_ZONE_NAME: &str = salesflow_core::generate::CHAIN_TIME_ZONE;

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

/// One record ready for the stream.
struct Pending {
    at: Timestamp,
    partition_key: String,
    data: String,
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

/// The sender's books for a day: valid receipts from real stores, their lines, the training-till receipts, the
/// bad records by kind, and the turnover rung up (exact decimals): in total, per category, per store-time hour.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ledger {
    #[serde(rename = "sent_receipts")]
    pub receipts: u64,
    #[serde(rename = "sent_lines")]
    pub lines: u64,
    #[serde(rename = "sent_training")]
    pub training: u64,
    #[serde(rename = "sent_bad")]
    pub bad: BTreeMap<String, u64>,
    pub turnover: Decimal,
    #[serde(rename = "turnover_by_category")]
    pub by_category: BTreeMap<String, Decimal>,
    #[serde(rename = "turnover_by_hour")]
    pub by_hour: BTreeMap<i8, Decimal>,
}

impl Ledger {
    /// Every record sent.
    pub fn records(&self) -> u64 {
        self.receipts + self.training + self.bad.values().sum::<u64>()
    }

    fn merge(&mut self, other: Ledger) {
        self.receipts += other.receipts;
        self.lines += other.lines;
        self.training += other.training;
        self.turnover += other.turnover;
        for (k, v) in other.bad {
            *self.bad.entry(k).or_default() += v;
        }
        for (k, v) in other.by_category {
            *self.by_category.entry(k).or_default() += v;
        }
        for (k, v) in other.by_hour {
            *self.by_hour.entry(k).or_default() += v;
        }
    }
}

/// One hour of receipts, generated, some spoiled, encoded; `ledger` counts the good ones.
fn generate_hour(
    plan: &DayPlan,
    generator: &mut Generator,
    rng: &mut ChaCha8Rng,
    hour: usize,
    ledger: &mut Ledger,
) -> Vec<Pending> {
    let start = plan.open + SignedDuration::from_hours(hour as i64);
    let local_hour = OPENING_HOUR + hour as i8;
    let n = plan.receipts_per_hour[hour];
    let times = spread_times(plan.seed.wrapping_add(hour as u64), start, SignedDuration::from_hours(1), n);
    let mut out = Vec::with_capacity(n);
    for (i, at) in times.into_iter().enumerate() {
        let mut receipt = generator.receipt_at(at);
        keep_lines(&mut receipt, plan.today, rng);
        let store_id = receipt["store_id"].as_str().unwrap_or_default().to_string();
        // Every day opens with one bad record of each kind and a training receipt, so even a tiny demo shows
        // rejects and filtering; after that they come at random.
        let forced = if hour == 0 && i % 4 == 3 && i / 4 <= BAD_KINDS.len() { Some(i / 4) } else { None };
        let roll: f64 = match forced {
            Some(k) if k < BAD_KINDS.len() => -1.0 - k as f64,
            Some(_) => BAD_SHARE,
            None => rng.random(),
        };
        let (payload, base64_ok) = if roll < BAD_SHARE {
            let kind = match forced {
                Some(k) => BAD_KINDS[k],
                None => BAD_KINDS[rng.random_range(0..BAD_KINDS.len())],
            };
            *ledger.bad.entry(kind.to_string()).or_default() += 1;
            (spoil(&mut receipt, kind), kind != "not base64")
        } else {
            if roll < BAD_SHARE + TRAINING_SHARE {
                receipt["store_id"] = "S00000".into();
                ledger.training += 1;
            } else {
                let parsed = Receipt::from_value(&receipt).expect("generated receipts are valid");
                ledger.receipts += 1;
                for line in &parsed.lines {
                    ledger.lines += 1;
                    let total = line.total();
                    ledger.turnover += total;
                    *ledger.by_category.entry(line.category.clone()).or_default() += total;
                    *ledger.by_hour.entry(local_hour).or_default() += total;
                }
            }
            (serde_json::to_vec(&receipt).expect("JSON values serialize"), true)
        };
        let data = if base64_ok { STANDARD.encode(&payload) } else { "!!this is not base64!!".to_string() };
        out.push(Pending { at, partition_key: store_id, data });
    }
    out
}

/// Drops lines of the categories that sold less that week (a receipt keeps at least one line).
fn keep_lines(receipt: &mut Value, today: bool, rng: &mut ChaCha8Rng) {
    let Some(Value::Array(lines)) = receipt.get_mut("lines") else { return };
    let first = lines.first().cloned();
    lines.retain(|line| {
        let keep = lines_kept(today, line["category"].as_str().unwrap_or_default());
        keep >= 1.0 || rng.random_bool(keep)
    });
    if lines.is_empty()
        && let Some(line) = first
    {
        lines.push(line);
    }
}

/// A bad record of the given kind, from a good receipt.
fn spoil(receipt: &mut Value, kind: &str) -> Vec<u8> {
    match kind {
        "not JSON" => {
            let mut bytes = serde_json::to_vec(receipt).expect("JSON values serialize");
            bytes.truncate(bytes.len() / 2);
            return bytes;
        }
        "no UTC offset" => {
            let text = receipt["emitted_at"].as_str().unwrap_or_default();
            receipt["emitted_at"] = text.get(..19).unwrap_or(text).to_string().into();
        }
        "bad price" => receipt["lines"][0]["unit_price"] = "12,99".into(),
        "no store" => {
            receipt.as_object_mut().map(|o| o.remove("store_id"));
        }
        _ => {}
    }
    serde_json::to_vec(receipt).expect("JSON values serialize")
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

pub async fn run(args: &DemoArgs, plans: &[DayPlan; 2]) -> anyhow::Result<(Vec<DayResult>, Totals)> {
    let settings = settings();
    let config =
        ExportConfig { bucket: settings.bucket.clone(), layout: settings.layout.clone(), ..ExportConfig::default() };
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
    let mut engine = Engine {
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
    };
    let mut ledgers = Vec::new();
    for (day, plan) in plans.iter().enumerate() {
        engine.progress.set_prefix(format!("{} {}", plan.label, plan.date));
        engine.next_flush = plan.open + window;
        engine.next_tick = plan.open + SCHEDULE;
        let mut state = Some((Generator::new(plan.seed, args.stores), ChaCha8Rng::seed_from_u64(plan.seed ^ 0xBAD)));
        let mut ledger = Ledger::default();
        let mut next = None;
        for hour in 0..usize::from(plan.hours) {
            // Generate this hour (or take it from the background), start on the next one, then stream this one.
            let (records, hour_ledger) = match next.take() {
                Some(handle) => {
                    let (g, r, records, l) = tokio_await(handle).await?;
                    state = Some((g, r));
                    (records, l)
                }
                None => {
                    let (mut g, mut r) = state.take().expect("the generator is here");
                    let mut l = Ledger::default();
                    let records = generate_hour(plan, &mut g, &mut r, hour, &mut l);
                    state = Some((g, r));
                    (records, l)
                }
            };
            if hour + 1 < usize::from(plan.hours) {
                let (mut g, mut r) = state.take().expect("the generator is here");
                let plan = plan.clone();
                next = Some(tokio::task::spawn_blocking(move || {
                    let mut l = Ledger::default();
                    let records = generate_hour(&plan, &mut g, &mut r, hour + 1, &mut l);
                    (g, r, records, l)
                }));
            }
            ledger.merge(hour_ledger);
            for record in records {
                engine.advance_to(record.at).await?;
                engine.push(day, record);
            }
        }
        // After closing: the last batches, then the schedule compacts the last hour and cleans up.
        engine.advance_to(plan.close + SCHEDULE * 2).await?;
        engine.drain().await?;
        ledgers.push(ledger);
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

async fn tokio_await<T>(handle: tokio::task::JoinHandle<T>) -> anyhow::Result<T> {
    handle.await.context("a generator thread failed")
}

impl Engine {
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
