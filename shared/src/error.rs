//! Errors of the core, split the way the handlers need them: a [`ConfigError`] stops a function at cold start,
//! a [`RecordError`] is poison for one record only (it is rejected with its reason, the batch goes on).

use std::fmt;

/// A pipeline or reference-table configuration error, naming where it is (`pipeline[2].splitter.path`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Where the error is, e.g. `pipeline[2].splitter.path`.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

/// One problem found in one field of a record: `lines[3].unit_price: expected a decimal, found "abc"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// Why a record cannot go through a step. Always poison: retrying the same record gives the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The payload is not JSON (or not UTF-8).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The record is JSON but one or more of its fields are wrong.
    #[error("{}", join_fields(.0))]
    InvalidFields(Vec<FieldError>),
}

impl RecordError {
    /// A record error about one field.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        RecordError::InvalidFields(vec![FieldError { path: path.into(), message: message.into() }])
    }
}

fn join_fields(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// A rejected record: which step rejected it and why. `step` is `None` when the payload could not be decoded
/// (`step_kind` `input`) or an output broke the landed-line contract (`contract`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {error}", self.step_label())]
pub struct Rejection {
    pub step: Option<usize>,
    pub step_kind: &'static str,
    pub error: RecordError,
}

impl Rejection {
    /// `pipeline[2].validate`; without a step index, the kind alone: `input` for a payload that never reached a
    /// step, `contract` for an output the export could not read.
    pub fn step_label(&self) -> String {
        match self.step {
            Some(i) => format!("pipeline[{i}].{}", self.step_kind),
            None => self.step_kind.to_string(),
        }
    }
}
