//! The scheduled run, for the hours of the window: (1) compact the closed hours that have new pieces, and roll up
//! the `hourly_sales` pieces of the open hour (and of closed hours still inside their grace period) when
//! [`ExportConfig::rollup_open_hours`](crate::ExportConfig) is on, (2) rewrite each dataset's manifests (daily
//! and rolling, split at QuickSight's 1,000 files), (3) delete what a merge at least a grace period old
//! replaced. See `salesflow_core::compaction` for the order of the steps and why no manifest ever lists a merged
//! file together with a piece it replaced.
//!
//! With rollups, a manifest lists one `hourly_sales` file per hour: the open hour's rollup is rewritten on
//! every run (a new generation summing the previous one and the pieces landed since), so the open hour is as
//! fresh as the schedule, with sums that are exact except for lines redelivered across landed objects and
//! `receipts` split across objects (both corrected when the closed hour is compacted from `sales_lines`).

use std::collections::BTreeMap;
use std::io::BufReader;

use bytes::Bytes;
use jiff::Timestamp;
use jiff::civil::Date;
use salesflow_core::compaction::{
    CompactionPlan, CompactionRecord, HourState, RollupPlan, plan_cleanup, plan_compaction, plan_manifests,
    plan_rollup, window_dates,
};
use salesflow_core::datasets::hourly_sales::{self, HourlyAggregator, HourlyRollup, HourlyRow};
use salesflow_core::datasets::sales_lines::{self, Deduper, SalesLine};
use salesflow_core::datasets::{CsvWriter, Dataset, read_rows};
use salesflow_core::keys::EventHour;
use salesflow_store::{ObjectStore, content_type};
use serde::Serialize;

use crate::{Exporter, HandlerError};

/// What a scheduled run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScheduledSummary {
    pub hours_compacted: Vec<CompactedHour>,
    /// Open hours (or closed ones inside their grace period) whose `hourly_sales` pieces were rolled up.
    pub hours_rolled_up: Vec<RolledUpHour>,
    /// Hours that could not be compacted or rolled up this time (an input vanished, a file did not read back),
    /// with why.
    pub hours_skipped: Vec<String>,
    pub files_deleted: Vec<String>,
    pub manifests_written: Vec<String>,
    pub manifests_deleted: Vec<String>,
    /// Manifests split because they would list more than 1,000 files: (base key, files).
    pub manifests_split: Vec<(String, usize)>,
}

/// One compacted hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompactedHour {
    pub hour: String,
    pub generation: u32,
    pub inputs: usize,
    pub sales_lines_rows: u64,
    pub hourly_sales_rows: u64,
    pub duplicates_dropped: u64,
    pub merged: Vec<String>,
}

/// One open hour's `hourly_sales` rollup.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RolledUpHour {
    pub hour: String,
    pub generation: u32,
    /// Files summed: the previous rollup (if any) and the pieces landed since.
    pub inputs: usize,
    pub hourly_sales_rows: u64,
    pub merged: String,
}

/// Why an hour's compaction stopped (nothing was committed; the next run tries again).
struct Skip(String);

