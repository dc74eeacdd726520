//! Issue 11 across both functions' core. The regression tests run one receipt through the sample pipeline (what
//! ingest lands) and read each landed record as the export reads it. The property test runs batches of arbitrary
//! receipts — huge and many-digit numbers, numeric, string and null text fields, line fields that override the
//! receipt's, times past the edges — through [`Pipeline::land`] (the contract checked) and the export's reader
//! ([`LandedConversion`]): nothing panics, every landed line is read back (no export-side rejects), `emitted` at
//! ingest = rows in `sales_lines` before de-duplication, every distinct line is written exactly once with the
//! receipt's identity.

use std::collections::BTreeSet;

use proptest::prelude::*;
use rust_decimal::Decimal;
use salesflow_core::Outcome;
use salesflow_core::datasets::hourly_sales::HourlyAggregator;
use salesflow_core::datasets::landed::LandedConversion;
use salesflow_core::datasets::read_rows;
use salesflow_core::datasets::sales_lines::{COLUMNS, Deduper, SalesLine};
use salesflow_core::defaults::sales_pipeline;
use serde_json::{Value, json};

fn receipt(lines: Value) -> Value {
    json!({"receipt_id": "X1", "store_id": "S00042", "emitted_at": "2026-11-23T10:15:00+01:00", "currency": "EUR",
        "lines": lines})
}

fn line(sku: &str, price: i64) -> Value {
    json!({"sku": sku, "name": "n", "category": "Dairy", "quantity": 1, "unit_price": price})
}

/// The landed records of one receipt, or the rejection's text.
fn landed(receipt: Value) -> Result<Vec<Value>, String> {
    match sales_pipeline().apply(receipt) {
        Outcome::Emitted(records) => Ok(records),
        Outcome::Rejected(r) => Err(r.to_string()),
        Outcome::Filtered { step } => Err(format!("filtered by step {step}")),
    }
}

/// What the export makes of landed records: the lines it writes and the hour's turnover.
fn exported(records: &[Value]) -> (Vec<SalesLine>, Decimal) {
    let mut dedup = Deduper::new();
    let mut hourly = HourlyAggregator::new();
    let mut lines = Vec::new();
    for r in records {
        let line = SalesLine::from_record(r).unwrap_or_else(|e| panic!("the export refused {r}: {e}"));
        if dedup.first_time(&line) {
            hourly.add(&line).unwrap();
            lines.push(line);
        }
    }
    (lines, hourly.into_rows().iter().map(|r| r.turnover).sum())
}

#[test]
fn issue_11_a_line_cannot_claim_another_receipt_id() {
    let mut claimed = line("A", 10);
    claimed["receipt_id"] = json!("V1");
    let records = landed(receipt(json!([claimed, line("B", 20)]))).unwrap();
    let (lines, turnover) = exported(&records);
    assert_eq!(lines.iter().map(|l| l.receipt_id.as_str()).collect::<Vec<_>>(), ["X1", "X1"]);
    assert_eq!(turnover, Decimal::from(30));
    // Not de-duplicated against receipt V1's first line.
    let v1 = landed(json!({"receipt_id": "V1", "store_id": "S00042", "emitted_at": "2026-11-23T10:15:00+01:00",
        "currency": "EUR", "lines": [line("Z", 5)]}))
    .unwrap();
    let (lines, _) = exported(&[v1, records].concat());
    assert_eq!(lines.len(), 3);
}

