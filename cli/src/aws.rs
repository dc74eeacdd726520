//! AWS clients and resources for `salesflow dev` and `salesflow produce`. Endpoint, region and credentials come
//! from the usual AWS environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
//! `AWS_PROFILE`), so the same commands run against LocalStack and against AWS. The region defaults to
//! `us-east-1` when nothing sets one.

use std::fmt::Display;
use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_kinesis::types::{Shard, StreamStatus};

/// The shared SDK configuration.
pub async fn sdk_config() -> SdkConfig {
    let region = RegionProviderChain::default_provider().or_else("us-east-1");
    aws_config::defaults(BehaviorVersion::latest()).region(region).load().await
}

/// Whether a custom endpoint is configured (LocalStack, MinIO): S3 then uses path-style addressing.
pub fn custom_endpoint() -> bool {
    std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
}

pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config).force_path_style(custom_endpoint()).build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// `endpoint AWS_ENDPOINT_URL` or `AWS`, for messages.
pub fn describe_endpoint(config: &SdkConfig) -> String {
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => format!("{url} ({region})"),
        _ => format!("AWS ({region})"),
    }
}

/// A stream's ARN and shards, once it is active.
pub struct StreamInfo {
    pub arn: String,
    pub shards: Vec<Shard>,
}

/// Creates the stream (provisioned, `shards` shards) unless it exists, waits until it is active, and lists its
/// shards.
pub async fn ensure_stream(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) -> anyhow::Result<StreamInfo> {
    let described = client.describe_stream_summary().stream_name(name).send().await;
    if let Err(e) = &described {
        let not_found = e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception());
        if !not_found {
            bail!("cannot describe stream {name}: {}", sdk_error(e));
        }
        match client.create_stream().stream_name(name).shard_count(shards).send().await {
            Ok(_) => eprintln!("dev: created stream {name} ({shards} shard(s))"),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => bail!("cannot create stream {name}: {}", sdk_error(&e)),
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let arn = loop {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .sdk_context(|| format!("cannot describe stream {name}"))?;
        let summary = summary.stream_description_summary.context("DescribeStreamSummary: no summary")?;
        if matches!(summary.stream_status, StreamStatus::Active | StreamStatus::Updating) {
            break summary.stream_arn;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("stream {name} is still {} after 60 s", summary.stream_status);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    Ok(StreamInfo { arn, shards: list_shards(client, name).await? })
}

/// Every shard of a stream (following pagination).
pub async fn list_shards(client: &aws_sdk_kinesis::Client, name: &str) -> anyhow::Result<Vec<Shard>> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let request = match &token {
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(name),
        };
        let page = request.send().await.sdk_context(|| format!("cannot list the shards of {name}"))?;
        shards.extend(page.shards.unwrap_or_default());
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(shards),
        }
    }
}

/// Creates the bucket unless it exists (ours or already owned by us).
pub async fn ensure_bucket(client: &aws_sdk_s3::Client, bucket: &str, region: &str) -> anyhow::Result<()> {
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    let mut request = client.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => {
            eprintln!("dev: created bucket {bucket}");
            Ok(())
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => Ok(()),
        Err(e) => bail!("cannot create bucket {bucket}: {}", sdk_error(&e)),
    }
}

/// A queue's URL and ARN.
pub struct Queue {
    pub url: String,
    pub arn: String,
}

/// Creates the queue unless it exists (CreateQueue is idempotent for the same attributes) and returns it.
/// `s3_bucket`: allow that bucket's notifications to send to it.
pub async fn ensure_queue(client: &aws_sdk_sqs::Client, name: &str, s3_bucket: Option<&str>) -> anyhow::Result<Queue> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let url = match client.get_queue_url().queue_name(name).send().await {
        Ok(out) => out.queue_url.context("GetQueueUrl: no URL")?,
        Err(_) => client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::VisibilityTimeout, "30")
            .send()
            .await
            .sdk_context(|| format!("cannot create queue {name}"))?
            .queue_url
            .context("CreateQueue: no URL")?,
    };
    let attributes = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .sdk_context(|| format!("cannot read the attributes of queue {name}"))?;
    let arn = attributes
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("GetQueueAttributes: no QueueArn")?;
    if let Some(bucket) = s3_bucket {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnLike": {"aws:SourceArn": format!("arn:aws:s3:::{bucket}")}}
            }]
        });
        client
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .sdk_context(|| format!("cannot set the policy of queue {name}"))?;
    }
    Ok(Queue { url, arn })
}

/// Points the bucket's `ObjectCreated` notifications for keys under `prefix` at the queue, keeping the bucket's
/// other notification settings unless one already covers the same prefix.
pub async fn ensure_notification(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    queue_arn: &str,
) -> anyhow::Result<()> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
        QueueConfiguration, S3KeyFilter,
    };
    let current = client
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .sdk_context(|| format!("cannot read the notification configuration of bucket {bucket}"))?;
    let mut queues = current.queue_configurations.unwrap_or_default();
    let covers = |q: &QueueConfiguration| {
        q.queue_arn == queue_arn
            && q.filter
                .as_ref()
                .and_then(|f| f.key.as_ref())
                .and_then(|k| k.filter_rules.as_ref())
                .is_some_and(|rules| rules.iter().any(|r| r.value.as_deref() == Some(prefix)))
    };
    if queues.iter().any(covers) {
        return Ok(());
    }
    queues.push(
        QueueConfiguration::builder()
            .id(format!("salesflow-dev-{}", prefix.trim_end_matches('/')))
            .queue_arn(queue_arn)
            .events(Event::from("s3:ObjectCreated:*"))
            .filter(
                NotificationConfigurationFilter::builder()
                    .key(
                        S3KeyFilter::builder()
                            .filter_rules(FilterRule::builder().name(FilterRuleName::Prefix).value(prefix).build())
                            .build(),
                    )
                    .build(),
            )
            .build()
            .context("queue configuration")?,
    );
    let config = NotificationConfiguration::builder()
        .set_queue_configurations(Some(queues))
        .set_topic_configurations(current.topic_configurations)
        .set_lambda_function_configurations(current.lambda_function_configurations)
        .set_event_bridge_configuration(current.event_bridge_configuration)
        .build();
    client
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config)
        .send()
        .await
        .sdk_context(|| format!("cannot configure notifications on bucket {bucket}"))?;
    eprintln!("dev: bucket {bucket} notifies {queue_arn} of objects created under {prefix}");
    Ok(())
}

/// The text of an SDK error with its causes.
pub fn sdk_error<E: std::error::Error>(e: &E) -> String {
    aws_sdk_kinesis::error::DisplayErrorContext(e).to_string()
}

/// An SDK call's result with the step that failed: `<context>: <the error and its causes>` (the SDK's errors
/// show no cause on their own).
pub trait SdkContext<T> {
    fn sdk_context<C: Display + Send + Sync + 'static>(self, context: impl FnOnce() -> C) -> anyhow::Result<T>;
}

impl<T, E: std::error::Error> SdkContext<T> for Result<T, E> {
    fn sdk_context<C: Display + Send + Sync + 'static>(self, context: impl FnOnce() -> C) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::anyhow!(sdk_error(&e))).with_context(context)
    }
}
