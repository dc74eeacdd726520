//! Pipeline text (YAML, or JSON when it starts with `{`) → `PipelineConfig::parse` → compile (against the
//! embedded `stores.csv`) → run on sample records: no panic, balanced counts, and the same outcome and bytes
//! through `apply_json` and `write_ndjson`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salesflow_core::PipelineConfig;
use salesflow_core::defaults::EMBEDDED_FILES;
use salesflow_fuzz::{SAMPLES, check_run_paths};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = PipelineConfig::parse(text) else { return };
    let Ok(pipeline) = config.compile(&EMBEDDED_FILES) else { return };
    let _ = pipeline.plan();
    let payloads: Vec<Vec<u8>> = SAMPLES.iter().map(|v| serde_json::to_vec(v).expect("serializes")).collect();
    for p in &payloads {
        check_run_paths(&pipeline, p);
    }
    let out = pipeline.run(payloads.iter().map(Vec::as_slice));
    assert!(out.counts.balanced(), "{:?}", out.counts);
    assert_eq!(out.counts.records_in, payloads.len() as u64);
});
