//! The handler: one Kinesis batch in, objects out, `batchItemFailures` back.
//!
//! Objects are written in order — the raw copy, the landed batches, then the rejects — and stop at the first
//! store error. Every object knows the first Kinesis record whose data it holds, so after a failure the
//! response names the first record not durably stored: Lambda checkpoints everything before it and retries from
//! it. Poison (undecodable data, pipeline rejects) is written to `rejects/` and never fails the batch. Keys come
//! from the batch's shard and sequence numbers and bodies are deterministic, so a redelivered batch rewrites
//! the same objects with the same bytes.

use std::convert::Infallible;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use jiff::Timestamp;
use lambda_runtime::LambdaEvent;
use salesflow_core::Pipeline;
use salesflow_core::keys::BatchId;
use salesflow_core::keys::EventHour;
use salesflow_store::{ObjectStore, Settings, StoreError, codec, content_type};
use serde::Serialize;
use tracing::Instrument;

use crate::KinesisEventResponse;
use crate::decode::{Budget, decode};
use crate::event::{StreamEvent, StreamRecord};
use crate::metrics::{BatchMetrics, MetricsOutput};

/// Rejected payloads are logged up to this many bytes.
const LOGGED_PAYLOAD_BYTES: usize = 256;
/// The `step` of a record that could not be decoded.
const DECODE_STEP: &str = "decode";
/// The `step` of a Kinesis record whose envelope (shard id, sequence number) cannot name objects.
const ENVELOPE_STEP: &str = "envelope";
/// A batch's rejects object lists at most this many rejects (the first, by record and sub-sequence number);
/// a last `summary` line counts the others, by step. Every reject is counted in the metrics.
pub const LISTED_REJECTS: usize = 1_000;
/// At most this many rejects of a batch are logged one by one; one more line counts the others.
pub const LOGGED_REJECTS: usize = 20;

/// Everything a warm function keeps between invocations: the store, the settings and the compiled pipeline.
#[derive(Debug)]
pub struct Ingest<S> {
    store: S,
    settings: Settings,
    pipeline: Pipeline,
    metrics_output: MetricsOutput,
}

/// What [`Ingest::process`] did with one batch.
#[derive(Debug)]
pub struct BatchReport {
    pub response: KinesisEventResponse,
    /// The batch's metrics, the outcomes of its user records among them (`metrics.counts`; undecodable ones
    /// count as rejected by step `decode`).
    pub metrics: BatchMetrics,
    /// Keys written, in order.
    pub written: Vec<String>,
    /// The store error that stopped the batch, if any.
    pub error: Option<StoreError>,
}

/// The Lambda entry point: [`Ingest::process`] with the clock, the request id on every log line, and the EMF
/// line. Store failures come back as `batchItemFailures`, never as `Err`.
pub async fn handle<S: ObjectStore>(
    ingest: &Ingest<S>,
    event: LambdaEvent<StreamEvent>,
) -> Result<KinesisEventResponse, Infallible> {
    let span = tracing::info_span!("ingest", request_id = %event.context.request_id);
    async {
        let now = Timestamp::now();
        let report = ingest.process(event.payload, now).await;
        report.metrics.emit(now, ingest.metrics_output);
        Ok(report.response)
    }
    .instrument(span)
    .await
}

/// An object to write and the first Kinesis record (index in the event) whose data it holds.
struct Planned {
    key: String,
    body: Bytes,
    content_type: &'static str,
    first_record: usize,
    landed: bool,
}

/// A user record's identity: its Kinesis record and its place in a KPL aggregate.
struct Input {
    record: usize,
    sub_sequence: Option<u64>,
    partition_key: Option<String>,
    /// The bytes as they arrived, when decoding changed them (gzip).
    arrived: Option<Vec<u8>>,
}

/// A rejected record, before it becomes a line.
struct Reject {
    record: usize,
    sub_sequence: Option<u64>,
    partition_key: Option<String>,
    step: String,
    reason: String,
    payload: Vec<u8>,
}

/// One line of the raw copy: a Kinesis record as it arrived.
#[derive(Serialize)]
struct RawLine<'a> {
    shard_id: &'a str,
    sequence_number: &'a str,
    partition_key: &'a str,
    arrival_time: String,
    payload_base64: &'a str,
}