#[test]
fn issue_11_two_lines_saying_line_no_0_keep_their_index() {
    let mut lines = vec![line("A", 10), line("B", 20), line("C", 30)];
    lines[1]["line_no"] = json!(0);
    lines[2]["line_no"] = json!(0);
    let (exported, turnover) = exported(&landed(receipt(json!(lines))).unwrap());
    assert_eq!(exported.iter().map(|l| l.line_no).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(turnover, Decimal::from(60), "turnover 60, not 10");
}

#[test]
fn issue_11_a_lines_own_store_currency_and_time_are_the_receipts() {
    let mut own = line("A", 10);
    own["store_id"] = json!("S99999");
    own["currency"] = json!("usd");
    own["emitted_at"] = json!("not a time");
    own["loyalty_card"] = json!("LC-forged");
    let (lines, _) = exported(&landed(receipt(json!([own]))).unwrap());
    let l = &lines[0];
    assert_eq!((l.store_id.as_str(), l.currency.as_deref()), ("S00042", Some("EUR")));
    assert_eq!(l.emitted_at.to_string(), "2026-11-23T09:15:00Z");
    assert!(!l.has_loyalty_card, "a carried field the receipt lacks is not taken from the line");
}

#[test]
fn issue_11_numeric_text_fields_are_text_in_both_functions() {
    let mut numeric = line("A", 10);
    numeric["sku"] = json!(123);
    numeric["category"] = json!(7);
    let mut r = receipt(json!([numeric]));
    r["receipt_id"] = json!(1001);
    let records = landed(r.clone()).unwrap();
    assert_eq!((&records[0]["sku"], &records[0]["category"]), (&json!("123"), &json!("7")), "validate normalizes");
    let (lines, _) = exported(&records);
    assert_eq!((lines[0].sku.as_str(), lines[0].category.as_str(), lines[0].receipt_id.as_str()), ("123", "7", "1001"));
    // Without normalization the landed record keeps the numbers, and the export reads them as validation did.
    let mut raw = r["lines"][0].clone();
    for (field, value) in [("receipt_id", json!(1001)), ("line_no", json!(0)), ("store_id", json!("S00042"))] {
        raw[field] = value;
    }
    for (field, value) in [("emitted_at", "2026-11-23T10:15:00+01:00"), ("date", "2026-11-23"), ("weekday", "Monday")] {
        raw[field] = json!(value);
    }
    raw["hour"] = json!(10);
    let (lines, _) = exported(&[raw]);
    assert_eq!((lines[0].sku.as_str(), lines[0].category.as_str(), lines[0].receipt_id.as_str()), ("123", "7", "1001"));
    // What is not a plain integer is refused by validate, as the export would refuse it.
    for bad in [json!(1.5), json!(-3), json!(true), json!(["a"])] {
        let mut l = line("A", 10);
        l["sku"] = bad.clone();
        let err = landed(receipt(json!([l]))).unwrap_err();
        assert!(err.contains("lines[0].sku: expected a string"), "{bad}: {err}");
    }
}

fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..10_000, 0u32..4).prop_map(|(m, s)| Value::from_str_number(&Decimal::new(m, s).to_string())),
        prop::sample::select(vec![
            "50000000000000000000000000000",
            "99999999999999",
            "999999999999999.99",
            "1000000000000000",
            "-7",
            "1e400",
            "1e14",
            "123456789012345678901234567890.123456789",
            "0.0000000000000000000000000001",
        ])
        .prop_map(Value::from_str_number),
    ]
}

trait FromStrNumber {
    fn from_str_number(text: &str) -> Value;
}

impl FromStrNumber for Value {
    fn from_str_number(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }
}

fn hostile_text() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => "[A-Za-z0-9 =+-]{1,8}".prop_map(|s| Some(json!(s))),
        1 => (0u64..1000).prop_map(|n| Some(json!(n))),
        1 => Just(Some(json!(1.5))),
        1 => Just(Some(Value::Null)),
        1 => Just(None),
    ]
}

fn hostile_line() -> impl Strategy<Value = Value> {
    let overrides = prop::collection::vec(
        prop::sample::select(vec![
            ("receipt_id", json!("V1")),
            ("line_no", json!(0)),
            ("line_no", json!("own")),
            ("store_id", json!("S99999")),
            ("currency", json!("usd")),
            ("emitted_at", json!("9999-12-31T23:59:59Z")),
            ("loyalty_card", json!("LC")),
            ("line_total", json!(1)),
        ]),
        0..3,
    );
    (
        hostile_text(),
        hostile_text(),
        hostile_text(),
        hostile_number(),
        hostile_number(),
        prop::option::of(hostile_number()),
        overrides,
    )
        .prop_map(|(sku, name, category, quantity, unit_price, discount, overrides)| {
            let mut l = serde_json::Map::new();
            for (field, value) in [("sku", sku), ("name", name), ("category", category)] {
                if let Some(v) = value {
                    l.insert(field.into(), v);
                }
            }
            l.insert("quantity".into(), quantity);
            l.insert("unit_price".into(), unit_price);
            if let Some(d) = discount {
                l.insert("discount".into(), d);
            }
            for (field, value) in overrides {
                l.insert(field.into(), value);
            }
            Value::Object(l)
        })
}

