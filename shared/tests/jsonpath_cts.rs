//! The official RFC 9535 JSONPath compliance suite (703 cases), run against the engine the pipeline uses.
//! This is why salesflow uses `serde_json_path` and not `jsonpath-rust` (which fails 9 of these).

use salesflow_core::jsonpath::Query;
use serde_json::Value;

#[test]
fn every_compliance_case_passes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/jsonpath-cts/cts.json");
    let suite: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = suite["tests"].as_array().unwrap();
    assert_eq!(cases.len(), 703);
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let selector = case["selector"].as_str().unwrap();
        let compiled = Query::compile(selector);
        if case["invalid_selector"].as_bool() == Some(true) {
            if compiled.is_ok() {
                failures.push(format!("{name}: {selector:?} should be rejected"));
            }
            continue;
        }
        let query = match compiled {
            Ok(q) => q,
            Err(e) => {
                failures.push(format!("{name}: {selector:?} rejected: {e}"));
                continue;
            }
        };
        let got: Vec<Value> = query.select(&case["document"]).all().into_iter().cloned().collect();
        let got = Value::Array(got);
        let expected: Vec<&Value> = match (&case["result"], &case["results"]) {
            (Value::Array(_), _) => vec![&case["result"]],
            (_, Value::Array(options)) => options.iter().collect(),
            _ => panic!("{name}: no expected result"),
        };
        if !expected.iter().any(|e| same(e, &got)) {
            failures.push(format!("{name}: {selector:?} gave {got}, expected {}", expected[0]));
        }
    }
    assert!(failures.is_empty(), "{} of 703 cases failed:\n{}", failures.len(), failures.join("\n"));
}

/// JSON equality where numbers compare by value (`1` and `1.0` are the same node), as the suite intends.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
