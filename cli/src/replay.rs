//! `salesflow replay`: re-runs `raw/` objects (an arrival-time range, or a list of keys) through the current
//! pipeline with the ingest function's own code: each raw copy is read back into its Kinesis event
//! ([`salesflow_ingest::read_raw`]) and processed by [`Ingest::process`] (decode, KPL, pipeline, landing), so
//! the landed keys are the original run's and, when nothing changed, so are the bytes.
//!
//! Raw copies are immutable: the replay never rewrites one. A landed object whose bytes did not change is not
//! written again either (no notification, no export); a changed or new one is written and, on a local store,
//! exported right away as the bucket's notification would on AWS (on S3 the notification does it). The next
//! scheduled export folds the changes into the datasets exactly once, compacted hours included (see
//! `salesflow_core::compaction`). Raw objects run on a local pool of `--jobs` tasks; a progress bar on
//! stderr, then a JSON summary on stdout whose counts add up per raw object and in total (records in = landed +
//! filtered + rejected).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail};
use clap::Args;
use jiff::Timestamp;
use jiff::civil::Date;
use salesflow_core::Counts;
use salesflow_core::compaction::hour_start;
use salesflow_export::{ExportConfig, Exporter, MetricsOutput as ExportMetrics};
use salesflow_ingest::{Ingest, IngestConfig, MetricsOutput, read_raw};
use salesflow_store::{AnyStore, Bytes, ObjectInfo, ObjectStore, StoreError};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::local::progress;

#[derive(Args)]
pub struct ReplayArgs {
    /// Raw keys to replay (`raw/dt=…/hour=…/<shard>-<first>-<last>.ndjson.zst`), instead of a range.
    keys: Vec<String>,
    /// The start of the arrival-time range (RFC 3339, or a UTC date): raw objects of the hours from this one on.
    #[arg(long, value_parser = parse_instant)]
    from: Option<Timestamp>,
    /// The end of the range, exclusive (RFC 3339, or a UTC date: up to its midnight).
    #[arg(long, value_parser = parse_instant)]
    to: Option<Timestamp>,
    /// A local directory of buckets (`DIR/<bucket>/<key>`). Without it: `SALESFLOW_STORE_DIR`, else S3 when
    /// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID` or `AWS_PROFILE` is set, else ./salesflow-data.
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Raw objects replayed at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// An RFC 3339 instant, or a date (its midnight, UTC).
fn parse_instant(text: &str) -> Result<Timestamp, String> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let date: Date = text.parse().map_err(|_| format!("{text:?} is neither an RFC 3339 instant nor a date"))?;
    jiff::tz::TimeZone::UTC.to_timestamp(date.at(0, 0, 0, 0)).map_err(|e| e.to_string())
}

/// What became of one landed object of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Change {
    /// The same bytes as before: not written again.
    Unchanged,
    /// Rewritten with other bytes (the pipeline changed).
    Rewritten,
    /// A key the original run did not write.
    New,
}

