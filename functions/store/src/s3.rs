//! [`S3Store`]: the [`ObjectStore`] on Amazon S3 (or anything speaking its API, such as LocalStack). SDK errors,
//! after the SDK's own retries, are classified into transient (throttling, 5xx, timeouts) and permanent ones.

use std::io::{Seek, Write};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use salesflow_core::keys::ObjectLocation;

use crate::{ObjectInfo, ObjectStore, StoreError};

/// Error codes S3 uses for conditions that clear by themselves.
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "OperationAborted",
    "ConditionalRequestConflict",
];

/// An S3 client. Build it once per process (cold start) and share it.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
}

impl S3Store {
    pub fn new(client: Client) -> S3Store {
        S3Store { client }
    }

    /// A client configured from the usual AWS environment (region, credentials, `AWS_ENDPOINT_URL`). With a
    /// custom endpoint (LocalStack, MinIO), requests use path-style addressing.
    pub async fn from_env() -> S3Store {
        let config = aws_config::load_from_env().await;
        let custom_endpoint =
            std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&config).force_path_style(custom_endpoint).build();
        S3Store::new(Client::from_conf(s3_config))
    }
}

/// Classifies an SDK error; `412 Precondition Failed` is handled by the caller where it means something.
fn classify<E>(
    op: &'static str,
    location: ObjectLocation,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Transient { op, location, message }
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            if status == 404 && code != "NoSuchBucket" {
                StoreError::NotFound { op, location }
            } else if status >= 500 || status == 429 || TRANSIENT_CODES.contains(&code) {
                StoreError::Transient { op, location, message }
            } else {
                StoreError::Permanent { op, location, message }
            }
        }
        _ => StoreError::Permanent { op, location, message },
    }
}

fn precondition_failed<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    matches!(err, SdkError::ServiceError(service) if service.raw().status().as_u16() == 412)
}

impl ObjectStore for S3Store {
    async fn put(&self, bucket: &str, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("put", ObjectLocation::new(bucket, key), e))
    }

    async fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        let sent = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if precondition_failed(&e) => Ok(false),
            Err(e) => Err(classify("put_if_absent", ObjectLocation::new(bucket, key), e)),
        }
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StoreError> {
        let object = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("get", ObjectLocation::new(bucket, key), e))?;
        let body = object.body.collect().await.map_err(|e| StoreError::Transient {
            op: "get",
            location: ObjectLocation::new(bucket, key),
            message: e.to_string(),
        })?;
        Ok(body.into_bytes())
    }

    async fn get_file(&self, bucket: &str, key: &str) -> Result<std::fs::File, StoreError> {
        let object = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("get", ObjectLocation::new(bucket, key), e))?;
        let spool_error =
            |message: String| StoreError::Transient { op: "get", location: ObjectLocation::new(bucket, key), message };
        let mut file = tempfile::tempfile().map_err(|e| spool_error(format!("cannot create a spool file: {e}")))?;
        let mut body = object.body;
        while let Some(chunk) = body.try_next().await.map_err(|e| spool_error(e.to_string()))? {
            file.write_all(&chunk).map_err(|e| spool_error(format!("cannot spool: {e}")))?;
        }
        file.rewind().map_err(|e| spool_error(format!("cannot rewind the spool file: {e}")))?;
        Ok(file)
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut pages = self.client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
        let mut found = Vec::new();
        while let Some(page) =
            pages.try_next().await.map_err(|e| classify("list", ObjectLocation::new(bucket, prefix), e))?
        {
            for object in page.contents() {
                if let Some(key) = object.key() {
                    found.push(ObjectInfo {
                        key: key.to_string(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                        version: object.e_tag().map(|t| t.trim_matches('"').to_string()),
                    });
                }
            }
        }
        Ok(found)
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        match self.client.delete_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(e) => match classify("delete", ObjectLocation::new(bucket, key), e) {
                StoreError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}
