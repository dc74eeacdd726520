//! The export Lambda: S3 notifications for `landed/` objects and an EventBridge schedule, one handler. A bad
//! configuration is one JSON error line naming the variable, then exit status 1 (Lambda: `Runtime.ExitError`).

use lambda_runtime::{LambdaEvent, service_fn};
use salesflow_export::{ExportConfig, Exporter};
use salesflow_store::S3Store;
use serde_json::Value;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_current_span(false)
        .without_time()
        .init();
    let config = ExportConfig::from_vars(&|name| std::env::var(name).ok()).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cold start failed: bad configuration");
        std::process::exit(1)
    });
    tracing::info!(bucket = %config.bucket, stage = %config.stage, "export configured");
    let exporter = Exporter::new(S3Store::from_env().await, config);
    let exporter = &exporter;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let summary = exporter.handle(&event.payload, jiff::Timestamp::now()).await?;
        Ok::<_, salesflow_export::HandlerError>(serde_json::to_value(summary).expect("a summary serializes"))
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
