//! Every sample event in `events/kinesis-*.json` goes through the handler; each must have an expectation here
//! (a new file without one fails the test). Assertions are on keys and decoded contents, not only on success.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use salesflow_ingest::StreamEvent;
use salesflow_store::testing::MemoryStore;
use serde_json::Value;

struct Expected {
    records_in: u64,
    user_records: u64,
    emitted: u64,
    filtered: u64,
    /// `(UTC partition, receipt ids in order)` per landed object, in key order.
    landed: &'static [(&'static str, &'static [&'static str])],
    /// `(record index, sub-sequence, step, reason fragment)` per reject line, in order.
    rejects: &'static [(usize, Option<u64>, &'static str, &'static str)],
}

fn expectations() -> BTreeMap<&'static str, Expected> {
    BTreeMap::from([
        (
            "kinesis-single.json",
            Expected {
                records_in: 1,
                user_records: 1,
                emitted: 1,
                filtered: 0,
                landed: &[("dt=2026-11-23/hour=07", &["S09871-0f694c5b18b8dd6e"])],
                rejects: &[],
            },
        ),
        (
            "kinesis-mixed.json",
            Expected {
                records_in: 5,
                user_records: 5,
                emitted: 4,
                filtered: 1,
                landed: &[
                    ("dt=2026-11-23/hour=07", &["S04003-a76027a6324ec559", "S03192-66267d2d0323eb0f"]),
                    ("dt=2026-11-23/hour=08", &["S09380-2a401af51cc57e7c"]),
                    ("dt=2026-11-23/hour=09", &["S02477-653de6d05a26f55e"]),
                ],
                rejects: &[],
            },
        ),
        (
            "kinesis-kpl.json",
            Expected {
                records_in: 2,
                user_records: 4,
                emitted: 4,
                filtered: 0,
                landed: &[
                    ("dt=2026-11-23/hour=07", &["S02048-a5459f875b5f62c3"]),
                    ("dt=2026-11-23/hour=08", &["S00875-079c48624a6d94fe", "S03745-583d9eb99427c791"]),
                    ("dt=2026-11-23/hour=09", &["S08931-b4963ac86e1111cf"]),
                ],
                rejects: &[],
            },
        ),
        (
            "kinesis-gzip.json",
            Expected {
                records_in: 1,
                user_records: 1,
                emitted: 1,
                filtered: 0,
                landed: &[("dt=2026-11-23/hour=09", &["S08515-fc1b7bb588b0afd2"])],
                rejects: &[],
            },
        ),
        (
            "kinesis-bad-records.json",
            Expected {
                records_in: 6,
                user_records: 6,
                emitted: 2,
                filtered: 0,
                landed: &[
                    ("dt=2026-11-23/hour=07", &["S03192-66267d2d0323eb0f"]),
                    ("dt=2026-11-23/hour=08", &["S05584-7e6eb33554f42cd3"]),
                ],
                rejects: &[
                    (1, None, "decode", "invalid base64"),
                    (2, None, "input", "invalid JSON"),
                    (3, None, "pipeline[0].validate", "store_id"),
                    (4, None, "decode", "MD5 mismatch"),
                ],
            },
        ),
    ])
}

