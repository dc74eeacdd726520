//! The Kinesis event Lambda delivers, in the shape of `aws_lambda_events`' `KinesisEvent` but read leniently:
//! `data` stays the base64 text it arrived as (a record with bad base64 becomes a reject, not a failed batch),
//! and `approximateArrivalTimestamp` is read from its exact decimal text. `aws_lambda_events` reads that field
//! through an untagged enum, which fails under the workspace's `serde_json/arbitrary_precision`.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A batch of Kinesis records from one shard.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamEvent {
    #[serde(rename = "Records")]
    pub records: Vec<StreamRecord>,
}

/// Read record by record, so an error names the record and the field (`Records[3].kinesis: missing field
/// `data``), not only a line and column of a one-line event.
impl<'de> Deserialize<'de> for StreamEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(rename = "Records")]
            records: Vec<serde_json::Value>,
        }
        let envelope = Envelope::deserialize(deserializer)?;
        let records = envelope
            .records
            .into_iter()
            .enumerate()
            .map(|(i, record)| {
                serde_path_to_error::deserialize(record).map_err(|e| {
                    let path = e.path().to_string();
                    let at = if path == "." { format!("Records[{i}]") } else { format!("Records[{i}].{path}") };
                    serde::de::Error::custom(format_args!("{at}: {}", e.inner()))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(StreamEvent { records })
    }
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

    /// Why this record's envelope cannot name the objects its data goes to, if it cannot: object keys are made
    /// of the shard id and sequence numbers, so they must have Kinesis' formats — `eventID` is
    /// `shardId-` and 12 digits, `:`, then the record's `sequenceNumber`, 1 to 128 digits. Anything else (a `/`,
    /// `..`, NUL, 300 characters) would make a key the export skips or a store refuses.
    pub fn envelope_error(&self) -> Option<String> {
        let sequence = &self.kinesis.sequence_number;
        if sequence.is_empty() || sequence.len() > 128 || !sequence.bytes().all(|b| b.is_ascii_digit()) {
            return Some(format!("malformed envelope: sequenceNumber {} is not 1 to 128 digits", shown(sequence)));
        }
        let well_formed = self.event_id.split_once(':').filter(|(shard, rest)| is_shard_id(shard) && rest == sequence);
        if well_formed.is_none() {
            return Some(format!(
                "malformed envelope: eventID {} is not shardId-<12 digits>:<sequenceNumber>",
                shown(&self.event_id)
            ));
        }
        None
    }

    /// The shard id, from `eventID`; `unknown-shard` when the envelope has none.
    pub fn shard_id(&self) -> &str {
        match self.event_id.split_once(':') {
            Some((shard, _)) if !shard.is_empty() => shard,
            _ => "unknown-shard",
        }
    }
}

/// Kinesis' shard id format: `shardId-` and 12 digits.
pub fn is_shard_id(text: &str) -> bool {
    text.strip_prefix("shardId-").is_some_and(|n| n.len() == 12 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A field's text for a message: quoted and escaped, at most 64 characters.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    if cut.len() < text.len() { format!("{cut:?}... ({} bytes)", text.len()) } else { format!("{cut:?}") }
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
mod envelope {
    use super::*;

    fn record(event_id: &str, sequence: &str) -> StreamRecord {
        let mut r = StreamRecord::new("shardId-000000000001", sequence, "pk", Timestamp::UNIX_EPOCH, "e30=".into());
        r.event_id = event_id.into();
        r
    }

    /// Issue 12: `eventID`/`sequenceNumber` containing `/`, shard ids `../../x`, NUL or 300 characters made keys
    /// the export skips or the store refuses; they are now malformed envelopes, with the reason.
    #[test]
    fn shard_ids_and_sequence_numbers_must_have_kinesis_formats() {
        let good = "49590338271490256608559692538361571095921575989136588898";
        assert_eq!(record(&format!("shardId-000000000001:{good}"), good).envelope_error(), None);
        let long = "9".repeat(129);
        for (event_id, sequence, reason) in [
            ("shardId-000000000001:1/2".to_string(), "1/2", "sequenceNumber \"1/2\" is not 1 to 128 digits"),
            ("shardId-000000000001:".to_string(), "", "sequenceNumber \"\" is not 1 to 128 digits"),
            (format!("shardId-000000000001:{long}"), long.as_str(), "is not 1 to 128 digits"),
            (format!("../../x:{good}"), good, "eventID \"../../x:4959"),
            (format!("shardId-00000000000\0:{good}"), good, "eventID \"shardId-00000000000\\0:"),
            (
                format!("{}:{good}", "s".repeat(300)),
                good,
                "... (357 bytes) is not shardId-<12 digits>:<sequenceNumber>",
            ),
            (format!("shardId-000000000001/a:{good}"), good, "is not shardId-<12 digits>:<sequenceNumber>"),
            (format!("shardId-000000000001:{good}1"), good, "is not shardId-<12 digits>:<sequenceNumber>"),
            (good.to_string(), good, "is not shardId-<12 digits>:<sequenceNumber>"),
        ] {
            let err = record(&event_id, sequence).envelope_error().unwrap_or_else(|| panic!("{event_id:?} accepted"));
            assert!(err.starts_with("malformed envelope: ") && err.contains(reason), "{event_id:?}: {err}");
        }
    }

    /// Issue 12: event errors said "line 1 column N" without the record index.
    #[test]
    fn event_errors_name_the_record_and_field() {
        let text = r#"{"Records":[{"kinesis":{"sequenceNumber":"1","data":"e30=","approximateArrivalTimestamp":1}},
            {"kinesis":{"sequenceNumber":"2","approximateArrivalTimestamp":1}},{}]}"#;
        let err = serde_json::from_str::<StreamEvent>(text).unwrap_err().to_string();
        assert!(err.starts_with("Records[1].kinesis: missing field `data`"), "{err}");
        let err = serde_json::from_str::<StreamEvent>(r#"{"Records":[{}]}"#).unwrap_err().to_string();
        assert!(err.starts_with("Records[0]: missing field `kinesis`"), "{err}");
        let err = serde_json::from_str::<StreamEvent>(
            r#"{"Records":[{"kinesis":{"sequenceNumber":"1","data":"e30=","approximateArrivalTimestamp":"x"}}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("Records[0].kinesis.approximateArrivalTimestamp: "), "{err}");
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
