//! Issue 12, the ingest as an attacker would try it: malformed envelopes, an empty KPL aggregate, gzip and KPL
//! amplification. Every Kinesis record still ends landed, filtered or rejected, and the counts prove it.

mod common;

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use salesflow_ingest::decode::{BATCH_USER_RECORDS, MAX_DECOMPRESSED};
use salesflow_ingest::handler::LISTED_REJECTS;
use salesflow_ingest::kpl::{self, UserRecord};
use salesflow_ingest::{StreamEvent, StreamRecord};
use salesflow_store::testing::MemoryStore;
use serde_json::Value;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Spaces then `{}`: valid JSON once decompressed, rejected by the pipeline's validate step.
fn spaces_then_braces(spaces: usize) -> Vec<u8> {
    let mut v = vec![b' '; spaces];
    v.extend_from_slice(b"{}");
    v
}

/// Only characters a key of ours may hold: the export reads every landed key back, a local store refuses `..`.
fn is_safe_key(key: &str) -> bool {
    key.bytes().all(|b| b.is_ascii_alphanumeric() || b"/=._-".contains(&b)) && !key.contains("..")
}

/// Issue 12: an `eventID`/`sequenceNumber` holding `/` landed under a key the export skips; a shard id such as
/// `../../x` made the store refuse and the batch fail forever. Those records are now rejected (step
/// `envelope`), the others land under keys made of the well-formed ones.
#[tokio::test]
async fn malformed_envelopes_are_rejected_and_never_make_keys() {
    let receipts = receipts(5, 3, 1, false);
    let mut event = event(&receipts);
    event.records[1].kinesis.sequence_number = "123/../../x".into();
    event.records[1].event_id = format!("{SHARD}:123/../../x");
    let ingest = ingest(MemoryStore::default());
    let report = run(&ingest, &event).await;
    assert!(failures(&report).is_empty());
    let c = &report.metrics.counts;
    assert_eq!((c.records_in, c.emitted, c.rejected), (3, 2, 1));
    assert_eq!(c.rejected_by.get("envelope"), Some(&1));
    assert!(report.written.iter().all(|k| is_safe_key(k)), "{:?}", report.written);
    let layout = &ingest.settings().layout;
    for key in report.written.iter().filter(|k| k.starts_with("landed/")) {
        assert!(layout.parse_landed_key(key).is_some(), "{key} is readable by the export");
    }
    let rejects = reject_lines(&contents(ingest.store()));
    assert_eq!(rejects.len(), 1);
    assert!(rejects[0]["reason"].as_str().unwrap().starts_with("malformed envelope: sequenceNumber \"123/../../x\""));
    assert_eq!(rejects[0]["payload_base64"], event.records[1].kinesis.data.as_str(), "kept as it arrived");

    // A batch none of whose records has a usable envelope still gets an outcome per record, under safe keys.
    let mut bad = event.clone();
    for (i, r) in bad.records.iter_mut().enumerate() {
        r.event_id = match i {
            0 => format!("../../x:{}", r.kinesis.sequence_number),
            1 => format!("shardId-00000000000\0:{}", r.kinesis.sequence_number),
            _ => format!("{}:{}", "s".repeat(300), r.kinesis.sequence_number),
        };
    }
    let ingest = common::ingest(MemoryStore::default());
    let report = run(&ingest, &bad).await;
    assert!(failures(&report).is_empty());
    assert_eq!((report.metrics.counts.records_in, report.metrics.counts.rejected), (3, 3));
    assert!(report.written.iter().all(|k| is_safe_key(k) && k.contains("/unknown-shard-0-")), "{:?}", report.written);
    assert_eq!(run(&ingest, &bad).await.written, report.written, "the same keys on redelivery");

    // A record of another shard in the batch is rejected too.
    let mut mixed = event.clone();
    mixed.records[1] = StreamRecord::new("shardId-000000000009", &sequence(1), "pk", arrival(1), STANDARD.encode("{}"));
    let report = run(&common::ingest(MemoryStore::default()), &mixed).await;
    assert_eq!(report.metrics.counts.rejected_by.get("envelope"), Some(&1));
}

/// Issue 12: an empty KPL aggregate gave `RecordsIn 1, UserRecords 0`.
#[tokio::test]
async fn an_empty_kpl_aggregate_has_an_outcome() {
    let empty = "84mawgoGUzAwMDAxKscDlA16s7jnN+F02ZWg6A==";
    let event = StreamEvent { records: vec![record(0, empty.into())] };
    let ingest = ingest(MemoryStore::default());
    let report = run(&ingest, &event).await;
    let c = &report.metrics.counts;
    assert_eq!((report.metrics.records_in, c.records_in, c.rejected), (1, 1, 1));
    let rejects = reject_lines(&contents(ingest.store()));
    assert_eq!(rejects[0]["reason"], "empty KPL aggregate");
    assert_eq!(rejects[0]["payload_base64"], empty);
}

