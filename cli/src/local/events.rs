//! The events Lambda's triggers deliver, built the way AWS builds them, so the handlers run locally on what
//! they get in production: Kinesis records with the event source mapping's envelope, S3 `ObjectCreated`
//! notifications, EventBridge scheduled events.

use jiff::Timestamp;
use salesflow_ingest::StreamRecord;
use serde_json::{Value, json};

/// The account and region the events name in their ARNs: the stream's for `dev`, an example account for `demo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub region: String,
    pub account: String,
}

impl Origin {
    /// The demo's: no AWS account is involved.
    pub fn example() -> Origin {
        Origin { region: "eu-west-3".into(), account: "123456789012".into() }
    }

    /// The origin of a stream's ARN (`arn:aws:kinesis:<region>:<account>:stream/<name>`); the example account
    /// for a part the ARN lacks.
    pub fn of_arn(arn: &str) -> Origin {
        let mut parts = arn.split(':').skip(3);
        let example = Origin::example();
        let mut part = |default: String| parts.next().filter(|p| !p.is_empty()).map_or(default, str::to_string);
        Origin { region: part(example.region), account: part(example.account) }
    }

    /// A Kinesis stream of this account, by name.
    pub fn stream(&self, name: &str) -> KinesisStream {
        KinesisStream {
            arn: format!("arn:aws:kinesis:{}:{}:stream/{name}", self.region, self.account),
            region: self.region.clone(),
        }
    }

    /// An S3 `ObjectCreated:Put` notification for one object, as S3 sends it (key form-encoded).
    pub fn object_created(&self, bucket: &str, key: &str, size: u64, at: Timestamp) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": self.region,
            "eventTime": at.round(jiff::Unit::Millisecond).unwrap_or(at).to_string(),
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AROAEXAMPLEROLEID:salesflow-ingest"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "SALESFLOWLOCAL", "x-amz-id-2": "salesflow-local"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "salesflow-export-landed",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "salesflow-local"}, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": encode_key(key), "size": size, "sequencer": format!("{:016X}", at.as_millisecond())}
            }
        }]})
    }

    /// The EventBridge event of the export's schedule firing at `at`.
    pub fn scheduled(&self, at: Timestamp) -> Value {
        json!({
            "version": "0",
            "id": format!("salesflow-local-{}", at.as_second()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": at.round(jiff::Unit::Second).unwrap_or(at).to_string(),
            "region": self.region,
            "resources": [format!("arn:aws:events:{}:{}:rule/salesflow-export-schedule", self.region, self.account)],
            "detail": {}
        })
    }
}

/// The stream Kinesis records come from: what the event source mapping writes in each record's envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisStream {
    pub arn: String,
    pub region: String,
}

impl KinesisStream {
    /// A record of `shard` as Lambda delivers it (`eventID` = `shardId:sequenceNumber`, the data in base64).
    pub fn record(
        &self,
        shard: &str,
        sequence: &str,
        partition_key: &str,
        arrival: Timestamp,
        data_base64: String,
    ) -> StreamRecord {
        StreamRecord {
            event_source_arn: self.arn.clone(),
            aws_region: self.region.clone(),
            ..StreamRecord::new(shard, sequence, partition_key, arrival, data_base64)
        }
    }
}

/// S3's form encoding of a key in notifications: `/` and unreserved characters kept, space as `+`, the rest `%XX`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use salesflow_ingest::StreamEvent;

    use super::*;

    #[test]
    fn keys_are_encoded_like_s3_notifications() {
        assert_eq!(
            encode_key("landed/dt=2026-11-23/hour=09/a b+c.ndjson.gz"),
            "landed/dt%3D2026-11-23/hour%3D09/a+b%2Bc.ndjson.gz"
        );
        assert_eq!(
            salesflow_export::decode_key(&encode_key("landed/dt=2026-11-23/x é.gz")).as_deref(),
            Some("landed/dt=2026-11-23/x é.gz")
        );
    }

    #[test]
    fn events_are_what_the_export_recognizes() {
        let at: Timestamp = "2026-11-23T09:15:00.123Z".parse().unwrap();
        let origin = Origin::example();
        let created = origin.object_created("b", "landed/dt=2026-11-23/hour=08/x-0.ndjson.gz", 10, at);
        match salesflow_export::classify(&created).unwrap() {
            salesflow_export::Incoming::Objects { created, skipped } => {
                assert!(skipped.is_empty());
                assert_eq!(created[0].key, "landed/dt=2026-11-23/hour=08/x-0.ndjson.gz");
                assert_eq!(created[0].event_time, at);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(salesflow_export::classify(&origin.scheduled(at)), Ok(salesflow_export::Incoming::Scheduled));
    }

    #[test]
    fn kinesis_records_carry_their_stream_and_read_back() {
        let origin = Origin::of_arn("arn:aws:kinesis:us-east-1:000000000000:stream/salesflow-receipts");
        assert_eq!(origin, Origin { region: "us-east-1".into(), account: "000000000000".into() });
        assert_eq!(Origin::of_arn("not an arn"), Origin::example());
        let stream = origin.stream("salesflow-receipts");
        assert_eq!(stream.arn, "arn:aws:kinesis:us-east-1:000000000000:stream/salesflow-receipts");
        let at: Timestamp = "2026-11-23T09:15:00.123Z".parse().unwrap();
        let record = stream.record("shardId-000000000001", "4959", "S00001", at, "e30=".into());
        assert_eq!(
            (record.event_id.as_str(), record.shard_id()),
            ("shardId-000000000001:4959", "shardId-000000000001")
        );
        assert_eq!((record.event_source_arn.as_str(), record.aws_region.as_str()), (stream.arn.as_str(), "us-east-1"));
        let event = StreamEvent { records: vec![record] };
        let again: StreamEvent = serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
        assert_eq!(again, event);
        assert_eq!(again.records[0].kinesis.approximate_arrival_timestamp.0, at);
    }
}
