//! The ingest Lambda: JSON logs, configuration and pipeline read once, the S3 client built once, then the
//! runtime calls [`salesflow_ingest::handle`] for every Kinesis batch. A bad configuration is one JSON error line
//! naming the variable, then exit status 1 (Lambda reports `Runtime.ExitError` and retries the batch).

use lambda_runtime::{Error, service_fn};
use salesflow_ingest::{Ingest, IngestConfig, handle};
use salesflow_store::S3Store;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_current_span(true)
        .without_time()
        .init();
    let (pipeline, config) =
        IngestConfig::from_env().and_then(|c| Ok((c.compile_pipeline()?, c))).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cold start failed: bad configuration");
            std::process::exit(1)
        });
    tracing::info!(bucket = %config.settings.bucket, pipeline = ?config.pipeline_file, stage = %config.settings.stage, "ingest configured");
    let ingest = Ingest::new(S3Store::from_env().await, config.settings, pipeline);
    lambda_runtime::run(service_fn(|event| handle(&ingest, event))).await
}
