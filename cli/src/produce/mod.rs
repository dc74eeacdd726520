//! `salesflow produce`: a load producer. Sends generated receipts (`salesflow_core::generate::Generator`, so
//! the same seed sends the same receipts) to a Kinesis stream with PutRecords at a steady rate, the partition
//! key being the store id; at most 500 records and 5 MiB per call; failed and throttled records are retried with
//! backoff. `--kpl` packs user records into KPL aggregates per shard, as the Kinesis Producer Library does.
//! `--bad N` mixes N bad records in (truncated JSON, text, a receipt without a store, a wrong type), so the
//! rejects path runs too. `--report FILE` writes one line per user record sent — its receipt id, shard,
//! sequence number and payload — so a test can compare what came out with what went in.

mod put;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use jiff::{SignedDuration, Timestamp};
use salesflow_core::generate::Generator;
use serde_json::{Value, json};

use crate::aws;
use crate::local::duration::parse_duration;
use crate::local::progress;
use crate::local::shards::ShardMap;
use put::{MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL, Pending, Sender};

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

const BAD_KINDS: [&str; 4] = ["truncated-json", "not-json", "missing-store-id", "quantity-not-a-number"];

/// How many records to send, how fast, and which of them are bad.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    total: u64,
    /// Records per second; infinite: as fast as the stream takes them.
    rate: f64,
    /// Bad records to mix in, one every `bad_every` records.
    bad: u64,
    bad_every: u64,
    backdate: Option<SignedDuration>,
}

impl Plan {
    fn new(args: &ProduceArgs) -> anyhow::Result<Plan> {
        let default_rate = f64::from(args.stores.max(1)) * 10.0 / 60.0;
        let rate = match (args.rate, args.count) {
            (Some(r), _) if r > 0.0 => r,
            (Some(_), _) => bail!("--rate must be positive"),
            (None, Some(_)) => f64::INFINITY,
            (None, None) => default_rate,
        };
        let total = args.count.unwrap_or_else(|| (rate * args.duration.as_secs_f64()).round() as u64);
        Ok(Plan {
            total,
            rate,
            bad: args.bad,
            bad_every: total.checked_div(args.bad).map_or(u64::MAX, |every| every.max(1)),
            backdate: args.backdate.map(|d| SignedDuration::try_from(d).unwrap_or(SignedDuration::ZERO)),
        })
    }

    /// How many records are due `elapsed` seconds in.
    fn due(&self, elapsed: f64) -> u64 {
        if self.rate.is_finite() { ((elapsed * self.rate) as u64).min(self.total) } else { self.total }
    }

