//! The mapping's on-failure destination: where a batch goes that failed `--max-retries` times or is older than
//! `--max-record-age` — Lambda's on-failure message (the shard and the sequence range, not the records, which
//! stay in the stream), to a queue or a file.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context as _;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::mapping::ShardRecord;
use crate::aws::{self, SdkContext};
use crate::local::events::{KinesisStream, Origin};

/// A queue or a file.
pub enum Destination {
    Queue(aws_sdk_sqs::Client, String),
    File(Mutex<std::fs::File>, PathBuf),
}

impl Destination {
    /// `--on-failure-file`, appended to; else the `<stream>-ingest-failures` queue, created when missing.
    pub async fn open(file: Option<&PathBuf>, sqs: &aws_sdk_sqs::Client, stream: &str) -> anyhow::Result<Destination> {
        Ok(match file {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                Destination::File(Mutex::new(file), path.clone())
            }
            None => {
                let queue = aws::ensure_queue(sqs, &format!("{stream}-ingest-failures"), None).await?;
                Destination::Queue(sqs.clone(), queue.url)
            }
        })
    }

    pub async fn send(&self, message: &Value) -> anyhow::Result<()> {
        match self {
            Destination::Queue(client, url) => {
                client
                    .send_message()
                    .queue_url(url)
                    .message_body(message.to_string())
                    .send()
                    .await
                    .sdk_context(|| "cannot send to the on-failure queue")?;
            }
            Destination::File(file, path) => {
                let mut f = file.lock().expect("not poisoned");
                writeln!(f, "{message}").with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// `queue <url>` or `file <path>`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Destination::Queue(_, url) => format!("queue {url}"),
            Destination::File(_, path) => format!("file {}", path.display()),
        }
    }
}

/// Why records were not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
}

impl Condition {
    /// The message's `condition`.
    pub fn name(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// Records of a shard (a range, first to last) that were not delivered.
pub struct Failure<'a, R> {
    pub shard: &'a str,
    pub records: &'a [R],
    pub condition: Condition,
    /// The failed invocations they were in.
    pub invoke_count: u32,
    /// The error, or why they were not delivered.
    pub reason: &'a str,
}

impl<R: ShardRecord> Failure<'_, R> {
    /// Lambda's on-failure message for a Kinesis batch of the ingest function in `origin`, at `now`; `None`
    /// for no records.
    pub fn message(&self, origin: &Origin, stream: &KinesisStream, now: Timestamp) -> Option<Value> {
        let (first, last) = (self.records.first()?, self.records.last()?);
        let arrival = |r: &R| Timestamp::from_millisecond(r.arrival_ms()).unwrap_or(Timestamp::UNIX_EPOCH).to_string();
        Some(json!({
            "requestContext": {
                "condition": self.condition.name(),
                "approximateInvokeCount": self.invoke_count,
                "functionArn": format!("arn:aws:lambda:{}:{}:function:salesflow-dev-ingest", origin.region, origin.account),
            },
            "responseContext": { "error": self.reason },
            "timestamp": now.to_string(),
            "KinesisBatchInfo": {
                "shardId": self.shard,
                "startSequenceNumber": first.sequence_number(),
                "endSequenceNumber": last.sequence_number(),
                "approximateArrivalOfFirstRecord": arrival(first),
                "approximateArrivalOfLastRecord": arrival(last),
                "batchSize": self.records.len(),
                "streamArn": stream.arn,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_kinesis::primitives::{Blob, DateTime};
    use aws_sdk_kinesis::types::Record;

    use super::*;

    fn record(sequence: &str, arrival_ms: i64) -> Record {
        Record::builder()
            .sequence_number(sequence)
            .partition_key("S00001")
            .data(Blob::new("{}"))
            .approximate_arrival_timestamp(DateTime::from_millis(arrival_ms))
            .build()
            .unwrap()
    }

    #[test]
    fn failure_messages_name_the_range_like_lambdas() {
        let origin = Origin::example();
        let stream = origin.stream("salesflow-receipts");
        let records =
            [record("4959", 1_795_424_400_000), record("4960", 1_795_424_400_500), record("4961", 1_795_424_401_000)];
        let failure = Failure {
            shard: "shardId-000000000001",
            records: &records[..],
            condition: Condition::RecordAgeExceeded,
            invoke_count: 0,
            reason: "too old",
        };
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let m = failure.message(&origin, &stream, now).unwrap();
        assert_eq!(m["requestContext"]["condition"], "RecordAgeExceeded");
        assert_eq!(
            m["requestContext"]["functionArn"],
            "arn:aws:lambda:eu-west-3:123456789012:function:salesflow-dev-ingest"
        );
        assert_eq!(m["responseContext"]["error"], "too old");
        let info = &m["KinesisBatchInfo"];
        assert_eq!(
            (info["startSequenceNumber"].as_str(), info["endSequenceNumber"].as_str()),
            (Some("4959"), Some("4961"))
        );
        assert_eq!(info["approximateArrivalOfFirstRecord"], "2026-11-23T09:00:00Z");
        assert_eq!(info["approximateArrivalOfLastRecord"], "2026-11-23T09:00:01Z");
        assert_eq!((info["batchSize"].as_u64(), info["streamArn"].as_str()), (Some(3), Some(stream.arn.as_str())));
        let none = Failure { records: &records[..0], ..failure };
        assert_eq!(none.message(&origin, &stream, now), None);
    }
}
