//! `salesflow produce`: a load producer. Sends generated receipts (`salesflow_core::generate::Generator`, so
//! the same seed sends the same receipts) to a Kinesis stream with PutRecords at a steady rate, the partition
//! key being the store id; at most 500 records and 5 MiB per call; failed and throttled records are retried with
//! backoff. `--kpl` packs user records into KPL aggregates per shard, as the Kinesis Producer Library does.
//! `--bad N` mixes N bad records in (truncated JSON, text, a receipt without a store, a wrong type), so the
//! rejects path runs too. `--report FILE` writes one line per user record sent — its receipt id, shard,
//! sequence number and payload — so a test can compare what came out with what went in.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use clap::Args;
use jiff::{SignedDuration, Timestamp};
use salesflow_core::generate::Generator;
use salesflow_ingest::kpl::{UserRecord, aggregate};
use serde_json::{Value, json};

use crate::aws;
use crate::local::duration::parse_duration;
use crate::local::progress;
use crate::local::shards::{ShardMap, hash_key};

/// PutRecords limits.
const MAX_RECORDS_PER_CALL: usize = 500;
const MAX_BYTES_PER_CALL: usize = 5 << 20;
/// The KPL's default `AggregationMaxSize`.
const KPL_MAX_BYTES: usize = 50 << 10;
const MAX_ATTEMPTS: u32 = 12;

