//! The export function: landed NDJSON → CSV datasets QuickSight imports, plus compaction and QuickSight
//! manifests. One function, two triggers:
//!
//! - S3 `ObjectCreated` notifications for `landed/` objects: each object becomes one `sales_lines` CSV and one
//!   `hourly_sales` CSV in the same hour partition, named after it ([`Exporter::export_object`]);
//! - an EventBridge schedule: closed hours are compacted, the open hour's `hourly_sales` pieces rolled up into
//!   one file (unless `SALESFLOW_ROLLUP_OPEN_HOURS=false`), and the manifests rewritten
//!   ([`Exporter::run_scheduled`]).
//!
//! The CSV rows, manifests and compaction plans are pure functions of `salesflow-core`; this crate reads and
//! writes through [`ObjectStore`] and never reads the clock: callers pass `now` (only `main` reads it).

mod config;
mod event;
mod export;
mod scheduled;

use jiff::Timestamp;
use salesflow_store::{ObjectStore, StoreError};
use serde::Serialize;
use serde_json::Value;

pub use config::ExportConfig;
pub use event::{Incoming, ObjectCreated, classify, decode_key};
pub use export::{MAX_LINE_BYTES, ObjectSummary};
pub use salesflow_core::emf::{MetricSet, MetricsOutput};

/// The `Function` dimension of the export's metrics.
pub const FUNCTION: &str = "export";
pub use scheduled::{CompactedHour, RolledUpHour, ScheduledSummary};

/// Why an invocation fails. Every variant is returned as `Err` so Lambda retries the event (S3 notifications
/// and schedules are asynchronous invocations: two retries, then the failure destination).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Throttling, a 5xx, a timeout: the retry will likely succeed.
    #[error("transient store failure: {0}")]
    Transient(StoreError),
    /// Access denied, a missing bucket: needs an operator, fails loudly.
    #[error("store failure: {0}")]
    Permanent(StoreError),
    /// A payload that is none of the events this function handles.
    #[error("unrecognized event: {0}")]
    UnknownEvent(String),
}

impl HandlerError {
    pub fn is_transient(&self) -> bool {
        matches!(self, HandlerError::Transient(_))
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match e {
            HandlerError::Transient(_) => "Transient",
            HandlerError::Permanent(_) => "Permanent",
            HandlerError::UnknownEvent(_) => "UnknownEvent",
        };
        lambda_runtime::Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() { HandlerError::Transient(e) } else { HandlerError::Permanent(e) }
    }
}

/// What one invocation did: returned to Lambda (and printed by `salesflow invoke export`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub kind: &'static str,
    pub objects: Vec<ObjectSummary>,
    pub skipped: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<ScheduledSummary>,
}

/// The export function: a store and its configuration. Build it once per process.
pub struct Exporter<S> {
    store: S,
    config: ExportConfig,
    metrics: MetricsOutput,
}

impl<S: ObjectStore> Exporter<S> {
    pub fn new(store: S, config: ExportConfig) -> Self {
        Exporter { store, config, metrics: MetricsOutput::Stdout }
    }

    /// Where EMF metric lines go (stdout by default).
    pub fn with_metrics_output(mut self, output: MetricsOutput) -> Self {
        self.metrics = output;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn config(&self) -> &ExportConfig {
        &self.config
    }

    /// Handles any payload the function receives, `now` being the invocation's time.
    pub async fn handle(&self, payload: &Value, now: Timestamp) -> Result<Summary, HandlerError> {
        match classify(payload).map_err(HandlerError::UnknownEvent)? {
            Incoming::TestEvent => {
                tracing::info!(event = "s3:TestEvent", "skipped an S3 test event");
                Ok(Summary { kind: "s3:TestEvent", ..Summary::default() })
            }
            Incoming::Scheduled => {
                let scheduled = self.run_scheduled(now).await?;
                Ok(Summary { kind: "scheduled", scheduled: Some(scheduled), ..Summary::default() })
            }
            Incoming::Objects { created, mut skipped } => {
                for s in &skipped {
                    tracing::info!(record = %s, "skipped a notification record");
                }
                let mut objects = Vec::new();
                for object in &created {
                    match self.export_object(&object.bucket, &object.key, Some(object.event_time), now).await? {
                        Some(summary) => objects.push(summary),
                        None => skipped.push(format!("{}: not a landed object", object.key)),
                    }
                }
                Ok(Summary { kind: "s3", objects, skipped, scheduled: None })
            }
        }
    }

    /// A metric set of this function, with its `Stage` (`SALESFLOW_STAGE`) and `Function` dimensions.
    fn metric_set(&self) -> MetricSet {
        MetricSet::new(&self.config.stage, FUNCTION)
    }

    fn emit(&self, sets: &[MetricSet], now: Timestamp) {
        self.metrics.emit(sets, now);
    }
}
