//! What the fuzz targets share: a runtime to drive the async handlers (the in-memory store answers at once),
//! the handlers built once over a `MemoryStore`, and sample records for pipelines and queries to run on.

use std::future::Future;
use std::sync::LazyLock;

use jiff::Timestamp;
use salesflow_core::emf::MetricsOutput;
use salesflow_export::{ExportConfig, Exporter};
use salesflow_ingest::Ingest;
use salesflow_store::Settings;
use salesflow_store::testing::MemoryStore;
use serde_json::Value;

/// The fixed `now` every target passes (the functions never read the clock themselves).
pub fn now() -> Timestamp {
    "2026-11-23T09:30:00Z".parse().expect("a valid instant")
}

/// Runs a future to completion on a current-thread runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime builds")
    });
    RUNTIME.block_on(future)
}

/// The default settings (bucket `salesflow-data`, the default layout).
pub fn settings() -> Settings {
    Settings::from_vars(&|_| None).expect("the defaults are valid")
}

/// The ingest with the embedded sample pipeline over an in-memory store, metrics off, built once (compiling
/// the pipeline reads its 10,000-row stores table: per input, it would cost more than the input itself).
pub fn ingest() -> &'static Ingest<MemoryStore> {
    static INGEST: LazyLock<Ingest<MemoryStore>> = LazyLock::new(|| {
        Ingest::new(MemoryStore::new(), settings(), salesflow_core::defaults::sales_pipeline())
            .with_metrics_output(MetricsOutput::Off)
    });
    &INGEST
}

/// Processes one batch with [`ingest`], checks it with [`check_batch`], then empties the store for the next input.
pub fn process_and_check(event: salesflow_ingest::StreamEvent, expected: Option<u64>) {
    use salesflow_store::ObjectStore;
    let ingest = ingest();
    let report = block_on(ingest.process(event, now()));
    let bucket = &ingest.settings().bucket;
    for key in &report.written {
        block_on(ingest.store().delete(bucket, key)).expect("in memory");
    }
    check_batch(ingest, &report, expected);
}

/// An exporter with the default configuration over a fresh in-memory store, metrics off.
pub fn exporter() -> Exporter<MemoryStore> {
    Exporter::new(MemoryStore::new(), ExportConfig::default()).with_metrics_output(MetricsOutput::Off)
}

/// A few receipts and landed lines of `events/`, for pipelines, expressions and queries to run on.
pub static SAMPLES: LazyLock<Vec<Value>> = LazyLock::new(|| {
    [
        r#"{"receipt_id":"S00567-4e46af81742976a0","store_id":"S00567","emitted_at":"2026-11-23T08:01:48.003+01:00","currency":"EUR","payment":{"method":"card","amount":327.89},"lines":[{"sku":"SKU-002010","name":"Croissant","category":"Bakery","quantity":1,"unit_price":1.08,"vat_rate":5.5,"promotion_id":null},{"sku":"SKU-009021","name":"Liquide vaisselle bio","category":"Household","quantity":-4,"unit_price":3.97,"discount":3.18}]}"#,
        r#"{"receipt_id":"S00001-1","line_no":1,"store_id":"S00001","emitted_at":"2026-11-23T08:01:48Z","date":"2026-11-23","hour":8,"weekday":"Monday","category":"Bakery","sku":"SKU-1","name":"Baguette","quantity":2,"unit_price":1.1,"discount":0.2,"line_total":2.0,"currency":"EUR"}"#,
        r#"{"a":[1,2,{"b":"c"}],"n":1e400,"s":"x","t":true,"z":null}"#,
        "[]",
    ]
    .iter()
    .map(|t| serde_json::from_str(t).expect("a valid sample"))
    .collect()
});

/// The invariants of one processed Kinesis batch over the in-memory store (which never fails): no
/// `batchItemFailures`, counts that balance, at least one outcome per Kinesis record (`expected` when the
/// caller knows each record's exact number of user records), and every landed object under a key the export
/// recognises as landed (else the export skips it and its records are lost).
pub fn check_batch(ingest: &Ingest<MemoryStore>, report: &salesflow_ingest::BatchReport, expected: Option<u64>) {
    assert!(report.error.is_none(), "the memory store cannot fail: {:?}", report.error);
    assert!(report.response.batch_item_failures.is_empty(), "{:?}", report.response);
    let counts = &report.metrics.counts;
    assert!(counts.balanced(), "unbalanced counts: {counts:?}");
    assert!(
        counts.records_in >= report.metrics.records_in,
        "{} Kinesis records but {} outcomes: a record has none ({counts:?})",
        report.metrics.records_in,
        counts.records_in
    );
    if let Some(n) = expected {
        assert_eq!(counts.records_in, n, "outcomes of the user records ({counts:?})");
    }
    let layout = &ingest.settings().layout;
    for key in report.written.iter().filter(|k| k.starts_with(&layout.landed)) {
        assert!(layout.parse_landed_key(key).is_some(), "landed under {key:?}, which the export skips");
    }
}

/// The same outputs through both ways of running a pipeline: [`Pipeline::apply_json`] then `to_writer`, and
/// [`Pipeline::write_ndjson`] (borrowed steps first); their outcomes must agree and the bytes be equal.
pub fn check_run_paths(pipeline: &salesflow_core::Pipeline, payload: &[u8]) {
    use salesflow_core::Outcome;
    let mut written = Vec::new();
    let borrowed = pipeline.write_ndjson(payload, &mut written);
    let mut expected = Vec::new();
    let by_value = pipeline.apply_json(payload);
    match (&by_value, &borrowed) {
        (Outcome::Emitted(records), Outcome::Emitted(n)) => {
            assert_eq!(records.len(), *n, "emitted counts differ");
            for r in records {
                serde_json::to_writer(&mut expected, r).expect("a value serializes");
                expected.push(b'\n');
            }
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&expected),
                "write_ndjson and apply_json wrote different records"
            );
        }
        (Outcome::Filtered { step: a }, Outcome::Filtered { step: b }) => assert_eq!(a, b, "filtered by"),
        (Outcome::Rejected(a), Outcome::Rejected(b)) => assert_eq!(a, b, "rejections differ"),
        (a, b) => panic!("apply_json gave {a:?}, write_ndjson {b:?}"),
    }
}