#[derive(Args)]
pub struct ProduceArgs {
    /// The Kinesis stream.
    #[arg(long, default_value = "salesflow-receipts")]
    stream: String,
    /// Stores sending receipts (S00001 ... SNNNNN).
    #[arg(long, default_value_t = 100)]
    stores: u32,
    /// Receipts per second, all stores together (default: the seed's 10 receipts per minute per store).
    #[arg(long)]
    rate: Option<f64>,
    /// How long to send (`90s`, `5m`, `1h`, `500ms`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Send exactly this many records (bad ones included) instead of rate × duration; with no `--rate`, as fast
    /// as the stream takes them.
    #[arg(long)]
    count: Option<u64>,
    /// Pack user records into KPL aggregates (one per shard and call, up to `--kpl-records` records / 50 KiB).
    #[arg(long)]
    kpl: bool,
    /// User records per KPL aggregate, at most.
    #[arg(long, default_value_t = 100)]
    kpl_records: usize,
    /// Seed of the generator: the same seed sends the same receipts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Bad records to mix in, spread evenly (kinds in turn: truncated JSON, plain text, receipt without a
    /// store_id, a line whose quantity is text).
    #[arg(long, default_value_t = 0)]
    bad: u64,
    /// Shift `emitted_at` this far into the past (`3h`): back-filled receipts, hours already closed.
    #[arg(long, value_parser = parse_duration)]
    backdate: Option<Duration>,
    /// Write one NDJSON line per user record sent (receipt id, store, shard, sequence number, payload).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Create the stream if it is missing, with this many shards.
    #[arg(long, value_name = "SHARDS")]
    create: Option<i32>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// One user record to send, with what the report says about it.
struct Pending {
    partition_key: String,
    data: Vec<u8>,
    receipt_id: Option<String>,
    bad: Option<&'static str>,
}

const BAD_KINDS: [&str; 4] = ["truncated-json", "not-json", "missing-store-id", "quantity-not-a-number"];

#[derive(Default)]
struct Totals {
    user_records: u64,
    receipts: u64,
    bad: u64,
    kinesis_records: u64,
    bytes: u64,
    calls: u64,
    retried: u64,
    throttled: u64,
}

pub fn run(args: ProduceArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(produce(args))
}

async fn produce(args: ProduceArgs) -> anyhow::Result<ExitCode> {
    let config = aws::sdk_config().await;
    let client = aws_sdk_kinesis::Client::new(&config);
    let shards = match args.create {
        Some(n) => aws::ensure_stream(&client, &args.stream, n).await?.shards,
        None => aws::list_shards(&client, &args.stream)
            .await
            .with_context(|| format!("stream {} (create it with --create SHARDS)", args.stream))?,
    };
    let Some(shards) = ShardMap::from_listed(&shards) else { bail!("stream {}: no open shard", args.stream) };
    let stores = args.stores.max(1);
    let default_rate = f64::from(stores) * 10.0 / 60.0;
    let rate = match (args.rate, args.count) {
        (Some(r), _) if r > 0.0 => r,
        (Some(_), _) => bail!("--rate must be positive"),
        (None, Some(_)) => f64::INFINITY,
        (None, None) => default_rate,
    };
    let total = args.count.unwrap_or_else(|| (rate * args.duration.as_secs_f64()).round() as u64);
    let bad_every = total.checked_div(args.bad).map_or(u64::MAX, |every| every.max(1));
    let backdate = args.backdate.map(|d| SignedDuration::try_from(d).unwrap_or(SignedDuration::ZERO));
    let mut report = match &args.report {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    eprintln!(
        "produce: {total} records to {} on {} ({} shard(s)), {} stores, {}{}{}",
        args.stream,
        aws::describe_endpoint(&config),
        shards.ranges().len(),
        stores,
        if rate.is_finite() { format!("{rate:.1} receipts/s") } else { "as fast as possible".into() },
        if args.kpl { ", KPL-aggregated" } else { "" },
        if args.bad > 0 { format!(", {} bad", args.bad) } else { String::new() },
    );
    let progress = progress::spinner(args.quiet);
    let mut generator = Generator::new(args.seed, stores);
    let mut totals = Totals::default();
    let mut pending: Vec<Pending> = Vec::new();
    let mut pending_bytes = 0usize;
    let started = Instant::now();
    let mut generated = 0u64;
    loop {
        let due = if rate.is_finite() { ((started.elapsed().as_secs_f64() * rate) as u64).min(total) } else { total };
        while generated < due && pending.len() < MAX_RECORDS_PER_CALL && pending_bytes < MAX_BYTES_PER_CALL / 2 {
            let now = Timestamp::now();
            let at = backdate.map_or(now, |b| now - b);
            let receipt = generator.receipt_at(at);
            let bad = (args.bad > 0 && (generated + 1).is_multiple_of(bad_every) && totals.bad < args.bad)
                .then(|| BAD_KINDS[(totals.bad % BAD_KINDS.len() as u64) as usize]);
            let record = make_record(receipt, bad);
            pending_bytes += record.data.len();
            if bad.is_some() {
                totals.bad += 1;
            } else {
                totals.receipts += 1;
            }
            pending.push(record);
            generated += 1;
        }
        let finished = generated == total;
        if !pending.is_empty() {
            let batch = std::mem::take(&mut pending);
            pending_bytes = 0;
            send(&client, &args, &shards, batch, &mut totals, report.as_mut()).await?;
            progress.set_message(format!(
                "sent {} user records ({} Kinesis records, {:.0}/s), {} retried, {} throttled",
                totals.user_records,
                totals.kinesis_records,
                totals.user_records as f64 / started.elapsed().as_secs_f64().max(0.001),
                totals.retried,
                totals.throttled
            ));
        }
        if finished {
            break;
        }
        if generated >= due {
            // Sleep until the next record is due, in steps of at most 100 ms.
            let next = (generated + 1) as f64 / rate;
            let wait = (next - started.elapsed().as_secs_f64()).clamp(0.005, 0.1);
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
    progress.finish_and_clear();
    if let Some(mut r) = report {
        r.flush()?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summary = json!({
        "stream": args.stream,
        "user_records": totals.user_records,
        "receipts": totals.receipts,
        "bad_records": totals.bad,
        "kinesis_records": totals.kinesis_records,
        "kpl": args.kpl,
        "bytes": totals.bytes,
        "put_records_calls": totals.calls,
        "records_retried": totals.retried,
        "throttled": totals.throttled,
        "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
        "user_records_per_s": (totals.user_records as f64 / elapsed.max(0.001)).round(),
    });
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// A receipt as it is sent, or spoiled into a bad record of `bad`'s kind.
fn make_record(mut receipt: Value, bad: Option<&'static str>) -> Pending {
    let receipt_id = receipt["receipt_id"].as_str().map(str::to_string);
    let store = receipt["store_id"].as_str().unwrap_or("S00000").to_string();
    let data = match bad {
        None => serde_json::to_vec(&receipt).expect("JSON"),
        Some("truncated-json") => {
            let mut text = serde_json::to_vec(&receipt).expect("JSON");
            text.truncate(text.len() / 2);
            text
        }
        Some("not-json") => {
            format!("receipt {} from {store}: printer out of paper", receipt_id.as_deref().unwrap_or("?")).into_bytes()
        }
        Some("missing-store-id") => {
            receipt.as_object_mut().expect("object").remove("store_id");
            serde_json::to_vec(&receipt).expect("JSON")
        }
        Some(_) => {
            receipt["lines"][0]["quantity"] = Value::String("lots".into());
            serde_json::to_vec(&receipt).expect("JSON")
        }
    };
    Pending { partition_key: store, data, receipt_id, bad }
}

/// One Kinesis record of a call: the entry and the user records in it (one, or an aggregate's).
struct Entry {
    partition_key: String,
    explicit_hash_key: Option<String>,
    data: Vec<u8>,
    users: Vec<Pending>,
}

/// Sends user records (plain or aggregated), retrying what fails, and reports each.
async fn send(
    client: &aws_sdk_kinesis::Client,
    args: &ProduceArgs,
    shards: &ShardMap,
    batch: Vec<Pending>,
    totals: &mut Totals,
    mut report: Option<&mut std::io::BufWriter<std::fs::File>>,
) -> anyhow::Result<()> {
    let mut entries: Vec<Entry> = Vec::new();
    if args.kpl {
        let mut by_shard: BTreeMap<&str, Vec<Pending>> = BTreeMap::new();
        for p in batch {
            by_shard.entry(shards.shard_of(&p.partition_key)).or_default().push(p);
        }
        for (_, records) in by_shard {
            let mut group: Vec<Pending> = Vec::new();
            let mut bytes = 0;
            for p in records {
                if !group.is_empty() && (group.len() >= args.kpl_records.max(1) || bytes + p.data.len() > KPL_MAX_BYTES)
                {
                    entries.push(aggregate_entry(std::mem::take(&mut group)));
                    bytes = 0;
                }
                bytes += p.data.len() + p.partition_key.len();
                group.push(p);
            }
            if !group.is_empty() {
                entries.push(aggregate_entry(group));
            }
        }
    } else {
        entries = batch
            .into_iter()
            .map(|p| Entry {
                partition_key: p.partition_key.clone(),
                explicit_hash_key: None,
                data: p.data.clone(),
                users: vec![p],
            })
            .collect();
    }
    // Calls of at most 500 records and 5 MiB.
    let mut calls: Vec<Vec<Entry>> = vec![Vec::new()];
    let mut call_bytes = 0;
    for e in entries {
        let size = e.data.len() + e.partition_key.len();
        let last = calls.last_mut().expect("one call");
        if !last.is_empty() && (last.len() >= MAX_RECORDS_PER_CALL || call_bytes + size > MAX_BYTES_PER_CALL) {
            calls.push(Vec::new());
            call_bytes = 0;
        }
        call_bytes += size;
        calls.last_mut().expect("one call").push(e);
    }
    for call in calls {
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
            totals.calls += 1;
            let response = match client.put_records().stream_name(&args.stream).set_records(Some(request)).send().await
            {
                Ok(r) => r,
                Err(e) => {
                    let retryable = e.as_service_error().is_none_or(|s| {
                        s.is_provisioned_throughput_exceeded_exception()
                            || s.meta().code().is_some_and(|c| c.contains("Throttl") || c.contains("InternalFailure"))
                    });
                    if !retryable || attempt >= MAX_ATTEMPTS {
                        bail!("PutRecords to {} failed: {}", args.stream, aws::sdk_error(&e));
                    }
                    totals.throttled += 1;
                    backoff(attempt).await;
                    continue;
                }
            };
            let mut retry = Vec::new();
            for (entry, result) in todo.into_iter().zip(response.records) {
                match (result.error_code, result.shard_id, result.sequence_number) {
                    (None, Some(shard), Some(sequence)) => {
                        totals.kinesis_records += 1;
                        totals.bytes += entry.data.len() as u64;
                        let aggregated = entry.explicit_hash_key.is_some();
                        for (index, user) in entry.users.iter().enumerate() {
                            totals.user_records += 1;
                            if let Some(r) = report.as_deref_mut() {
                                let line = json!({
                                    "receipt_id": user.receipt_id,
                                    "partition_key": user.partition_key,
                                    "bad": user.bad,
                                    "shard_id": shard,
                                    "sequence_number": sequence,
                                    "sub_sequence_number": aggregated.then_some(index),
                                    "payload": String::from_utf8_lossy(&user.data),
                                });
                                writeln!(r, "{line}")?;
                            }
                        }
                    }
                    (code, _, _) => {
                        if code.as_deref() == Some("ProvisionedThroughputExceededException") {
                            totals.throttled += 1;
                        }
                        totals.retried += 1;
                        retry.push(entry);
                    }
                }
            }
            if !retry.is_empty() && attempt >= MAX_ATTEMPTS {
                bail!(
                    "PutRecords to {}: {} records still failing after {MAX_ATTEMPTS} attempts",
                    args.stream,
                    retry.len()
                );
            }
            if !retry.is_empty() {
                backoff(attempt).await;
            }
            todo = retry;
        }
    }
    Ok(())
}

fn aggregate_entry(users: Vec<Pending>) -> Entry {
    let records: Vec<UserRecord> =
        users.iter().map(|u| UserRecord { partition_key: u.partition_key.clone(), data: u.data.clone() }).collect();
    Entry {
        partition_key: users[0].partition_key.clone(),
        explicit_hash_key: Some(hash_key(&users[0].partition_key).to_string()),
        data: aggregate(&records),
        users,
    }
}

async fn backoff(attempt: u32) {
    let ms = (50u64 << attempt.min(6)).min(3_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_records_are_bad_in_the_announced_way() {
        let mut g = Generator::new(1, 10);
        let at = Timestamp::UNIX_EPOCH;
        let truncated = make_record(g.receipt_at(at), Some("truncated-json"));
        assert!(serde_json::from_slice::<Value>(&truncated.data).is_err());
        let missing = make_record(g.receipt_at(at), Some("missing-store-id"));
        let v: Value = serde_json::from_slice(&missing.data).unwrap();
        assert!(v.get("store_id").is_none());
        let good = make_record(g.receipt_at(at), None);
        assert_eq!(good.partition_key, serde_json::from_slice::<Value>(&good.data).unwrap()["store_id"]);
    }
}