/// One raw object's replay.
#[derive(Debug, Clone, Serialize)]
struct ObjectReplay {
    raw: String,
    /// Kinesis records in the raw copy.
    kinesis_records: u64,
    /// User records (after KPL de-aggregation): `records_in = landed + filtered + rejected`.
    records_in: u64,
    landed: u64,
    filtered: u64,
    rejected: u64,
    landed_objects: BTreeMap<String, Change>,
    /// Landed objects exported in-process (local store).
    exported: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl ObjectReplay {
    fn new(raw: &str) -> ObjectReplay {
        ObjectReplay {
            raw: raw.to_string(),
            kinesis_records: 0,
            records_in: 0,
            landed: 0,
            filtered: 0,
            rejected: 0,
            landed_objects: BTreeMap::new(),
            exported: 0,
            error: None,
        }
    }

    fn count(&mut self, counts: &Counts) {
        (self.records_in, self.landed, self.filtered, self.rejected) =
            (counts.records_in, counts.emitted, counts.filtered, counts.rejected);
    }
}

/// The whole replay.
#[derive(Debug, Default, Serialize)]
struct Summary {
    raw_objects: u64,
    failed: u64,
    records_in: u64,
    landed: u64,
    filtered: u64,
    rejected: u64,
    landed_unchanged: u64,
    landed_rewritten: u64,
    landed_new: u64,
    exported: u64,
    objects: Vec<ObjectReplay>,
}

impl Summary {
    fn add(&mut self, o: ObjectReplay) {
        self.raw_objects += 1;
        self.failed += u64::from(o.error.is_some());
        self.records_in += o.records_in;
        self.landed += o.landed;
        self.filtered += o.filtered;
        self.rejected += o.rejected;
        self.exported += o.exported;
        for change in o.landed_objects.values() {
            match change {
                Change::Unchanged => self.landed_unchanged += 1,
                Change::Rewritten => self.landed_rewritten += 1,
                Change::New => self.landed_new += 1,
            }
        }
        self.objects.push(o);
    }
}

/// The store the replay writes through: never a raw copy (immutable; the replay reads it), never a landed
/// object with the bytes it already has. What it did to each landed key is noted for the summary.
struct ReplayStore {
    inner: Arc<AnyStore>,
    raw_prefix: String,
    landed_prefix: String,
    changes: Mutex<BTreeMap<String, Change>>,
}

impl ObjectStore for ReplayStore {
    async fn put(&self, bucket: &str, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        if key.starts_with(&self.raw_prefix) {
            return Ok(());
        }
        if key.starts_with(&self.landed_prefix) {
            let change = match self.inner.get(bucket, key).await {
                Ok(old) if old == body => Change::Unchanged,
                Ok(_) => Change::Rewritten,
                Err(e) if e.is_not_found() => Change::New,
                Err(e) => return Err(e),
            };
            if change != Change::Unchanged {
                self.inner.put(bucket, key, body, content_type).await?;
            }
            self.changes.lock().expect("not poisoned").insert(key.to_string(), change);
            return Ok(());
        }
        self.inner.put(bucket, key, body, content_type).await
    }

    async fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        self.inner.put_if_absent(bucket, key, body, content_type).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StoreError> {
        self.inner.get(bucket, key).await
    }

    async fn get_file(&self, bucket: &str, key: &str) -> Result<std::fs::File, StoreError> {
        self.inner.get_file(bucket, key).await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.inner.list(bucket, prefix).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.inner.delete(bucket, key).await
    }
}

/// What every task shares.
struct Replayer {
    ingest: Ingest<ReplayStore>,
    /// The export of the landed objects written, on a local store.
    exporter: Option<Exporter<Arc<AnyStore>>>,
    now: Timestamp,
}

impl Replayer {
    async fn replay(&self, raw: String) -> ObjectReplay {
        let mut out = ObjectReplay::new(&raw);
        if let Err(e) = self.replay_into(&raw, &mut out).await {
            out.error = Some(format!("{e:#}"));
        }
        out
    }

