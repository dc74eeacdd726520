//! End to end against LocalStack: `salesflow produce` → Kinesis → `salesflow dev` (the ingest handler) → S3
//! `raw/`, `landed/`, `rejects/` → S3 notification → SQS → `salesflow dev` (the export handler) → CSV datasets,
//! compaction and manifests. Everything is checked against what the producer reports it sent, with expected rows
//! computed here from the receipts themselves, not with the code under test.
//!
//! Gated: runs when `SALESFLOW_E2E=1` (`scripts/test` sets it after `scripts/localstack start`); then a
//! LocalStack that does not answer fails the test with the reason. Without the variable the test only says it
//! did not run, so a plain `cargo test` needs no LocalStack. Endpoint: `AWS_ENDPOINT_URL`, default
//! `http://127.0.0.1:4566`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use salesflow_store::{ObjectStore, S3Store};
use serde_json::Value;

/// `hourly_sales`' key: hour_start_utc, store_id, category.
type HourKey = (String, String, String);

fn e2e_enabled() -> bool {
    std::env::var("SALESFLOW_E2E").is_ok_and(|v| v == "1")
}

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "http://127.0.0.1:4566".into())
}

/// LocalStack's health, or why it cannot be had.
fn localstack_health(endpoint: &str) -> Result<String, String> {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).map_err(|e| {
        format!("cannot connect to LocalStack at {endpoint}: {e} (start it with scripts/localstack start)")
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(stream, "GET /_localstack/health HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("LocalStack at {endpoint}: {e}"))?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    let health: Value = serde_json::from_str(&body).map_err(|_| format!("{endpoint} is not LocalStack: {response}"))?;
    for service in ["s3", "kinesis", "sqs"] {
        let state = health["services"][service].as_str().unwrap_or("missing");
        if !matches!(state, "available" | "running") {
            return Err(format!("LocalStack at {endpoint}: service {service} is {state}"));
        }
    }
    Ok(body)
}

/// The `salesflow` binary, built if needed (`SALESFLOW_BIN` overrides).
fn salesflow_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("SALESFLOW_BIN") {
        return std::fs::canonicalize(&bin).unwrap_or_else(|e| panic!("SALESFLOW_BIN={bin}: {e}"));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "salesflow", "--bin", "salesflow"])
        .current_dir(&workspace)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p salesflow failed");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| workspace.join("target"));
    target.join("debug").join("salesflow")
}

/// One test's world: its own stream, bucket, queue and state directory.
struct World {
    bin: PathBuf,
    endpoint: String,
    name: String,
    dir: tempfile::TempDir,
    store: S3Store,
    runtime: tokio::runtime::Runtime,
}

impl World {
    fn new(test: &str) -> World {
        let endpoint = endpoint();
        if let Err(why) = localstack_health(&endpoint) {
            panic!("SALESFLOW_E2E=1 but LocalStack is not usable: {why}");
        }
        let unique = Timestamp::now().as_millisecond() % 100_000_000;
        let name = format!("e2e-{test}-{}-{unique}", std::process::id());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = runtime.block_on(async {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(&endpoint)
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "e2e"))
                .load()
                .await;
            let conf = aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build();
            S3Store::new(aws_sdk_s3::Client::from_conf(conf))
        });
        World { bin: salesflow_bin(), endpoint, name, dir: tempfile::tempdir().unwrap(), store, runtime }
    }

    /// Runs `salesflow` against LocalStack; its last stdout line, as JSON.
    fn salesflow(&self, args: &[&str]) -> Value {
        let started = Instant::now();
        let output = Command::new(&self.bin)
            .args(args)
            .current_dir(self.dir.path())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("SALESFLOW_COMPACTION_GRACE_MINUTES", "0")
            .env_remove("SALESFLOW_BUCKET")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("salesflow runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "salesflow {args:?} failed:\n{stderr}\n{stdout}");
        eprintln!("salesflow {} ({:.1}s): {}", args[0], started.elapsed().as_secs_f64(), stdout.trim());
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("a JSON summary")
    }

    fn dev(&self, extra: &[&str]) -> Value {
        let mut args = vec![
            "dev",
            "--stream",
            &self.name,
            "--bucket",
            &self.name,
            "--batch-size",
            "40",
            "--batching-window",
            "0s",
            "--poll",
            "200ms",
            "--until-idle",
            "--idle",
            "2s",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        self.salesflow(&args)
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let listed = self.runtime.block_on(self.store.list(&self.name, prefix)).expect("list");
        listed.into_iter().map(|o| o.key).collect()
    }

    fn get(&self, key: &str) -> Vec<u8> {
        self.runtime.block_on(self.store.get(&self.name, key)).expect("get").to_vec()
    }

    /// Every NDJSON line of the objects under `prefix` (gunzipped when needed).
    fn lines(&self, prefix: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for key in self.keys(prefix) {
            let body = self.get(&key);
            let text = String::from_utf8(salesflow_store::codec::decompress(&body).expect("zstd, gzip or plain"))
                .expect("UTF-8");
            out.extend(
                text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str::<Value>(l).expect("JSON line")),
            );
        }
        out
    }

    /// The dataset objects and their bytes.
    fn datasets(&self) -> BTreeMap<String, Vec<u8>> {
        self.keys("datasets/").into_iter().map(|k| (k.clone(), self.get(&k))).collect()
    }
}

