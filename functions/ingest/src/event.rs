//! The Kinesis event Lambda delivers, in the shape of `aws_lambda_events`' `KinesisEvent` but read leniently:
//! `data` stays the base64 text it arrived as (a record with bad base64 becomes a reject, not a failed batch),
//! and `approximateArrivalTimestamp` is read from its exact decimal text. `aws_lambda_events` reads that field
//! through an untagged enum, which fails under the workspace's `serde_json/arbitrary_precision`.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A batch of Kinesis records from one shard.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct StreamEvent {
    #[serde(rename = "Records")]
    pub records: Vec<StreamRecord>,
}

/// One Kinesis record, with the event source mapping's envelope.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRecord {
    /// `shardId-000000000001:<sequence number>`.
    #[serde(rename = "eventID", default)]
    pub event_id: String,
    #[serde(rename = "eventSourceARN", default)]
    pub event_source_arn: String,
    #[serde(default)]
    pub aws_region: String,
    pub kinesis: KinesisData,
}

/// The `kinesis` part of a record.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisData {
    pub sequence_number: String,
    #[serde(default)]
    pub partition_key: String,
    /// Base64, as delivered.
    pub data: String,
    pub approximate_arrival_timestamp: ArrivalTime,
    #[serde(default = "schema_version")]
    pub kinesis_schema_version: String,
}

fn schema_version() -> String {
    "1.0".into()
}

impl StreamRecord {
    /// A record as Lambda delivers it (tests, the local event-source runner).
    pub fn new(
        shard_id: &str,
        sequence_number: &str,
        partition_key: &str,
        arrival: Timestamp,
        data_base64: String,
    ) -> StreamRecord {
        StreamRecord {
            event_id: format!("{shard_id}:{sequence_number}"),
            event_source_arn: "arn:aws:kinesis:eu-west-3:123456789012:stream/salesflow-receipts".into(),
            aws_region: "eu-west-3".into(),
            kinesis: KinesisData {
                sequence_number: sequence_number.into(),
                partition_key: partition_key.into(),
                data: data_base64,
                approximate_arrival_timestamp: ArrivalTime(arrival),
                kinesis_schema_version: schema_version(),
            },
        }
    }

    /// The shard id, from `eventID`; `unknown-shard` when the envelope has none.
    pub fn shard_id(&self) -> &str {
        match self.event_id.split_once(':') {
            Some((shard, _)) if !shard.is_empty() => shard,
            _ => "unknown-shard",
        }
    }
}

/// `approximateArrivalTimestamp`: seconds since the epoch with a fraction (`1732353600.123`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArrivalTime(pub Timestamp);

impl<'de> Deserialize<'de> for ArrivalTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        parse_epoch_seconds(&number.to_string()).map(ArrivalTime).map_err(serde::de::Error::custom)
    }
}

impl Serialize for ArrivalTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (s, ns) = (self.0.as_second(), self.0.subsec_nanosecond());
        let text = if ns == 0 { s.to_string() } else { format!("{s}.{:03}", ns / 1_000_000) };
        let number: serde_json::Number = text.parse().map_err(serde::ser::Error::custom)?;
        number.serialize(serializer)
    }
}

/// Exact decimal seconds (`1732353600.123`, `1732353600`, `1.7e9`) to a timestamp.
fn parse_epoch_seconds(text: &str) -> Result<Timestamp, String> {
    let invalid = || format!("approximateArrivalTimestamp: not epoch seconds: {text}");
    if text.contains(['e', 'E']) {
        let f: f64 = text.parse().map_err(|_| invalid())?;
        return Timestamp::from_millisecond((f * 1000.0).round() as i64).map_err(|_| invalid());
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let seconds: i64 = whole.parse().map_err(|_| invalid())?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let digits: String = fraction.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: i32 = digits.parse().map_err(|_| invalid())?;
    let nanos = if seconds < 0 { -nanos } else { nanos };
    Timestamp::new(seconds, nanos).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_times_are_read_exactly() {
        assert_eq!(parse_epoch_seconds("1732353600.123").unwrap().to_string(), "2024-11-23T09:20:00.123Z");
        assert_eq!(parse_epoch_seconds("1732353600.05").unwrap().subsec_nanosecond(), 50_000_000);
        assert_eq!(parse_epoch_seconds("1732353600").unwrap().as_second(), 1_732_353_600);
        assert_eq!(parse_epoch_seconds("1.7323536e9").unwrap().as_second(), 1_732_353_600);
        assert!(parse_epoch_seconds("12.3x").is_err());
    }

    #[test]
    fn the_aws_sample_event_parses_and_round_trips() {
        let text = r#"{"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"1",
            "sequenceNumber":"49590338271490256608559692538361571095921575989136588898","data":"SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
            "approximateArrivalTimestamp":1545084650.987},"eventSource":"aws:kinesis","eventVersion":"1.0",
            "eventID":"shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
            "eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::123456789012:role/lambda-role",
            "awsRegion":"us-east-2","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"}]}"#;
        let event: StreamEvent = serde_json::from_str(text).unwrap();
        let record = &event.records[0];
        assert_eq!(record.shard_id(), "shardId-000000000006");
        assert_eq!(record.kinesis.approximate_arrival_timestamp.0.to_string(), "2018-12-17T22:10:50.987Z");
        let again: StreamEvent = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(again, event);
    }
}

#[cfg(test)]
mod upstream {
    /// Why this module exists: `aws_lambda_events`' `KinesisEvent` cannot read a real event once
    /// `serde_json/arbitrary_precision` is on. If this starts passing, the upstream type may be used again.
    #[test]
    fn aws_lambda_events_kinesis_event_fails_under_arbitrary_precision() {
        let text = r#"{"Records":[{"kinesis":{"partitionKey":"1","sequenceNumber":"1","data":"e30=",
            "approximateArrivalTimestamp":1545084650.987},"eventID":"shardId-000000000006:1"}]}"#;
        let parsed = serde_json::from_str::<aws_lambda_events::event::kinesis::KinesisEvent>(text);
        assert!(parsed.is_err(), "{parsed:?}");
    }
}