impl<S: ObjectStore> Exporter<S> {
    /// Compaction and manifests, as of `now`. Store failures return `Err` (the schedule retries); the run is
    /// idempotent, so a retry or the next tick finishes what an interrupted one started.
    pub async fn run_scheduled(&self, now: Timestamp) -> Result<ScheduledSummary, HandlerError> {
        let today = jiff::tz::TimeZone::UTC.to_datetime(now).date();
        let mut dates = window_dates(today, self.config.window_days);
        if let Ok(yesterday) = today.yesterday()
            && !dates.contains(&yesterday)
        {
            dates.insert(0, yesterday);
        }
        let mut hours = self.load_hours(&dates).await?;
        let mut summary = ScheduledSummary::default();
        // 1. Compaction (merged files, then the record: the commit point).
        for state in hours.values_mut() {
            if let Some(plan) = plan_compaction(state, now, self.config.grace) {
                match self.compact(state, &plan, now).await? {
                    Ok(done) => summary.hours_compacted.push(done),
                    Err(Skip(why)) => {
                        tracing::warn!(hour = %hour_label(plan.partition), %why, "compaction skipped");
                        summary.hours_skipped.push(format!("{}: {why}", hour_label(plan.partition)));
                    }
                }
            } else if self.config.rollup_open_hours
                && let Some(plan) = plan_rollup(state, now, self.config.grace)
            {
                match self.roll_up(state, &plan, now).await? {
                    Ok(done) => summary.hours_rolled_up.push(done),
                    Err(Skip(why)) => {
                        tracing::warn!(hour = %hour_label(plan.partition), %why, "rollup skipped");
                        summary.hours_skipped.push(format!("{} (rollup): {why}", hour_label(plan.partition)));
                    }
                }
            }
        }
        // 2. Manifests, from the states as they are now.
        let states: Vec<HourState> = hours.into_values().collect();
        for dataset in Dataset::ALL {
            let existing: Vec<String> = self
                .store
                .list(&self.config.bucket, &self.config.layout.manifests_prefix(dataset.name()))
                .await?
                .into_iter()
                .map(|o| o.key)
                .collect();
            let plan = plan_manifests(
                &self.config.layout,
                &self.config.bucket,
                dataset,
                &states,
                today,
                self.config.window_days,
                &existing,
            );
            for (key, manifest) in &plan.writes {
                self.store.put(&self.config.bucket, key, Bytes::from(manifest.to_bytes()), content_type::JSON).await?;
                summary.manifests_written.push(key.clone());
            }
            for key in &plan.deletes {
                self.store.delete(&self.config.bucket, key).await?;
                summary.manifests_deleted.push(key.clone());
            }
            for (base, files) in &plan.splits {
                tracing::warn!(
                    manifest = %base,
                    files,
                    parts = files.div_ceil(salesflow_core::manifest::MAX_FILES),
                    "manifest split: more than QuickSight's 1,000 files; each part is a separate data source"
                );
            }
            summary.manifests_split.extend(plan.splits);
        }
        // 3. Deletions, last: what a record replaced long enough ago (no manifest has listed it since).
        for state in &states {
            for (dataset, name) in plan_cleanup(state, now, self.config.grace) {
                let key = format!("{}{name}", self.config.layout.dataset_hour_prefix(dataset.name(), state.partition));
                self.store.delete(&self.config.bucket, &key).await?;
                summary.files_deleted.push(key);
            }
        }
        tracing::info!(
            compacted = summary.hours_compacted.len(),
            rolled_up = summary.hours_rolled_up.len(),
            deleted = summary.files_deleted.len(),
            manifests = summary.manifests_written.len(),
            "scheduled run done"
        );
        self.emit(
            &[self
                .metric_set()
                .count("HoursCompacted", summary.hours_compacted.len() as u64)
                .count("HoursRolledUp", summary.hours_rolled_up.len() as u64)
                .count("DuplicatesDropped", summary.hours_compacted.iter().map(|h| h.duplicates_dropped).sum())
                .count("FilesDeleted", summary.files_deleted.len() as u64)
                .count("ManifestsWritten", summary.manifests_written.len() as u64)
                .count("ManifestsSplit", summary.manifests_split.len() as u64)],
            now,
        );
        Ok(summary)
    }

    /// Lists both datasets (with the `sales_lines` files' content versions) and the compaction records of these
    /// days into hour states.
    async fn load_hours(&self, dates: &[Date]) -> Result<BTreeMap<EventHour, HourState>, HandlerError> {
        let (bucket, layout) = (&self.config.bucket, &self.config.layout);
        let mut hours: BTreeMap<EventHour, HourState> = BTreeMap::new();
        for date in dates {
            for dataset in Dataset::ALL {
                for object in self.store.list(bucket, &layout.dataset_date_prefix(dataset.name(), *date)).await? {
                    if let Some((hour, name)) = layout.parse_dataset_key(dataset.name(), &object.key) {
                        let state = hours.entry(hour).or_insert_with(|| HourState::new(hour));
                        if let (Dataset::SalesLines, Some(version)) = (dataset, object.version) {
                            state.versions.insert(name.clone(), version);
                        }
                        state.files_mut(dataset).insert(name);
                    }
                }
            }
            for object in self.store.list(bucket, &layout.compaction_records_date_prefix(*date)).await? {
                let Some(hour) = layout.parse_compaction_record_key(&object.key) else { continue };
                let bytes = match self.store.get(bucket, &object.key).await {
                    Err(e) if e.is_not_found() => continue,
                    other => other?,
                };
                match CompactionRecord::from_bytes(&bytes) {
                    Ok(record) => hours.entry(hour).or_insert_with(|| HourState::new(hour)).record = Some(record),
                    Err(e) => {
                        // Without its record an hour lists its pieces only; compacting it again would replace
                        // pieces a broken record may already have deleted, so it is left for an operator.
                        tracing::error!(key = %object.key, error = %e, "unreadable compaction record; hour left as is");
                        hours.remove(&hour);
                    }
                }
            }
        }
        Ok(hours)
    }