/// One user record the producer reports having sent.
struct Sent {
    bad: Option<String>,
    shard: String,
    sequence: String,
    payload: String,
}

fn read_report(path: &Path) -> Vec<Sent> {
    std::fs::read_to_string(path)
        .expect("report")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            Sent {
                bad: v["bad"].as_str().map(String::from),
                shard: v["shard_id"].as_str().unwrap().into(),
                sequence: v["sequence_number"].as_str().unwrap().into(),
                payload: v["payload"].as_str().unwrap().into(),
            }
        })
        .collect()
}

fn dec(v: &Value) -> Decimal {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.parse().unwrap_or_else(|_| panic!("not a decimal: {v}"))
}

/// An expected `sales_lines` row: the columns checked, as text with decimals normalized.
fn expected_lines(sent: &[Sent]) -> BTreeMap<(String, u32), Vec<String>> {
    let mut rows = BTreeMap::new();
    for s in sent.iter().filter(|s| s.bad.is_none()) {
        let r: Value = serde_json::from_str(&s.payload).unwrap();
        let emitted: Timestamp = r["emitted_at"].as_str().unwrap().parse().unwrap();
        let emitted_utc = TimeZone::UTC.to_datetime(emitted).strftime("%Y-%m-%d %H:%M:%S").to_string();
        let card = if r.get("loyalty_card").is_some_and(|c| !c.is_null()) { "1" } else { "0" };
        for (i, line) in r["lines"].as_array().unwrap().iter().enumerate() {
            let (q, p) = (dec(&line["quantity"]), dec(&line["unit_price"]));
            let discount = line.get("discount").filter(|d| !d.is_null()).map(dec);
            let total = q * p - discount.unwrap_or_default();
            rows.insert(
                (r["receipt_id"].as_str().unwrap().to_string(), i as u32),
                vec![
                    r["store_id"].as_str().unwrap().to_string(),
                    emitted_utc.clone(),
                    line["sku"].as_str().unwrap().to_string(),
                    q.normalize().to_string(),
                    p.normalize().to_string(),
                    discount.map(|d| d.normalize().to_string()).unwrap_or_default(),
                    total.normalize().to_string(),
                    if q < Decimal::ZERO { "1" } else { "0" }.to_string(),
                    card.to_string(),
                ],
            );
        }
    }
    rows
}

/// Reads CSV files into (header-indexed) records.
fn csv_records(bodies: &[Vec<u8>]) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    for body in bodies {
        let mut reader = csv::Reader::from_reader(&body[..]);
        let headers = reader.headers().unwrap().clone();
        for record in reader.records() {
            let record = record.unwrap();
            out.push(headers.iter().zip(record.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect());
        }
    }
    out
}

