//! Exporting one landed object: stream its NDJSON (zstd, gzip or plain, told by the magic bytes), drop repeated
//! lines (same `receipt_id` and `line_no`), write the `sales_lines` CSV, then the `hourly_sales` CSV, both named
//! after the landed object so a redelivered notification rewrites the same bytes. `sales_lines` is written first:
//! compaction relies on an `hourly_sales` piece never existing without its `sales_lines` piece.

use std::io::{BufRead, BufReader};

use bytes::Bytes;
use jiff::Timestamp;
use salesflow_core::datasets::Dataset;
use salesflow_core::datasets::landed::{Converted, LandedConversion};
use salesflow_core::keys::ObjectLocation;
use salesflow_store::{ObjectStore, codec, content_type};
use serde::Serialize;

use crate::{Exporter, HandlerError};

/// What exporting one object did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectSummary {
    /// The landed object (`s3://bucket/key` in JSON).
    pub source: ObjectLocation,
    /// `exported`, `missing` (deleted before it was read) or `unreadable` (corrupt compressed data: poison,
    /// skipped).
    pub status: &'static str,
    pub records_read: u64,
    pub records_rejected: u64,
    pub duplicates_dropped: u64,
    /// Dataset keys written, with their data rows and bytes.
    pub written: Vec<(String, u64, u64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_lag_ms: Option<i64>,
}

impl ObjectSummary {
    /// Nothing read yet from `source`, which is about to be exported.
    fn new(source: ObjectLocation) -> ObjectSummary {
        ObjectSummary {
            source,
            status: "exported",
            records_read: 0,
            records_rejected: 0,
            duplicates_dropped: 0,
            written: Vec::new(),
            export_lag_ms: None,
        }
    }
}

/// How many rejected lines are logged one by one per object, on target `rejects` (the rest are only counted).
const LOGGED_REJECTS: u64 = 100;

/// The longest landed line the export reads (decompressed). A landed line is one sales line (~300 bytes); a
/// longer one is rejected with its reason and skipped without being held, so a gzip of 1 GB of zeros on one
/// line costs a buffer of this size, not 1 GB.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// Reads one line (up to and including `\n`) into `buf`, holding at most [`MAX_LINE_BYTES`] of it: `Ok(None)` at
/// the end, `Ok(Some(false))` for a line read whole, `Ok(Some(true))` for a longer line, whose rest is read
/// and dropped.
fn read_bounded_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    let mut read_any = false;
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(read_any.then_some(too_long));
        }
        read_any = true;
        let (take, done) = match memchr_newline(chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long && buf.len() + take <= MAX_LINE_BYTES {
            buf.extend_from_slice(&chunk[..take]);
        } else {
            too_long = true;
            buf.clear();
        }
        reader.consume(take);
        if done {
            return Ok(Some(too_long));
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

impl<S: ObjectStore> Exporter<S> {
    /// Exports one landed object. `Ok(None)` for a key outside the landed prefix (logged, not an error);
    /// `Err` when a store call fails, so the event is retried.
    pub async fn export_object(
        &self,
        bucket: &str,
        key: &str,
        created_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Option<ObjectSummary>, HandlerError> {
        let layout = &self.config.layout;
        let Some(landed) = layout.parse_landed_key(key) else {
            tracing::info!(bucket, key, landed_prefix = %layout.landed, "skipped a key that is not a landed object");
            return Ok(None);
        };
        let source = ObjectLocation::new(bucket, key);
        let mut summary = ObjectSummary::new(source.clone());
        let file = match self.store.get_file(bucket, key).await {
            Ok(f) => f,
            Err(e) if e.is_not_found() => {
                tracing::warn!(%source, "landed object no longer exists; nothing to export");
                summary.status = "missing";
                return Ok(Some(summary));
            }
            Err(e) => return Err(e.into()),
        };
        let converted = match convert(file, &source, &mut summary) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(%source, error = %e, "landed object is not readable NDJSON; skipped (poison)");
                summary.status = "unreadable";
                self.emit(&[self.metric_set().count("ObjectsRejected", 1)], now);
                return Ok(Some(summary));
            }
        };
        for (dataset, body, rows) in [
            (Dataset::SalesLines, converted.sales_lines, converted.sales_rows),
            (Dataset::HourlySales, converted.hourly_sales, converted.hourly_rows),
        ] {
            let out = layout.dataset_key(dataset.name(), &landed);
            let bytes = body.len() as u64;
            self.store.put(&self.config.bucket, &out, Bytes::from(body), content_type::CSV).await?;
            summary.written.push((out, rows, bytes));
        }
        summary.export_lag_ms = created_at.map(|t| (now - t).as_millis() as i64);
        tracing::info!(
            %source,
            records = summary.records_read,
            rejected = summary.records_rejected,
            duplicates = summary.duplicates_dropped,
            lag_ms = summary.export_lag_ms,
            "exported a landed object"
        );
        let mut main = self
            .metric_set()
            .count("ObjectsRead", 1)
            .count("RecordsRejected", summary.records_rejected)
            .count("DuplicatesDropped", summary.duplicates_dropped)
            .bytes("BytesWritten", summary.written.iter().map(|w| w.2).sum());
        if let Some(lag) = summary.export_lag_ms {
            main = main.millis("ExportLagMs", lag);
        }
        let mut sets = vec![main];
        for ((_, rows, _), dataset) in summary.written.iter().zip(Dataset::ALL) {
            sets.push(self.metric_set().dimension("Dataset", dataset.name()).count("RowsWritten", *rows));
        }
        self.emit(&sets, now);
        Ok(Some(summary))
    }
}

/// Streams NDJSON (zstd, gzip or plain: [`codec::decompressing`]) through the core's [`LandedConversion`].
/// Memory holds one line, the de-duplication keys, the hour's aggregates and the output CSV, never the decoded
/// input. An I/O error here means the object is corrupt compressed data (it is already on local disk): poison.
fn convert(file: std::fs::File, source: &ObjectLocation, summary: &mut ObjectSummary) -> std::io::Result<Converted> {
    let mut reader = codec::decompressing(BufReader::with_capacity(256 << 10, file))?;
    let mut conversion = LandedConversion::new();
    let mut buf = Vec::with_capacity(8 << 10);
    loop {
        buf.clear();
        let Some(too_long) = read_bounded_line(reader.as_mut(), &mut buf)? else { break };
        let outcome = if too_long { Err(conversion.too_long(MAX_LINE_BYTES)) } else { conversion.add(&buf) };
        if let Err(rejected) = outcome {
            summary.records_rejected += 1;
            if summary.records_rejected <= LOGGED_REJECTS {
                tracing::warn!(target: "rejects", key = %source, line = rejected.line, reason = %rejected.reason, "rejected a landed line");
            } else if summary.records_rejected == LOGGED_REJECTS + 1 {
                tracing::warn!(target: "rejects", key = %source, "more rejected lines in this object: only counted");
            }
        }
    }
    let converted = conversion.finish();
    summary.records_read = converted.records_read;
    summary.duplicates_dropped = converted.duplicates_dropped;
    Ok(converted)
}
