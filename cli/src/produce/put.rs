//! PutRecords for `produce`: user records become Kinesis records (one each, or KPL aggregates per shard), the
//! records become calls within PutRecords' limits, and each call is retried until every record is in, each
//! user record then reported.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Duration;

use anyhow::bail;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use salesflow_ingest::kpl::{UserRecord, aggregate};
use serde_json::json;

use crate::aws;
use crate::local::shards::{ShardMap, hash_key};

/// PutRecords limits.
pub const MAX_RECORDS_PER_CALL: usize = 500;
pub const MAX_BYTES_PER_CALL: usize = 5 << 20;
/// The KPL's default `AggregationMaxSize`.
const KPL_MAX_BYTES: usize = 50 << 10;
const MAX_ATTEMPTS: u32 = 12;

/// One user record to send, with what the report says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub partition_key: String,
    pub data: Vec<u8>,
    pub receipt_id: Option<String>,
    pub bad: Option<&'static str>,
}

/// What was sent.
#[derive(Debug, Default)]
pub struct Totals {
    pub user_records: u64,
    pub receipts: u64,
    pub bad: u64,
    pub kinesis_records: u64,
    pub bytes: u64,
    pub calls: u64,
    pub retried: u64,
    pub throttled: u64,
}

/// One Kinesis record of a call: the entry and the user records in it (one, or an aggregate's).
#[derive(Debug)]
struct Entry {
    partition_key: String,
    explicit_hash_key: Option<String>,
    data: Vec<u8>,
    users: Vec<Pending>,
}

impl Entry {
    fn plain(user: Pending) -> Entry {
        Entry {
            partition_key: user.partition_key.clone(),
            explicit_hash_key: None,
            data: user.data.clone(),
            users: vec![user],
        }
    }

    /// A KPL aggregate, routed by the hash key of its first user record.
    fn aggregate(users: Vec<Pending>) -> Entry {
        let records: Vec<UserRecord> =
            users.iter().map(|u| UserRecord { partition_key: u.partition_key.clone(), data: u.data.clone() }).collect();
        Entry {
            partition_key: users[0].partition_key.clone(),
            explicit_hash_key: Some(hash_key(&users[0].partition_key).to_string()),
            data: aggregate(&records),
            users,
        }
    }

    /// What the entry counts against the call's size limit.
    fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// The user records as Kinesis records: one each, or (`kpl`: at most that many user records an aggregate)
/// aggregates of the records of one shard, up to the KPL's size.
fn entries(batch: Vec<Pending>, shards: &ShardMap, kpl: Option<usize>) -> Vec<Entry> {
    let Some(max_records) = kpl else { return batch.into_iter().map(Entry::plain).collect() };
    let mut by_shard: BTreeMap<&str, Vec<Pending>> = BTreeMap::new();
    for p in batch {
        by_shard.entry(shards.shard_of(&p.partition_key)).or_default().push(p);
    }
    let mut entries = Vec::new();
    for (_, records) in by_shard {
        let mut group: Vec<Pending> = Vec::new();
        let mut bytes = 0;
        for p in records {
            if !group.is_empty() && (group.len() >= max_records || bytes + p.data.len() > KPL_MAX_BYTES) {
                entries.push(Entry::aggregate(std::mem::take(&mut group)));
                bytes = 0;
            }
            bytes += p.data.len() + p.partition_key.len();
            group.push(p);
        }
        if !group.is_empty() {
            entries.push(Entry::aggregate(group));
        }
    }
    entries
}

/// The entries as calls of at most 500 records and 5 MiB.
fn calls(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut calls: Vec<Vec<Entry>> = Vec::new();
    let mut call_bytes = 0;
    for e in entries {
        let size = e.size();
        match calls.last_mut() {
            Some(last) if last.len() < MAX_RECORDS_PER_CALL && call_bytes + size <= MAX_BYTES_PER_CALL => {
                call_bytes += size;
                last.push(e);
            }
            _ => {
                call_bytes = size;
                calls.push(vec![e]);
            }
        }
    }
    calls
}

/// Sends to one stream, counts, and reports every user record sent.
pub struct Sender<'a> {
    client: &'a aws_sdk_kinesis::Client,
    stream: &'a str,
    shards: ShardMap,
    /// User records per KPL aggregate, when aggregating.
    kpl: Option<usize>,
    report: Option<BufWriter<File>>,
    totals: Totals,
}

