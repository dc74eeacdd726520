//! The export of landed objects, tested on content: every dataset's CSV read back (by the `csv` crate, and by
//! Python's `csv` module when `python3` is available) gives the source values exactly.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::*;
use jiff::Timestamp;
use rust_decimal::Decimal;
use salesflow_core::datasets::hourly_sales::{self, HourlyRow};
use salesflow_core::datasets::sales_lines::{self, SalesLine};
use salesflow_core::datasets::{format_utc_second, read_rows};
use salesflow_core::decimal::decimal_from_value;
use salesflow_export::{HandlerError, decode_key};
use salesflow_store::ObjectStore;
use salesflow_store::testing::{FailingStore, MemoryStore};
use serde_json::{Value, json};

const NOW: &str = "2026-11-23T09:00:01.123Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// The decoded key of an event fixture's first record.
fn fixture_key(name: &str) -> String {
    decode_key(event(name)["Records"][0]["s3"]["object"]["key"].as_str().unwrap()).unwrap()
}

async fn land(store: &impl ObjectStore, key: &str, records: &[Value], gz: bool) {
    let body = if gz { gzip(&ndjson(records)) } else { ndjson(records) };
    store.put(BUCKET, key, body.into(), "application/octet-stream").await.unwrap();
}

fn object(store: &MemoryStore, key: &str) -> Vec<u8> {
    store.objects(BUCKET).into_iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("{key} missing")).1.to_vec()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn dec(v: &Value) -> Decimal {
    decimal_from_value(v).unwrap()
}

