//! Reading a raw copy back: a `raw/` object (one line per Kinesis record as it arrived, written by
//! [`crate::handler`]) becomes the [`StreamEvent`] it was made from, so `salesflow replay` runs it through
//! [`crate::Ingest::process`] again, the code of the function itself. The event has the records' shard, sequence
//! numbers, partition keys, arrival times and data as they arrived, hence the same object keys and, for an
//! unchanged pipeline, the same bytes.
//!
//! What the raw copy does not keep is rebuilt: `eventID` is `<shard>:<sequenceNumber>` and the stream ARN a
//! placeholder (neither reaches an object). A record the original run rejected for its envelope (a record of
//! another shard, a malformed `eventID`) was copied with the batch's shard and comes back well-formed.

use jiff::Timestamp;
use serde::Deserialize;

use crate::event::{StreamEvent, StreamRecord};

/// One line of a raw copy.
#[derive(Deserialize)]
struct RawRecord {
    shard_id: String,
    sequence_number: String,
    partition_key: String,
    arrival_time: String,
    payload_base64: String,
}

/// Why a raw object cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// Not zstd, gzip or plain NDJSON that decompresses to the end.
    #[error("corrupt compressed data: {0}")]
    Corrupt(#[from] std::io::Error),
    /// A line that is not a raw record.
    #[error("line {line}: {reason}")]
    InvalidLine { line: usize, reason: String },
}

/// The event a raw copy (compressed as [`salesflow_store::codec`] writes it) was made from, records in order.
pub fn read_raw(bytes: &[u8]) -> Result<StreamEvent, RawError> {
    let text = salesflow_store::codec::decompress(bytes)?;
    let mut records = Vec::new();
    for (index, line) in text.split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
        let invalid = |reason: String| RawError::InvalidLine { line: index + 1, reason };
        let raw: RawRecord = serde_json::from_slice(line).map_err(|e| invalid(e.to_string()))?;
        let arrival: Timestamp =
            raw.arrival_time.parse().map_err(|e| invalid(format!("arrival_time {:?}: {e}", raw.arrival_time)))?;
        records.push(StreamRecord::new(
            &raw.shard_id,
            &raw.sequence_number,
            &raw.partition_key,
            arrival,
            raw.payload_base64,
        ));
    }
    Ok(StreamEvent { records })
}
