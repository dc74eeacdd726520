//! A whole Kinesis event as JSON → the ingest handler (envelope, base64, KPL, gzip, the sample pipeline,
//! landing) over an in-memory store. No panic; every Kinesis record has an outcome; see `check_batch`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salesflow_fuzz::{block_on, check_batch, ingest, now};
use salesflow_ingest::StreamEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<StreamEvent>(data) else { return };
    let ingest = ingest();
    let report = block_on(ingest.process(event, now()));
    check_batch(&ingest, &report, None);
});
