//! [`LocalStore`]: a directory laid out like buckets (`DIR/<bucket>/<key>`), for local runs and tests. Writes go
//! to a temporary file in the target directory, then a rename, so readers never see a partial object.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use salesflow_core::keys::ObjectLocation;

use crate::{ObjectInfo, ObjectStore, StoreError};

/// Temporary files start with this; listings skip them.
const TEMP_PREFIX: &str = ".salesflow-tmp-";

/// A local directory of buckets.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    temp_counter: AtomicU64,
}

impl LocalStore {
    /// A store rooted at `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into(), temp_counter: AtomicU64::new(0) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/bucket/key`, refusing keys that would escape the bucket or name a directory.
    fn path(&self, op: &'static str, bucket: &str, key: &str) -> Result<PathBuf, StoreError> {
        let bad = |what: &str| StoreError::Permanent {
            op,
            location: ObjectLocation::new(bucket, key),
            message: format!("invalid {what}"),
        };
        if bucket.is_empty() || bucket.contains(['/', '\\']) || bucket.starts_with('.') {
            return Err(bad("bucket name"));
        }
        if key.split('/').any(|part| part.is_empty() || part == "." || part == ".." || part.starts_with(TEMP_PREFIX)) {
            return Err(bad("key (empty, `.` or `..` segment)"));
        }
        Ok(self.root.join(bucket).join(key))
    }

    fn io_error(op: &'static str, bucket: &str, key: &str, e: io::Error) -> StoreError {
        let location = ObjectLocation::new(bucket, key);
        match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound { op, location },
            io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                StoreError::Transient { op, location, message: e.to_string() }
            }
            _ => StoreError::Permanent { op, location, message: e.to_string() },
        }
    }

    /// Writes `body` to a fresh temporary file next to `path` and returns the temporary file's path.
    async fn write_temp(&self, path: &Path, body: &[u8]) -> io::Result<PathBuf> {
        let dir = path.parent().expect("an object path has a parent");
        tokio::fs::create_dir_all(dir).await?;
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!("{TEMP_PREFIX}{}-{n}", std::process::id()));
        tokio::fs::write(&temp, body).await?;
        Ok(temp)
    }
}

impl ObjectStore for LocalStore {
    async fn put(&self, bucket: &str, key: &str, body: Bytes, _content_type: &str) -> Result<(), StoreError> {
        let path = self.path("put", bucket, key)?;
        let temp = self.write_temp(&path, &body).await.map_err(|e| Self::io_error("put", bucket, key, e))?;
        if let Err(e) = tokio::fs::rename(&temp, &path).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(Self::io_error("put", bucket, key, e));
        }
        Ok(())
    }

    async fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        _content_type: &str,
    ) -> Result<bool, StoreError> {
        let path = self.path("put_if_absent", bucket, key)?;
        let temp = self.write_temp(&path, &body).await.map_err(|e| Self::io_error("put_if_absent", bucket, key, e))?;
        // A hard link fails when the target exists: an atomic create-if-absent with the full contents.
        let linked = tokio::fs::hard_link(&temp, &path).await;
        let _ = tokio::fs::remove_file(&temp).await;
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Self::io_error("put_if_absent", bucket, key, e)),
        }
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path("get", bucket, key)?;
        tokio::fs::read(&path).await.map(Bytes::from).map_err(|e| Self::io_error("get", bucket, key, e))
    }

    async fn get_file(&self, bucket: &str, key: &str) -> Result<std::fs::File, StoreError> {
        let path = self.path("get", bucket, key)?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| Self::io_error("get", bucket, key, e))?;
        Ok(file.into_std().await)
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let bucket_dir = self.root.join(bucket);
        // Walk only the deepest directory the prefix names.
        let start = match prefix.rfind('/') {
            Some(i) => bucket_dir.join(&prefix[..i]),
            None => bucket_dir.clone(),
        };
        let prefix_owned = prefix.to_string();
        let bucket_owned = bucket.to_string();
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            walk(&bucket_dir, &start, &prefix_owned, &mut found)
                .map_err(|e| Self::io_error("list", &bucket_owned, &prefix_owned, e))?;
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        })
        .await
        .map_err(|e| StoreError::Permanent {
            op: "list",
            location: ObjectLocation::new(bucket, prefix),
            message: e.to_string(),
        })?
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        let path = self.path("delete", bucket, key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::io_error("delete", bucket, key, e)),
        }
    }
}

