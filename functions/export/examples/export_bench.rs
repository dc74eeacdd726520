//! Throughput of exporting one big landed object, measured (not asserted). Two steps, so the peak memory of the
//! second is the export's alone:
//!
//! ```text
//! cargo run --release -p salesflow-export --example export_bench -- prepare /tmp/bench 50
//! /usr/bin/time -v cargo run --release -p salesflow-export --example export_bench -- run /tmp/bench
//! ```
//!
//! `prepare DIR MB` writes a gzip landed object of about MB megabytes of NDJSON (realistic lines from the
//! generator, flattened like `pipelines/sales.yaml`) into a local store at DIR; `run DIR` exports it once
//! through the handler (local store: real file reads and writes) and prints rows/s.

use std::io::Write;

use jiff::{SignedDuration, Timestamp};
use salesflow_core::generate::Generator;
use salesflow_export::{ExportConfig, Exporter, MetricsOutput};
use salesflow_store::{LocalStore, ObjectStore};

/// The tests' helpers: `flatten` writes landed records the way the sample pipeline does.
#[path = "../tests/common/mod.rs"]
mod common;

const KEY: &str = "landed/dt=2026-11-23/hour=08/shardId-000000000001-1-2-0.ndjson.gz";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, dir) = (args.get(1).map(String::as_str), args.get(2).expect("usage: prepare DIR MB | run DIR"));
    let store = LocalStore::new(dir);
    match mode {
        Some("prepare") => {
            let mb: usize = args.get(3).and_then(|m| m.parse().ok()).unwrap_or(50);
            let mut g = Generator::new(1, 10_000);
            let start: Timestamp = "2026-11-23T08:00:00Z".parse().unwrap();
            let (mut ndjson, mut lines, mut i) = (Vec::with_capacity(mb << 20), 0, 0u32);
            while ndjson.len() < mb << 20 {
                let store_no = (i % 10_000) + 1;
                let at = start + SignedDuration::from_millis(i64::from(i) * 36 % 3_600_000);
                let records = common::flatten(&g.receipt_for(store_no, at), store_no);
                ndjson.extend_from_slice(&common::ndjson(&records));
                lines += records.len();
                i += 1;
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&ndjson).unwrap();
            let gz = gz.finish().unwrap();
            println!("{lines} lines, {i} receipts, {} bytes NDJSON, {} bytes gzip", ndjson.len(), gz.len());
            store.put("salesflow-data", KEY, gz.into(), "application/gzip").await.unwrap();
        }
        Some("run") => {
            let ex = Exporter::new(store, ExportConfig::default()).with_metrics_output(MetricsOutput::Off);
            let t = std::time::Instant::now();
            let s = ex.export_object("salesflow-data", KEY, None, Timestamp::UNIX_EPOCH).await.unwrap().unwrap();
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{} records in {secs:.2} s: {:.0} rows/s; wrote {:?}",
                s.records_read,
                s.records_read as f64 / secs,
                s.written.iter().map(|w| (w.1, w.2)).collect::<Vec<_>>()
            );
        }
        _ => panic!("usage: prepare DIR MB | run DIR"),
    }
}
