//! Property tests of the engine's invariants: every input has exactly one outcome (counts add up, whatever the
//! bytes), decimal line totals are exact, splitting loses no line, the combiner loses or invents no record, and
//! a filter only ever drops, and the borrowed fast path (`write_ndjson`) writes what the `Value` path writes.

use proptest::prelude::*;
use rust_decimal::Decimal;
use salesflow_core::defaults::sales_pipeline;
use salesflow_core::reference::EmbeddedResources;
use salesflow_core::{Outcome, PipelineConfig, Receipt};
use serde_json::{Value, json};

fn decimal_text() -> impl Strategy<Value = String> {
    (-99_999i64..99_999, 0u32..4).prop_map(|(m, scale)| Decimal::new(m, scale).to_string())
}

fn line() -> impl Strategy<Value = Value> {
    (
        decimal_text(),
        (0i64..99_999, 0u32..3),
        proptest::option::of((0i64..500, 0u32..3)),
        any::<bool>(),
        "[a-zA-Z,\"é=+-][a-zA-Z ,\"é=+-]{0,11}",
    )
        .prop_map(|(q, (p, ps), d, as_string, name)| {
            let price = Decimal::new(p, ps).to_string();
            let number = |t: &str| -> Value { serde_json::from_str(t).unwrap() };
            let mut l = json!({"sku": "SKU-1", "name": name, "category": "Dairy",
                "quantity": number(&q), "unit_price": if as_string { json!(price) } else { number(&price) }});
            if let Some((m, s)) = d {
                // A discount is at most the line's gross amount (validation refuses more).
                let gross = (q.parse::<Decimal>().unwrap() * Decimal::new(p, ps)).abs();
                l["discount"] = number(&Decimal::new(m, s).min(gross).to_string());
            }
            l
        })
}

fn receipt() -> impl Strategy<Value = Value> {
    (proptest::collection::vec(line(), 1..12), 1u32..=10_000, 0u32..86_400).prop_map(|(lines, store, second)| {
        json!({"receipt_id": format!("R-{store}-{second}"), "store_id": format!("S{store:05}"),
            "emitted_at": format!("2026-11-23T{:02}:{:02}:{:02}+01:00", second / 3600, second / 60 % 60, second % 60),
            "currency": "EUR", "lines": lines})
    })
}