/// Issue 12: ten gzip records of 32 MiB of spaces and `{}` took the ingest to 1.64 GB and wrote a 447 MB rejects
/// object of the decompressed bytes. Past the per-record limit a record is `too large`; within it, past the
/// batch's budget too; a reject keeps the gzip bytes as they arrived.
#[tokio::test]
async fn gzip_amplification_is_bounded_and_rejects_keep_the_compressed_bytes() {
    let bomb = gzip(&spaces_then_braces(32 << 20));
    let fits = gzip(&spaces_then_braces(7 << 20));
    // Two bombs, then four records of 7 MiB: three fit the 24 MiB budget, the fourth does not.
    let payloads = vec![bomb.clone(), bomb.clone(), fits.clone(), fits.clone(), fits.clone(), fits.clone()];
    let event = event(&payloads);
    let ingest = ingest(MemoryStore::default());
    let report = run(&ingest, &event).await;
    let c = &report.metrics.counts;
    assert_eq!((c.records_in, c.rejected), (6, 6), "{c}");
    assert_eq!(c.rejected_by.get("decode"), Some(&3));
    let rejects = reject_lines(&contents(ingest.store()));
    let reasons: Vec<&str> = rejects.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    let too_big = format!("too large: gzip payload expands beyond {MAX_DECOMPRESSED} bytes");
    assert_eq!(reasons[..2], [too_big.as_str(), too_big.as_str()]);
    assert!(reasons[2..5].iter().all(|r| !r.starts_with("too large")), "{reasons:?}");
    assert_eq!(reasons[5], "too large: the batch's budget of 25165824 decoded bytes is spent");
    for (line, payload) in rejects.iter().zip(&payloads) {
        assert_eq!(line["payload_base64"], STANDARD.encode(payload).as_str(), "the gzip bytes as they arrived");
    }
    let rejects_object: usize =
        ingest.store().objects(BUCKET).iter().filter(|(k, _)| k.starts_with("rejects/")).map(|(_, b)| b.len()).sum();
    assert!(rejects_object < 1_000_000, "{rejects_object} bytes: not the 39 MiB decompressed");
}

/// Issue 12: four KPL aggregates of 174,752 empty user records made 699,008 rejects, each logged and listed. A
/// batch now decodes at most 100,000 user records (the rest are `too large`), lists the first 1,000 rejects and
/// counts the others in a summary line; every user record is counted.
#[tokio::test]
async fn kpl_amplification_is_bounded_and_every_user_record_counted() {
    let empty: Vec<UserRecord> =
        (0..60_000).map(|_| UserRecord { partition_key: "k".into(), data: Vec::new() }).collect();
    let aggregate = kpl::aggregate(&empty);
    let event = event(&[aggregate.clone(), aggregate]);
    let ingest = ingest(MemoryStore::default());
    let report = run(&ingest, &event).await;
    let c = &report.metrics.counts;
    assert!(c.balanced());
    assert_eq!((report.metrics.records_in, c.records_in, c.rejected), (2, 120_000, 120_000));
    assert_eq!(c.rejected_by.get("input"), Some(&BATCH_USER_RECORDS));
    assert_eq!(c.rejected_by.get("decode"), Some(&(120_000 - BATCH_USER_RECORDS)));
    let rejects = reject_lines(&contents(ingest.store()));
    assert_eq!(rejects.len(), LISTED_REJECTS + 1);
    let summary = &rejects[LISTED_REJECTS];
    assert_eq!(summary["step"], "summary");
    assert_eq!(summary["omitted"], 120_000 - LISTED_REJECTS as u64);
    assert_eq!(summary["omitted_by_step"]["decode"], 20_000);
    assert_eq!(summary["omitted_by_step"]["input"].as_u64(), Some(100_000 - LISTED_REJECTS as u64));
    let listed: Vec<(u64, u64)> = rejects[..LISTED_REJECTS]
        .iter()
        .map(|r| (r["sequence_number"].as_str().unwrap().len() as u64, r["sub_sequence_number"].as_u64().unwrap()))
        .collect();
    assert_eq!(listed.iter().map(|l| l.1).collect::<Vec<_>>(), (0..LISTED_REJECTS as u64).collect::<Vec<_>>());
    let _: Value = summary.clone();
}
