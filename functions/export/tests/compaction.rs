//! Compaction and manifests, end to end on a store that checks every manifest after every single write and
//! delete: valid for QuickSight, every listed file present, never a merged file listed with a piece it replaced.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use jiff::Timestamp;
use rust_decimal::Decimal;
use salesflow_core::datasets::hourly_sales::{self, HourlyAggregator, HourlyRow};
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
    // Without rollups, so the open hour lists its pieces in both datasets (rollups: the tests further down).
    let config = ExportConfig { merged_part_bytes: 40_000, rollup_open_hours: false, ..ExportConfig::default() };
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
    assert!(s.hours_compacted.is_empty() && s.hours_rolled_up.is_empty());
    assert_eq!(listed(&manifest(&ex, daily)).len(), 3);
    assert_eq!(listed(&manifest(&ex, "manifests/hourly_sales/dt=2026-11-23.json")).len(), 3);
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

/// Issue 14, the replay-after-compaction bug: a batch landed by a pipeline that wrongly dropped store S00002
/// (and misspelled a product) is exported and compacted, with a grace of 0 so its piece is deleted at once;
/// then the same landed object is rewritten by the fixed pipeline (`salesflow replay`) and exported again. The
/// next run folds it into a new generation: every line exactly once, S00002's included, the fixed name winning;
/// a replay that rewrites the same bytes again changes nothing.
#[tokio::test]
async fn issue_14_a_replay_into_a_compacted_hour_is_folded_in_exactly_once() {
    let config = ExportConfig { grace: jiff::SignedDuration::ZERO, ..ExportConfig::default() };
    let ex = Exporter::new(CheckingStore::default(), config).with_metrics_output(MetricsOutput::Off);
    let fixed = records(1, 60, "2026-11-23T08:00:00Z");
    let mut buggy: Vec<Value> = fixed.iter().filter(|r| r["store_id"] != "S00002").cloned().collect();
    assert!(buggy.len() < fixed.len(), "S00002 has lines");
    buggy[0]["name"] = "Typo".into();
    let other = records(2, 10, "2026-11-23T08:00:00Z");
    let name = "shardId-000000000000-1-9-0";
    export(&ex, name, &buggy, "2026-11-23T08:59:00Z").await;
    export(&ex, "shardId-000000000001-1-9-0", &other, "2026-11-23T08:59:00Z").await;
    let s = ex.run_scheduled(at("2026-11-23T09:01:00Z")).await.unwrap();
    assert_eq!(s.hours_compacted[0].generation, 1);
    assert_eq!(s.files_deleted.len(), 4, "grace 0: the pieces go in the same run: {:?}", s.files_deleted);

    // The replay with the fixed pipeline rewrites the landed object (same key, new bytes); its export rewrites
    // the piece the record names as replaced.
    export(&ex, name, &fixed, "2026-11-23T10:00:00Z").await;
    let s = ex.run_scheduled(at("2026-11-23T10:01:00Z")).await.unwrap();
    assert_eq!(s.hours_compacted.len(), 1, "{s:?}");
    assert_eq!((s.hours_compacted[0].generation, s.hours_compacted[0].inputs), (2, 2));
    let expected: Vec<Value> = fixed.iter().chain(&other).cloned().collect();
    let check = |ex: &Exporter<CheckingStore>| {
        let lines = sales_lines_of(ex, &listed(&manifest(ex, LINES_DAILY)));
        let mut got: Vec<(String, u32)> = lines.iter().map(|l| (l.receipt_id.clone(), l.line_no)).collect();
        got.sort();
        let mut want: Vec<(String, u32)> =
            lines_of(&expected).iter().map(|l| (l.receipt_id.clone(), l.line_no)).collect();
        want.sort();
        assert_eq!(got, want, "every line exactly once");
        assert!(lines.iter().any(|l| l.store_id == "S00002"));
        assert!(!lines.iter().any(|l| l.name == "Typo"), "the fixed line replaces the merged one");
        let hourly = hourly_of(ex, &listed(&manifest(ex, HOURLY_DAILY)));
        assert_eq!(hourly.iter().map(|r| r.turnover).sum::<Decimal>(), turnover(&expected));
        assert_eq!(hourly.iter().map(|r| r.lines).sum::<u64>(), expected.len() as u64);
    };
    check(&ex);

    // An unchanged replay rewrites the same bytes: no new generation, same manifests.
    let before = (manifest(&ex, LINES_DAILY), manifest(&ex, HOURLY_DAILY));
    export(&ex, name, &fixed, "2026-11-23T11:00:00Z").await;
    let s = ex.run_scheduled(at("2026-11-23T11:01:00Z")).await.unwrap();
    assert!(s.hours_compacted.is_empty(), "{s:?}");
    assert_eq!((manifest(&ex, LINES_DAILY), manifest(&ex, HOURLY_DAILY)), before);
    check(&ex);
    no_violations(&ex);
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
        w.serialize(&line).unwrap();
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

/// Turnover of landed records.
fn turnover(records: &[Value]) -> Decimal {
    records.iter().map(|r| decimal_from_value(&r["line_total"]).unwrap()).sum()
}

/// The `hourly_sales` rows recomputed from lines de-duplicated on (receipt, line), first seen kept.
fn recomputed(lines: &[SalesLine]) -> Vec<HourlyRow> {
    let mut seen = BTreeSet::new();
    let mut agg = HourlyAggregator::new();
    for l in lines.iter().filter(|l| seen.insert((l.receipt_id.clone(), l.line_no))) {
        agg.add(l).unwrap();
    }
    agg.into_rows()
}

fn lines_of(records: &[Value]) -> Vec<SalesLine> {
    records.iter().map(|r| SalesLine::from_record(r).unwrap()).collect()
}

const HOURLY_DAILY: &str = "manifests/hourly_sales/dt=2026-11-23.json";
const LINES_DAILY: &str = "manifests/sales_lines/dt=2026-11-23.json";

fn no_violations(ex: &Exporter<CheckingStore>) {
    let violations = ex.store().violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test]
async fn the_open_hour_is_rolled_up_and_compaction_recomputes_it_exactly() {
    let ex = Exporter::new(CheckingStore::default(), ExportConfig::default()).with_metrics_output(MetricsOutput::Off);
    let a = records(1, 30, "2026-11-23T08:00:00Z");
    let b = records(2, 30, "2026-11-23T08:00:00Z");
    export(&ex, "shardId-000000000000-1-9-0", &a, "2026-11-23T08:10:00Z").await;
    export(&ex, "shardId-000000000001-1-9-0", &b, "2026-11-23T08:12:00Z").await;

    // Open hour: one rollup file in the hourly_sales manifests, the pieces still in sales_lines.
    let s = ex.run_scheduled(at("2026-11-23T08:15:00Z")).await.unwrap();
    assert!(s.hours_compacted.is_empty());
    let r1 = &s.hours_rolled_up[0];
    assert_eq!((r1.hour.as_str(), r1.generation, r1.inputs), ("2026-11-23T08", 1, 2));
    let files = listed(&manifest(&ex, HOURLY_DAILY));
    assert_eq!(files, [format!("datasets/hourly_sales/dt=2026-11-23/hour=08/{}", r1.merged)]);
    assert!(r1.merged.starts_with("_compacted-g0001-"), "{}", r1.merged);
    assert_eq!(listed(&manifest(&ex, "manifests/hourly_sales/last-7-days.json")), files);
    assert_eq!(listed(&manifest(&ex, LINES_DAILY)).len(), 2, "sales_lines keeps its pieces while the hour is open");
    // No receipt spans the two objects: the rollup is exactly the recomputation.
    let ab: Vec<SalesLine> = lines_of(&a).into_iter().chain(lines_of(&b)).collect();
    assert_eq!(hourly_of(&ex, &files), recomputed(&ab));

    // More objects: one repeats part of A (a redelivered, differently bisected batch), A itself is redelivered.
    let mut c: Vec<Value> = a[5..60].to_vec();
    c.extend(records(3, 10, "2026-11-23T08:00:00Z"));
    let d = records(4, 5, "2026-11-23T08:00:00Z");
    export(&ex, "shardId-000000000000-1-9-1", &c, "2026-11-23T08:20:00Z").await;
    export(&ex, "shardId-000000000002-1-9-0", &d, "2026-11-23T08:25:00Z").await;
    export(&ex, "shardId-000000000000-1-9-0", &a, "2026-11-23T08:26:00Z").await;
    let s = ex.run_scheduled(at("2026-11-23T08:30:00Z")).await.unwrap();
    let r2 = &s.hours_rolled_up[0];
    assert_eq!((r2.generation, r2.inputs), (2, 3), "the previous rollup, C and D; A's piece is already in it");
    let files = listed(&manifest(&ex, HOURLY_DAILY));
    assert_eq!(files, [format!("datasets/hourly_sales/dt=2026-11-23/hour=08/{}", r2.merged)]);
    let hourly = hourly_of(&ex, &files);
    let pieces = turnover(&a) + turnover(&b) + turnover(&c) + turnover(&d);
    assert_eq!(hourly.iter().map(|r| r.turnover).sum::<Decimal>(), pieces, "the sum of the pieces, exactly");
    assert_eq!(hourly.iter().map(|r| r.lines).sum::<u64>(), (a.len() + b.len() + c.len() + d.len()) as u64);

    // Closed but inside the grace period: a late object is still rolled up.
    let e = records(5, 5, "2026-11-23T08:00:00Z");
    export(&ex, "shardId-000000000003-1-9-0", &e, "2026-11-23T09:02:00Z").await;
    let s = ex.run_scheduled(at("2026-11-23T09:05:00Z")).await.unwrap();
    assert_eq!((s.hours_rolled_up[0].generation, s.hours_rolled_up[0].inputs), (3, 2));
    assert!(s.hours_compacted.is_empty());
    let open_hour = hourly_of(&ex, &listed(&manifest(&ex, HOURLY_DAILY)));
    assert_eq!(open_hour.iter().map(|r| r.turnover).sum::<Decimal>(), pieces + turnover(&e));

    // Compaction: every sales_lines piece read, de-duplicated; hourly_sales recomputed replaces the rollup.
    let s = ex.run_scheduled(at("2026-11-23T09:16:00Z")).await.unwrap();
    assert!(s.hours_rolled_up.is_empty());
    let hour = &s.hours_compacted[0];
    assert_eq!((hour.generation, hour.inputs, hour.duplicates_dropped), (4, 5, 55));
    let files = listed(&manifest(&ex, HOURLY_DAILY));
    assert_eq!(files.len(), 1);
    assert!(files[0].contains("/_compacted-g0004-"), "{files:?}");
    let everything: Vec<SalesLine> = [&a, &b, &c, &d, &e].into_iter().flat_map(|r| lines_of(r)).collect();
    let exact = recomputed(&everything);
    assert_eq!(hourly_of(&ex, &files), exact, "the final hour is the recomputation from de-duplicated lines");
    let merged_lines = sales_lines_of(&ex, &listed(&manifest(&ex, LINES_DAILY)));
    assert_eq!(hourly_of(&ex, &files), recomputed(&merged_lines));
    let mut distinct = BTreeMap::new();
    for r in [&a, &b, &c, &d, &e].into_iter().flatten() {
        distinct.entry((r["receipt_id"].as_str().unwrap().to_string(), r["line_no"].as_u64().unwrap())).or_insert(r);
    }
    let distinct_total: Decimal = distinct.values().map(|r| decimal_from_value(&r["line_total"]).unwrap()).sum();
    assert_eq!(exact.iter().map(|r| r.turnover).sum::<Decimal>(), distinct_total);
    assert!(distinct_total < pieces + turnover(&e), "the open hour counted C's repeats of A");
    assert!(s.files_deleted.is_empty(), "replaced files outlive the compaction by the grace period");

    // After the grace period: pieces and the three rollups go; the manifests do not change.
    let manifests_before = (manifest(&ex, LINES_DAILY), manifest(&ex, HOURLY_DAILY));
    let s = ex.run_scheduled(at("2026-11-23T09:32:00Z")).await.unwrap();
    assert!(s.hours_compacted.is_empty() && s.hours_rolled_up.is_empty());
    assert_eq!(s.files_deleted.len(), 5 + 5 + 3, "{:?}", s.files_deleted);
    assert_eq!((manifest(&ex, LINES_DAILY), manifest(&ex, HOURLY_DAILY)), manifests_before);
    let left: Vec<String> =
        objects(&ex).into_keys().filter(|k| k.starts_with("datasets/") && !k.contains("_compactions")).collect();
    assert!(left.iter().all(|k| k.contains("/_compacted-g0004-")), "{left:?}");

    // A redelivered object after all that: counted nowhere, and deleted again.
    export(&ex, "shardId-000000000002-1-9-0", &d, "2026-11-23T09:40:00Z").await;
    let s = ex.run_scheduled(at("2026-11-23T09:41:00Z")).await.unwrap();
    assert!(s.hours_compacted.is_empty() && s.hours_rolled_up.is_empty());
    assert_eq!((manifest(&ex, LINES_DAILY), manifest(&ex, HOURLY_DAILY)), manifests_before);
    assert_eq!(s.files_deleted.len(), 2);
    assert_eq!(hourly_of(&ex, &listed(&manifest(&ex, HOURLY_DAILY))), exact);
    no_violations(&ex);
}

#[tokio::test]
async fn a_rollup_interrupted_between_steps_is_finished_by_the_next_run() {
    let ex = Exporter::new(CheckingStore::default(), ExportConfig::default()).with_metrics_output(MetricsOutput::Off);
    let a = records(1, 10, "2026-11-23T08:00:00Z");
    let b = records(2, 10, "2026-11-23T08:00:00Z");
    let c = records(3, 10, "2026-11-23T08:00:00Z");
    export(&ex, "shardId-000000000000-1-9-0", &a, "2026-11-23T08:10:00Z").await;
    export(&ex, "shardId-000000000001-1-9-0", &b, "2026-11-23T08:11:00Z").await;
    let sum = |ex: &Exporter<CheckingStore>| {
        hourly_of(ex, &listed(&manifest(ex, HOURLY_DAILY))).iter().map(|r| r.turnover).sum::<Decimal>()
    };

    // Crash after the rollup file, before its record: the file is an orphan no manifest lists.
    *ex.store().fail_put.lock().unwrap() = Some("_compactions/".into());
    assert!(ex.run_scheduled(at("2026-11-23T08:15:00Z")).await.unwrap_err().is_transient());
    let orphans: Vec<String> = objects(&ex).into_keys().filter(|k| k.contains("/_compacted-")).collect();
    assert_eq!(orphans.len(), 1);
    assert!(!objects(&ex).contains_key(HOURLY_DAILY));
    // The next run rolls up again (same inputs, same name) and commits.
    let s = ex.run_scheduled(at("2026-11-23T08:16:00Z")).await.unwrap();
    assert_eq!(s.hours_rolled_up[0].generation, 1);
    assert_eq!(listed(&manifest(&ex, HOURLY_DAILY)), orphans);
    assert_eq!(sum(&ex), turnover(&a) + turnover(&b));

    // Crash after the record of generation 2, before the hourly_sales manifests: they still list generation 1,
    // which is still there, and does not hold C.
    export(&ex, "shardId-000000000002-1-9-0", &c, "2026-11-23T08:20:00Z").await;
    *ex.store().fail_put.lock().unwrap() = Some("manifests/hourly_sales/".into());
    assert!(ex.run_scheduled(at("2026-11-23T08:25:00Z")).await.is_err());
    assert_eq!(listed(&manifest(&ex, HOURLY_DAILY)), orphans);
    assert_eq!(sum(&ex), turnover(&a) + turnover(&b));
    let s = ex.run_scheduled(at("2026-11-23T08:26:00Z")).await.unwrap();
    assert!(s.hours_rolled_up.is_empty(), "generation 2 is committed already");
    let files = listed(&manifest(&ex, HOURLY_DAILY));
    assert!(files.len() == 1 && files[0].contains("/_compacted-g0002-"), "{files:?}");
    assert_eq!(sum(&ex), turnover(&a) + turnover(&b) + turnover(&c));

    // Crash in the closed hour's compaction after the merged files: the rollup stays listed; then it finishes.
    *ex.store().fail_put.lock().unwrap() = Some("_compactions/".into());
    assert!(ex.run_scheduled(at("2026-11-23T09:15:00Z")).await.is_err());
    assert_eq!(listed(&manifest(&ex, HOURLY_DAILY)), files);
    let s = ex.run_scheduled(at("2026-11-23T09:16:00Z")).await.unwrap();
    assert_eq!(s.hours_compacted[0].generation, 3);
    let all: Vec<SalesLine> = [&a, &b, &c].into_iter().flat_map(|r| lines_of(r)).collect();
    assert_eq!(hourly_of(&ex, &listed(&manifest(&ex, HOURLY_DAILY))), recomputed(&all));
    // Everything replaced, the orphan-free rollups included, goes after the grace period.
    let s = ex.run_scheduled(at("2026-11-23T09:32:00Z")).await.unwrap();
    assert_eq!(s.files_deleted.len(), 3 + 3 + 2, "{:?}", s.files_deleted);
    no_violations(&ex);
}

#[tokio::test]
async fn thousands_of_open_hour_pieces_are_one_hourly_file() {
    let ex = Exporter::new(CheckingStore::default(), ExportConfig::default()).with_metrics_output(MetricsOutput::Off);
    let source = lines_of(&records(9, 20, "2026-11-23T10:00:00Z"));
    let n = 1100;
    let mut all = Vec::new();
    for i in 0..n {
        let line = source[i % source.len()].clone();
        let mut agg = HourlyAggregator::new();
        agg.add(&line).unwrap();
        all.push(line);
        let mut w = CsvWriter::new(Vec::new(), &hourly_sales::COLUMNS).unwrap();
        for row in agg.into_rows() {
            w.write_row(row.cells().iter().map(|c| c.as_bytes())).unwrap();
        }
        let key = format!("datasets/hourly_sales/dt=2026-11-23/hour=10/shardId-000000000000-{i:05}-{i:05}-0.csv");
        ex.store().inner.put(BUCKET, &key, w.finish().unwrap().into(), "text/csv").await.unwrap();
    }
    let s = ex.run_scheduled(at("2026-11-23T10:30:00Z")).await.unwrap();
    assert_eq!(s.hours_rolled_up[0].inputs, n);
    assert!(s.manifests_split.is_empty(), "{:?}", s.manifests_split);
    let files = listed(&manifest(&ex, HOURLY_DAILY));
    assert_eq!(files.len(), 1);
    let hourly = hourly_of(&ex, &files);
    assert_eq!(hourly.iter().map(|r| r.turnover).sum::<Decimal>(), all.iter().map(|l| l.line_total).sum());
    assert_eq!(hourly.iter().map(|r| r.lines).sum::<u64>(), n as u64);
    no_violations(&ex);
}

/// Two dataset files of one hour, each of whose values fits, whose sum does not (written by hand or by an
/// older version): the scheduled run skips the hour with the column that overflows, never panics, and still
/// writes the manifests.
async fn put_csv(ex: &Exporter<CheckingStore>, key: &str, columns: &[&str], row: &[&str]) {
    let mut w = CsvWriter::new(Vec::new(), columns).unwrap();
    w.write_row(row).unwrap();
    ex.store().inner.put(BUCKET, key, w.finish().unwrap().into(), "text/csv").await.unwrap();
}

/// An `hourly_sales` row of store S00042, Bakery, EUR on 2026-11-23 whose turnover no sum can hold twice.
fn hourly_row<'a>(hour_start: &'a str, hour: &'a str, lines: &'a str) -> [&'a str; 16] {
    [
        hour_start,
        "2026-11-23",
        hour,
        "Monday",
        "S00042",
        "Lyon",
        "ARA",
        "45.7",
        "4.8",
        "Chloé",
        "Bakery",
        "EUR",
        "70000000000000000000000000000",
        lines,
        "1",
        "0",
    ]
}

