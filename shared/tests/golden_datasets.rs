//! Golden datasets: what the export writes for what ingest lands, byte for byte. Each case runs a pipeline over
//! its input as ingest does ([`Pipeline::run`]: outcomes, then batches by event hour), treats every batch as one
//! landed object, converts it as the export does, and compares the concatenated `sales_lines` and
//! `hourly_sales` files (one header per landed object) with `expected.sales_lines.csv` and
//! `expected.hourly_sales.csv`. Cases: the sample events (`events/receipts.ndjson` through
//! `pipelines/sales.yaml`, expected files in `tests/datasets/sample/`) and the `tests/golden/sales` case.
//! `UPDATE_GOLDEN=1 cargo test -p salesflow-core --test golden_datasets` rewrites them: review the diff.

use std::path::{Path, PathBuf};

use salesflow_core::PipelineConfig;
use salesflow_core::datasets::landed::LandedConversion;
use salesflow_core::reference::DirResources;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The export's conversion of one landed object: (sales_lines CSV, hourly_sales CSV).
fn export(landed: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut conversion = LandedConversion::new();
    for line in landed.split_inclusive(|&b| b == b'\n') {
        conversion.add(line).expect("a landed line reads back");
    }
    let converted = conversion.finish();
    (converted.sales_lines, converted.hourly_sales)
}

fn run_case(pipeline_file: &Path, input: &Path, expected_dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(pipeline_file).unwrap();
    let dir = pipeline_file.parent().unwrap().to_path_buf();
    let pipeline = PipelineConfig::parse(&text).unwrap().compile(&DirResources(dir)).unwrap();
    let input = std::fs::read(input).unwrap();
    let output = pipeline.run(input.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()));
    assert!(!output.batches.is_empty(), "{}: nothing landed", expected_dir.display());
    let (mut sales, mut hourly) = (Vec::new(), Vec::new());
    for batch in &output.batches {
        let (s, h) = export(&batch.payload);
        sales.extend(s);
        hourly.extend(h);
    }
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for (file, got) in [("expected.sales_lines.csv", sales), ("expected.hourly_sales.csv", hourly)] {
        let path = expected_dir.join(file);
        if update {
            std::fs::write(&path, &got).unwrap();
        } else if std::fs::read(&path).unwrap_or_default() != got {
            mismatches.push(format!("{} differs; got:\n{}", path.display(), String::from_utf8_lossy(&got)));
        }
    }
    mismatches
}

#[test]
fn sample_events_give_the_golden_datasets() {
    let root = root();
    let mismatches = run_case(
        &root.join("pipelines/sales.yaml"),
        &root.join("events/receipts.ndjson"),
        &root.join("tests/datasets/sample"),
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_golden_sales_case_gives_the_golden_datasets() {
    let dir = root().join("tests/golden/sales");
    let mismatches = run_case(&dir.join("pipeline.yaml"), &dir.join("input.jsonl"), &dir);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