    async fn replay_into(&self, raw: &str, out: &mut ObjectReplay) -> anyhow::Result<()> {
        let store = self.ingest.store();
        let bucket = &self.ingest.settings().bucket;
        let bytes = store.get(bucket, raw).await?;
        let event = read_raw(&bytes).with_context(|| format!("{raw}: not a raw copy"))?;
        out.kinesis_records = event.records.len() as u64;
        let report = self.ingest.process(event, self.now).await;
        out.count(&report.metrics.counts);
        {
            let changes = store.changes.lock().expect("not poisoned");
            for key in report.written.iter().filter(|k| k.starts_with(&store.landed_prefix)) {
                if let Some(change) = changes.get(key) {
                    out.landed_objects.insert(key.clone(), *change);
                }
            }
        }
        if let Some(e) = report.error {
            bail!("landing stopped: {e}");
        }
        if let Some(exporter) = &self.exporter {
            for (key, change) in &out.landed_objects {
                if *change != Change::Unchanged {
                    exporter.export_object(bucket, key, None, self.now).await?;
                    out.exported += 1;
                }
            }
        }
        Ok(())
    }
}

/// The raw keys to replay: the listed ones (checked), or those of the arrival hours overlapping `[from, to)`.
async fn select(
    args: &ReplayArgs,
    store: &AnyStore,
    bucket: &str,
    layout: &salesflow_core::keys::Layout,
) -> anyhow::Result<Vec<String>> {
    if !args.keys.is_empty() {
        if args.from.is_some() || args.to.is_some() {
            bail!("give raw keys or --from/--to, not both");
        }
        for key in &args.keys {
            if layout.parse_raw_key(key).is_none() {
                bail!("{key} is not a raw key ({}dt=YYYY-MM-DD/hour=HH/<name>.ndjson.zst)", layout.raw);
            }
        }
        return Ok(args.keys.clone());
    }
    let (Some(from), Some(to)) = (args.from, args.to) else {
        bail!("give raw keys, or --from and --to");
    };
    if from >= to {
        bail!("--from {from} is not before --to {to}");
    }
    let utc = jiff::tz::TimeZone::UTC;
    let last = utc.to_datetime(to - jiff::SignedDuration::from_nanos(1)).date();
    let mut date = utc.to_datetime(from).date();
    let mut keys = Vec::new();
    loop {
        for object in store.list(bucket, &layout.raw_date_prefix(date)).await? {
            let Some(hour) = layout.parse_raw_key(&object.key) else { continue };
            let start = hour_start(hour);
            if start < to && start + jiff::SignedDuration::from_hours(1) > from {
                keys.push(object.key);
            }
        }
        if date >= last {
            break;
        }
        date = date.tomorrow()?;
    }
    Ok(keys)
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    crate::logs::init_stderr();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(usize::from(args.jobs)).enable_all().build()?;
    runtime.block_on(replay(args))
}

async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = IngestConfig::from_env()?;
    let pipeline = config.compile_pipeline()?;
    let store = Arc::new(AnyStore::from_env(args.store.as_deref()).await);
    let layout = config.settings.layout.clone();
    let bucket = config.settings.bucket.clone();
    let keys = select(&args, &store, &bucket, &layout).await?;
    let exporter = match store.as_ref() {
        AnyStore::Local(_) => {
            let export_config = ExportConfig::from_vars(&|name| std::env::var(name).ok())?;
            Some(Exporter::new(Arc::clone(&store), export_config).with_metrics_output(ExportMetrics::Off))
        }
        AnyStore::S3(_) => None,
    };
    eprintln!(
        "replay: {} raw objects of bucket {} ({}), {} at a time{}",
        keys.len(),
        bucket,
        store.describe(),
        args.jobs,
        if exporter.is_some() { "; landed objects exported here" } else { "; the bucket's notifications export them" }
    );
    let replay_store = ReplayStore {
        inner: Arc::clone(&store),
        raw_prefix: layout.raw.clone(),
        landed_prefix: layout.landed.clone(),
        changes: Mutex::new(BTreeMap::new()),
    };
    let ingest = Ingest::new(replay_store, config.settings, pipeline).with_metrics_output(MetricsOutput::Off);
    let replayer = Arc::new(Replayer { ingest, exporter, now: Timestamp::now() });
    let bar = progress::objects_bar(args.quiet, keys.len() as u64);
    let mut summary = Summary::default();
    let mut tasks = JoinSet::new();
    let mut pending = keys.into_iter();
    loop {
        while tasks.len() < usize::from(args.jobs)
            && let Some(key) = pending.next()
        {
            let replayer = Arc::clone(&replayer);
            tasks.spawn(async move { replayer.replay(key).await });
        }
        let Some(done) = tasks.join_next().await else { break };
        let object = done.context("a replay task panicked")?;
        bar.inc(1);
        summary.add(object);
        bar.set_message(format!(
            "{} records: {} landed, {} filtered, {} rejected; {} failed",
            summary.records_in, summary.landed, summary.filtered, summary.rejected, summary.failed
        ));
    }
    bar.finish_and_clear();
    summary.objects.sort_by(|a, b| a.raw.cmp(&b.raw));
    eprintln!(
        "replayed {} raw objects: {} records in = {} landed + {} filtered + {} rejected; landed objects: {} unchanged, \
         {} rewritten, {} new ({} exported); {} failed",
        summary.raw_objects,
        summary.records_in,
        summary.landed,
        summary.filtered,
        summary.rejected,
        summary.landed_unchanged,
        summary.landed_rewritten,
        summary.landed_new,
        summary.exported,
        summary.failed
    );
    for failed in summary.objects.iter().filter_map(|o| o.error.as_ref().map(|e| (&o.raw, e))) {
        eprintln!("failed: {}: {}", failed.0, failed.1);
    }
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(if summary.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc3339_or_dates() {
        assert_eq!(parse_instant("2026-11-23").unwrap().to_string(), "2026-11-23T00:00:00Z");
        assert_eq!(parse_instant("2026-11-23T09:30:00+01:00").unwrap().to_string(), "2026-11-23T08:30:00Z");
        assert!(parse_instant("yesterday").unwrap_err().contains("neither"));
    }
}
