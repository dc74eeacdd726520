//! Issue 11's regression tests across both functions' core: a receipt goes through the sample pipeline (what
//! ingest lands), each landed record is read as the export reads it (`SalesLine::from_record`), de-duplicated
//! and summed into `hourly_sales`. What ingest emits must be what the export writes, with the receipt's identity.

use rust_decimal::Decimal;
use salesflow_core::Outcome;
use salesflow_core::datasets::hourly_sales::HourlyAggregator;
use salesflow_core::datasets::sales_lines::{Deduper, SalesLine};
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
