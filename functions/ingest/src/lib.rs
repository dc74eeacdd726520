//! The Kinesis-triggered ingest Lambda as a library: [`handle`] decodes a batch of Kinesis records (base64, KPL
//! aggregates, gzip), keeps a raw copy, runs the configured pipeline, lands its batches as zstd NDJSON and the
//! rejects as NDJSON through an [`salesflow_store::ObjectStore`], and reports the first record that is not
//! durably stored in `batchItemFailures`. The same code runs in Lambda (`main.rs`), in `salesflow invoke ingest`,
//! in the local event-source runner, and in `salesflow replay`, which reads raw copies back into events
//! ([`read_raw`]).

pub mod config;
pub mod decode;
pub mod event;
pub mod handler;
pub mod kpl;
pub mod metrics;
pub mod raw;

pub use aws_lambda_events::event::streams::KinesisEventResponse;
pub use config::{IngestConfig, StartupError};
pub use event::{StreamEvent, StreamRecord};
pub use handler::{BatchReport, Ingest, handle};
pub use lambda_runtime::{Context, LambdaEvent};
pub use metrics::{BatchMetrics, MetricsOutput};
pub use raw::{RawError, read_raw};
