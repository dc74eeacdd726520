//! Throughput and memory of the handler on a Lambda-sized batch (BENCHMARKS.md, "Ingest handler").
//!
//! `cargo run --release -p salesflow-ingest --example batch_bench -- write receipts|small FILE` writes a ~6 MB
//! Kinesis event: `receipts` = realistic ~3.9 KB receipts, `small` = 10,000 one-line receipts.
//! `/usr/bin/time -v cargo run ... -- run FILE [ROUNDS]` reads it, deserializes it as the runtime would, and
//! runs the handler against an in-memory store, printing records/s and MB/s per round; peak RSS is time's.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use salesflow_core::defaults;
use salesflow_core::generate::{Generator, spread_times};
use salesflow_ingest::{Ingest, StreamEvent, StreamRecord};
use salesflow_store::Settings;
use salesflow_store::testing::MemoryStore;
use serde_json::Value;

/// The function's allocator, so peak memory matches the Lambda binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lambda's synchronous invocation payload limit.
const EVENT_LIMIT: usize = 6 * 1024 * 1024;

fn write(shape: &str, file: &str) {
    let start: Timestamp = "2026-11-23T07:00:00Z".parse().unwrap();
    let mut generator = Generator::new(42, 10_000);
    let times = spread_times(42, start, jiff::SignedDuration::from_hours(13), 10_000);
    let mut records = Vec::new();
    let mut size = 64;
    for (i, at) in times.into_iter().enumerate() {
        let mut receipt = generator.receipt_at(at);
        if shape == "small" {
            let line = receipt["lines"][0].clone();
            receipt["lines"] = Value::Array(vec![line]);
        }
        let data = STANDARD.encode(serde_json::to_vec(&receipt).unwrap());
        let sequence = format!("4965619345540281144014847843726540810777649806622{:07}", i);
        let record = StreamRecord::new(
            "shardId-000000000001",
            &sequence,
            "pk",
            Timestamp::from_second(1_795_424_400 + i as i64).unwrap(),
            data,
        );
        let record_size = serde_json::to_vec(&record).unwrap().len() + 1;
        if size + record_size > EVENT_LIMIT || records.len() == 10_000 {
            break;
        }
        size += record_size;
        records.push(record);
    }
    let bytes = serde_json::to_vec(&StreamEvent { records }).unwrap();
    std::fs::write(file, &bytes).unwrap();
    eprintln!("{file}: {} bytes", bytes.len());
}

fn run(file: &str, rounds: usize) {
    let bytes = std::fs::read(file).unwrap();
    let ingest =
        Ingest::new(MemoryStore::new(), Settings::from_vars(&|_: &str| None).unwrap(), defaults::sales_pipeline());
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for round in 0..rounds {
        let started = Instant::now();
        let event: StreamEvent = serde_json::from_slice(&bytes).unwrap();
        let records = event.records.len();
        let report = runtime.block_on(ingest.process(event, Timestamp::now()));
        let seconds = started.elapsed().as_secs_f64();
        let m = &report.metrics;
        println!(
            "round {round}: {records} records, {} lines landed in {} objects ({} KB compressed), {} rejected: {:.0} ms, {:.0} records/s, {:.1} MB/s of event",
            report.metrics.counts.outputs,
            m.objects_written,
            m.bytes_landed / 1024,
            m.counts.rejected,
            seconds * 1000.0,
            records as f64 / seconds,
            bytes.len() as f64 / seconds / 1e6
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["write", shape, file] => write(shape, file),
        ["run", file] => run(file, 5),
        ["run", file, rounds] => run(file, rounds.parse().unwrap()),
        _ => eprintln!("usage: batch_bench write receipts|small FILE | run FILE [ROUNDS]"),
    }
}
