//! Turns one Kinesis record into the user records it carries: base64 (the event's encoding), then KPL
//! de-aggregation when the data starts with the KPL magic, then gunzip of each user record that starts with the
//! gzip magic. What cannot be decoded is poison: it comes back as a [`DecodeReject`] with the bytes we have.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::read::MultiGzDecoder;

use crate::kpl;

/// The gzip magic.
const GZIP_MAGIC: [u8; 2] = [0x1F, 0x8B];

/// The largest payload one gzip user record may expand to; more is rejected as `too large`.
pub const MAX_DECOMPRESSED: u64 = 8 << 20;

/// What one batch may hold decoded (plain payloads and what gzip payloads expand to), in total: four times
/// Lambda's 6 MB event. Records past it are rejected as `too large` (kept as they arrived), so a batch of gzip
/// bombs costs at most this much memory, not ten times 32 MiB.
pub const BATCH_DECODED_BUDGET: u64 = 24 << 20;

/// How many user records one batch may carry (KPL aggregates of empty records are cheap to send and dear to
/// account for); the ones past it are rejected as `too large`. A full 6 MB batch of 3 KB receipts is ~2,000.
pub const BATCH_USER_RECORDS: u64 = 100_000;

/// What is left of a batch's [`BATCH_DECODED_BUDGET`] and [`BATCH_USER_RECORDS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub user_records: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { bytes: BATCH_DECODED_BUDGET, user_records: BATCH_USER_RECORDS }
    }
}

/// A payload ready for the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The position in the KPL aggregate (the KCL's sub-sequence number); `None` for a plain record.
    pub sub_sequence: Option<u64>,
    pub partition_key: Option<String>,
    pub payload: Vec<u8>,
    /// The bytes as they arrived when they differ from `payload` (the gzip data): what a reject keeps.
    pub arrived: Option<Vec<u8>>,
}

/// A record, or a user record of an aggregate, that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeReject {
    pub sub_sequence: Option<u64>,
    pub reason: String,
    /// The bytes as they arrived: the received base64 text, the aggregate, or the (gzip) user record.
    pub payload: Vec<u8>,
}

/// Decodes one record's `data` (base64 text), taking its buffer, within what is left of the batch's budget.
pub fn decode(data_base64: String, budget: &mut Budget) -> Vec<Result<Decoded, DecodeReject>> {
    let data = match STANDARD.decode(data_base64.as_bytes()) {
        Ok(data) => data,
        Err(e) => {
            budget.user_records = budget.user_records.saturating_sub(1);
            return vec![Err(DecodeReject {
                sub_sequence: None,
                reason: format!("invalid base64: {e}"),
                payload: data_base64.into_bytes(),
            })];
        }
    };
    drop(data_base64);
    if !kpl::is_aggregated(&data) {
        return vec![gunzip(None, None, data, budget)];
    }
    match kpl::deaggregate(&data) {
        Ok(records) if records.is_empty() => {
            budget.user_records = budget.user_records.saturating_sub(1);
            vec![Err(DecodeReject { sub_sequence: None, reason: "empty KPL aggregate".into(), payload: data })]
        }
        Ok(records) => records
            .into_iter()
            .enumerate()
            .map(|(i, r)| gunzip(Some(i as u64), Some(r.partition_key), r.data, budget))
            .collect(),
        Err(e) => {
            budget.user_records = budget.user_records.saturating_sub(1);
            vec![Err(DecodeReject { sub_sequence: None, reason: e.to_string(), payload: data })]
        }
    }
}

