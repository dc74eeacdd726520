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
use salesflow_core::decimal::{decimal_from_value, decimal_to_value};
use salesflow_core::generate::{Generator, store};
use salesflow_export::{ExportConfig, Exporter, MetricsOutput};
use salesflow_store::{LocalStore, ObjectStore};
use serde_json::{Map, Value, json};

const KEY: &str = "landed/dt=2026-11-23/hour=08/shardId-000000000001-1-2-0.ndjson.gz";

fn flatten(receipt: &Value, store_no: u32, out: &mut Vec<u8>) -> usize {
    let s = store(store_no);
    let emitted: Timestamp = receipt["emitted_at"].as_str().unwrap().parse().unwrap();
    let local = jiff::tz::TimeZone::get("Europe/Paris").unwrap().to_datetime(emitted);
    let lines = receipt["lines"].as_array().unwrap();
    for (i, line) in lines.iter().enumerate() {
        let mut r = Map::new();
        for f in ["receipt_id", "store_id", "emitted_at", "loyalty_card", "currency"] {
            if let Some(v) = receipt.get(f) {
                r.insert(f.into(), v.clone());
            }
        }
        r.insert("line_no".into(), json!(i));
        for (k, v) in line.as_object().unwrap() {
            if k != "promotion_id" {
                r.insert(k.clone(), v.clone());
            }
        }
        let q = decimal_from_value(&line["quantity"]).unwrap();
        let p = decimal_from_value(&line["unit_price"]).unwrap();
        let d = line.get("discount").map(|d| decimal_from_value(d).unwrap()).unwrap_or_default();
        r.insert("line_total".into(), decimal_to_value(q * p - d));
        r.insert("date".into(), json!(local.date().to_string()));
        r.insert("hour".into(), json!(local.hour()));
        r.insert("weekday".into(), json!(format!("{:?}", local.weekday())));
        for (k, v) in [("city", json!(s.city)), ("region", json!(s.region)), ("latitude", json!(s.latitude))] {
            r.insert(k.into(), v);
        }
        r.insert("longitude".into(), json!(s.longitude));
        r.insert("manager".into(), json!(s.manager));
        serde_json::to_writer(&mut *out, &Value::Object(r)).unwrap();
        out.push(b'\n');
    }
    lines.len()
}

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
                lines += flatten(&g.receipt_for(store_no, at), store_no, &mut ndjson);
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
