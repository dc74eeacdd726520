//! The landed-line contract at ingest: an input whose output the export could not read as a sales line is
//! rejected here, into `rejects/`, with step `contract` and the reason naming the field, and nothing of it lands.

mod common;

use common::*;
use salesflow_core::PipelineConfig;
use salesflow_core::defaults::EMBEDDED_FILES;
use salesflow_ingest::Ingest;
use salesflow_store::testing::MemoryStore;

#[tokio::test]
async fn an_output_the_export_cannot_read_is_rejected_at_ingest_naming_the_field() {
    // The sample pipeline, but its map drops `category` from every line.
    let text =
        salesflow_core::defaults::SALES_PIPELINE.replace("fields: [promotion_id]", "fields: [promotion_id, category]");
    let pipeline = PipelineConfig::parse(&text).unwrap().compile(&EMBEDDED_FILES).unwrap();
    let ingest = Ingest::new(MemoryStore::new(), settings(), pipeline);
    let payloads = receipts(3, 4, 1, false);
    let report = run(&ingest, &event(&payloads)).await;
    let counts = &report.metrics.counts;
    assert_eq!((counts.records_in, counts.emitted, counts.rejected), (4, 0, 4));
    assert_eq!(counts.rejected_by.get("contract"), Some(&4));
    let contents = contents(ingest.store());
    assert!(landed_line_ids(&contents).is_empty(), "nothing lands");
    let rejects = reject_lines(&contents);
    assert_eq!(rejects.len(), 4);
    for r in &rejects {
        assert_eq!(r["step"], "contract");
        assert_eq!(r["reason"], "category: missing");
    }
}
