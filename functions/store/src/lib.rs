//! The object store both salesflow functions write through: a small async trait ([`ObjectStore`]) with an S3
//! implementation ([`S3Store`]), a local-directory one laid out like buckets ([`LocalStore`], `DIR/<bucket>/<key>`)
//! and [`AnyStore`], the one a command line picks at run time. Errors say whether retrying can help
//! ([`StoreError::is_transient`]). [`Settings`] reads the environment variables both functions share.
//! [`codec`] is how `raw/` and `landed/` objects are compressed. `S3Store` and `AnyStore` need the default feature `s3` (the AWS SDK); the fuzz crate builds without it.

#[cfg(feature = "s3")]
mod any;
pub mod codec;
mod error;
mod local;
#[cfg(feature = "s3")]
mod s3;
pub mod settings;
#[cfg(feature = "test-util")]
pub mod testing;

use std::future::Future;

#[cfg(feature = "s3")]
pub use any::{AnyStore, StoreChoice};
pub use bytes::Bytes;
pub use error::StoreError;
pub use local::LocalStore;
#[cfg(feature = "s3")]
pub use s3::S3Store;
pub use settings::{EnvError, Settings, time_zone_from_vars};

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// The content's version, when the store tells: equal for equal bytes, different (as far as a digest can
    /// tell) when the bytes changed. S3's ETag (the MD5 of the bytes for a single-part upload with SSE-S3), the
    /// hex MD5 of the bytes for the local and memory stores. Compaction uses it to tell a piece rewritten with
    /// new content (a replay) from the piece it already merged.
    pub version: Option<String>,
}

/// The version [`ObjectInfo::version`] gives bytes in the stores that compute it (local, memory): their MD5, in
/// hex, as S3's ETag of a single-part upload (without the quotes).
pub fn content_version(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Content types salesflow writes.
pub mod content_type {
    /// Zstd-compressed NDJSON (`.ndjson.zst`, [`crate::codec`]), stored compressed: no `Content-Encoding`.
    pub const ZSTD_NDJSON: &str = "application/zstd";
    pub const NDJSON: &str = "application/x-ndjson";
    pub const CSV: &str = "text/csv";
    pub const JSON: &str = "application/json";
}

/// Where objects live. Every write is atomic: a reader sees the old object or the new one, never a part.
/// Handlers are generic over this trait and never know which store they have.
pub trait ObjectStore: Send + Sync {
    /// Writes (or overwrites) an object.
    fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes an object only if the key is free: `Ok(true)` when written, `Ok(false)` when it already existed.
    fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Reads a whole object into memory. For small objects; see [`ObjectStore::get_file`] for big ones.
    fn get(&self, bucket: &str, key: &str) -> impl Future<Output = Result<Bytes, StoreError>> + Send;

    /// Reads an object as a file positioned at its start, spooled to a temporary file (deleted when dropped) when
    /// the store is remote, so a big object never sits in memory. Read it with `std::io::Read`.
    fn get_file(&self, bucket: &str, key: &str) -> impl Future<Output = Result<std::fs::File, StoreError>> + Send;

    /// Every object whose key starts with `prefix`, in key order.
    fn list(&self, bucket: &str, prefix: &str) -> impl Future<Output = Result<Vec<ObjectInfo>, StoreError>> + Send;

    /// Deletes an object; deleting a missing object succeeds.
    fn delete(&self, bucket: &str, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A shared store is a store: the command line hands one to several handlers.
impl<S: ObjectStore> ObjectStore for std::sync::Arc<S> {
    async fn put(&self, bucket: &str, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.as_ref().put(bucket, key, body, content_type).await
    }

    async fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        self.as_ref().put_if_absent(bucket, key, body, content_type).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StoreError> {
        self.as_ref().get(bucket, key).await
    }

    async fn get_file(&self, bucket: &str, key: &str) -> Result<std::fs::File, StoreError> {
        self.as_ref().get_file(bucket, key).await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.as_ref().list(bucket, prefix).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.as_ref().delete(bucket, key).await
    }
}
