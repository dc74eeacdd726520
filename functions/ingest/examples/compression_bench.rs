//! The bytes-vs-CPU trade of the objects ingest writes (BENCHMARKS.md, "Compression of raw/ and landed/").
//!
//! `cargo run --release -p salesflow-ingest --example compression_bench -- EVENT [DIR]` runs the handler on a
//! Kinesis event (see `batch_bench write`), takes the raw copy and the landed objects it wrote, and compresses
//! their text with what ingest uses ([`salesflow_store::codec`], zstd) and with gzip at levels 1, 3 and 6 with
//! the flate2 backend of the build (the workspace's is zlib-rs; `miniz_oxide` was the default before),
//! printing MB/s of input and the ratio (best of 5). With `DIR`, the texts are also written there so
//! `zstd -b1 -e6 DIR/*` can measure other zstd levels on the same bytes.

use std::io::Write;
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;
use jiff::Timestamp;
use salesflow_core::defaults;
use salesflow_ingest::{Ingest, StreamEvent};
use salesflow_store::testing::MemoryStore;
use salesflow_store::{Settings, codec};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: compression_bench EVENT [DIR]");
        std::process::exit(2);
    };
    let settings = Settings::from_vars(&|_: &str| None).expect("the default settings");
    let bucket = settings.bucket.clone();
    let ingest = Ingest::new(MemoryStore::new(), settings, defaults::sales_pipeline());
    let event: StreamEvent = serde_json::from_slice(&std::fs::read(file).expect("the event")).expect("an event");
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    runtime.block_on(ingest.process(event, Timestamp::now()));
    let (mut raw, mut landed) = (Vec::new(), Vec::new());
    for (key, body) in ingest.store().objects(&bucket) {
        let target = if key.starts_with("raw/") {
            &mut raw
        } else if key.starts_with("landed/") {
            &mut landed
        } else {
            continue;
        };
        target.extend(codec::decompress(&body).expect("a compressed object"));
    }
    for (name, text) in [("raw", &raw), ("landed", &landed)] {
        if let Some(dir) = args.get(1) {
            std::fs::write(format!("{dir}/{name}.ndjson"), text).expect("writable");
        }
        let zstd = || codec::compress([text]).len();
        report(name, text.len(), &format!("zstd -{}", codec::LEVEL), zstd);
        for level in [1, 3, 6] {
            let gzip = || {
                let mut gz = GzEncoder::new(Vec::with_capacity(text.len() / 4), Compression::new(level));
                gz.write_all(text).expect("memory");
                gz.finish().expect("memory").len()
            };
            report(name, text.len(), &format!("gzip -{level}"), gzip);
        }
    }
}

/// Runs `compress` 5 times and prints the best speed and the size it made.
fn report(name: &str, input: usize, codec: &str, compress: impl Fn() -> usize) {
    let mut best = f64::MAX;
    let mut size = 0;
    for _ in 0..5 {
        let started = Instant::now();
        size = compress();
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{name}: {:.1} MB, {codec}: {:.0} MB/s, {:.2} MB ({:.1}x)",
        input as f64 / 1e6,
        input as f64 / best / 1e6,
        size as f64 / 1e6,
        input as f64 / size as f64
    );
}