fn sample_events() -> Vec<(String, StreamEvent)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("kinesis-") && name.ends_with(".json"))
        .map(|name| {
            let event = serde_json::from_slice(&std::fs::read(dir.join(&name)).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, event)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[tokio::test]
async fn every_sample_event_lands_the_expected_objects() {
    let expectations = expectations();
    let samples = sample_events();
    assert_eq!(
        samples.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        expectations.keys().copied().collect::<Vec<_>>()
    );
    for (name, event) in samples {
        let expected = &expectations[name.as_str()];
        let ingest = ingest(MemoryStore::new());
        let report = run(&ingest, &event).await;
        assert!(report.response.batch_item_failures.is_empty(), "{name}: poison never fails a batch");
        let m = &report.metrics;
        assert_eq!(
            (m.records_in, m.counts.records_in, m.counts.emitted, m.counts.filtered, m.counts.rejected),
            (
                expected.records_in,
                expected.user_records,
                expected.emitted,
                expected.filtered,
                expected.rejects.len() as u64
            ),
            "{name}"
        );
        assert_eq!(m.counts.records_in, m.counts.emitted + m.counts.filtered + m.counts.rejected, "{name}");

        let records = &event.records;
        let stem = format!(
            "{}-{}-{}",
            records[0].shard_id(),
            records[0].kinesis.sequence_number,
            records.last().unwrap().kinesis.sequence_number
        );
        let contents = contents(ingest.store());

        // The raw copy: one line per Kinesis record, data exactly as it arrived.
        let raw = &contents[&format!("raw/dt=2026-11-23/hour=09/{stem}.ndjson.zst")];
        assert_eq!(raw.len(), records.len(), "{name}");
        for (line, record) in raw.iter().zip(records) {
            assert_eq!(line["payload_base64"], record.kinesis.data.as_str(), "{name}");
            assert_eq!(line["sequence_number"], record.kinesis.sequence_number.as_str());
        }

        // Landed objects: keys by event hour, lines per receipt line, in input order.
        let landed: Vec<(&String, &Vec<Value>)> = contents.iter().filter(|(k, _)| k.starts_with("landed/")).collect();
        let expected_keys: Vec<String> =
            expected.landed.iter().map(|(hour, _)| format!("landed/{hour}/{stem}-0.ndjson.zst")).collect();
        assert_eq!(landed.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>(), expected_keys, "{name}");
        let mut lines_landed = 0;
        for ((key, lines), (hour, receipt_ids)) in landed.iter().zip(expected.landed) {
            let mut seen: Vec<&str> = lines.iter().map(|l| l["receipt_id"].as_str().unwrap()).collect();
            seen.dedup();
            assert_eq!(&seen, receipt_ids, "{name} {key}");
            for line in lines.iter() {
                let emitted_at: jiff::Timestamp = line["emitted_at"].as_str().unwrap().parse().unwrap();
                let utc = emitted_at.strftime("dt=%Y-%m-%d/hour=%H").to_string();
                assert_eq!(&utc, hour, "{name}: a line lands in its event hour");
                assert!(
                    line["line_total"].is_number() && line["city"].is_string() && line.get("promotion_id").is_none(),
                    "{name}: {line}"
                );
            }
            lines_landed += lines.len() as u64;
        }
        assert_eq!(lines_landed, report.metrics.counts.outputs, "{name}: landed lines = pipeline outputs");

        // Rejects: one line per rejected record, with what is needed to fix and replay it.
        let rejects = reject_lines(&contents);
        assert_eq!(rejects.len(), expected.rejects.len(), "{name}");
        if !rejects.is_empty() {
            assert!(contents.contains_key(&format!("rejects/dt=2026-11-23/hour=09/{stem}.ndjson")), "{name}");
        }
        for (line, (index, sub, step, reason)) in rejects.iter().zip(expected.rejects) {
            let record = &records[*index];
            assert_eq!(line["step"], *step, "{name}: {line}");
            assert!(line["reason"].as_str().unwrap().contains(reason), "{name}: {line}");
            assert_eq!(line["sequence_number"], record.kinesis.sequence_number.as_str());
            assert_eq!(line["shard_id"], "shardId-000000000000");
            assert_eq!(line.get("sub_sequence_number").and_then(Value::as_u64), *sub);
            assert_eq!(line["arrival_time"], record.kinesis.approximate_arrival_timestamp.0.to_string().as_str());
            let payload = STANDARD.decode(line["payload_base64"].as_str().unwrap()).unwrap();
            if *step == "decode" && reason.contains("base64") {
                assert_eq!(payload, record.kinesis.data.as_bytes(), "the received text is kept");
            } else {
                assert_eq!(STANDARD.encode(&payload), record.kinesis.data, "the payload is kept byte for byte");
            }
        }
    }
}

#[tokio::test]
async fn a_redelivered_sample_rewrites_identical_objects() {
    for (name, event) in sample_events() {
        let ingest = ingest(MemoryStore::new());
        let first = run(&ingest, &event).await;
        let before = ingest.store().objects(BUCKET);
        let again = run(&ingest, &event).await;
        assert_eq!(first.written, again.written, "{name}: same keys");
        assert_eq!(ingest.store().objects(BUCKET), before, "{name}: same bytes, no new object");
    }
}