    /// Merges an hour: de-duplicated `sales_lines` parts, `hourly_sales` recomputed from them, then the record.
    async fn compact(
        &self,
        state: &mut HourState,
        plan: &CompactionPlan,
        now: Timestamp,
    ) -> Result<Result<CompactedHour, Skip>, HandlerError> {
        let (bucket, layout) = (&self.config.bucket, &self.config.layout);
        let lines_prefix = layout.dataset_hour_prefix(Dataset::SalesLines.name(), plan.partition);
        let csv_err = |e: csv::Error| Skip(format!("CSV: {e}"));
        let new_part = || CsvWriter::new(Vec::new(), &sales_lines::COLUMNS);
        let mut part = new_part().map_err(csv_err);
        let mut merged_lines = Vec::new();
        let mut dedup = Deduper::new();
        let mut hourly = HourlyAggregator::new();
        let mut rows = 0;
        for name in &plan.inputs {
            let key = format!("{lines_prefix}{name}");
            let file = match self.store.get_file(bucket, &key).await {
                Err(e) if e.is_not_found() => return Ok(Err(Skip(format!("{key} vanished")))),
                other => other?,
            };
            let records = match read_rows(BufReader::with_capacity(256 << 10, file), &sales_lines::COLUMNS) {
                Ok(r) => r,
                Err(e) => return Ok(Err(Skip(format!("{key}: {e}")))),
            };
            for record in records {
                let line = match record
                    .map_err(|e| e.to_string())
                    .and_then(|r| SalesLine::from_row(&r).map_err(|e| e.to_string()))
                {
                    Ok(line) => line,
                    Err(e) => return Ok(Err(Skip(format!("{key}: {e}")))),
                };
                if !dedup.first_time(&line) {
                    continue;
                }
                if let Err(e) = hourly.add(&line) {
                    return Ok(Err(Skip(format!("{key}: {e}"))));
                }
                rows += 1;
                let writer = match part.as_mut() {
                    Ok(w) => w,
                    Err(Skip(e)) => return Ok(Err(Skip(e.clone()))),
                };
                if let Err(e) = writer.serialize(&line) {
                    return Ok(Err(csv_err(e)));
                }
                if writer.bytes_flushed() >= self.config.merged_part_bytes {
                    let full = std::mem::replace(&mut part, new_part().map_err(csv_err));
                    merged_lines.push(self.put_part(plan, merged_lines.len(), full).await?);
                }
            }
        }
        // The last part (also the only one, header only, when every input was empty).
        if merged_lines.is_empty() || part.as_ref().is_ok_and(|w| w.rows() > 0) {
            merged_lines.push(self.put_part(plan, merged_lines.len(), part).await?);
        }
        if merged_lines.iter().any(|m| m.is_empty()) {
            return Ok(Err(Skip("a merged part could not be written".into())));
        }
        let (body, hourly_rows) = match hourly_sales::write_csv(hourly.into_rows()) {
            Ok(written) => written,
            Err(e) => return Ok(Err(csv_err(e))),
        };
        let hourly_name = plan.merged_name(0).file_name();
        let hourly_key =
            format!("{}{hourly_name}", layout.dataset_hour_prefix(Dataset::HourlySales.name(), plan.partition));
        self.store.put(bucket, &hourly_key, Bytes::from(body), content_type::CSV).await?;
        state.hourly_sales.insert(hourly_name.clone());
        // The commit point: from here on manifests list the merged files instead of the pieces.
        self.commit(state, plan.record(merged_lines.clone(), vec![hourly_name], now)).await?;
        state.sales_lines.extend(merged_lines.iter().cloned());
        tracing::info!(
            hour = %hour_label(plan.partition),
            generation = plan.generation,
            inputs = plan.inputs.len(),
            rows,
            duplicates = dedup.dropped(),
            parts = merged_lines.len(),
            "compacted an hour"
        );
        Ok(Ok(CompactedHour {
            hour: hour_label(plan.partition),
            generation: plan.generation,
            inputs: plan.inputs.len(),
            sales_lines_rows: rows,
            hourly_sales_rows: hourly_rows,
            duplicates_dropped: dedup.dropped(),
            merged: merged_lines,
        }))
    }