#[tokio::test]
async fn issue_11_an_overflowing_hour_is_skipped_by_rollup_with_a_reason() {
    let ex = Exporter::new(CheckingStore::default(), ExportConfig::default()).with_metrics_output(MetricsOutput::Off);
    for (i, lines) in [(0, "18446744073709551615"), (1, "1")] {
        let key = format!("datasets/hourly_sales/dt=2026-11-23/hour=10/shardId-000000000000-{i:05}-{i:05}-0.csv");
        let row = hourly_row("2026-11-23 10:00:00", "11", lines);
        put_csv(&ex, &key, &hourly_sales::COLUMNS, &row).await;
    }
    let s = ex.run_scheduled(at("2026-11-23T10:30:00Z")).await.unwrap();
    assert!(s.hours_rolled_up.is_empty());
    assert_eq!(s.hours_skipped.len(), 1, "{:?}", s.hours_skipped);
    assert!(s.hours_skipped[0].contains("hourly_sales.turnover overflows"), "{:?}", s.hours_skipped);
    assert_eq!(listed(&manifest(&ex, HOURLY_DAILY)).len(), 2, "the manifests are still written");
}

#[tokio::test]
async fn issue_11_an_overflowing_hour_is_skipped_by_compaction_with_a_reason() {
    let ex = Exporter::new(CheckingStore::default(), ExportConfig::default()).with_metrics_output(MetricsOutput::Off);
    for i in 0..2 {
        let name = format!("shardId-000000000000-{i:05}-{i:05}-0.csv");
        let receipt = format!("R{i}");
        let row = [
            receipt.as_str(),
            "0",
            "S00042",
            "2026-11-23 08:10:00",
            "2026-11-23",
            "9",
            "Monday",
            "Bakery",
            "SKU-1",
            "Baguette",
            "1",
            "70000000000000000000000000000",
            "",
            "70000000000000000000000000000",
            "EUR",
            "0",
            "0",
            "Lyon",
            "ARA",
            "45.7",
            "4.8",
            "Chloé",
        ];
        put_csv(&ex, &format!("datasets/sales_lines/dt=2026-11-23/hour=08/{name}"), &sales_lines::COLUMNS, &row).await;
        let hourly = hourly_row("2026-11-23 08:00:00", "9", "1");
        put_csv(&ex, &format!("datasets/hourly_sales/dt=2026-11-23/hour=08/{name}"), &hourly_sales::COLUMNS, &hourly)
            .await;
    }
    let s = ex.run_scheduled(at("2026-11-23T12:00:00Z")).await.unwrap();
    assert!(s.hours_compacted.is_empty());
    assert_eq!(s.hours_skipped.len(), 1, "{:?}", s.hours_skipped);
    assert!(s.hours_skipped[0].contains("hourly_sales.turnover overflows"), "{:?}", s.hours_skipped);
    assert_eq!(listed(&manifest(&ex, LINES_DAILY)).len(), 2, "the manifests are still written");
}
