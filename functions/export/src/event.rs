//! What the export function is invoked with: decoded from JSON and told apart. An S3 notification has
//! `Records[].s3`; S3's `s3:TestEvent` (sent when a notification is configured) has `"Event":"s3:TestEvent"`;
//! an EventBridge schedule has `"detail-type":"Scheduled Event"`.

use aws_lambda_events::event::s3::S3Event;
use jiff::Timestamp;
use serde_json::Value;

/// One invocation's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Object notifications: created objects to export, and records skipped (another event type).
    Objects { created: Vec<ObjectCreated>, skipped: Vec<String> },
    /// `s3:TestEvent`: nothing to do.
    TestEvent,
    /// An EventBridge schedule: compaction and manifests.
    Scheduled,
}

/// A created object, its key decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectCreated {
    pub bucket: String,
    pub key: String,
    /// When S3 created the object (the notification's `eventTime`).
    pub event_time: Timestamp,
}

/// Decodes an S3 notification key: form encoding, `+` is a space and `%XX` a byte (`%3D` is `=`). `None` for
/// text that is not a form-encoded key (raw `&` or `=`, or bytes that are not UTF-8).
pub fn decode_key(raw: &str) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    // S3 escapes every `&` and `=` in a key, so a well-formed key parses as one name without a value.
    let mut pairs = form_urlencoded::parse(raw.as_bytes());
    let (name, value) = pairs.next()?;
    if pairs.next().is_some() || !value.is_empty() || raw.contains('=') || name.contains('\u{FFFD}') {
        return None;
    }
    Some(name.into_owned())
}

/// Tells the payload apart. The error describes a payload that is none of the known kinds.
pub fn classify(payload: &Value) -> Result<Incoming, String> {
    if payload.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Incoming::TestEvent);
    }
    if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        return Ok(Incoming::Scheduled);
    }
    if payload.get("Records").is_some_and(Value::is_array) {
        let event: S3Event =
            serde_json::from_value(payload.clone()).map_err(|e| format!("not an S3 notification: {e}"))?;
        let mut created = Vec::new();
        let mut skipped = Vec::new();
        for record in event.records {
            let name = record.event_name.unwrap_or_default();
            let raw_key = record.s3.object.key.unwrap_or_default();
            if !name.starts_with("ObjectCreated:") {
                skipped.push(format!("{name} {raw_key}: not an ObjectCreated event"));
                continue;
            }
            let Some(key) = decode_key(&raw_key) else {
                skipped.push(format!("{name} {raw_key:?}: not a form-encoded key"));
                continue;
            };
            let event_time = Timestamp::from_millisecond(record.event_time.timestamp_millis())
                .map_err(|e| format!("eventTime out of range: {e}"))?;
            created.push(ObjectCreated { bucket: record.s3.bucket.name.unwrap_or_default(), key, event_time });
        }
        return Ok(Incoming::Objects { created, skipped });
    }
    let shown: String = payload.to_string().chars().take(200).collect();
    Err(format!("neither an S3 notification, an s3:TestEvent nor a scheduled event: {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_form_decoded() {
        assert_eq!(
            decode_key("landed/dt%3D2026-11-23/hour%3D09/a+b.ndjson.gz").unwrap(),
            "landed/dt=2026-11-23/hour=09/a b.ndjson.gz"
        );
        assert_eq!(decode_key("a%2Bb%26c%25").unwrap(), "a+b&c%");
        assert_eq!(decode_key("caf%C3%A9").unwrap(), "café");
        assert_eq!(decode_key("plain/key.csv").unwrap(), "plain/key.csv");
        for bad in ["", "a=b", "a&b", "%FF"] {
            assert_eq!(decode_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn payloads_are_told_apart() {
        assert_eq!(classify(&json!({"Service": "Amazon S3", "Event": "s3:TestEvent"})), Ok(Incoming::TestEvent));
        assert_eq!(
            classify(&json!({"detail-type": "Scheduled Event", "source": "aws.events"})),
            Ok(Incoming::Scheduled)
        );
        assert!(classify(&json!({"hello": 1})).is_err());
        assert!(classify(&json!({"Records": [{"nope": 1}]})).is_err());
    }
}
