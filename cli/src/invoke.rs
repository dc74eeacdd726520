//! `salesflow invoke <function> --event FILE [--store DIR]`: runs a function's handler in-process on a Lambda
//! event file, against S3 (endpoint and credentials from the usual AWS environment, so LocalStack works) or a
//! local directory laid out like buckets. Prints the handler's JSON response; EMF metric lines go to stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use salesflow_ingest::{Context, Ingest, IngestConfig, LambdaEvent, MetricsOutput, StreamEvent, handle};
use salesflow_store::AnyStore;

#[derive(Args)]
pub struct InvokeArgs {
    #[command(subcommand)]
    function: Function,
}

#[derive(Subcommand)]
enum Function {
    /// Run the ingest handler on a Kinesis event (events/kinesis-*.json): land batches, rejects, raw copy.
    Ingest(StoreArgs),
    /// Run the export handler on an S3 notification (events/s3-*.json) or a scheduled event
    /// (events/eventbridge-scheduled.json): landed objects to CSV datasets; compaction and manifests.
    Export(StoreArgs),
}

/// What every `invoke` takes.
#[derive(Args)]
struct StoreArgs {
    /// The Lambda event file.
    #[arg(long)]
    event: PathBuf,
    /// A local directory of buckets (`DIR/<bucket>/<key>`). Without it: `SALESFLOW_STORE_DIR`, else S3 when
    /// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID` or `AWS_PROFILE` is set, else ./salesflow-data.
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
}

pub fn run(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    crate::logs::init_stderr();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match args.function {
        Function::Ingest(args) => runtime.block_on(ingest(&args.event, args.store.as_deref())),
        Function::Export(args) => runtime.block_on(export(&args.event, args.store.as_deref())),
    }
}

async fn ingest(event_file: &Path, store_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = IngestConfig::from_env()?;
    let pipeline = config.compile_pipeline()?;
    let text = std::fs::read(event_file).with_context(|| format!("cannot read {}", event_file.display()))?;
    let event: StreamEvent =
        serde_json::from_slice(&text).with_context(|| format!("{}: not a Kinesis event", event_file.display()))?;
    let store = AnyStore::from_env(store_dir).await;
    eprintln!("ingest: {} records into bucket {} ({})", event.records.len(), config.settings.bucket, store.describe());
    let ingest = Ingest::new(store, config.settings, pipeline).with_metrics_output(MetricsOutput::Stderr);
    let Ok(response) = handle(&ingest, LambdaEvent::new(event, Context::default())).await;
    println!("{}", serde_json::to_string_pretty(&response)?);
    Ok(ExitCode::SUCCESS)
}

async fn export(event_file: &Path, store_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = salesflow_export::ExportConfig::from_vars(&|name| std::env::var(name).ok())?;
    let text = std::fs::read(event_file).with_context(|| format!("cannot read {}", event_file.display()))?;
    let payload: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{}: not JSON", event_file.display()))?;
    let store = AnyStore::from_env(store_dir).await;
    eprintln!("export: bucket {} ({})", config.bucket, store.describe());
    let exporter =
        salesflow_export::Exporter::new(store, config).with_metrics_output(salesflow_export::MetricsOutput::Stderr);
    let summary = exporter.handle(&payload, jiff::Timestamp::now()).await?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(ExitCode::SUCCESS)
}
