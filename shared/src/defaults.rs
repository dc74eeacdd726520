//! The embedded defaults: the sample pipeline (`pipelines/sales.yaml`) and its stores table, compiled into the
//! binaries so the CLI and the functions work with no configuration at all.

use crate::pipeline::{Pipeline, PipelineConfig};
use crate::reference::EmbeddedResources;
use crate::transforms::DefaultTimeZone;

/// `pipelines/sales.yaml`.
pub const SALES_PIPELINE: &str = include_str!("../../pipelines/sales.yaml");
/// `pipelines/stores.csv`: the 10,000 generated stores.
pub const STORES_CSV: &str = include_str!("../../pipelines/stores.csv");

/// The files the embedded pipeline refers to.
pub const EMBEDDED_FILES: EmbeddedResources = EmbeddedResources(&[("stores.csv", STORES_CSV)]);

/// The sample pipeline, compiled (its `time_parts` names its zone, so no default zone applies).
pub fn sales_pipeline() -> Pipeline {
    sales_pipeline_with(&DefaultTimeZone::utc())
}

/// The sample pipeline, compiled with a deployment's default time zone, like any pipeline file.
pub fn sales_pipeline_with(time_zone: &DefaultTimeZone) -> Pipeline {
    PipelineConfig::parse(SALES_PIPELINE)
        .expect("the embedded pipeline parses")
        .compile_with(&EMBEDDED_FILES, time_zone)
        .expect("the embedded pipeline compiles")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::store_table_csv;

    #[test]
    fn the_shipped_stores_table_is_the_generated_one() {
        assert_eq!(STORES_CSV, store_table_csv(10_000));
    }

    #[test]
    fn the_sample_pipeline_compiles() {
        assert!(sales_pipeline().len() >= 4);
    }
}
