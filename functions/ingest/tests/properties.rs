//! For any batch — realistic receipts, filtered training receipts, invalid receipts, garbage, gzip and KPL
//! wrapping — every user record is accounted for exactly once and landed lines match the pipeline's outputs.

mod common;

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use proptest::prelude::*;
use salesflow_ingest::StreamEvent;
use salesflow_store::testing::MemoryStore;

#[derive(Debug, Clone)]
enum Item {
    Receipt { training: bool, gzip: bool },
    Invalid,
    Garbage(Vec<u8>),
    BadBase64,
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        6 => (any::<bool>(), any::<bool>()).prop_map(|(t, g)| Item::Receipt { training: t, gzip: g }),
        1 => Just(Item::Invalid),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Item::Garbage),
        1 => Just(Item::BadBase64),
    ]
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn build(seed: u64, items: &[Item]) -> StreamEvent {
    let receipts = receipts(seed, items.len(), 4, true);
    let records = items
        .iter()
        .zip(receipts)
        .enumerate()
        .map(|(i, (item, receipt))| {
            let data = match item {
                Item::Receipt { training, gzip: zip } => {
                    let mut v: serde_json::Value = serde_json::from_slice(&receipt).unwrap();
                    if *training {
                        v["store_id"] = "S00000".into();
                    }
                    let bytes = serde_json::to_vec(&v).unwrap();
                    STANDARD.encode(if *zip { gzip(&bytes) } else { bytes })
                }
                Item::Invalid => STANDARD.encode(br#"{"receipt_id":"x","lines":[{"quantity":"abc"}]}"#),
                Item::Garbage(bytes) => STANDARD.encode(bytes),
                Item::BadBase64 => "***".into(),
            };
            record(i, data)
        })
        .collect();
    StreamEvent { records }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_record_is_accounted_for_and_landed_lines_match_outputs(seed in 0u64..1000, items in prop::collection::vec(item(), 0..24)) {
        let event = build(seed, &items);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let ingest = ingest(MemoryStore::new());
        let report = runtime.block_on(run(&ingest, &event));
        let m = &report.metrics;
        prop_assert!(report.response.batch_item_failures.is_empty());
        prop_assert_eq!(m.records_in, items.len() as u64);
        prop_assert_eq!(m.counts.records_in, m.counts.emitted + m.counts.filtered + m.counts.rejected);
        prop_assert!(report.metrics.counts.balanced());
        let contents = contents(ingest.store());
        prop_assert_eq!(landed_line_ids(&contents).len() as u64, report.metrics.counts.outputs);
        prop_assert_eq!(reject_lines(&contents).len() as u64, m.counts.rejected);
        let receipts = items.iter().filter(|i| matches!(i, Item::Receipt { training: false, .. })).count() as u64;
        prop_assert_eq!(m.counts.emitted, receipts);
        let training = items.iter().filter(|i| matches!(i, Item::Receipt { training: true, .. })).count() as u64;
        prop_assert_eq!(m.counts.filtered, training);
    }
}
