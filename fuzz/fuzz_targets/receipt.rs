//! Bytes as a receipt → JSON parse → `Receipt::from_value` (every field validated). A receipt that validates
//! survives its own `to_value` unchanged; and the sample pipeline (which validates first) gives the same
//! outcome and bytes through `apply_json` and `write_ndjson`.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use salesflow_core::{Pipeline, Receipt};
use salesflow_fuzz::check_run_paths;

static PIPELINE: LazyLock<Pipeline> = LazyLock::new(salesflow_core::defaults::sales_pipeline);

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(receipt) = Receipt::from_value(&value)
    {
        let again = Receipt::from_value(&receipt.to_value(&receipt.emitted_at.to_string()));
        assert_eq!(again.as_ref(), Ok(&receipt), "a valid receipt changed through to_value");
    }
    check_run_paths(&PIPELINE, data);
});
