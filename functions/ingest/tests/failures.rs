//! A store that fails from the n-th write on: the response names the first record not durably stored (never an
//! empty identifier), everything before it is stored, and Lambda's retry from that record completes the batch.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use salesflow_ingest::StreamEvent;
use salesflow_store::testing::{FailingStore, MemoryStore};
use serde_json::Value;

/// 24 receipts over 5 event hours, interleaved so landed objects mix early and late records, with poison in
/// between (bad JSON, an invalid receipt, bad base64).
fn batch() -> StreamEvent {
    let mut payloads = receipts(7, 24, 5, true);
    payloads.insert(5, b"{\"receipt_id\": oops".to_vec());
    payloads.insert(11, br#"{"receipt_id":"S00001-x","store_id":"S00001","lines":[]}"#.to_vec());
    let mut event = event(&payloads);
    event.records.insert(17, record(99, "%%% not base64".into()));
    // Sequence numbers must increase along the batch.
    for (i, r) in event.records.iter_mut().enumerate() {
        *r = record(i, std::mem::take(&mut r.kinesis.data));
    }
    event
}

/// What each record must leave in the store: its landed `(receipt_id, line_no)`s and its reject lines.
fn obligations(clean: &BTreeMap<String, Vec<Value>>, event: &StreamEvent) -> Vec<(BTreeSet<(String, u64)>, usize)> {
    let receipt_of: Vec<Option<String>> = event
        .records
        .iter()
        .map(|r| {
            let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &r.kinesis.data).ok()?;
            let v: Value = serde_json::from_slice(&bytes).ok()?;
            v["receipt_id"].as_str().map(String::from)
        })
        .collect();
    let lines = landed_line_ids(clean);
    let rejects = reject_lines(clean);
    event
        .records
        .iter()
        .zip(&receipt_of)
        .map(|(r, id)| {
            let landed = lines.iter().filter(|(rid, _)| Some(rid) == id.as_ref()).cloned().collect();
            let rejected =
                rejects.iter().filter(|l| l["sequence_number"] == r.kinesis.sequence_number.as_str()).count();
            (landed, rejected)
        })
        .collect()
}

/// The first record whose obligations the store does not meet (all of them when the raw copy is missing).
fn first_not_stored(
    stored: &BTreeMap<String, Vec<Value>>,
    obligations: &[(BTreeSet<(String, u64)>, usize)],
    event: &StreamEvent,
) -> Option<usize> {
    if !stored.keys().any(|k| k.starts_with("raw/")) {
        return Some(0);
    }
    let landed: BTreeSet<(String, u64)> = landed_line_ids(stored).into_iter().collect();
    let rejects = reject_lines(stored);
    obligations.iter().zip(&event.records).position(|((lines, rejected), r)| {
        !lines.is_subset(&landed)
            || rejects.iter().filter(|l| l["sequence_number"] == r.kinesis.sequence_number.as_str()).count() < *rejected
    })
}

#[tokio::test]
async fn each_failing_write_reports_the_first_record_not_stored_and_a_retry_completes() {
    let event = batch();
    let clean_ingest = ingest(MemoryStore::new());
    let clean_report = run(&clean_ingest, &event).await;
    assert!(clean_report.response.batch_item_failures.is_empty());
    let clean = contents(clean_ingest.store());
    let writes = clean_report.written.len();
    assert!(writes >= 6, "raw, several landed hours, rejects: {:?}", clean_report.written);
    let obligations = obligations(&clean, &event);
    let expected_lines: BTreeSet<(String, u64)> = landed_line_ids(&clean).into_iter().collect();

    for n in 1..=writes {
        let ingest = ingest(FailingStore::new(MemoryStore::new(), n));
        let report = run(&ingest, &event).await;
        let failed = failures(&report);
        assert_eq!(failed.len(), 1, "write {n}: one item failure");
        assert!(report.error.as_ref().unwrap().is_transient());
        let stored = contents(&ingest.store().inner);
        let expected_index =
            first_not_stored(&stored, &obligations, &event).expect("a write failed, so something is missing");
        assert_eq!(failed[0], event.records[expected_index].kinesis.sequence_number, "write {n}");
        assert!(!failed[0].is_empty());

        // Lambda checkpoints before the failed record and redelivers from it.
        ingest.store().heal();
        let retry = StreamEvent { records: event.records[expected_index..].to_vec() };
        let retried = run(&ingest, &retry).await;
        assert!(retried.response.batch_item_failures.is_empty(), "write {n}: the retry completes");
        let after = contents(&ingest.store().inner);
        let landed = landed_line_ids(&after);
        let distinct: BTreeSet<(String, u64)> = landed.iter().cloned().collect();
        assert_eq!(distinct, expected_lines, "write {n}: nothing lost, nothing invented");
        // Lines stored before the failure that the retry lands again are exactly those of redelivered records
        // that shared an object with an earlier record; the export removes them by (receipt_id, line_no).
        let before: BTreeSet<(String, u64)> = landed_line_ids(&stored).into_iter().collect();
        let redelivered: BTreeSet<(String, u64)> =
            obligations[expected_index..].iter().flat_map(|(l, _)| l.iter().cloned()).collect();
        assert_eq!(
            landed.len() - distinct.len(),
            before.intersection(&redelivered).count(),
            "write {n}: duplicates only from the overlap"
        );
        assert_eq!(
            reject_lines(&after).iter().map(|l| l["sequence_number"].to_string()).collect::<BTreeSet<_>>().len(),
            3
        );
    }
}

#[tokio::test]
async fn a_failure_before_anything_is_stored_retries_the_same_batch_without_duplicates() {
    let event = batch();
    let clean = ingest(MemoryStore::new());
    run(&clean, &event).await;

    let ingest = ingest(FailingStore::new(MemoryStore::new(), 1));
    let report = run(&ingest, &event).await;
    assert_eq!(failures(&report), vec![event.records[0].kinesis.sequence_number.clone()]);
    assert!(ingest.store().inner.objects(BUCKET).is_empty());
    ingest.store().heal();
    let retried = run(&ingest, &event).await;
    assert!(retried.response.batch_item_failures.is_empty());
    assert_eq!(ingest.store().inner.objects(BUCKET), clean.store().objects(BUCKET), "same keys, same bytes");
}

#[tokio::test]
async fn a_failure_after_the_landed_objects_retries_only_the_rejected_records() {
    let event = batch();
    let clean = ingest(MemoryStore::new());
    let clean_report = run(&clean, &event).await;
    let writes = clean_report.written.len();
    assert!(clean_report.written.last().unwrap().starts_with("rejects/"));

    // Only the rejects object fails: every landed record is durable, the first reject is not.
    let ingest = ingest(FailingStore::new(MemoryStore::new(), writes));
    let report = run(&ingest, &event).await;
    assert_eq!(
        failures(&report),
        vec![event.records[5].kinesis.sequence_number.clone()],
        "the bad JSON record is the first reject"
    );
    assert_eq!(report.metrics.objects_written as usize, writes - 1);
}
