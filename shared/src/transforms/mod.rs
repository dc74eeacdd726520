//! The pipeline's steps: one module per transform, each with its config struct, a `compile` that validates it
//! once, its `apply` and its tests. [`StepConfig`] is the closed, serde-tagged list of steps a pipeline file may
//! name; each compiles into a [`Transform`]. Adding a step is one module, one variant and one match arm.

pub mod combiner;
pub mod filter;
pub mod map;
pub mod splitter;
pub mod validate;

use jiff::tz::TimeZone;
use serde::Deserialize;
use serde_json::Value;

use crate::borrowed::BorrowedTransform;
use crate::error::{ConfigError, RecordError};
use crate::reference::Resources;

/// One step of a pipeline, as written in the pipeline file (`- filter: {path: ...}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepConfig {
    /// Keep (or drop) records a JSONPath query selects something in.
    Filter(filter::FilterConfig),
    /// One record per element a JSONPath query selects, with parent fields carried into each.
    Splitter(splitter::SplitterConfig),
    /// Business logic: computed fields, renames, drops, time parts, reference lookups.
    Map(map::MapConfig),
    /// Check records against the receipt model; invalid ones are rejected with the reason.
    Validate(validate::ValidateConfig),
    /// Gather records into batches grouped by event hour; must be the last step.
    Combiner(combiner::CombinerConfig),
}

impl StepConfig {
    /// The step's name as written in pipeline files.
    pub fn kind(&self) -> &'static str {
        match self {
            StepConfig::Filter(_) => "filter",
            StepConfig::Splitter(_) => "splitter",
            StepConfig::Map(_) => "map",
            StepConfig::Validate(_) => "validate",
            StepConfig::Combiner(_) => "combiner",
        }
    }
}

/// What a compiled step does to one record: push zero (filtered), one, or many records to `out`, or reject it.
pub trait Transform: Send + Sync + std::fmt::Debug {
    fn apply(&self, record: Value, out: &mut Vec<Value>) -> Result<(), RecordError>;

    /// One line for `salesflow pipeline check`'s plan.
    fn describe(&self) -> String;

    /// The same step on borrowed records (the fast path of `salesflow transform`), when this step, as
    /// configured, has one.
    fn borrowed(&self) -> Option<&dyn BorrowedTransform> {
        None
    }
}

/// What compiling a step needs: where files come from, the deployment's default time zone, and the prefix of
/// error paths (`pipeline[2].map`).
pub struct CompileContext<'a> {
    pub resources: &'a dyn Resources,
    /// The zone of a `time_parts` op that names none; a zone written in the file always wins.
    pub time_zone: &'a DefaultTimeZone,
    pub path: String,
}

/// The deployment's time zone, given to the compiler by whoever reads the configuration (the functions and the
/// CLI: `SALESFLOW_TIME_ZONE`); the core reads no environment. `source` says where it came from, for the plan
/// (`in Europe/Paris (default zone, from SALESFLOW_TIME_ZONE)`). Compiling without one
/// ([`PipelineConfig::compile`](crate::PipelineConfig::compile)) uses [`DefaultTimeZone::utc`].
#[derive(Debug, Clone)]
pub struct DefaultTimeZone {
    /// The IANA name, as given.
    pub name: String,
    pub zone: TimeZone,
    /// Where the zone came from: `SALESFLOW_TIME_ZONE`, `--time-zone`, ...
    pub source: String,
}

impl DefaultTimeZone {
    /// The zone named `name` (an IANA name, looked up in the bundled database), from `source`.
    pub fn new(name: &str, source: impl Into<String>) -> Result<DefaultTimeZone, String> {
        let zone = TimeZone::get(name)
            .map_err(|_| format!("unknown time zone {name:?} (use an IANA name such as Europe/Paris)"))?;
        Ok(DefaultTimeZone { name: name.to_string(), zone, source: source.into() })
    }

    /// UTC: the zone used when the caller gives none.
    pub fn utc() -> DefaultTimeZone {
        DefaultTimeZone { name: "UTC".into(), zone: TimeZone::UTC, source: "the built-in fallback".into() }
    }
}

impl Default for DefaultTimeZone {
    fn default() -> DefaultTimeZone {
        DefaultTimeZone::utc()
    }
}

impl CompileContext<'_> {
    /// A configuration error at `<path>.<field>`.
    pub fn error(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let path = if field.is_empty() { self.path.clone() } else { format!("{}.{field}", self.path) };
        ConfigError::new(path, message)
    }
}