/// The last line of a rejects object that could not list them all.
#[derive(Serialize)]
struct SummaryLine<'a> {
    reason: String,
    step: &'a str,
    omitted: u64,
    omitted_by_step: &'a std::collections::BTreeMap<String, u64>,
}

/// A batch's rejects: the first [`LISTED_REJECTS`] kept (by record and sub-sequence number), all counted.
#[derive(Default)]
struct Rejects {
    listed: Vec<Reject>,
    total: u64,
    by_step: std::collections::BTreeMap<String, u64>,
    /// The first Kinesis record with a reject, listed or not.
    first_record: Option<usize>,
}

impl Rejects {
    /// Adds a reject; rejects must come in (record, sub-sequence) order within one run of `push`es.
    fn push(&mut self, reject: Reject) {
        self.total += 1;
        *self.by_step.entry(reject.step.clone()).or_default() += 1;
        self.first_record = Some(self.first_record.map_or(reject.record, |r| r.min(reject.record)));
        if self.listed.len() < LISTED_REJECTS {
            self.listed.push(reject);
        }
    }

    /// Merges another ordered run: the listed rejects are again the first [`LISTED_REJECTS`] of both.
    fn merge(&mut self, other: Rejects) {
        self.total += other.total;
        for (step, n) in other.by_step {
            *self.by_step.entry(step).or_default() += n;
        }
        self.first_record = match (self.first_record, other.first_record) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.listed.extend(other.listed);
        self.listed.sort_by_key(|r| (r.record, r.sub_sequence));
        self.listed.truncate(LISTED_REJECTS);
    }

    /// The rejects not listed, by step.
    fn omitted_by_step(&self) -> std::collections::BTreeMap<String, u64> {
        let mut omitted = self.by_step.clone();
        for r in &self.listed {
            if let Some(n) = omitted.get_mut(&r.step) {
                *n -= 1;
            }
        }
        omitted.retain(|_, n| *n > 0);
        omitted
    }
}

/// One line of a rejects object.
#[derive(Serialize)]
struct RejectLine<'a> {
    reason: &'a str,
    step: &'a str,
    shard_id: &'a str,
    sequence_number: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_sequence_number: Option<u64>,
    partition_key: &'a str,
    arrival_time: String,
    payload_base64: String,
}

impl<S: ObjectStore> Ingest<S> {
    pub fn new(store: S, settings: Settings, pipeline: Pipeline) -> Ingest<S> {
        Ingest { store, settings, pipeline, metrics_output: MetricsOutput::default() }
    }

