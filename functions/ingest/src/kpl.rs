//! Kinesis Producer Library (KPL) aggregated records: the magic `F3 89 9A C2`, a protobuf `AggregatedRecord`,
//! then the MD5 of the protobuf bytes. Lambda hands them over as one record; we split them into the user
//! records the producer wrote, each numbered by its position (its sub-sequence number).

use md5::{Digest, Md5};

/// The first four bytes of every aggregated record.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const MD5_LEN: usize = 16;

/// The KPL's `AggregatedRecord` (fields we do not need, such as explicit hash keys and tags, are skipped).
#[derive(Clone, PartialEq, prost::Message)]
struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    partition_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<Record>,
}

/// One user record inside an aggregate.
#[derive(Clone, PartialEq, prost::Message)]
struct Record {
    #[prost(uint64, required, tag = "1")]
    partition_key_index: u64,
    #[prost(bytes = "vec", required, tag = "3")]
    data: Vec<u8>,
}

/// A user record out of an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// Why an aggregate cannot be split. The whole Kinesis record is then rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KplError {
    #[error("KPL aggregate too short for its MD5 trailer ({0} bytes)")]
    TooShort(usize),
    #[error("KPL aggregate MD5 mismatch (corrupt or truncated record)")]
    Md5Mismatch,
    #[error("KPL aggregate is not a valid AggregatedRecord: {0}")]
    InvalidProtobuf(String),
    #[error("KPL user record {index} names partition key {key_index}, the table has {table_len}")]
    PartitionKeyIndex { index: usize, key_index: u64, table_len: usize },
}

/// Whether a payload is a KPL aggregate.
pub fn is_aggregated(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// Splits an aggregate (starting with [`MAGIC`]) into its user records, checking the MD5 trailer.
pub fn deaggregate(data: &[u8]) -> Result<Vec<UserRecord>, KplError> {
    let Some(body) =
        data.get(MAGIC.len()..data.len().saturating_sub(MD5_LEN)).filter(|_| data.len() >= MAGIC.len() + MD5_LEN)
    else {
        return Err(KplError::TooShort(data.len()));
    };
    let trailer = &data[data.len() - MD5_LEN..];
    if Md5::digest(body).as_slice() != trailer {
        return Err(KplError::Md5Mismatch);
    }
    let aggregate =
        <AggregatedRecord as prost::Message>::decode(body).map_err(|e| KplError::InvalidProtobuf(e.to_string()))?;
    let table = aggregate.partition_key_table;
    aggregate
        .records
        .into_iter()
        .enumerate()
        .map(|(index, r)| {
            let key = usize::try_from(r.partition_key_index).ok().and_then(|i| table.get(i));
            let key = key.ok_or(KplError::PartitionKeyIndex {
                index,
                key_index: r.partition_key_index,
                table_len: table.len(),
            })?;
            Ok(UserRecord { partition_key: key.clone(), data: r.data })
        })
        .collect()
}

/// Builds a KPL aggregate of user records, as the KPL writes it: [`MAGIC`], the `AggregatedRecord` (each
/// distinct partition key once in the table), then its MD5. Put it with the first record's partition key (or
/// an explicit hash key) so it lands on the shard the KPL would pick. Used by `salesflow produce --kpl`.
pub fn aggregate(records: &[UserRecord]) -> Vec<u8> {
    let mut table: Vec<String> = Vec::new();
    let records = records
        .iter()
        .map(|r| {
            let index = match table.iter().position(|k| *k == r.partition_key) {
                Some(i) => i,
                None => {
                    table.push(r.partition_key.clone());
                    table.len() - 1
                }
            };
            Record { partition_key_index: index as u64, data: r.data.clone() }
        })
        .collect();
    let body = prost::Message::encode_to_vec(&AggregatedRecord { partition_key_table: table, records });
    let mut out = Vec::with_capacity(MAGIC.len() + body.len() + MD5_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_round_trip_through_deaggregate() {
        let records: Vec<UserRecord> = (0..5)
            .map(|i| UserRecord {
                partition_key: format!("S{:05}", i % 2),
                data: format!("{{\"n\":{i}}}").into_bytes(),
            })
            .collect();
        let bytes = aggregate(&records);
        assert!(is_aggregated(&bytes));
        assert_eq!(deaggregate(&bytes).unwrap(), records);
        let mut corrupt = bytes.clone();
        corrupt[6] ^= 1;
        assert_eq!(deaggregate(&corrupt), Err(KplError::Md5Mismatch));
    }
}
