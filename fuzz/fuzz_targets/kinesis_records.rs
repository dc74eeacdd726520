//! Structured Kinesis batches → the ingest handler: shard and sequence ids (well-formed or arbitrary), and
//! payloads plain, gzip, KPL aggregates of plain or gzip user records, or arbitrary base64 text. Reaches the
//! decoders far deeper than JSON bytes do. Invariants: `check_batch`, with the exact count of user records
//! where the payload's shape says it.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use salesflow_fuzz::{SAMPLES, now, process_and_check};
use salesflow_ingest::kpl::{self, UserRecord};
use salesflow_ingest::{StreamEvent, StreamRecord};
use std::io::Write;

#[derive(Debug, Arbitrary)]
enum Id {
    Kinesis(u64),
    Raw(String),
}

impl Id {
    fn shard(&self) -> String {
        match self {
            Id::Kinesis(n) => format!("shardId-{:012}", n % 1000),
            Id::Raw(s) => s.clone(),
        }
    }

    fn sequence(&self, index: usize) -> String {
        match self {
            Id::Kinesis(n) => {
                format!("4959033827149025660855969253836157109592157598913658{:04}", n % 10_000 + index as u64)
            }
            Id::Raw(s) => s.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Body {
    Bytes(Vec<u8>),
    Sample(u8),
    Receipt { receipt_id: String, store_id: String, emitted_at: String, quantity: String, unit_price: String },
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Bytes(b) => b.clone(),
            Body::Sample(i) => serde_json::to_vec(&SAMPLES[*i as usize % SAMPLES.len()]).expect("serializes"),
            Body::Receipt { receipt_id, store_id, emitted_at, quantity, unit_price } => {
                let s = |t: &str| serde_json::to_string(t).expect("serializes");
                format!(
                    r#"{{"receipt_id":{},"store_id":{},"emitted_at":{},"currency":"EUR","lines":[{{"sku":"K","name":"N","category":"C","quantity":{quantity},"unit_price":{unit_price}}}]}}"#,
                    s(receipt_id),
                    s(store_id),
                    s(emitted_at)
                )
                .into_bytes()
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
struct User {
    partition_key: String,
    gzip: bool,
    body: Body,
}

#[derive(Debug, Arbitrary)]
enum Payload {
    Plain(Body),
    Gzip(Body),
    Kpl(Vec<User>),
    /// An aggregate with its last bytes cut or flipped.
    CorruptKpl(Vec<User>, u8),
    Base64Text(String),
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("in memory");
    gz.finish().expect("in memory")
}

impl Payload {
    /// The base64 data, and the user records it holds when its shape says so.
    fn encode(&self) -> (String, Option<u64>) {
        let plain = |b: Vec<u8>| {
            let known = (!kpl::is_aggregated(&b)).then_some(1);
            (STANDARD.encode(&b), known)
        };
        match self {
            Payload::Plain(body) => plain(body.bytes()),
            Payload::Gzip(body) => (STANDARD.encode(gzip(&body.bytes())), Some(1)),
            Payload::Kpl(users) => {
                let data = aggregate(users);
                // An empty aggregate still is a Kinesis record: one outcome (a reject).
                (STANDARD.encode(data), Some(users.len().max(1) as u64))
            }
            Payload::CorruptKpl(users, cut) => {
                let mut data = aggregate(users);
                let cut = usize::from(*cut) % data.len();
                if cut % 2 == 0 {
                    data.truncate(data.len() - cut / 2);
                } else {
                    data[cut] ^= 0x55;
                }
                (STANDARD.encode(data), None)
            }
            Payload::Base64Text(text) => (text.clone(), None),
        }
    }
}

fn aggregate(users: &[User]) -> Vec<u8> {
    let records: Vec<UserRecord> = users
        .iter()
        .map(|u| {
            let body = u.body.bytes();
            UserRecord { partition_key: u.partition_key.clone(), data: if u.gzip { gzip(&body) } else { body } }
        })
        .collect();
    kpl::aggregate(&records)
}

#[derive(Debug, Arbitrary)]
struct Record {
    sequence: Id,
    partition_key: String,
    arrival_seconds: i64,
    payload: Payload,
}

#[derive(Debug, Arbitrary)]
struct Batch {
    shard: Id,
    records: Vec<Record>,
}

fuzz_target!(|batch: Batch| {
    let mut expected = Some(0u64);
    let records = batch
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (data, known) = r.payload.encode();
            // A record whose ids are arbitrary text may be refused whole as a malformed envelope (one outcome,
            // whatever it holds): its count is known only when both ids have Kinesis formats.
            let known = known.filter(|_| matches!((&batch.shard, &r.sequence), (Id::Kinesis(_), Id::Kinesis(_))));
            expected = expected.zip(known).map(|(a, b)| a + b);
            let arrival = jiff::Timestamp::from_second(r.arrival_seconds).unwrap_or_else(|_| now());
            StreamRecord::new(&batch.shard.shard(), &r.sequence.sequence(i), &r.partition_key, arrival, data)
        })
        .collect();
    process_and_check(StreamEvent { records }, expected);
});
