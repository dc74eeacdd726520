//! A JSONPath query and a JSON document → `Query::compile` → `select` and `select_pointers`: no panic, and
//! as many pointers as nodes, each pointing at the node selected in its place. Input: the query, then
//! optionally a NUL byte and the document (the sample records when absent or not JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use salesflow_core::jsonpath::Query;
use salesflow_fuzz::SAMPLES;

fuzz_target!(|data: &[u8]| {
    let (query, document) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(query) = std::str::from_utf8(query) else { return };
    let Ok(query) = Query::compile(query) else { return };
    let parsed = document.and_then(|d| serde_json::from_slice::<serde_json::Value>(d).ok());
    let documents: Vec<&serde_json::Value> = match &parsed {
        Some(d) => vec![d],
        None => SAMPLES.iter().collect(),
    };
    for document in documents {
        let nodes = query.select(document).all();
        let pointers = query.select_pointers(document);
        assert_eq!(nodes.len(), pointers.len(), "nodes and pointers of {:?}", query.as_str());
        for (node, pointer) in nodes.iter().zip(&pointers) {
            assert_eq!(document.pointer(pointer), Some(*node), "pointer {pointer}");
        }
    }
});