impl<'a> Sender<'a> {
    pub fn new(
        client: &'a aws_sdk_kinesis::Client,
        stream: &'a str,
        shards: ShardMap,
        kpl: Option<usize>,
        report: Option<BufWriter<File>>,
    ) -> Sender<'a> {
        Sender { client, stream, shards, kpl, report, totals: Totals::default() }
    }

    pub fn totals_mut(&mut self) -> &mut Totals {
        &mut self.totals
    }

    /// Flushes the report; the totals.
    pub fn finish(mut self) -> anyhow::Result<Totals> {
        if let Some(r) = &mut self.report {
            r.flush()?;
        }
        Ok(self.totals)
    }

    /// Sends user records (plain or aggregated), retrying what fails, and reports each.
    pub async fn send(&mut self, batch: Vec<Pending>) -> anyhow::Result<()> {
        for call in calls(entries(batch, &self.shards, self.kpl)) {
            self.put(call).await?;
        }
        Ok(())
    }

    /// One call, retried (with back-off) for the records that fail, at most [`MAX_ATTEMPTS`] times.
    async fn put(&mut self, call: Vec<Entry>) -> anyhow::Result<()> {
        let mut todo = call;
        let mut attempt = 0;
        while !todo.is_empty() {
            attempt += 1;
            let request: Vec<PutRecordsRequestEntry> = todo
                .iter()
                .map(|e| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(&e.partition_key)
                        .set_explicit_hash_key(e.explicit_hash_key.clone())
                        .data(Blob::new(e.data.clone()))
                        .build()
                        .expect("partition key and data are set")
                })
                .collect();
            self.totals.calls += 1;
            let response =
                match self.client.put_records().stream_name(self.stream).set_records(Some(request)).send().await {
                    Ok(r) => r,
                    Err(e) => {
                        let retryable = e.as_service_error().is_none_or(|s| {
                            s.is_provisioned_throughput_exceeded_exception()
                                || s.meta()
                                    .code()
                                    .is_some_and(|c| c.contains("Throttl") || c.contains("InternalFailure"))
                        });
                        if !retryable || attempt >= MAX_ATTEMPTS {
                            bail!("PutRecords to {} failed: {}", self.stream, aws::sdk_error(&e));
                        }
                        self.totals.throttled += 1;
                        backoff(attempt).await;
                        continue;
                    }
                };
            let mut retry = Vec::new();
            for (entry, result) in todo.into_iter().zip(response.records) {
                match (result.error_code, result.shard_id, result.sequence_number) {
                    (None, Some(shard), Some(sequence)) => self.sent(&entry, &shard, &sequence)?,
                    (code, _, _) => {
                        if code.as_deref() == Some("ProvisionedThroughputExceededException") {
                            self.totals.throttled += 1;
                        }
                        self.totals.retried += 1;
                        retry.push(entry);
                    }
                }
            }
            if !retry.is_empty() && attempt >= MAX_ATTEMPTS {
                bail!(
                    "PutRecords to {}: {} records still failing after {MAX_ATTEMPTS} attempts",
                    self.stream,
                    retry.len()
                );
            }
            if !retry.is_empty() {
                backoff(attempt).await;
            }
            todo = retry;
        }
        Ok(())
    }

    /// An entry is in the stream at `shard`, `sequence`: counts it and reports its user records.
    fn sent(&mut self, entry: &Entry, shard: &str, sequence: &str) -> anyhow::Result<()> {
        self.totals.kinesis_records += 1;
        self.totals.bytes += entry.data.len() as u64;
        self.totals.user_records += entry.users.len() as u64;
        let Some(report) = &mut self.report else { return Ok(()) };
        let aggregated = entry.explicit_hash_key.is_some();
        for (index, user) in entry.users.iter().enumerate() {
            let line = json!({
                "receipt_id": user.receipt_id,
                "partition_key": user.partition_key,
                "bad": user.bad,
                "shard_id": shard,
                "sequence_number": sequence,
                "sub_sequence_number": aggregated.then_some(index),
                "payload": String::from_utf8_lossy(&user.data),
            });
            writeln!(report, "{line}")?;
        }
        Ok(())
    }
}

async fn backoff(attempt: u32) {
    let ms = (50u64 << attempt.min(6)).min(3_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[cfg(test)]
mod tests {
    use salesflow_ingest::kpl;

    use super::*;

    fn pending(store: &str, bytes: usize) -> Pending {
        Pending { partition_key: store.into(), data: vec![b'x'; bytes], receipt_id: None, bad: None }
    }

    #[test]
    fn plain_records_are_one_entry_each() {
        let batch = vec![pending("S00001", 10), pending("S00002", 10)];
        let e = entries(batch, &ShardMap::even(2), None);
        assert_eq!(e.len(), 2);
        assert!(e.iter().all(|e| e.explicit_hash_key.is_none() && e.users.len() == 1 && e.data.len() == 10));
    }

    #[test]
    fn aggregates_keep_to_one_shard_and_the_kpl_limits() {
        let shards = ShardMap::even(4);
        let batch: Vec<Pending> = (1..=40).map(|n| pending(&salesflow_core::generate::store_id(n), 100)).collect();
        let e = entries(batch.clone(), &shards, Some(3));
        assert_eq!(e.iter().map(|e| e.users.len()).sum::<usize>(), 40);
        for entry in &e {
            assert!(entry.users.len() <= 3);
            let shard = shards.shard_of(&entry.partition_key);
            assert!(entry.users.iter().all(|u| shards.shard_of(&u.partition_key) == shard));
            assert_eq!(entry.explicit_hash_key, Some(hash_key(&entry.partition_key).to_string()));
            let users = kpl::deaggregate(&entry.data).expect("a KPL aggregate");
            assert_eq!(users.len(), entry.users.len());
        }
        // 50 KiB at most an aggregate: 20 KiB records go two by two.
        let big: Vec<Pending> = (0..5).map(|_| pending("S00001", 20 << 10)).collect();
        assert_eq!(entries(big, &shards, Some(100)).iter().map(|e| e.users.len()).collect::<Vec<_>>(), [2, 2, 1]);
    }

    #[test]
    fn calls_keep_to_500_records_and_5_mib() {
        let small = (0..1200).map(|_| Entry::plain(pending("S00001", 10))).collect();
        assert_eq!(calls(small).iter().map(Vec::len).collect::<Vec<_>>(), [500, 500, 200]);
        let big = (0..5).map(|_| Entry::plain(pending("S00001", 2 << 20))).collect();
        assert_eq!(calls(big).iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(calls(Vec::new()).is_empty());
    }
}
