//! Per-step throughput (bytes of receipt JSON per second) on generated ~3 KB receipts. Each step is measured
//! on its own input (already parsed records for the steps, JSON text for parsing and whole pipelines), with
//! setup kept out of the timing.
//! Run: `cargo bench -p salesflow-core --bench pipeline`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use salesflow_core::defaults::{EMBEDDED_FILES, sales_pipeline};
use salesflow_core::generate::Generator;
use salesflow_core::{Outcome, Pipeline, PipelineConfig};
use serde_json::Value;

const RECEIPTS: usize = 200;

fn receipts() -> Vec<Vec<u8>> {
    let mut g = Generator::new(1, 10_000);
    let at: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
    (0..RECEIPTS).map(|_| serde_json::to_vec(&g.receipt_at(at)).unwrap()).collect()
}

fn pipeline(yaml: &str) -> Pipeline {
    PipelineConfig::parse(yaml).unwrap().compile(&EMBEDDED_FILES).unwrap()
}

/// Records as they reach a step: the outputs of `before` applied to every receipt.
fn records_after(before: &Pipeline, input: &[Vec<u8>]) -> Vec<Value> {
    input
        .iter()
        .flat_map(|r| match before.apply_json(r) {
            Outcome::Emitted(records) => records,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn steps(c: &mut Criterion) {
    let input = receipts();
    let bytes: u64 = input.iter().map(|r| r.len() as u64).sum();
    let mut group = c.benchmark_group("salesflow::steps");
    group.throughput(Throughput::Bytes(bytes));

    group.bench_function("parse", |b| {
        b.iter(|| input.iter().map(|r| serde_json::from_slice::<Value>(r).unwrap()).collect::<Vec<_>>())
    });

    let parsed: Vec<Value> = input.iter().map(|r| serde_json::from_slice(r).unwrap()).collect();
    let split_lines = "pipeline:\n  - splitter: {path: \"$.lines[*]\", carry: [receipt_id, store_id, emitted_at, loyalty_card, currency], index_field: line_no}\n";
    let cases: [(&str, &str, Option<&str>); 6] = [
        ("validate", "pipeline:\n  - validate: {}\n", None),
        ("filter_path", "pipeline:\n  - filter: {path: \"$.lines[?@.unit_price < 100]\"}\n", None),
        ("splitter_whole_array", split_lines, None),
        (
            "splitter_filtered_path",
            "pipeline:\n  - splitter: {path: \"$.lines[?@.unit_price < 100]\", carry: [receipt_id]}\n",
            None,
        ),
        ("filter_where_on_lines", "pipeline:\n  - filter: {where: \"@.unit_price < 100\"}\n", Some(split_lines)),
        (
            "map_sales",
            "pipeline:\n  - map:\n      - set: {field: line_total, expr: \"quantity * unit_price - coalesce(discount, 0)\"}\n      - time_parts: {field: emitted_at, time_zone: Europe/Paris}\n      - lookup: {table: stores.csv, key: store_id, fields: [city, region, latitude, longitude, manager]}\n",
            Some(split_lines),
        ),
    ];
    for (name, yaml, before) in cases {
        let step = pipeline(yaml);
        let records = match before {
            Some(b) => records_after(&pipeline(b), &input),
            None => parsed.clone(),
        };
        group.bench_function(name, |b| {
            b.iter_batched(
                || records.clone(),
                |records| records.into_iter().for_each(|r| drop(black_box(step.apply(r)))),
                BatchSize::LargeInput,
            )
        });
    }

    let combiner = pipeline("pipeline:\n  - combiner: {time_field: emitted_at}\n");
    let lines = records_after(&pipeline(split_lines), &input);
    let line_payloads: Vec<Vec<u8>> = lines.iter().map(|l| serde_json::to_vec(l).unwrap()).collect();
    group
        .bench_function("combiner", |b| b.iter(|| combiner.run(line_payloads.iter().map(Vec::as_slice)).batches.len()));

    let sales = sales_pipeline();
    group.bench_function("sales_pipeline_end_to_end", |b| {
        b.iter(|| sales.run(input.iter().map(Vec::as_slice)).batches.len())
    });
    let bench = pipeline(include_str!("../../pipelines/bench-split-filter.yaml"));
    group.bench_function("split_filter_end_to_end", |b| {
        b.iter(|| input.iter().for_each(|r| drop(black_box(bench.apply_json(r)))))
    });
    // The same job as `salesflow transform` runs it: borrowed records, NDJSON written.
    let mut out = Vec::with_capacity(bytes as usize * 2);
    group.bench_function("split_filter_write_ndjson", |b| {
        b.iter(|| {
            out.clear();
            input.iter().for_each(|r| drop(black_box(bench.write_ndjson(r, &mut out))));
        })
    });
    group.finish();
}

criterion_group!(benches, steps);
criterion_main!(benches);