fn hostile_receipt() -> impl Strategy<Value = Value> {
    let times = prop::sample::select(vec![
        "2026-11-23T10:15:00+01:00",
        "2026-11-23T23:59:59.999999999Z",
        "1970-01-01T00:00:00Z",
        "9998-12-31T23:59:59Z",
        "-009999-01-02T01:59:59Z",
        "9999-12-31T23:59:59Z",
        "2026-11-30T10:15:00+24:00",
    ]);
    (prop::collection::vec(hostile_line(), 1..6), times, prop::sample::select(vec![json!("X1"), json!(77)]))
        .prop_map(|(lines, at, id)| {
            json!({"receipt_id": id, "store_id": "S00042", "emitted_at": at, "currency": "EUR", "lines": lines})
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn issue_11_every_line_ingest_emits_is_written_by_the_export_exactly_once(
        receipts in prop::collection::vec(hostile_receipt(), 1..12)
    ) {
        let payloads: Vec<Vec<u8>> = receipts.iter().map(|r| serde_json::to_vec(r).unwrap()).collect();
        let out = sales_pipeline().land(payloads.iter().map(Vec::as_slice));
        prop_assert!(out.counts.balanced(), "{:?}", out.counts);
        let (mut read, mut rows, mut duplicates) = (0u64, 0u64, 0u64);
        for batch in &out.batches {
            let mut conversion = LandedConversion::new();
            let mut keys = BTreeSet::new();
            for line in batch.payload.split_inclusive(|&b| b == b'\n') {
                let record: Value = serde_json::from_slice(line).unwrap();
                keys.insert((record["receipt_id"].as_str().unwrap().to_string(), record["line_no"].as_u64().unwrap()));
                let added = conversion.add(line);
                prop_assert!(added.is_ok(), "the export rejected a line ingest landed: {:?}", added);
            }
            let converted = conversion.finish();
            read += converted.records_read;
            rows += converted.sales_rows;
            duplicates += converted.duplicates_dropped;
            prop_assert_eq!(converted.sales_rows, keys.len() as u64, "each distinct line once");
            let written: Vec<SalesLine> = read_rows(&converted.sales_lines[..], &COLUMNS)
                .unwrap()
                .map(|r| SalesLine::from_row(&r.unwrap()).unwrap())
                .collect();
            prop_assert!(written.iter().all(|l| ["X1", "77"].contains(&l.receipt_id.as_str()) && l.store_id == "S00042"));
            let written: BTreeSet<(String, u64)> =
                written.into_iter().map(|l| (l.receipt_id, u64::from(l.line_no))).collect();
            prop_assert_eq!(written, keys, "each distinct line once");
        }
        prop_assert_eq!(read, out.counts.outputs, "emitted at ingest = lines the export reads");
        prop_assert_eq!(rows + duplicates, out.counts.outputs, "= sales_lines rows before de-duplication");
    }
}

/// A hostile receipt, sometimes reshaped the ways a receipt's own fields can be wrong: `lines` missing, empty,
/// not an array or holding a non-object; prices as numeric or bad strings; ids as numbers; the training store
/// the sample pipeline drops.
fn hostile_shape() -> impl Strategy<Value = Value> {
    let reshape = prop::sample::select(vec![
        ("lines", None),
        ("lines", Some(json!([]))),
        ("lines", Some(json!("x"))),
        ("lines", Some(Value::Null)),
        ("lines", Some(json!([1, {"sku": "A", "name": "n", "category": "c", "quantity": 1, "unit_price": 2}]))),
        ("store_id", Some(json!("S00000"))),
        ("store_id", Some(json!(42))),
        ("currency", Some(json!("XXQ"))),
        ("emitted_at", Some(json!(1_700_000_000))),
        ("unit_price", Some(json!("19.99"))),
        ("unit_price", Some(json!("1e2"))),
        ("unit_price", Some(json!("abc"))),
        ("sku", Some(json!(12345))),
        ("name", Some(json!("é \"quoted\" \u{1}"))),
    ]);
    (hostile_receipt(), prop::collection::vec(reshape, 0..3)).prop_map(|(mut receipt, changes)| {
        for (field, value) in changes {
            let target = match field {
                "unit_price" | "sku" | "name" => receipt.get_mut("lines").and_then(|l| l.get_mut(0)),
                _ => Some(&mut receipt),
            };
            if let Some(object) = target.and_then(Value::as_object_mut) {
                match value {
                    Some(v) => object.insert(field.into(), v),
                    None => object.shift_remove(field),
                };
            }
        }
        receipt
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Issue 17: ingest's borrowed path (every step of the sample pipeline on slices of the payload) lands
    /// exactly what the `Value` path lands: the same counts, rejects with the same step and reason, and batches
    /// with the same bytes, compact or pretty-printed input alike.
    #[test]
    fn issue_17_the_borrowed_landing_is_the_value_landing(
        receipts in prop::collection::vec((hostile_shape(), any::<bool>()), 1..10)
    ) {
        let payloads: Vec<Vec<u8>> = receipts
            .iter()
            .map(|(r, pretty)| if *pretty { serde_json::to_vec_pretty(r) } else { serde_json::to_vec(r) }.unwrap())
            .collect();
        let fast = sales_pipeline().land(payloads.iter().map(Vec::as_slice));
        let slow = sales_pipeline().value_path_only().land(payloads.iter().map(Vec::as_slice));
        prop_assert_eq!(fast, slow);
    }
}

/// Issue 12: a receipt repeating a key is rejected at input, naming the key, on both ways of running it.
#[test]
fn issue_12_a_receipt_with_a_repeated_key_is_rejected() {
    let text = br#"{"receipt_id":"X1","store_id":"S00042","emitted_at":"2026-11-23T10:15:00+01:00","currency":"EUR","lines":[{"sku":"A","name":"n","category":"c","quantity":1,"unit_price":1,"unit_price":1000}]}"#;
    let pipeline = sales_pipeline();
    match pipeline.apply_json(text) {
        Outcome::Rejected(r) => {
            assert!(r.to_string().starts_with("input: invalid JSON: duplicate key \"unit_price\""), "{r}")
        }
        other => panic!("accepted: {other:?}"),
    }
    let mut out = Vec::new();
    assert!(matches!(pipeline.write_ndjson(text, &mut out), Outcome::Rejected(_)));
    assert!(out.is_empty());
}