    /// Sends the EMF lines elsewhere (the command line keeps stdout for the response).
    pub fn with_metrics_output(mut self, output: MetricsOutput) -> Ingest<S> {
        self.metrics_output = output;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Processes one batch; `now` only feeds the ingest lag.
    pub async fn process(&self, event: StreamEvent, now: Timestamp) -> BatchReport {
        let mut records = event.records;
        let Some(first) = records.first() else {
            return BatchReport {
                response: KinesisEventResponse::default(),
                metrics: BatchMetrics { stage: self.settings.stage.clone(), ..BatchMetrics::default() },
                written: Vec::new(),
                error: None,
            };
        };
        // Keys are made of the shard and sequence numbers, so only well-formed envelopes of the batch's shard
        // name them; the other records are rejected (step `envelope`) rather than blocking the shard.
        let envelope_errors: Vec<Option<String>> = records.iter().map(StreamRecord::envelope_error).collect();
        let named: Vec<usize> = (0..records.len()).filter(|&i| envelope_errors[i].is_none()).collect();
        let (shard, first_sequence, last_sequence) = match (named.first(), named.last()) {
            (Some(&a), Some(&b)) => (
                records[a].shard_id().to_string(),
                records[a].kinesis.sequence_number.clone(),
                records[b].kinesis.sequence_number.clone(),
            ),
            // No record can name the objects: a name derived from the whole envelope, the same on redelivery.
            _ => ("unknown-shard".to_string(), "0".to_string(), envelope_digest(&records)),
        };
        let envelope_errors: Vec<Option<String>> = records
            .iter()
            .zip(envelope_errors)
            .map(|(r, e)| {
                e.or_else(|| {
                    (r.shard_id() != shard)
                        .then(|| format!("malformed envelope: a record of {} in a batch of {shard}", r.shard_id()))
                })
            })
            .collect();
        let batch = BatchId { shard: &shard, first_sequence: &first_sequence, last_sequence: &last_sequence };
        let arrival = first.kinesis.approximate_arrival_timestamp.0;
        let oldest = records.iter().map(|r| r.kinesis.approximate_arrival_timestamp.0).min().unwrap_or(arrival);
        let layout = &self.settings.layout;

        let mut planned = vec![Planned {
            key: layout.raw_key(arrival, &batch),
            body: codec::compress(records.iter().map(|r| raw_line(r, &shard))),
            content_type: content_type::ZSTD_NDJSON,
            first_record: 0,
            landed: false,
        }];

        // Decode, taking each record's data: from here on the event holds only identities. What the batch
        // decodes is bounded by one budget (decode::BATCH_DECODED_BUDGET, decode::BATCH_USER_RECORDS).
        let mut inputs = Vec::new();
        let mut payloads = Vec::new();
        let mut decode_rejects = Rejects::default();
        let mut budget = Budget::default();
        for (index, record) in records.iter_mut().enumerate() {
            let data = std::mem::take(&mut record.kinesis.data);
            if let Some(reason) = &envelope_errors[index] {
                decode_rejects.push(Reject {
                    record: index,
                    sub_sequence: None,
                    partition_key: None,
                    step: ENVELOPE_STEP.into(),
                    reason: reason.clone(),
                    // `payload_base64` is then `data` as it arrived (or its text, when not base64).
                    payload: STANDARD.decode(data.as_bytes()).unwrap_or_else(|_| data.into_bytes()),
                });
                continue;
            }
            for decoded in decode(data, &mut budget) {
                match decoded {
                    Ok(d) => {
                        inputs.push(Input {
                            record: index,
                            sub_sequence: d.sub_sequence,
                            partition_key: d.partition_key,
                            arrived: d.arrived,
                        });
                        payloads.push(d.payload);
                    }
                    Err(r) => decode_rejects.push(Reject {
                        record: index,
                        sub_sequence: r.sub_sequence,
                        partition_key: None,
                        step: DECODE_STEP.into(),
                        reason: r.reason,
                        payload: r.payload,
                    }),
                }
            }
        }

        let output = self.pipeline.land(payloads.iter().map(Vec::as_slice));
        let mut counts = output.counts;
        counts.records_in += decode_rejects.total;
        counts.rejected += decode_rejects.total;
        for (step, n) in &decode_rejects.by_step {
            *counts.rejected_by.entry(step.clone()).or_default() += n;
        }
        for batch_out in output.batches {
            let hour = batch_out.partition.unwrap_or_else(|| EventHour::of(arrival));
            planned.push(Planned {
                key: layout.landed_key(hour, &batch, batch_out.part),
                body: codec::compress([batch_out.payload]),
                content_type: content_type::ZSTD_NDJSON,
                first_record: inputs[batch_out.first_input].record,
                landed: true,
            });
        }
        let mut rejects = Rejects::default();
        for rejected in output.rejects {
            let input = &mut inputs[rejected.input];
            // The payload as it arrived: the gzip data rather than what it expanded to.
            let decoded = std::mem::take(&mut payloads[rejected.input]);
            rejects.push(Reject {
                record: input.record,
                sub_sequence: input.sub_sequence,
                partition_key: input.partition_key.clone(),
                step: rejected.rejection.step_label(),
                reason: rejected.rejection.error.to_string(),
                payload: input.arrived.take().unwrap_or(decoded),
            });
        }
        drop(payloads);
        rejects.merge(decode_rejects);
        if let Some(first_reject) = rejects.first_record {
            let mut lines: Vec<u8> =
                rejects.listed.iter().flat_map(|r| reject_line(r, &records[r.record], &shard)).collect();
            let omitted = rejects.total - rejects.listed.len() as u64;
            if omitted > 0 {
                lines.extend(json_line(&SummaryLine {
                    reason: format!("{omitted} more rejects not listed (at most {LISTED_REJECTS} per batch)"),
                    step: "summary",
                    omitted,
                    omitted_by_step: &rejects.omitted_by_step(),
                }));
            }
            planned.push(Planned {
                key: layout.rejects_key(arrival, &batch),
                body: Bytes::from(lines),
                content_type: content_type::NDJSON,
                first_record: first_reject,
                landed: false,
            });
        }

        let mut metrics = BatchMetrics {
            stage: self.settings.stage.clone(),
            records_in: records.len() as u64,
            counts,
            ingest_lag_ms: (now.as_millisecond() - oldest.as_millisecond()).max(0),
            ..BatchMetrics::default()
        };
        let mut written = Vec::new();
        let mut error = None;
        let mut response = KinesisEventResponse::default();
        for (position, object) in planned.iter().enumerate() {
            match self.store.put(&self.settings.bucket, &object.key, object.body.clone(), object.content_type).await {
                Ok(()) => {
                    metrics.objects_written += 1;
                    if object.landed {
                        metrics.bytes_landed += object.body.len() as u64;
                    }
                    written.push(object.key.clone());
                }
                Err(e) => {
                    let retry_from =
                        planned[position..].iter().map(|o| o.first_record).min().expect("the failed object is there");
                    let sequence = &records[retry_from].kinesis.sequence_number;
                    tracing::error!(error = %e, transient = e.is_transient(), retry_from = %sequence, "landing stopped; Lambda retries from the first record not stored");
                    response.add_failure(sequence.clone());
                    error = Some(e);
                    break;
                }
            }
        }
        for r in rejects.listed.iter().take(LOGGED_REJECTS) {
            let shown = String::from_utf8_lossy(&r.payload[..r.payload.len().min(LOGGED_PAYLOAD_BYTES)]).into_owned();
            let record = &records[r.record].kinesis;
            tracing::warn!(step = %r.step, reason = %r.reason, shard_id = %shard, sequence_number = %record.sequence_number, sub_sequence_number = ?r.sub_sequence, payload = %shown, "record rejected");
        }
        let unlogged = rejects.total.saturating_sub(LOGGED_REJECTS as u64);
        if unlogged > 0 {
            tracing::warn!(shard_id = %shard, unlogged, rejected = rejects.total, by_step = ?rejects.by_step, "more records rejected than are logged one by one (all are counted)");
        }
        tracing::info!(shard_id = %shard, first_sequence = %first_sequence, last_sequence = %last_sequence, counts = %metrics.counts, objects_written = metrics.objects_written, "batch done");
        BatchReport { response, metrics, written, error }
    }
}

fn json_line(value: &impl Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).expect("plain structs serialize");
    line.push(b'\n');
    line
}