fn norm(text: &str) -> String {
    if text.is_empty() { String::new() } else { text.parse::<Decimal>().unwrap().normalize().to_string() }
}

/// The files the manifests list (each checked to exist), by dataset.
fn manifest_files(world: &World) -> BTreeMap<String, BTreeSet<String>> {
    let mut files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let existing: BTreeSet<String> = world.keys("").into_iter().collect();
    let manifests = world.keys("manifests/");
    assert!(!manifests.is_empty(), "no manifest written");
    for key in manifests.iter().filter(|k| k.ends_with("-days.json")) {
        let dataset = key.trim_start_matches("manifests/").split('/').next().unwrap().to_string();
        let manifest: Value = serde_json::from_slice(&world.get(key)).unwrap();
        for location in manifest["fileLocations"].as_array().expect("fileLocations") {
            for uri in location["URIs"].as_array().into_iter().flatten() {
                let path = uri.as_str().unwrap().strip_prefix(&format!("s3://{}/", world.name)).expect("our bucket");
                assert!(existing.contains(path), "{key} lists {uri}, which does not exist");
                files.entry(dataset.clone()).or_default().insert(path.to_string());
            }
            for prefix in location["URIPrefixes"].as_array().into_iter().flatten() {
                let path = prefix.as_str().unwrap().strip_prefix(&format!("s3://{}/", world.name)).expect("our bucket");
                let under: Vec<&String> = existing.iter().filter(|k| k.starts_with(path)).collect();
                assert!(!under.is_empty(), "{key} lists prefix {prefix}, under which nothing exists");
                files.entry(dataset.clone()).or_default().extend(under.into_iter().cloned());
            }
        }
    }
    files
}