/// Checks one exported line against its source record, field by field.
fn assert_matches_source(line: &SalesLine, src: &Value) {
    assert_eq!(line.receipt_id, src["receipt_id"].as_str().unwrap());
    assert_eq!(u64::from(line.line_no), src["line_no"].as_u64().unwrap());
    assert_eq!(line.store_id, src["store_id"].as_str().unwrap());
    let emitted: Timestamp = src["emitted_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(format_utc_second(line.emitted_at), format_utc_second(emitted), "emitted_at, to the second, in UTC");
    assert_eq!(line.date.to_string(), src["date"].as_str().unwrap());
    assert_eq!(i64::from(line.hour), src["hour"].as_i64().unwrap());
    assert_eq!(line.weekday, src["weekday"].as_str().unwrap());
    assert_eq!(line.category, src["category"].as_str().unwrap());
    assert_eq!(line.sku, src["sku"].as_str().unwrap());
    assert_eq!(line.name, src["name"].as_str().unwrap(), "name comes back exactly");
    // Decimals: same value and same digits as the source text.
    for (got, field) in [(line.quantity, "quantity"), (line.unit_price, "unit_price"), (line.line_total, "line_total")]
    {
        assert_eq!(got.to_string(), dec(&src[field]).to_string(), "{field}");
    }
    assert_eq!(line.discount.map(|d| d.to_string()), src.get("discount").map(|d| dec(d).to_string()));
    assert_eq!(line.currency, text(&src["currency"]));
    assert_eq!(line.has_loyalty_card, src.get("loyalty_card").is_some_and(|v| !v.is_null()));
    assert_eq!(line.is_return(), dec(&src["quantity"]) < Decimal::ZERO);
    assert_eq!(line.city, text(&src["city"]));
    assert_eq!(line.region, text(&src["region"]));
    assert_eq!(line.latitude.map(|d| d.to_string()), Some(src["latitude"].as_str().unwrap().to_string()));
    assert_eq!(line.longitude.map(|d| d.to_string()), Some(src["longitude"].as_str().unwrap().to_string()));
    assert_eq!(line.manager, text(&src["manager"]));
}

#[tokio::test]
async fn a_put_event_exports_both_datasets_exactly() {
    let store = MemoryStore::new();
    let key = fixture_key("s3-put.json");
    let mut source = records(7, 40, "2026-11-23T08:00:00Z");
    let n_source = source.len();
    // Repeats inside the object (a bisected retry) and one record that is not a line.
    source.push(source[3].clone());
    source.push(source[10].clone());
    source.push(json!({"receipt_id": "broken"}));
    land(&store, &key, &source, true).await;

    let ex = exporter(store);
    let summary = ex.handle(&event("s3-put.json"), now()).await.unwrap();
    assert_eq!(summary.kind, "s3");
    let object = &summary.objects[0];
    assert_eq!(
        (object.status, object.records_read, object.records_rejected, object.duplicates_dropped),
        ("exported", n_source as u64 + 3, 1, 2)
    );
    assert_eq!(object.export_lag_ms, Some(3_000), "now - eventTime");
    let store = ex.store();

    // sales_lines: every source line once, in order, every value exact.
    let name = key.rsplit('/').next().unwrap().trim_end_matches(".ndjson.gz");
    let lines_key = format!("datasets/sales_lines/dt=2026-11-23/hour=08/{name}.csv");
    let bytes = object_bytes(store, &lines_key);
    assert!(!bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "no BOM");
    assert!(bytes.starts_with(b"receipt_id,line_no,store_id,emitted_at,date,hour,weekday,category,sku,name,quantity,unit_price,discount,line_total,currency,is_return,has_loyalty_card,city,region,latitude,longitude,manager\r\n"));
    let lines: Vec<SalesLine> = read_rows(&bytes[..], &sales_lines::COLUMNS)
        .unwrap()
        .map(|r| SalesLine::from_row(&r.unwrap()).unwrap())
        .collect();
    assert_eq!(lines.len(), n_source);
    for (line, src) in lines.iter().zip(&source) {
        assert_matches_source(line, src);
    }
    let names: BTreeSet<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    for hostile in HOSTILE_NAMES {
        assert!(names.contains(hostile), "{hostile:?} came back");
    }
    // Raw cells: formulas neutralized, numbers untouched (returns keep their minus sign).
    let raw: Vec<csv::StringRecord> = csv::Reader::from_reader(&bytes[..]).records().map(Result::unwrap).collect();
    assert!(raw.iter().any(|r| &r[9] == "'=HYPERLINK(\"http://x\",\"clic\")"));
    assert!(raw.iter().all(|r| !r[9].starts_with(['=', '+', '-', '@', '\t', '\r'])));
    assert!(raw.iter().any(|r| r[10].starts_with('-') && &r[15] == "1"), "a return line with a negative quantity");

    // hourly_sales: the sums of the source, per hour x store x category.
    let hourly_key = format!("datasets/hourly_sales/dt=2026-11-23/hour=08/{name}.csv");
    let bytes = object_bytes(store, &hourly_key);
    let rows: Vec<HourlyRow> = read_rows(&bytes[..], &hourly_sales::COLUMNS)
        .unwrap()
        .map(|r| HourlyRow::from_row(&r.unwrap()).unwrap())
        .collect();
    type Sums = (Decimal, u64, BTreeSet<String>, u64);
    let mut expected: BTreeMap<(String, String), Sums> = BTreeMap::new();
    for src in &source[..n_source] {
        let e = expected
            .entry((src["store_id"].as_str().unwrap().into(), src["category"].as_str().unwrap().into()))
            .or_default();
        e.0 += dec(&src["line_total"]);
        e.1 += 1;
        e.2.insert(src["receipt_id"].as_str().unwrap().into());
        e.3 += u64::from(dec(&src["quantity"]) < Decimal::ZERO);
    }
    assert_eq!(rows.len(), expected.len());
    for row in &rows {
        let e = &expected[&(row.key.store_id.clone(), row.key.category.clone())];
        assert_eq!((row.turnover, row.lines, row.receipts, row.returns), (e.0, e.1, e.2.len() as u64, e.3));
        assert_eq!(format_utc_second(row.key.hour_start_utc), "2026-11-23 08:00:00");
        assert_eq!((row.date.to_string(), row.hour, row.weekday.as_str()), ("2026-11-23".to_string(), 9, "Monday"));
    }
}

fn object_bytes(store: &MemoryStore, key: &str) -> Vec<u8> {
    object(store, key)
}

#[tokio::test]
async fn python_csv_reads_the_same_cells() {
    let python = std::process::Command::new("python3").arg("--version").output();
    if !python.is_ok_and(|o| o.status.success()) {
        eprintln!("python3 not available: skipped");
        return;
    }
    let store = MemoryStore::new();
    let key = fixture_key("s3-put.json");
    let source = records(11, 10, "2026-11-23T08:00:00Z");
    land(&store, &key, &source, false).await;
    let ex = exporter(store);
    ex.handle(&event("s3-put.json"), now()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (key, bytes) in ex.store().objects(BUCKET).into_iter().filter(|(k, _)| k.ends_with(".csv")) {
        let path = dir.path().join("data.csv");
        std::fs::write(&path, &bytes).unwrap();
        let script = "import csv, json, sys\nwith open(sys.argv[1], newline='', encoding='utf-8') as f:\n    print(json.dumps(list(csv.reader(f))))";
        let out = std::process::Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let python_rows: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();
        let mut rust_rows = vec![];
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[..]);
        for r in reader.records() {
            rust_rows.push(r.unwrap().iter().map(str::to_string).collect::<Vec<_>>());
        }
        assert_eq!(python_rows, rust_rows, "{key}");
        if key.contains("sales_lines") {
            let names: Vec<&str> =
                python_rows[1..].iter().map(|r| salesflow_core::datasets::cell::restore(&r[9])).collect();
            let expected: Vec<&str> = source.iter().map(|s| s["name"].as_str().unwrap()).collect();
            assert_eq!(names, expected);
        }
    }
}

#[tokio::test]
async fn encoded_keys_are_decoded() {
    let key = fixture_key("s3-put-encoded-key.json");
    assert_eq!(key, "landed/dt=2026-11-23/hour=08/replay 2026-11-23 store+1=fr-0.ndjson");
    let store = MemoryStore::new();
    land(&store, &key, &records(3, 2, "2026-11-23T08:00:00Z"), false).await;
    let ex = exporter(store);
    let summary = ex.handle(&event("s3-put-encoded-key.json"), now()).await.unwrap();
    assert_eq!(summary.objects[0].status, "exported");
    let keys: Vec<String> = ex.store().objects(BUCKET).into_iter().map(|(k, _)| k).collect();
    assert!(
        keys.contains(&"datasets/sales_lines/dt=2026-11-23/hour=08/replay 2026-11-23 store+1=fr-0.csv".to_string()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"datasets/hourly_sales/dt=2026-11-23/hour=08/replay 2026-11-23 store+1=fr-0.csv".to_string()),
        "{keys:?}"
    );
}

#[tokio::test]
async fn test_events_and_foreign_keys_are_skipped_without_error() {
    let ex = exporter(MemoryStore::new());
    let summary = ex.handle(&event("s3-test-event.json"), now()).await.unwrap();
    assert_eq!(summary.kind, "s3:TestEvent");
    let summary = ex.handle(&event("s3-foreign-prefix.json"), now()).await.unwrap();
    assert_eq!(summary.objects, vec![]);
    assert_eq!(summary.skipped, ["raw/dt=2026-11-23/hour=08/shardId-000000000001-1-2.ndjson.gz: not a landed object"]);
    assert!(ex.store().objects(BUCKET).is_empty(), "nothing written");
    // A landed object that is gone by the time the event arrives: logged, not retried forever.
    let summary = ex.handle(&event("s3-put.json"), now()).await.unwrap();
    assert_eq!(summary.objects[0].status, "missing");
    assert!(matches!(ex.handle(&json!({"hello": "world"}), now()).await, Err(HandlerError::UnknownEvent(_))));
}

#[tokio::test]
async fn a_redelivered_event_leaves_the_bucket_byte_identical() {
    let store = MemoryStore::new();
    let key = fixture_key("s3-put.json");
    land(&store, &key, &records(5, 30, "2026-11-23T08:00:00Z"), true).await;
    let ex = exporter(store);
    ex.handle(&event("s3-put.json"), now()).await.unwrap();
    let first: HashMap<String, Vec<u8>> =
        ex.store().objects(BUCKET).into_iter().map(|(k, v)| (k, v.to_vec())).collect();
    assert_eq!(first.len(), 3);
    ex.handle(&event("s3-put.json"), "2026-11-23T09:05:00Z".parse().unwrap()).await.unwrap();
    let second: HashMap<String, Vec<u8>> =
        ex.store().objects(BUCKET).into_iter().map(|(k, v)| (k, v.to_vec())).collect();
    assert_eq!(first, second);
}

#[tokio::test]
async fn transient_store_failures_fail_the_invocation() {
    let inner = MemoryStore::new();
    let key = fixture_key("s3-put.json");
    land(&inner, &key, &records(5, 3, "2026-11-23T08:00:00Z"), true).await;
    // The first write (sales_lines) succeeds, the second (hourly_sales) fails: Lambda must retry.
    let ex = exporter(FailingStore::new(inner, 2));
    let err = ex.handle(&event("s3-put.json"), now()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    ex.store().heal();
    let summary = ex.handle(&event("s3-put.json"), now()).await.unwrap();
    assert_eq!(summary.objects[0].written.len(), 2);
}

#[tokio::test]
async fn unreadable_objects_are_poison_not_retried() {
    let store = MemoryStore::new();
    let key = fixture_key("s3-put.json");
    let mut bad = gzip(&ndjson(&records(5, 3, "2026-11-23T08:00:00Z")));
    bad.truncate(bad.len() / 2);
    store.put(BUCKET, &key, bad.into(), "application/gzip").await.unwrap();
    let ex = exporter(store);
    let summary = ex.handle(&event("s3-put.json"), now()).await.unwrap();
    assert_eq!(summary.objects[0].status, "unreadable");
    assert_eq!(ex.store().objects(BUCKET).len(), 1, "no partial output");
}

/// Issue 12: a 1 MB gzip of 1 GB of zeros on one line took the export to 1.86 GB. A line past
/// `MAX_LINE_BYTES` is now rejected with its reason, without being held, and the lines after it are read.
#[tokio::test]
async fn a_landed_line_past_the_bound_is_rejected_and_reading_goes_on() {
    let store = MemoryStore::new();
    let key = fixture_key("s3-put.json");
    let good = records(3, 2, "2026-11-23T08:00:00Z");
    let mut body = ndjson(&good[..1]);
    body.extend(std::iter::repeat_n(b'0', salesflow_export::MAX_LINE_BYTES + 1));
    body.push(b'\n');
    body.extend(ndjson(&good[1..]));
    store.put(BUCKET, &key, gzip(&body).into(), "application/octet-stream").await.unwrap();
    let ex = exporter(store);
    let summary = ex.handle(&event("s3-put.json"), now()).await.unwrap();
    let object = &summary.objects[0];
    assert_eq!((object.status, object.records_read, object.records_rejected), ("exported", good.len() as u64 + 1, 1));
    assert_eq!(object.written[0].1, good.len() as u64, "the lines on both sides of the long one are exported");
}

/// Issue 11: a landed object holding lines no aggregate can hold (written by an older version or by hand): the
/// good lines are all exported, each bad one rejected with a reason, and nothing panics.
#[tokio::test]
async fn issue_11_a_landed_object_with_bad_lines_exports_every_good_line() {
    let store = MemoryStore::new();
    let key = fixture_key("s3-put.json");
    let good = records(7, 12, "2026-11-23T08:00:00Z");
    let mut source = good.clone();
    let huge = "50000000000000000000000000000";
    for (i, (field, value)) in
        [("unit_price", huge), ("unit_price", huge), ("line_total", huge), ("quantity", "1000000000000000")]
            .into_iter()
            .enumerate()
    {
        let mut bad = good[i].clone();
        bad["receipt_id"] = json!(format!("BAD-{i}"));
        bad[field] = serde_json::from_str(value).unwrap();
        source.push(bad);
    }
    let mut early = good[0].clone();
    early["receipt_id"] = json!("BAD-time");
    early["emitted_at"] = json!("-009999-01-02T01:59:59Z");
    source.push(early);
    land(&store, &key, &source, true).await;

    let ex = exporter(store);
    let summary = ex.handle(&event("s3-put.json"), now()).await.unwrap();
    let object = &summary.objects[0];
    assert_eq!((object.status, object.records_read, object.records_rejected), ("exported", good.len() as u64 + 5, 5));
    let name = key.rsplit('/').next().unwrap().trim_end_matches(".ndjson.gz");
    let bytes = object_bytes(ex.store(), &format!("datasets/sales_lines/dt=2026-11-23/hour=08/{name}.csv"));
    let lines: Vec<SalesLine> = read_rows(&bytes[..], &sales_lines::COLUMNS)
        .unwrap()
        .map(|r| SalesLine::from_row(&r.unwrap()).unwrap())
        .collect();
    assert_eq!(lines.len(), good.len());
    for (line, src) in lines.iter().zip(&good) {
        assert_matches_source(line, src);
    }
    let bytes = object_bytes(ex.store(), &format!("datasets/hourly_sales/dt=2026-11-23/hour=08/{name}.csv"));
    let turnover: Decimal = read_rows(&bytes[..], &hourly_sales::COLUMNS)
        .unwrap()
        .map(|r| HourlyRow::from_row(&r.unwrap()).unwrap().turnover)
        .sum();
    assert_eq!(turnover, good.iter().map(|r| dec(&r["line_total"])).sum::<Decimal>());
}