/// Gunzips a payload that starts with the gzip magic (others pass through), charging the budget.
fn gunzip(
    sub_sequence: Option<u64>,
    partition_key: Option<String>,
    payload: Vec<u8>,
    budget: &mut Budget,
) -> Result<Decoded, DecodeReject> {
    let reject = |reason: String, payload: Vec<u8>| Err(DecodeReject { sub_sequence, reason, payload });
    if budget.user_records == 0 {
        return reject(format!("too large: the batch carries more than {BATCH_USER_RECORDS} user records"), payload);
    }
    budget.user_records -= 1;
    let spent = || format!("too large: the batch's budget of {BATCH_DECODED_BUDGET} decoded bytes is spent");
    if !payload.starts_with(&GZIP_MAGIC) {
        if payload.len() as u64 > budget.bytes {
            return reject(spent(), payload);
        }
        budget.bytes -= payload.len() as u64;
        return Ok(Decoded { sub_sequence, partition_key, payload, arrived: None });
    }
    let limit = MAX_DECOMPRESSED.min(budget.bytes);
    let mut out = Vec::new();
    let read = MultiGzDecoder::new(payload.as_slice()).take(limit + 1).read_to_end(&mut out);
    let reason = match read {
        Ok(n) if n as u64 > limit && limit < MAX_DECOMPRESSED => spent(),
        Ok(n) if n as u64 > limit => format!("too large: gzip payload expands beyond {MAX_DECOMPRESSED} bytes"),
        Ok(n) => {
            budget.bytes -= n as u64;
            return Ok(Decoded { sub_sequence, partition_key, payload: out, arrived: Some(payload) });
        }
        Err(e) => format!("invalid gzip: {e}"),
    };
    drop(out);
    reject(reason, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    fn decode(data: String) -> Vec<Result<Decoded, DecodeReject>> {
        super::decode(data, &mut Budget::default())
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn plain_and_gzip_payloads() {
        assert_eq!(
            decode(b64(b"{}")),
            vec![Ok(Decoded { sub_sequence: None, partition_key: None, payload: b"{}".to_vec(), arrived: None })]
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"a\":1}").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode(b64(&gz))[0].as_ref().unwrap().payload, b"{\"a\":1}");
        assert_eq!(decode(b64(&gz))[0].as_ref().unwrap().arrived.as_deref(), Some(&gz[..]));
    }

    #[test]
    fn undecodable_records_are_rejects() {
        let bad = decode("not base64!!".into());
        assert!(bad[0].as_ref().unwrap_err().reason.starts_with("invalid base64"));
        assert_eq!(bad[0].as_ref().unwrap_err().payload, b"not base64!!");
        let truncated_gzip = decode(b64(&[0x1F, 0x8B, 8, 0, 0]));
        assert!(truncated_gzip[0].as_ref().unwrap_err().reason.starts_with("invalid gzip"));
        let short_kpl = decode(b64(&[0xF3, 0x89, 0x9A, 0xC2, 1, 2]));
        assert!(short_kpl[0].as_ref().unwrap_err().reason.contains("too short"));
    }

    #[test]
    fn gzip_bombs_are_rejected() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..33 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 100_000);
        assert!(decode(b64(&bomb))[0].as_ref().unwrap_err().reason.contains("expands beyond"));
    }

    /// Issue 12: an empty KPL aggregate gave `RecordsIn 1, UserRecords 0`: that Kinesis record had no outcome.
    #[test]
    fn an_empty_kpl_aggregate_is_a_reject() {
        let empty = "84mawgoGUzAwMDAxKscDlA16s7jnN+F02ZWg6A==";
        let decoded = decode(empty.into());
        assert_eq!(decoded.len(), 1);
        let reject = decoded[0].as_ref().unwrap_err();
        assert_eq!(reject.reason, "empty KPL aggregate");
        assert_eq!(STANDARD.encode(&reject.payload), empty);
    }

    /// Issue 12: what a batch decodes is bounded in bytes and user records; past it records are rejected as
    /// `too large`, keeping the bytes as they arrived (the gzip data, not what it expands to).
    #[test]
    fn the_batch_budget_bounds_decoded_bytes_and_user_records() {
        let mut budget = Budget { bytes: 100, user_records: 3 };
        let small = gzip(&[b' '; 60]);
        assert!(super::decode(b64(&small), &mut budget)[0].is_ok());
        assert_eq!(budget, Budget { bytes: 40, user_records: 2 });
        let over = super::decode(b64(&small), &mut budget);
        let reject = over[0].as_ref().unwrap_err();
        assert_eq!(reject.reason, "too large: the batch's budget of 25165824 decoded bytes is spent");
        assert_eq!(reject.payload, small, "the gzip bytes as they arrived");
        assert!(super::decode(b64(&[b'x'; 41]), &mut budget)[0].is_err());
        assert_eq!(budget.user_records, 0);
        let none_left = super::decode(b64(b"{}"), &mut budget);
        assert_eq!(
            none_left[0].as_ref().unwrap_err().reason,
            "too large: the batch carries more than 100000 user records"
        );
    }
}