#[test]
fn receipts_flow_from_kinesis_to_csv_datasets_exactly_once() {
    if !e2e_enabled() {
        eprintln!(
            "not run: set SALESFLOW_E2E=1 with LocalStack running (scripts/localstack start), or run scripts/test"
        );
        return;
    }
    let t0 = Instant::now();
    let phase = |what: &str| eprintln!("e2e: {what} at {:.1}s", t0.elapsed().as_secs_f64());
    let world = World::new("flow");
    phase("world ready");
    let dir = world.dir.path();
    let n = &world.name;

    // 1. Plain records with bad ones among them, on 2 shards; back-dated 3 h so their hours are closed.
    let produced = world.salesflow(&[
        "produce",
        "--stream",
        n,
        "--create",
        "2",
        "--stores",
        "25",
        "--count",
        "240",
        "--bad",
        "8",
        "--seed",
        "11",
        "--backdate",
        "3h",
        "--report",
        "plain.ndjson",
        "--quiet",
    ]);
    assert_eq!((produced["user_records"].as_u64(), produced["bad_records"].as_u64()), (Some(240), Some(8)));
    let first = world.dev(&["--schedule", "0"]);
    assert_eq!(first["records"].as_u64(), Some(240), "{first}");
    assert_eq!(first["rejected"].as_u64(), Some(8), "{first}");

    // 2. KPL aggregates; the runner resumes from its checkpoints (reads only the new records).
    let kpl = world.salesflow(&[
        "produce",
        "--stream",
        n,
        "--stores",
        "25",
        "--count",
        "120",
        "--kpl",
        "--kpl-records",
        "15",
        "--seed",
        "12",
        "--backdate",
        "3h",
        "--report",
        "kpl.ndjson",
        "--quiet",
    ]);
    let kpl_records = kpl["kinesis_records"].as_u64().unwrap();
    assert!(kpl_records < 120, "aggregated: {kpl}");
    let second = world.dev(&["--schedule", "0"]);
    assert_eq!(second["records"].as_u64(), Some(kpl_records), "resumed from the checkpoints: {second}");
    assert_eq!(second["user_records"].as_u64(), Some(120), "{second}");
    assert_eq!(second["failed_batches"].as_u64(), Some(0));

    let mut sent = read_report(&dir.join("plain.ndjson"));
    sent.extend(read_report(&dir.join("kpl.ndjson")));
    assert_eq!(sent.len(), 360);

    phase("raw/: every Kines");
    // raw/: every Kinesis record sent, once, with its data.
    let raw = world.lines("raw/");
    let raw_ids: BTreeMap<(String, String), String> = raw
        .iter()
        .map(|l| {
            let id = (l["shard_id"].as_str().unwrap().to_string(), l["sequence_number"].as_str().unwrap().to_string());
            (id, l["payload_base64"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(raw.len(), raw_ids.len(), "a Kinesis record is twice in raw/");
    let sent_ids: BTreeSet<(String, String)> = sent.iter().map(|s| (s.shard.clone(), s.sequence.clone())).collect();
    assert_eq!(raw_ids.keys().cloned().collect::<BTreeSet<_>>(), sent_ids, "raw/ holds exactly the records sent");
    for s in sent.iter().filter(|s| !s.payload.is_empty()) {
        let data = STANDARD.decode(&raw_ids[&(s.shard.clone(), s.sequence.clone())]).unwrap();
        let plain = data == s.payload.as_bytes();
        let in_aggregate = data.starts_with(&[0xF3, 0x89, 0x9A, 0xC2])
            && data.windows(s.payload.len()).any(|w| w == s.payload.as_bytes());
        assert!(plain || in_aggregate, "raw/ data of {}:{} is not what was sent", s.shard, s.sequence);
    }

    phase("landed/: one reco");
    // landed/: one record per line of every good receipt, each once.
    let expected = expected_lines(&sent);
    let landed = world.lines("landed/");
    let landed_keys: Vec<(String, u32)> = landed
        .iter()
        .map(|l| (l["receipt_id"].as_str().unwrap().to_string(), l["line_no"].as_u64().unwrap() as u32))
        .collect();
    let unique: BTreeSet<_> = landed_keys.iter().cloned().collect();
    assert_eq!(landed_keys.len(), unique.len(), "a line was landed twice");
    assert_eq!(unique, expected.keys().cloned().collect::<BTreeSet<_>>(), "landed/ holds every line emitted");

    phase("rejects/: every b");
    // rejects/: every bad record, with its reason.
    let rejects = world.lines("rejects/");
    let bad: Vec<&Sent> = sent.iter().filter(|s| s.bad.is_some()).collect();
    assert_eq!(rejects.len(), bad.len(), "{rejects:#?}");
    for b in &bad {
        let r = rejects
            .iter()
            .find(|r| r["shard_id"] == b.shard.as_str() && r["sequence_number"] == b.sequence.as_str())
            .unwrap_or_else(|| panic!("bad record {:?} at {}:{} not in rejects/", b.bad, b.shard, b.sequence));
        assert_eq!(STANDARD.decode(r["payload_base64"].as_str().unwrap()).unwrap(), b.payload.as_bytes());
        let (reason, step) = (r["reason"].as_str().unwrap(), r["step"].as_str().unwrap());
        assert!(!reason.is_empty() && !step.is_empty(), "{r}");
        match b.bad.as_deref().unwrap() {
            "missing-store-id" => assert!(reason.contains("store_id"), "{b:?}: {reason}", b = b.bad),
            "quantity-not-a-number" => assert!(reason.contains("quantity"), "{b:?}: {reason}", b = b.bad),
            _ => {}
        }
    }

    phase("3. Redelivery");
    // 3. Redelivery: forget the checkpoints and read both shards again from the start.
    let before = world.datasets();
    assert!(!before.is_empty());
    std::fs::remove_dir_all(dir.join(".salesflow-dev/checkpoints")).unwrap();
    let replay = world.dev(&["--schedule", "0"]);
    assert_eq!(replay["records"].as_u64(), Some(240 + kpl_records), "redelivered everything: {replay}");
    // Batches cut at the same records rewrite the same files with the same bytes; batches cut elsewhere (the
    // replay reads both produces at once) add pieces holding the same rows again, which compaction folds away.
    let after = world.datasets();
    let changed: Vec<&String> = before.iter().filter(|(k, v)| after.get(*k) != Some(*v)).map(|(k, _)| k).collect();
    assert!(changed.is_empty(), "a redelivery changed or removed dataset files: {changed:#?}");
    let pieces_rows = |files: &BTreeMap<String, Vec<u8>>| {
        let bodies: Vec<Vec<u8>> =
            files.iter().filter(|(k, _)| k.starts_with("datasets/sales_lines/")).map(|(_, v)| v.clone()).collect();
        csv_records(&bodies).len()
    };
    eprintln!(
        "redelivery: {} dataset files before, {} after; sales_lines piece rows {} -> {}",
        before.len(),
        after.len(),
        pieces_rows(&before),
        pieces_rows(&after)
    );

    phase("4. The scheduled ");
    // 4. The scheduled run: compaction of the closed hours and manifests.
    let last = world.dev(&[]);
    assert_eq!(last["scheduled_runs"].as_u64(), Some(1), "{last}");
    let listed = manifest_files(&world);
    let bodies = |dataset: &str| -> Vec<Vec<u8>> {
        listed
            .get(dataset)
            .unwrap_or_else(|| panic!("no manifest for {dataset}"))
            .iter()
            .map(|k| world.get(k))
            .collect()
    };

    phase("sales_lines: exac");
    // sales_lines: exactly the expected rows, none twice.
    let rows = csv_records(&bodies("sales_lines"));
    let mut seen = BTreeSet::new();
    for row in &rows {
        let key = (row["receipt_id"].clone(), row["line_no"].parse::<u32>().unwrap());
        assert!(seen.insert(key.clone()), "row {key:?} is in the datasets twice");
        let want = expected.get(&key).unwrap_or_else(|| panic!("unexpected row {key:?}"));
        let got = vec![
            row["store_id"].clone(),
            row["emitted_at"].clone(),
            row["sku"].clone(),
            norm(&row["quantity"]),
            norm(&row["unit_price"]),
            norm(&row["discount"]),
            norm(&row["line_total"]),
            row["is_return"].clone(),
            row["has_loyalty_card"].clone(),
        ];
        assert_eq!(&got, want, "row {key:?}");
    }
    assert_eq!(seen.len(), expected.len(), "every expected row is there");

    phase("hourly_sales: one");
    // hourly_sales: one row per hour × store × category, sums computed here.
    let mut want: BTreeMap<HourKey, (Decimal, u64, BTreeSet<String>, u64)> = BTreeMap::new();
    for s in sent.iter().filter(|s| s.bad.is_none()) {
        let r: Value = serde_json::from_str(&s.payload).unwrap();
        let emitted: Timestamp = r["emitted_at"].as_str().unwrap().parse().unwrap();
        let hour = TimeZone::UTC.to_datetime(emitted).strftime("%Y-%m-%d %H:00:00").to_string();
        for line in r["lines"].as_array().unwrap() {
            let q = dec(&line["quantity"]);
            let total = q * dec(&line["unit_price"])
                - line.get("discount").filter(|d| !d.is_null()).map(dec).unwrap_or_default();
            let key = (hour.clone(), r["store_id"].as_str().unwrap().into(), line["category"].as_str().unwrap().into());
            let e = want.entry(key).or_default();
            e.0 += total;
            e.1 += 1;
            e.2.insert(r["receipt_id"].as_str().unwrap().into());
            e.3 += u64::from(q < Decimal::ZERO);
        }
    }
    let hourly = csv_records(&bodies("hourly_sales"));
    let mut got = BTreeMap::new();
    for row in &hourly {
        let key = (row["hour_start_utc"].clone(), row["store_id"].clone(), row["category"].clone());
        let value = (
            norm(&row["turnover"]),
            row["lines"].parse::<u64>().unwrap(),
            row["receipts"].parse::<u64>().unwrap(),
            row["returns"].parse::<u64>().unwrap(),
        );
        assert!(got.insert(key.clone(), value).is_none(), "hourly_sales row {key:?} twice");
    }
    let want: BTreeMap<_, _> =
        want.into_iter().map(|(k, (t, l, r, ret))| (k, (t.normalize().to_string(), l, r.len() as u64, ret))).collect();
    assert_eq!(got, want, "hourly_sales");
}
