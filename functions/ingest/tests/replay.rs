//! Issue 14: a raw copy read back ([`read_raw`]) and processed again writes every object of the original run,
//! raw copy included, with the same keys and bytes, for every sample event.

mod common;

use common::*;
use salesflow_ingest::{StreamEvent, read_raw};
use salesflow_store::testing::MemoryStore;

fn sample(name: &str) -> StreamEvent {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/").to_string() + name;
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_raw_copy_replays_into_the_same_objects() {
    for name in [
        "kinesis-single.json",
        "kinesis-mixed.json",
        "kinesis-kpl.json",
        "kinesis-gzip.json",
        "kinesis-bad-records.json",
    ] {
        let first = ingest(MemoryStore::new());
        let report = run(&first, &sample(name)).await;
        assert!(report.error.is_none(), "{name}");
        let original = first.store().objects(BUCKET);
        let raw: Vec<_> = original.iter().filter(|(k, _)| k.starts_with("raw/")).collect();
        assert_eq!(raw.len(), 1, "{name}");
        let event = read_raw(&raw[0].1).unwrap();
        let again = ingest(MemoryStore::new());
        let replayed = run(&again, &event).await;
        assert_eq!(replayed.written, report.written, "{name}");
        assert_eq!(again.store().objects(BUCKET), original, "{name}: same keys, same bytes");
        assert_eq!(replayed.metrics.counts, report.metrics.counts, "{name}");
    }
}

#[test]
fn a_corrupt_or_foreign_raw_object_is_an_error_with_its_line() {
    let err = read_raw(&[0x28, 0xb5, 0x2f, 0xfd, 0, 1, 2]).unwrap_err();
    assert!(err.to_string().starts_with("corrupt compressed data"), "{err}");
    let err = read_raw(b"{\"shard_id\":\"shardId-000000000000\"}\n").unwrap_err();
    assert!(err.to_string().starts_with("line 1: missing field"), "{err}");
}