    /// Rolls an open hour's `hourly_sales` up: the inputs' rows summed per key into one merged file, then the
    /// record (the commit point). Inputs are small (one hour of the small dataset), so they are read whole.
    async fn roll_up(
        &self,
        state: &mut HourState,
        plan: &RollupPlan,
        now: Timestamp,
    ) -> Result<Result<RolledUpHour, Skip>, HandlerError> {
        let (bucket, layout) = (&self.config.bucket, &self.config.layout);
        let prefix = layout.dataset_hour_prefix(Dataset::HourlySales.name(), plan.partition);
        let mut rollup = HourlyRollup::new();
        for name in &plan.inputs {
            let key = format!("{prefix}{name}");
            let body = match self.store.get(bucket, &key).await {
                Err(e) if e.is_not_found() => return Ok(Err(Skip(format!("{key} vanished")))),
                other => other?,
            };
            let records = match read_rows(&body[..], &hourly_sales::COLUMNS) {
                Ok(r) => r,
                Err(e) => return Ok(Err(Skip(format!("{key}: {e}")))),
            };
            for record in records {
                match record.map_err(|e| e.to_string()).and_then(|r| HourlyRow::from_row(&r).map_err(|e| e.to_string()))
                {
                    Ok(row) => {
                        if let Err(e) = rollup.add(row) {
                            return Ok(Err(Skip(format!("{key}: {e}"))));
                        }
                    }
                    Err(e) => return Ok(Err(Skip(format!("{key}: {e}")))),
                }
            }
        }
        let (body, rows) = match hourly_sales::write_csv(rollup.into_rows()) {
            Ok(written) => written,
            Err(e) => return Ok(Err(Skip(format!("CSV: {e}")))),
        };
        let name = plan.merged_name().file_name();
        self.store.put(bucket, &format!("{prefix}{name}"), Bytes::from(body), content_type::CSV).await?;
        state.hourly_sales.insert(name.clone());
        // The commit point: from here on manifests list the rollup instead of the pieces (and earlier rollup).
        self.commit(state, plan.record(name.clone(), now)).await?;
        tracing::info!(
            hour = %hour_label(plan.partition),
            generation = plan.generation,
            inputs = plan.inputs.len(),
            rows,
            "rolled up an open hour's hourly_sales"
        );
        Ok(Ok(RolledUpHour {
            hour: hour_label(plan.partition),
            generation: plan.generation,
            inputs: plan.inputs.len(),
            hourly_sales_rows: rows,
            merged: name,
        }))
    }

    /// Puts an hour's compaction record, the commit point of a compaction or rollup (manifests then list what it
    /// merged instead of what it replaced), and keeps it as the hour's record.
    async fn commit(&self, state: &mut HourState, record: CompactionRecord) -> Result<(), HandlerError> {
        let key = self.config.layout.compaction_record_key(state.partition);
        self.store.put(&self.config.bucket, &key, Bytes::from(record.to_bytes()), content_type::JSON).await?;
        state.record = Some(record);
        Ok(())
    }

    /// Uploads a merged `sales_lines` part; its file name, or "" when the CSV writer had failed.
    async fn put_part(
        &self,
        plan: &CompactionPlan,
        index: usize,
        part: Result<CsvWriter<Vec<u8>>, Skip>,
    ) -> Result<String, HandlerError> {
        let Ok(writer) = part else { return Ok(String::new()) };
        let Ok(body) = writer.finish() else { return Ok(String::new()) };
        let name = plan.merged_name(index as u32).file_name();
        let key =
            format!("{}{name}", self.config.layout.dataset_hour_prefix(Dataset::SalesLines.name(), plan.partition));
        self.store.put(&self.config.bucket, &key, Bytes::from(body), content_type::CSV).await?;
        Ok(name)
    }
}

fn hour_label(h: EventHour) -> String {
    format!("{}T{:02}", h.date, h.hour)
}
