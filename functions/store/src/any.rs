//! [`AnyStore`]: the store a command line picks at run time, and [`StoreChoice`], the rule that picks it.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::{LocalStore, ObjectInfo, ObjectStore, S3Store, StoreError};

/// The local directory used when nothing else is configured.
pub const DEFAULT_STORE_DIR: &str = "salesflow-data";

/// Which store to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    Local(PathBuf),
    S3,
}

impl StoreChoice {
    /// In order: an explicit directory (`--store DIR`), then `SALESFLOW_STORE_DIR`, then S3 when the usual AWS
    /// environment points somewhere (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID` or
    /// `AWS_PROFILE` set), else the local directory `./salesflow-data`. `var` reads a variable (`std::env::var`).
    pub fn decide(explicit_dir: Option<&Path>, var: impl Fn(&str) -> Option<String>) -> StoreChoice {
        let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
        if let Some(dir) = explicit_dir {
            StoreChoice::Local(dir.to_path_buf())
        } else if let Some(dir) = var("SALESFLOW_STORE_DIR").filter(|v| !v.is_empty()) {
            StoreChoice::Local(dir.into())
        } else if ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"].into_iter().any(set) {
            StoreChoice::S3
        } else {
            StoreChoice::Local(DEFAULT_STORE_DIR.into())
        }
    }
}

/// A store chosen at run time.
#[derive(Debug)]
pub enum AnyStore {
    S3(S3Store),
    Local(LocalStore),
}

impl AnyStore {
    /// Builds the store [`StoreChoice::decide`] picks from the process environment.
    pub async fn from_env(explicit_dir: Option<&Path>) -> AnyStore {
        match StoreChoice::decide(explicit_dir, |name| std::env::var(name).ok()) {
            StoreChoice::Local(dir) => AnyStore::Local(LocalStore::new(dir)),
            StoreChoice::S3 => AnyStore::S3(S3Store::from_env().await),
        }
    }

    /// `s3` or `local DIR`, for messages.
    pub fn describe(&self) -> String {
        match self {
            AnyStore::S3(_) => "s3".to_string(),
            AnyStore::Local(l) => format!("local {}", l.root().display()),
        }
    }
}

impl ObjectStore for AnyStore {
    async fn put(&self, bucket: &str, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        match self {
            AnyStore::S3(s) => s.put(bucket, key, body, content_type).await,
            AnyStore::Local(s) => s.put(bucket, key, body, content_type).await,
        }
    }

    async fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        match self {
            AnyStore::S3(s) => s.put_if_absent(bucket, key, body, content_type).await,
            AnyStore::Local(s) => s.put_if_absent(bucket, key, body, content_type).await,
        }
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StoreError> {
        match self {
            AnyStore::S3(s) => s.get(bucket, key).await,
            AnyStore::Local(s) => s.get(bucket, key).await,
        }
    }

    async fn get_file(&self, bucket: &str, key: &str) -> Result<std::fs::File, StoreError> {
        match self {
            AnyStore::S3(s) => s.get_file(bucket, key).await,
            AnyStore::Local(s) => s.get_file(bucket, key).await,
        }
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        match self {
            AnyStore::S3(s) => s.list(bucket, prefix).await,
            AnyStore::Local(s) => s.list(bucket, prefix).await,
        }
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        match self {
            AnyStore::S3(s) => s.delete(bucket, key).await,
            AnyStore::Local(s) => s.delete(bucket, key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_store_is_chosen_in_documented_order() {
        let endpoint = [("AWS_ENDPOINT_URL", "http://localhost:4566")];
        assert_eq!(StoreChoice::decide(Some(Path::new("/d")), env(&endpoint)), StoreChoice::Local("/d".into()));
        assert_eq!(
            StoreChoice::decide(None, env(&[("SALESFLOW_STORE_DIR", "/s"), ("AWS_PROFILE", "p")])),
            StoreChoice::Local("/s".into())
        );
        assert_eq!(StoreChoice::decide(None, env(&endpoint)), StoreChoice::S3);
        assert_eq!(StoreChoice::decide(None, env(&[("AWS_PROFILE", "dev")])), StoreChoice::S3);
        assert_eq!(
            StoreChoice::decide(None, env(&[("AWS_PROFILE", "")])),
            StoreChoice::Local(DEFAULT_STORE_DIR.into())
        );
        assert_eq!(StoreChoice::decide(None, env(&[])), StoreChoice::Local(DEFAULT_STORE_DIR.into()));
    }
}