/// Arbitrary payloads: receipts, receipts with a field broken, and plain garbage.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        receipt().prop_map(|r| serde_json::to_vec(&r).unwrap()),
        (receipt(), "[a-z_]{1,10}", any::<u8>()).prop_map(|(mut r, field, n)| {
            r[field] = json!(n);
            if n % 3 == 0 {
                r.as_object_mut().unwrap().remove("emitted_at");
            }
            serde_json::to_vec(&r).unwrap()
        }),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<String>().prop_map(|s| json!({"text": s}).to_string().into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn counts_always_add_up(payloads in proptest::collection::vec(payload(), 0..20)) {
        let pipeline = sales_pipeline();
        let out = pipeline.run(payloads.iter().map(Vec::as_slice));
        prop_assert!(out.counts.balanced(), "{:?}", out.counts);
        prop_assert_eq!(out.counts.records_in, payloads.len() as u64);
        prop_assert_eq!(out.rejects.len() as u64, out.counts.rejected);
        let batched: usize = out.batches.iter().map(|b| b.records).sum();
        prop_assert_eq!(batched as u64, out.counts.outputs);
    }

    #[test]
    fn line_totals_are_exact_decimals(r in receipt()) {
        let expected = Receipt::from_value(&r).unwrap();
        let Outcome::Emitted(lines) = sales_pipeline().apply(r) else { panic!("a valid receipt is emitted") };
        prop_assert_eq!(lines.len(), expected.lines.len(), "one record per line");
        let mut sum = Decimal::ZERO;
        for (line, model) in lines.iter().zip(&expected.lines) {
            let total: Decimal = line["line_total"].to_string().parse().unwrap();
            prop_assert_eq!(Some(total), model.total());
            sum += total;
        }
        prop_assert_eq!(Some(sum), expected.total());
    }

    #[test]
    fn combining_keeps_every_record_once(receipts in proptest::collection::vec(receipt(), 1..30), max_records in 1usize..50) {
        let text = format!("pipeline:\n  - splitter: {{path: \"$.lines[*]\", carry: [receipt_id, emitted_at], index_field: line_no}}\n  - combiner: {{time_field: emitted_at, max_records: {max_records}, max_bytes: 4096}}\n");
        let pipeline = PipelineConfig::parse(&text).unwrap().compile(&EmbeddedResources(&[])).unwrap();
        let payloads: Vec<Vec<u8>> = receipts.iter().map(|r| serde_json::to_vec(r).unwrap()).collect();
        let out = pipeline.run(payloads.iter().map(Vec::as_slice));
        let mut seen: Vec<(String, u64)> = Vec::new();
        for b in &out.batches {
            prop_assert!(b.records <= max_records);
            let records: Vec<Value> = b.payload.split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
            prop_assert_eq!(records.len(), b.records);
            for r in records {
                seen.push((r["receipt_id"].as_str().unwrap().to_string(), r["line_no"].as_u64().unwrap()));
            }
        }
        let mut expected: Vec<(String, u64)> = receipts.iter().flat_map(|r| {
            let id = r["receipt_id"].as_str().unwrap().to_string();
            (0..r["lines"].as_array().unwrap().len() as u64).map(move |i| (id.clone(), i))
        }).collect();
        seen.sort();
        expected.sort();
        prop_assert_eq!(seen, expected);
    }

    #[test]
    fn a_filter_only_drops(receipts in proptest::collection::vec(receipt(), 0..20), limit in 0i64..2000) {
        let text = format!("pipeline:\n  - validate: {{}}\n  - filter: {{path: \"$.lines[?@.unit_price < {limit}]\"}}\n");
        let pipeline = PipelineConfig::parse(&text).unwrap().compile(&EmbeddedResources(&[])).unwrap();
        for r in receipts {
            let cheapest = Receipt::from_value(&r).unwrap().lines.iter().map(|l| l.unit_price).min().unwrap();
            match pipeline.apply(r.clone()) {
                Outcome::Emitted(out) => {
                    prop_assert_eq!(out.len(), 1);
                    prop_assert_eq!(&out[0]["receipt_id"], &r["receipt_id"]);
                    prop_assert!(cheapest < Decimal::from(limit));
                }
                Outcome::Filtered { step } => {
                    prop_assert_eq!(step, 1);
                    prop_assert!(cheapest >= Decimal::from(limit));
                }
                Outcome::Rejected(r) => prop_assert!(false, "valid receipt rejected: {r}"),
            }
        }
    }

    #[test]
    fn the_borrowed_path_writes_what_the_value_path_writes(
        payloads in proptest::collection::vec(prop_oneof![payload(), spaced_payload()], 0..20),
        limit in 0i64..2000,
        drop in any::<bool>(),
        index in any::<bool>(),
        then_map in any::<bool>(),
    ) {
        let mode = if drop { "drop" } else { "keep" };
        let index_field = if index { ", index_field: line_no" } else { "" };
        let map = if then_map { "\n  - map: [{set: {field: twice, expr: \"unit_price * 2\"}}]" } else { "" };
        let text = format!("pipeline:\n  - splitter: {{path: \"$.lines[*]\", carry: [receipt_id, store_id]{index_field}}}\n  \
            - filter: {{where: \"@.unit_price < {limit}\", mode: {mode}}}{map}");
        let pipeline = PipelineConfig::parse(&text).unwrap().compile(&EmbeddedResources(&[])).unwrap();
        for payload in &payloads {
            let mut written = Vec::new();
            let fast = pipeline.write_ndjson(payload, &mut written);
            let mut expected = Vec::new();
            let slow = match pipeline.apply_json(payload) {
                Outcome::Emitted(records) => {
                    for r in &records {
                        serde_json::to_writer(&mut expected, r).unwrap();
                        expected.push(b'\n');
                    }
                    Outcome::Emitted(records.len())
                }
                Outcome::Filtered { step } => Outcome::Filtered { step },
                Outcome::Rejected(r) => Outcome::Rejected(r),
            };
            prop_assert_eq!(fast, slow);
            prop_assert_eq!(String::from_utf8_lossy(&written), String::from_utf8_lossy(&expected));
        }
    }
}

/// A receipt written the way other producers write JSON: pretty-printed with escaped non-ASCII, so the borrowed
/// path sees whitespace inside values and escapes it must not copy as they are.
fn spaced_payload() -> impl Strategy<Value = Vec<u8>> {
    receipt().prop_map(|r| {
        let pretty = serde_json::to_string_pretty(&r).unwrap();
        pretty
            .chars()
            .map(|c| if c.is_ascii() { c.to_string() } else { format!("\\u{:04x}", c as u32) })
            .collect::<String>()
            .into_bytes()
    })
}
