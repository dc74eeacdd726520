//! Compaction and manifests, end to end on a store that checks every manifest after every single write and
//! delete: valid for QuickSight, every listed file present, never a merged file listed with a piece it replaced.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use jiff::Timestamp;
use rust_decimal::Decimal;
use salesflow_core::datasets::hourly_sales::{self, HourlyRow};
use salesflow_core::datasets::sales_lines::{self, SalesLine};
use salesflow_core::datasets::{CsvWriter, read_rows};
use salesflow_core::decimal::decimal_from_value;
use salesflow_core::manifest::{MAX_FILES, Manifest};
use salesflow_export::{ExportConfig, Exporter, MetricsOutput};
use salesflow_store::ObjectStore;
use serde_json::Value;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn objects(ex: &Exporter<CheckingStore>) -> BTreeMap<String, Vec<u8>> {
    ex.store().inner.objects(BUCKET).into_iter().map(|(k, v)| (k, v.to_vec())).collect()
}

fn manifest(ex: &Exporter<CheckingStore>, key: &str) -> Manifest {
    serde_json::from_slice(&objects(ex)[key]).unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// The files a manifest lists, as keys.
fn listed(m: &Manifest) -> Vec<String> {
    m.uris().map(|u| u.strip_prefix(&format!("s3://{BUCKET}/")).unwrap().to_string()).collect()
}

fn sales_lines_of(ex: &Exporter<CheckingStore>, keys: &[String]) -> Vec<SalesLine> {
    let all = objects(ex);
    keys.iter()
        .filter(|k| k.contains("/sales_lines/"))
        .flat_map(|k| {
            read_rows(&all[k][..], &sales_lines::COLUMNS)
                .unwrap()
                .map(|r| SalesLine::from_row(&r.unwrap()).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn hourly_of(ex: &Exporter<CheckingStore>, keys: &[String]) -> Vec<HourlyRow> {
    let all = objects(ex);
    keys.iter()
        .filter(|k| k.contains("/hourly_sales/"))
        .flat_map(|k| {
            read_rows(&all[k][..], &hourly_sales::COLUMNS)
                .unwrap()
                .map(|r| HourlyRow::from_row(&r.unwrap()).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn landed_key(name: &str) -> String {
    format!("landed/dt=2026-11-23/hour=08/{name}.ndjson.gz")
}

async fn export(ex: &Exporter<CheckingStore>, name: &str, records: &[Value], now: &str) {
    let key = landed_key(name);
    ex.store().inner.put(BUCKET, &key, gzip(&ndjson(records)).into(), "application/gzip").await.unwrap();
    let summary = ex.export_object(BUCKET, &key, None, at(now)).await.unwrap().unwrap();
    assert_eq!(summary.status, "exported");
}

#[tokio::test]
async fn closed_hours_are_compacted_without_ever_listing_a_file_twice() {
    let config = ExportConfig { merged_part_bytes: 40_000, ..ExportConfig::default() };
    let ex = Exporter::new(CheckingStore::default(), config).with_metrics_output(MetricsOutput::Off);
    let a = records(1, 30, "2026-11-23T08:00:00Z");
    let b = records(2, 30, "2026-11-23T08:00:00Z");
    // C repeats some of A (a redelivered, differently bisected batch) and adds its own.
    let mut c: Vec<Value> = a[5..60].to_vec();
    c.extend(records(3, 10, "2026-11-23T08:00:00Z"));
    export(&ex, "shardId-000000000000-1-9-0", &a, "2026-11-23T08:59:00Z").await;
    export(&ex, "shardId-000000000001-1-9-0", &b, "2026-11-23T08:59:30Z").await;
    export(&ex, "shardId-000000000000-1-9-1", &c, "2026-11-23T09:00:00Z").await;

    let mut distinct: BTreeMap<(String, u64), Value> = BTreeMap::new();
    for r in a.iter().chain(&b).chain(&c) {
        distinct.entry((r["receipt_id"].as_str().unwrap().into(), r["line_no"].as_u64().unwrap())).or_insert(r.clone());
    }
    let total: Decimal = distinct.values().map(|r| decimal_from_value(&r["line_total"]).unwrap()).sum();
    let daily = "manifests/sales_lines/dt=2026-11-23.json";
    let rolling = "manifests/hourly_sales/last-7-days.json";

    // Open hour (grace not over): no compaction, manifests list the pieces.
    let s = ex.run_scheduled(at("2026-11-23T09:14:00Z")).await.unwrap();
    assert!(s.hours_compacted.is_empty());
    assert_eq!(listed(&manifest(&ex, daily)).len(), 3);
    let before = sales_lines_of(&ex, &listed(&manifest(&ex, daily)));
    assert_eq!(before.len(), a.len() + b.len() + c.len(), "pieces still hold the cross-object repeats");

    // Closed: compacted. Merged parts, de-duplicated, sums preserved.
    let s = ex.run_scheduled(at("2026-11-23T09:16:00Z")).await.unwrap();
    let hour = &s.hours_compacted[0];
    assert_eq!((hour.generation, hour.inputs, hour.duplicates_dropped), (1, 3, 55));
    assert!(hour.merged.len() > 1, "parts cut at merged_part_bytes: {:?}", hour.merged);
    let files = listed(&manifest(&ex, daily));
    assert_eq!(files.len(), hour.merged.len(), "only the merged parts: {files:?}");
    let lines = sales_lines_of(&ex, &files);
    assert_eq!(lines.len(), distinct.len());
    let keys: BTreeSet<(String, u32)> = lines.iter().map(|l| (l.receipt_id.clone(), l.line_no)).collect();
    assert_eq!(keys.len(), lines.len(), "no duplicates left");
    assert_eq!(lines.iter().map(|l| l.line_total).sum::<Decimal>(), total);
    let hourly = hourly_of(&ex, &listed(&manifest(&ex, rolling)));
    assert_eq!(hourly.iter().map(|r| r.turnover).sum::<Decimal>(), total, "hourly turnover preserved");
    assert_eq!(hourly.iter().map(|r| r.lines).sum::<u64>(), distinct.len() as u64);
    let receipts: BTreeSet<(String, String)> = distinct
        .values()
        .map(|r| (r["receipt_id"].as_str().unwrap().into(), r["category"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        hourly.iter().map(|r| r.receipts).sum::<u64>(),
        receipts.len() as u64,
        "receipts recomputed, not summed"
    );
    assert!(s.files_deleted.is_empty(), "pieces outlive the compaction by the grace period");

    // A late object: it goes into a second generation with the merged files of the first.
    let d = records(4, 5, "2026-11-23T08:00:00Z");
    export(&ex, "shardId-000000000002-1-9-0", &d, "2026-11-23T09:30:00Z").await;
    let s = ex.run_scheduled(at("2026-11-23T09:31:00Z")).await.unwrap();
    assert_eq!(s.hours_compacted[0].generation, 2);
    let lines = sales_lines_of(&ex, &listed(&manifest(&ex, daily)));
    let d_total: Decimal = d.iter().map(|r| decimal_from_value(&r["line_total"]).unwrap()).sum();
    assert_eq!(lines.iter().map(|l| l.line_total).sum::<Decimal>(), total + d_total);

    // After the grace period, the replaced pieces and the first generation go; the manifests do not change.
    let manifests_before = (manifest(&ex, daily), manifest(&ex, rolling));
    let s = ex.run_scheduled(at("2026-11-23T09:47:00Z")).await.unwrap();
    assert!(s.hours_compacted.is_empty());
    assert_eq!(s.files_deleted.len(), 4 + 4 + hour.merged.len() + 1, "{:?}", s.files_deleted);
    assert_eq!((manifest(&ex, daily), manifest(&ex, rolling)), manifests_before);
    let left: Vec<String> =
        objects(&ex).into_keys().filter(|k| k.starts_with("datasets/") && !k.contains("_compactions")).collect();
    assert!(left.iter().all(|k| k.contains("/_compacted-g0002-")), "{left:?}");

    // And a redelivered event for a compacted object changes nothing visible, and goes away again.
    export(&ex, "shardId-000000000000-1-9-0", &a, "2026-11-23T10:00:00Z").await;
    let s = ex.run_scheduled(at("2026-11-23T10:01:00Z")).await.unwrap();
    assert!(s.hours_compacted.is_empty(), "its piece is already replaced");
    assert_eq!((manifest(&ex, daily), manifest(&ex, rolling)), manifests_before);
    assert_eq!(s.files_deleted.len(), 2);

    let violations = ex.store().violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(ex.store().checks.load(std::sync::atomic::Ordering::SeqCst) > 20);
}

#[tokio::test]
async fn a_crash_before_the_record_leaves_pieces_listed_and_the_next_run_finishes() {
    let ex = Exporter::new(CheckingStore::default(), ExportConfig::default()).with_metrics_output(MetricsOutput::Off);
    export(&ex, "shardId-000000000000-1-9-0", &records(1, 5, "2026-11-23T08:00:00Z"), "2026-11-23T08:59:00Z").await;
    // A merged file of an interrupted run, without its record: invisible to manifests, cleaned up later.
    let orphan = "datasets/sales_lines/dt=2026-11-23/hour=08/_compacted-g0001-0000000000000000-p000.csv";
    ex.store().inner.put(BUCKET, orphan, b"garbage".to_vec().into(), "text/csv").await.unwrap();
    ex.run_scheduled(at("2026-11-23T09:05:00Z")).await.unwrap();
    assert!(!listed(&manifest(&ex, "manifests/sales_lines/dt=2026-11-23.json")).contains(&orphan.to_string()));
    ex.run_scheduled(at("2026-11-23T09:20:00Z")).await.unwrap();
    let s = ex.run_scheduled(at("2026-11-23T09:40:00Z")).await.unwrap();
    assert!(s.files_deleted.contains(&orphan.to_string()), "{:?}", s.files_deleted);
    assert!(ex.store().violations.lock().unwrap().is_empty());
}

#[tokio::test]
async fn more_than_a_thousand_files_split_the_manifests() {
    let ex = Exporter::new(CheckingStore::default(), ExportConfig::default()).with_metrics_output(MetricsOutput::Off);
    let source = records(9, 20, "2026-11-23T10:00:00Z");
    assert!(source.len() < 1100);
    let n = 1100;
    for i in 0..n {
        let line = SalesLine::from_record(&source[i % source.len()]).unwrap();
        let mut w = CsvWriter::new(Vec::new(), &sales_lines::COLUMNS).unwrap();
        w.write_row(line.cells().iter().map(|c| c.as_bytes())).unwrap();
        let key = format!("datasets/sales_lines/dt=2026-11-23/hour=10/shardId-000000000000-{i:05}-{i:05}-0.csv");
        ex.store().inner.put(BUCKET, &key, w.finish().unwrap().into(), "text/csv").await.unwrap();
    }
    let s = ex.run_scheduled(at("2026-11-23T10:30:00Z")).await.unwrap();
    assert_eq!(
        s.manifests_split,
        [
            ("manifests/sales_lines/dt=2026-11-23.json".to_string(), n),
            ("manifests/sales_lines/last-7-days.json".to_string(), n)
        ]
    );
    let parts = ["manifests/sales_lines/dt=2026-11-23.json", "manifests/sales_lines/dt=2026-11-23.part-2.json"];
    let counts: Vec<usize> = parts.iter().map(|k| manifest(&ex, k).validate(|_| 0).unwrap()).collect();
    assert_eq!(counts, [MAX_FILES, n - MAX_FILES]);
    let all: BTreeSet<String> = parts.iter().flat_map(|k| listed(&manifest(&ex, k))).collect();
    assert_eq!(all.len(), n, "each file in exactly one part");

    // Once compacted, one file: the leftover part is deleted.
    let s = ex.run_scheduled(at("2026-11-23T11:15:00Z")).await.unwrap();
    assert_eq!(s.hours_compacted[0].duplicates_dropped, (n - source.len()) as u64);
    assert!(s.manifests_deleted.contains(&parts[1].to_string()), "{:?}", s.manifests_deleted);
    assert!(!objects(&ex).contains_key(parts[1]));
    assert_eq!(listed(&manifest(&ex, parts[0])).len(), 1);
    assert!(ex.store().violations.lock().unwrap().is_empty());
}
