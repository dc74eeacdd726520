//! Helpers shared by the ingest tests: building events, running the handler on a store, reading objects back.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use salesflow_core::defaults;
use salesflow_ingest::{BatchReport, Ingest, StreamEvent, StreamRecord};
use salesflow_store::testing::MemoryStore;
use salesflow_store::{ObjectStore, Settings};
use serde_json::Value;

pub const SHARD: &str = "shardId-000000000003";
pub const BUCKET: &str = "salesflow-data";

/// The default settings (bucket `salesflow-data`, prefixes `raw/`, `landed/`, `rejects/`).
pub fn settings() -> Settings {
    Settings::from_vars(&|_: &str| None).unwrap()
}

pub fn ingest<S: ObjectStore>(store: S) -> Ingest<S> {
    Ingest::new(store, settings(), defaults::sales_pipeline())
}

/// A 56-digit sequence number, increasing with `i`.
pub fn sequence(i: usize) -> String {
    format!("4965619345540281144014847843726540810777649806622770{:04}", 1000 + i)
}

pub fn arrival(i: usize) -> Timestamp {
    Timestamp::from_millisecond(1_795_424_400_000 + i as i64 * 250).unwrap()
}

/// An event of one record per payload (raw bytes, base64-encoded here).
pub fn event(payloads: &[Vec<u8>]) -> StreamEvent {
    StreamEvent { records: payloads.iter().enumerate().map(|(i, p)| record(i, STANDARD.encode(p))).collect() }
}

pub fn record(i: usize, data_base64: String) -> StreamRecord {
    StreamRecord::new(SHARD, &sequence(i), &format!("pk-{i}"), arrival(i), data_base64)
}

pub fn now() -> Timestamp {
    "2026-11-23T09:05:00Z".parse().unwrap()
}

pub async fn run<S: ObjectStore>(ingest: &Ingest<S>, event: &StreamEvent) -> BatchReport {
    ingest.process(event.clone(), now()).await
}

/// The content of a `raw/` or `landed/` object, which must be zstd.
pub fn unzstd(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(&bytes[..4], &[0x28, 0xB5, 0x2F, 0xFD], "not zstd");
    salesflow_store::codec::decompress(bytes).unwrap()
}

pub fn ndjson(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "NDJSON ends with a newline");
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Every object of the bucket, gzip ones decompressed, parsed as NDJSON, by key.
pub fn contents(store: &MemoryStore) -> BTreeMap<String, Vec<Value>> {
    store
        .objects(BUCKET)
        .into_iter()
        .map(|(key, body)| {
            let lines = if key.ends_with(".zst") { ndjson(&unzstd(&body)) } else { ndjson(&body) };
            (key, lines)
        })
        .collect()
}

/// The landed lines, `(receipt_id, line_no)` of each, across every landed object.
pub fn landed_line_ids(contents: &BTreeMap<String, Vec<Value>>) -> Vec<(String, u64)> {
    contents
        .iter()
        .filter(|(k, _)| k.starts_with("landed/"))
        .flat_map(|(_, lines)| {
            lines.iter().map(|l| (l["receipt_id"].as_str().unwrap().to_string(), l["line_no"].as_u64().unwrap()))
        })
        .collect()
}

pub fn reject_lines(contents: &BTreeMap<String, Vec<Value>>) -> Vec<Value> {
    contents.iter().filter(|(k, _)| k.starts_with("rejects/")).flat_map(|(_, lines)| lines.clone()).collect()
}

pub fn failures(report: &BatchReport) -> Vec<String> {
    report
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().expect("never an empty itemIdentifier"))
        .collect()
}

/// Realistic receipts (JSON bytes) from the core's generator, emitted over `hours` hours, in shuffled order when
/// `shuffle` so event hours interleave across the batch.
pub fn receipts(seed: u64, n: usize, hours: i64, shuffle: bool) -> Vec<Vec<u8>> {
    let start: Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
    let times = salesflow_core::generate::spread_times(seed, start, jiff::SignedDuration::from_hours(hours), n);
    let mut generator = salesflow_core::generate::Generator::new(seed, 10_000);
    let mut out: Vec<Vec<u8>> =
        times.into_iter().map(|t| serde_json::to_vec(&generator.receipt_at(t)).unwrap()).collect();
    if shuffle {
        // A fixed interleaving: odd positions reversed.
        let odd: Vec<Vec<u8>> = out.iter().skip(1).step_by(2).cloned().collect();
        for (slot, value) in out.iter_mut().skip(1).step_by(2).zip(odd.into_iter().rev()) {
            *slot = value;
        }
    }
    out
}
