//! KPL aggregates built by an encoder written here from the protobuf wire format (hand-rolled varints), not by
//! inverting our decoder: user records come out with their sub-sequence numbers and partition keys, a corrupt
//! MD5 or a bad partition-key index rejects the aggregate, and arbitrary payloads round-trip.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use md5::{Digest, Md5};
use proptest::prelude::*;
use salesflow_ingest::kpl::{self, KplError, UserRecord};
use salesflow_store::testing::MemoryStore;

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A length-delimited field (wire type 2).
fn bytes_field(tag: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(tag << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// `AggregatedRecord { partition_key_table = 1, explicit_hash_key_table = 2, records = 3 }`,
/// `Record { partition_key_index = 1, explicit_hash_key_index = 2, data = 3, tags = 4 }`.
fn aggregate(keys: &[&str], records: &[(u64, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for key in keys {
        bytes_field(1, key.as_bytes(), &mut body);
    }
    bytes_field(2, b"340282366920938463463374607431768211455", &mut body); // an explicit hash key, ignored
    for (key_index, data) in records {
        let mut record = Vec::new();
        varint(1 << 3, &mut record); // field 1, varint
        varint(*key_index, &mut record);
        varint(2 << 3, &mut record); // field 2, varint: explicit hash key index
        varint(0, &mut record);
        bytes_field(3, data, &mut record);
        let mut tag = Vec::new();
        bytes_field(1, b"origin", &mut tag);
        bytes_field(4, &tag, &mut record);
        bytes_field(3, &record, &mut body);
    }
    let mut out = vec![0xF3, 0x89, 0x9A, 0xC2];
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out
}

#[test]
fn user_records_keep_their_partition_keys() {
    let data = aggregate(&["S00001", "S00002"], &[(1, b"one"), (0, b""), (1, &[0xFF; 300])]);
    let records = kpl::deaggregate(&data).unwrap();
    assert_eq!(
        records,
        vec![
            UserRecord { partition_key: "S00002".into(), data: b"one".to_vec() },
            UserRecord { partition_key: "S00001".into(), data: vec![] },
            UserRecord { partition_key: "S00002".into(), data: vec![0xFF; 300] },
        ]
    );
}

#[test]
fn corruption_is_an_error_not_a_panic() {
    let mut data = aggregate(&["k"], &[(0, b"x")]);
    let last = data.len() - 1;
    data[last] ^= 1;
    assert_eq!(kpl::deaggregate(&data), Err(KplError::Md5Mismatch));
    let bad_index = aggregate(&["k"], &[(3, b"x")]);
    assert!(matches!(kpl::deaggregate(&bad_index), Err(KplError::PartitionKeyIndex { key_index: 3, .. })));
    // A valid MD5 over bytes that are not an AggregatedRecord.
    let mut garbage = vec![0xF3, 0x89, 0x9A, 0xC2, 0xFF, 0xFF, 0xFF];
    let digest = Md5::digest(&garbage[4..]);
    garbage.extend_from_slice(&digest);
    assert!(matches!(kpl::deaggregate(&garbage), Err(KplError::InvalidProtobuf(_))));
}

#[tokio::test]
async fn the_handler_splits_aggregates_and_rejects_bad_sub_records_individually() {
    let receipts = receipts(3, 3, 1, false);
    let data = aggregate(&["S1", "S2"], &[(0, &receipts[0]), (1, b"not json"), (0, &receipts[1])]);
    let mut corrupt = aggregate(&["S3"], &[(0, &receipts[2])]);
    corrupt[6] ^= 0x55;
    let event = salesflow_ingest::StreamEvent {
        records: vec![record(0, STANDARD.encode(&data)), record(1, STANDARD.encode(&corrupt))],
    };
    let ingest = ingest(MemoryStore::new());
    let report = run(&ingest, &event).await;
    assert!(report.response.batch_item_failures.is_empty());
    assert_eq!(
        (
            report.metrics.records_in,
            report.metrics.counts.records_in,
            report.metrics.counts.emitted,
            report.metrics.counts.rejected
        ),
        (2, 4, 2, 2)
    );
    let rejects = reject_lines(&contents(ingest.store()));
    assert_eq!(rejects.len(), 2);
    assert_eq!(rejects[0]["sub_sequence_number"], 1);
    assert_eq!(rejects[0]["partition_key"], "S2");
    assert_eq!(rejects[0]["sequence_number"], sequence(0).as_str());
    assert_eq!(STANDARD.decode(rejects[0]["payload_base64"].as_str().unwrap()).unwrap(), b"not json");
    assert!(rejects[1].get("sub_sequence_number").is_none());
    assert!(rejects[1]["reason"].as_str().unwrap().contains("MD5"));
    assert_eq!(
        STANDARD.decode(rejects[1]["payload_base64"].as_str().unwrap()).unwrap(),
        corrupt,
        "the whole aggregate is kept"
    );
}

proptest! {
    #[test]
    fn arbitrary_aggregates_round_trip(
        keys in prop::collection::vec("[A-Za-z0-9]{1,20}", 1..4),
        records in prop::collection::vec((0usize..4, prop::collection::vec(any::<u8>(), 0..200)), 0..20),
    ) {
        let records: Vec<(u64, Vec<u8>)> = records.into_iter().map(|(k, d)| ((k % keys.len()) as u64, d)).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let borrowed: Vec<(u64, &[u8])> = records.iter().map(|(k, d)| (*k, d.as_slice())).collect();
        let out = kpl::deaggregate(&aggregate(&refs, &borrowed)).unwrap();
        prop_assert_eq!(out.len(), records.len());
        for (got, (k, d)) in out.iter().zip(&records) {
            prop_assert_eq!(&got.partition_key, &keys[*k as usize]);
            prop_assert_eq!(&got.data, d);
        }
    }
}
