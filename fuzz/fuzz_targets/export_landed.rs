//! Bytes as a landed object (gzip-compressed first when the first byte is odd) → `Exporter::export_object`
//! over an in-memory store: no panic, no error (the store cannot fail), and the counts add up: every line read
//! is a `sales_lines` row, a reject or a dropped duplicate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salesflow_fuzz::{block_on, exporter, now};
use salesflow_store::{Bytes, ObjectStore};
use std::io::Write;

const BUCKET: &str = "salesflow-data";
const KEY: &str = "landed/dt=2026-11-23/hour=08/shardId-000000000001-1-2-0.ndjson.gz";

fuzz_target!(|data: &[u8]| {
    let Some((&flag, body)) = data.split_first() else { return };
    let body = if flag & 1 == 1 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body).expect("in memory");
        gz.finish().expect("in memory")
    } else {
        body.to_vec()
    };
    let exporter = exporter();
    block_on(async {
        exporter.store().put(BUCKET, KEY, Bytes::from(body), "application/gzip").await.expect("in memory");
        let summary = exporter.export_object(BUCKET, KEY, None, now()).await.expect("the store cannot fail");
        let summary = summary.expect("a landed key");
        match summary.status {
            "exported" => {
                assert_eq!(summary.written.len(), 2, "{summary:?}");
                let rows = summary.written[0].1;
                assert_eq!(
                    rows + summary.records_rejected + summary.duplicates_dropped,
                    summary.records_read,
                    "{summary:?}"
                );
            }
            "unreadable" => {}
            other => panic!("status {other}: {summary:?}"),
        }
    });
});