    /// The kind of bad record the record after `generated` ones is, `bad_sent` bad ones sent so far.
    fn bad_kind(&self, generated: u64, bad_sent: u64) -> Option<&'static str> {
        (self.bad > 0 && (generated + 1).is_multiple_of(self.bad_every) && bad_sent < self.bad)
            .then(|| BAD_KINDS[(bad_sent % BAD_KINDS.len() as u64) as usize])
    }

    /// How long to sleep, `elapsed` seconds in, until the record after `generated` ones is due: 5 to 100 ms.
    fn wait(&self, generated: u64, elapsed: f64) -> Duration {
        let next = (generated + 1) as f64 / self.rate;
        Duration::from_secs_f64((next - elapsed).clamp(0.005, 0.1))
    }

    fn describe_rate(&self) -> String {
        if self.rate.is_finite() { format!("{:.1} receipts/s", self.rate) } else { "as fast as possible".into() }
    }
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
    let plan = Plan::new(&args)?;
    let report = match &args.report {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    eprintln!(
        "produce: {} records to {} on {} ({} shard(s)), {} stores, {}{}{}",
        plan.total,
        args.stream,
        aws::describe_endpoint(&config),
        shards.ranges().len(),
        args.stores.max(1),
        plan.describe_rate(),
        if args.kpl { ", KPL-aggregated" } else { "" },
        if args.bad > 0 { format!(", {} bad", args.bad) } else { String::new() },
    );
    let kpl = args.kpl.then_some(args.kpl_records.max(1));
    let mut sender = Sender::new(&client, &args.stream, shards, kpl, report);
    let started = Instant::now();
    send_all(&args, &plan, &mut sender, started).await?;
    let totals = sender.finish()?;
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

/// Generates the plan's records as they fall due and sends them, a PutRecords batch at a time.
async fn send_all(args: &ProduceArgs, plan: &Plan, sender: &mut Sender<'_>, started: Instant) -> anyhow::Result<()> {
    let progress = progress::spinner(args.quiet);
    let mut generator = Generator::new(args.seed, args.stores.max(1));
    let mut pending: Vec<Pending> = Vec::new();
    let mut pending_bytes = 0usize;
    let mut generated = 0u64;
    loop {
        let due = plan.due(started.elapsed().as_secs_f64());
        while generated < due && pending.len() < MAX_RECORDS_PER_CALL && pending_bytes < MAX_BYTES_PER_CALL / 2 {
            let now = Timestamp::now();
            let receipt = generator.receipt_at(plan.backdate.map_or(now, |b| now - b));
            let totals = sender.totals_mut();
            let bad = plan.bad_kind(generated, totals.bad);
            if bad.is_some() {
                totals.bad += 1;
            } else {
                totals.receipts += 1;
            }
            let record = make_record(receipt, bad);
            pending_bytes += record.data.len();
            pending.push(record);
            generated += 1;
        }
        if !pending.is_empty() {
            pending_bytes = 0;
            sender.send(std::mem::take(&mut pending)).await?;
            let t = sender.totals_mut();
            progress.set_message(format!(
                "sent {} user records ({} Kinesis records, {:.0}/s), {} retried, {} throttled",
                t.user_records,
                t.kinesis_records,
                t.user_records as f64 / started.elapsed().as_secs_f64().max(0.001),
                t.retried,
                t.throttled
            ));
        }
        if generated == plan.total {
            break;
        }
        if generated >= due {
            tokio::time::sleep(plan.wait(generated, started.elapsed().as_secs_f64())).await;
        }
    }
    progress.finish_and_clear();
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_spreads_the_bad_records_and_paces_the_rest() {
        let args = |rate, count, bad| ProduceArgs {
            stream: "s".into(),
            stores: 60,
            rate,
            duration: Duration::from_secs(60),
            count,
            kpl: false,
            kpl_records: 100,
            seed: 1,
            bad,
            backdate: None,
            report: None,
            create: None,
            quiet: true,
        };
        // 60 stores at 10 receipts a minute for 60 s.
        let plan = Plan::new(&args(None, None, 4)).unwrap();
        assert_eq!((plan.total, plan.rate, plan.bad_every), (600, 10.0, 150));
        assert_eq!((plan.due(0.5), plan.due(30.0), plan.due(1e6)), (5, 300, 600));
        assert_eq!(plan.wait(5, 0.0), Duration::from_millis(100), "at most 100 ms");
        assert_eq!(plan.wait(5, 0.6), Duration::from_millis(5), "at least 5 ms");
        let kinds: Vec<(u64, &str)> = (0..600)
            .scan(0, |sent, n| {
                let kind = plan.bad_kind(n, *sent);
                *sent += u64::from(kind.is_some());
                Some(kind.map(|k| (n + 1, k)))
            })
            .flatten()
            .collect();
        assert_eq!(kinds, [(150, BAD_KINDS[0]), (300, BAD_KINDS[1]), (450, BAD_KINDS[2]), (600, BAD_KINDS[3])]);
        // A count with no rate: everything at once.
        let plan = Plan::new(&args(None, Some(10), 0)).unwrap();
        assert_eq!((plan.total, plan.due(0.0), plan.bad_kind(9, 0)), (10, 10, None));
        assert!(Plan::new(&args(Some(0.0), None, 0)).is_err());
    }

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
