//! A whole Kinesis event as JSON → the ingest handler (envelope, base64, KPL, gzip, the sample pipeline,
//! landing) over an in-memory store. No panic; every Kinesis record has an outcome; see `check_batch`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salesflow_fuzz::process_and_check;
use salesflow_ingest::StreamEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<StreamEvent>(data) else { return };
    process_and_check(event, None);
});
