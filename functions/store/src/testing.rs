//! Test doubles (feature `test-util`): [`MemoryStore`], and [`FailingStore`], which fails every write from the
//! n-th on until healed, the way an S3 outage looks to a handler after the SDK's retries.

use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use salesflow_core::keys::ObjectLocation;

use crate::{ObjectInfo, ObjectStore, StoreError};

/// Objects in a map keyed by `(bucket, key)`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<(String, String), Bytes>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Every object of a bucket, in key order.
    pub fn objects(&self, bucket: &str) -> Vec<(String, Bytes)> {
        let objects = self.objects.lock().expect("not poisoned");
        objects.iter().filter(|((b, _), _)| b == bucket).map(|((_, k), v)| (k.clone(), v.clone())).collect()
    }

    fn read(&self, op: &'static str, bucket: &str, key: &str) -> Result<Bytes, StoreError> {
        let objects = self.objects.lock().expect("not poisoned");
        objects
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
            .ok_or_else(|| StoreError::NotFound { op, location: ObjectLocation::new(bucket, key) })
    }
}

impl ObjectStore for MemoryStore {
    async fn put(&self, bucket: &str, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        self.objects.lock().expect("not poisoned").insert((bucket.to_string(), key.to_string()), body);
        Ok(())
    }

    async fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        _content_type: &str,
    ) -> Result<bool, StoreError> {
        let mut objects = self.objects.lock().expect("not poisoned");
        let id = (bucket.to_string(), key.to_string());
        if objects.contains_key(&id) {
            return Ok(false);
        }
        objects.insert(id, body);
        Ok(true)
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StoreError> {
        self.read("get", bucket, key)
    }

    async fn get_file(&self, bucket: &str, key: &str) -> Result<std::fs::File, StoreError> {
        let body = self.read("get", bucket, key)?;
        let spool = |e: std::io::Error| StoreError::Transient {
            op: "get",
            location: ObjectLocation::new(bucket, key),
            message: e.to_string(),
        };
        let mut file = tempfile::tempfile().map_err(spool)?;
        file.write_all(&body).map_err(spool)?;
        file.rewind().map_err(spool)?;
        Ok(file)
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        Ok(self
            .objects(bucket)
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(key, body)| ObjectInfo {
                key,
                size: body.len() as u64,
                version: Some(crate::content_version(&body)),
            })
            .collect())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.objects.lock().expect("not poisoned").remove(&(bucket.to_string(), key.to_string()));
        Ok(())
    }
}

/// Wraps a store; the n-th write (1-based, `put` and `put_if_absent` count) and every later one fail with a
/// transient error until [`FailingStore::heal`]. Reads, listings and deletes pass through.
#[derive(Debug)]
pub struct FailingStore<S> {
    pub inner: S,
    fail_from: AtomicUsize,
    writes: AtomicUsize,
}

impl<S: ObjectStore> FailingStore<S> {
    pub fn new(inner: S, fail_from_write: usize) -> FailingStore<S> {
        FailingStore { inner, fail_from: AtomicUsize::new(fail_from_write), writes: AtomicUsize::new(0) }
    }

    /// From now on every write succeeds.
    pub fn heal(&self) {
        self.fail_from.store(usize::MAX, Ordering::SeqCst);
    }

    /// Writes attempted so far, failed ones included.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    fn check(&self, op: &'static str, bucket: &str, key: &str) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.fail_from.load(Ordering::SeqCst) {
            return Err(StoreError::Transient {
                op,
                location: ObjectLocation::new(bucket, key),
                message: format!("injected failure on write {n}"),
            });
        }
        Ok(())
    }
}

impl<S: ObjectStore> ObjectStore for FailingStore<S> {
    async fn put(&self, bucket: &str, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.check("put", bucket, key)?;
        self.inner.put(bucket, key, body, content_type).await
    }

    async fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        self.check("put_if_absent", bucket, key)?;
        self.inner.put_if_absent(bucket, key, body, content_type).await
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StoreError> {
        self.inner.get(bucket, key).await
    }

    async fn get_file(&self, bucket: &str, key: &str) -> Result<std::fs::File, StoreError> {
        self.inner.get_file(bucket, key).await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.inner.list(bucket, prefix).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.inner.delete(bucket, key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fails_from_the_nth_write_until_healed() {
        let store = FailingStore::new(MemoryStore::new(), 2);
        store.put("b", "1", Bytes::from_static(b"a"), "x").await.unwrap();
        assert!(store.put("b", "2", Bytes::new(), "x").await.unwrap_err().is_transient());
        assert!(store.put_if_absent("b", "3", Bytes::new(), "x").await.unwrap_err().is_transient());
        store.heal();
        assert!(store.put_if_absent("b", "3", Bytes::new(), "x").await.unwrap());
        assert!(!store.put_if_absent("b", "3", Bytes::new(), "x").await.unwrap());
        assert_eq!(store.writes(), 5);
        assert_eq!(store.list("b", "").await.unwrap().len(), 2);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut store.get_file("b", "1").await.unwrap(), &mut text).unwrap();
        assert_eq!(text, "a");
    }
}