fn raw_line(record: &StreamRecord, shard: &str) -> Vec<u8> {
    json_line(&RawLine {
        shard_id: shard,
        sequence_number: &record.kinesis.sequence_number,
        partition_key: &record.kinesis.partition_key,
        arrival_time: record.kinesis.approximate_arrival_timestamp.0.to_string(),
        payload_base64: &record.kinesis.data,
    })
}

/// A name for a batch none of whose records has a usable envelope: the MD5 of its `eventID`s and sequence
/// numbers, in hex (digits and a-f only).
fn envelope_digest(records: &[StreamRecord]) -> String {
    use md5::{Digest, Md5};
    let mut md5 = Md5::new();
    for r in records {
        md5.update(r.event_id.as_bytes());
        md5.update([0]);
        md5.update(r.kinesis.sequence_number.as_bytes());
        md5.update([0]);
    }
    md5.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn reject_line(reject: &Reject, record: &StreamRecord, shard: &str) -> Vec<u8> {
    json_line(&RejectLine {
        reason: &reject.reason,
        step: &reject.step,
        shard_id: shard,
        sequence_number: &record.kinesis.sequence_number,
        sub_sequence_number: reject.sub_sequence,
        partition_key: reject.partition_key.as_deref().unwrap_or(&record.kinesis.partition_key),
        arrival_time: record.kinesis.approximate_arrival_timestamp.0.to_string(),
        payload_base64: STANDARD.encode(&reject.payload),
    })
}
