//! [`StoreError`]: what went wrong with a store operation, split by whether retrying can help.

use salesflow_core::keys::ObjectLocation;

/// A failed store operation: what it was, where (the key, or the prefix for a listing), and why.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{op} {location}: not found")]
    NotFound { op: &'static str, location: ObjectLocation },
    /// Throttling, a 5xx, a timeout, a dropped connection: the same call may succeed later.
    #[error("{op} {location}: {message} (transient)")]
    Transient { op: &'static str, location: ObjectLocation, message: String },
    /// Access denied, a missing bucket, an invalid key: retrying the same call fails the same way.
    #[error("{op} {location}: {message}")]
    Permanent { op: &'static str, location: ObjectLocation, message: String },
}

impl StoreError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}
