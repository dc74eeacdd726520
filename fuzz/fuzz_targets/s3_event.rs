//! S3 notification keys and events. The bytes as a URL-encoded key → `decode_key`, which must round-trip
//! through S3's own encoding; the bytes as an event (S3 notification, `s3:TestEvent`, schedule) →
//! `Exporter::handle` over an in-memory store holding one landed object (the one of `events/s3-put.json`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use salesflow_export::decode_key;
use salesflow_fuzz::{block_on, exporter, now};
use salesflow_store::{Bytes, ObjectStore};

const BUCKET: &str = "salesflow-data";
const KEY: &str = "landed/dt=2026-11-23/hour=08/shardId-000000000001-49590338271490256608559692538361571095921575989136588818-49590338271490256608559692540925702759324208523137515618-0.ndjson.gz";
const LINE: &str = r#"{"receipt_id":"S00001-1","line_no":1,"store_id":"S00001","emitted_at":"2026-11-23T08:01:48Z","date":"2026-11-23","hour":8,"weekday":"Monday","category":"Bakery","sku":"SKU-1","name":"Baguette","quantity":2,"unit_price":1.1,"line_total":2.2,"currency":"EUR"}"#;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = std::str::from_utf8(data)
        && let Some(key) = decode_key(raw)
    {
        let encoded: String = form_urlencoded::byte_serialize(key.as_bytes()).collect();
        assert_eq!(decode_key(&encoded).as_deref(), Some(key.as_str()), "S3's encoding of {key:?} is {encoded:?}");
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let exporter = exporter();
    block_on(async {
        exporter
            .store()
            .put(BUCKET, KEY, Bytes::from(format!("{LINE}\n")), "application/x-ndjson")
            .await
            .expect("in memory");
        let _ = exporter.handle(&payload, now()).await;
    });
});