/// Collects the files under `dir` whose key (path relative to `bucket_dir`, `/`-separated) starts with `prefix`.
fn walk(bucket_dir: &Path, dir: &Path, prefix: &str, found: &mut Vec<ObjectInfo>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(bucket_dir, &path, prefix, found)?;
        } else if let Ok(relative) = path.strip_prefix(bucket_dir) {
            let key = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            if key.starts_with(prefix) {
                // Read back to digest it: the local store is for local runs and tests, where objects are small.
                let version = Some(crate::content_version(&std::fs::read(&path)?));
                found.push(ObjectInfo { key, size: meta.len(), version });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips_lists_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store.put("b", "landed/dt=2026-11-23/hour=09/a.ndjson.gz", Bytes::from_static(b"one"), "x").await.unwrap();
        store.put("b", "landed/dt=2026-11-23/hour=10/b.ndjson.gz", Bytes::from_static(b"two!"), "x").await.unwrap();
        store.put("b", "rejects/c.ndjson", Bytes::from_static(b"3"), "x").await.unwrap();
        store.put("b", "landed/dt=2026-11-23/hour=09/a.ndjson.gz", Bytes::from_static(b"ONE"), "x").await.unwrap();

        assert_eq!(
            store.get("b", "landed/dt=2026-11-23/hour=09/a.ndjson.gz").await.unwrap(),
            Bytes::from_static(b"ONE")
        );
        let listed = store.list("b", "landed/dt=2026-11-23/").await.unwrap();
        assert_eq!(
            listed,
            vec![
                ObjectInfo {
                    key: "landed/dt=2026-11-23/hour=09/a.ndjson.gz".into(),
                    size: 3,
                    version: Some(crate::content_version(b"ONE")),
                },
                ObjectInfo {
                    key: "landed/dt=2026-11-23/hour=10/b.ndjson.gz".into(),
                    size: 4,
                    version: Some(crate::content_version(b"two!")),
                },
            ]
        );
        assert_eq!(store.list("b", "landed/dt=2026-11-23/hour=1").await.unwrap().len(), 1);
        assert_eq!(store.list("b", "").await.unwrap().len(), 3);
        assert!(store.list("other", "").await.unwrap().is_empty());

        let mut file = store.get_file("b", "rejects/c.ndjson").await.unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).unwrap();
        assert_eq!(text, "3");

        store.delete("b", "rejects/c.ndjson").await.unwrap();
        store.delete("b", "rejects/c.ndjson").await.unwrap();
        assert!(store.get("b", "rejects/c.ndjson").await.unwrap_err().is_not_found());
        assert!(store.get_file("b", "nope").await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn put_if_absent_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        assert!(store.put_if_absent("b", "k/1", Bytes::from_static(b"first"), "x").await.unwrap());
        assert!(!store.put_if_absent("b", "k/1", Bytes::from_static(b"second"), "x").await.unwrap());
        assert_eq!(store.get("b", "k/1").await.unwrap(), Bytes::from_static(b"first"));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path().join("b/k")).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn keys_cannot_escape_the_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        for key in ["../x", "a/../../x", "/abs", "a//b", "a/", ""] {
            let err = store.put("b", key, Bytes::new(), "x").await.unwrap_err();
            assert!(matches!(err, StoreError::Permanent { .. }), "{key}: {err}");
        }
        assert!(store.put("../b", "k", Bytes::new(), "x").await.is_err());
    }
}
