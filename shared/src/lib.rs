//! salesflow's pure core: the receipt model, pipeline configuration, the transform engine, reference tables,
//! synthetic data, and (for the Lambdas) key formats, CSV rows and QuickSight manifests. No AWS SDK, no async
//! runtime, no clock reads: time and files are passed in, so everything here is testable with plain values.

pub mod borrowed;
pub mod compaction;
pub mod contract;
pub mod datasets;
pub mod decimal;
pub mod defaults;
pub mod emf;
pub mod error;
pub mod expr;
pub mod generate;
pub mod instant;
pub mod json;
pub mod jsonpath;
pub mod keys;
pub mod manifest;
pub mod pipeline;
pub mod receipt;
pub mod reference;
pub mod transforms;
pub mod view;

pub use error::{ConfigError, FieldError, RecordError, Rejection};
pub use pipeline::{Counts, Outcome, Pipeline, PipelineConfig, RunOutput};
pub use receipt::{Receipt, ReceiptLine};
pub use transforms::DefaultTimeZone;
