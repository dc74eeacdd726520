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

/// The largest payload a gzip record may expand to; more is rejected (a 256 MB function must survive a bomb).
pub const MAX_DECOMPRESSED: u64 = 32 << 20;

/// A payload ready for the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The position in the KPL aggregate (the KCL's sub-sequence number); `None` for a plain record.
    pub sub_sequence: Option<u64>,
    pub partition_key: Option<String>,
    pub payload: Vec<u8>,
}

/// A record, or a user record of an aggregate, that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeReject {
    pub sub_sequence: Option<u64>,
    pub reason: String,
    /// The bytes at the point of failure: the received base64 text, the aggregate, or the gzip data.
    pub payload: Vec<u8>,
}

/// Decodes one record's `data` (base64 text), taking its buffer.
pub fn decode(data_base64: String) -> Vec<Result<Decoded, DecodeReject>> {
    let data = match STANDARD.decode(data_base64.as_bytes()) {
        Ok(data) => data,
        Err(e) => {
            return vec![Err(DecodeReject {
                sub_sequence: None,
                reason: format!("invalid base64: {e}"),
                payload: data_base64.into_bytes(),
            })];
        }
    };
    drop(data_base64);
    if !kpl::is_aggregated(&data) {
        return vec![gunzip(None, None, data)];
    }
    match kpl::deaggregate(&data) {
        Ok(records) => records
            .into_iter()
            .enumerate()
            .map(|(i, r)| gunzip(Some(i as u64), Some(r.partition_key), r.data))
            .collect(),
        Err(e) => vec![Err(DecodeReject { sub_sequence: None, reason: e.to_string(), payload: data })],
    }
}

/// Gunzips a payload that starts with the gzip magic; others pass through.
fn gunzip(sub_sequence: Option<u64>, partition_key: Option<String>, payload: Vec<u8>) -> Result<Decoded, DecodeReject> {
    if !payload.starts_with(&GZIP_MAGIC) {
        return Ok(Decoded { sub_sequence, partition_key, payload });
    }
    let mut out = Vec::new();
    let read = MultiGzDecoder::new(payload.as_slice()).take(MAX_DECOMPRESSED + 1).read_to_end(&mut out);
    let reason = match read {
        Ok(n) if n as u64 > MAX_DECOMPRESSED => {
            format!("gzip payload expands beyond {MAX_DECOMPRESSED} bytes")
        }
        Ok(_) => {
            return Ok(Decoded { sub_sequence, partition_key, payload: out });
        }
        Err(e) => format!("invalid gzip: {e}"),
    };
    Err(DecodeReject { sub_sequence, reason, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    #[test]
    fn plain_and_gzip_payloads() {
        assert_eq!(
            decode(b64(b"{}")),
            vec![Ok(Decoded { sub_sequence: None, partition_key: None, payload: b"{}".to_vec() })]
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"a\":1}").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode(b64(&gz))[0].as_ref().unwrap().payload, b"{\"a\":1}");
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
}
