//! Issue 14, end to end through the binary: a batch ingested by a pipeline that wrongly drops store S00002 is
//! exported and compacted (grace 0: its pieces deleted at once); `salesflow replay` with the fixed pipeline
//! rewrites its landed objects and exports them, and the next scheduled run leaves S00002's lines in the
//! datasets exactly once. A second replay with the same pipeline leaves every landed object byte-identical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use salesflow_core::datasets::read_rows;
use salesflow_core::datasets::sales_lines::{self, SalesLine};
use salesflow_core::generate::Generator;
use serde_json::{Value, json};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn salesflow(args: &[&str], env: &[(&str, &str)]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_salesflow"))
        .args(args)
        .env_remove("SALESFLOW_PIPELINE")
        .env_remove("SALESFLOW_STORE_DIR")
        .envs(env.iter().copied())
        .current_dir(REPO)
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// Every file under `dir/bucket/prefix`, by key.
fn files(bucket: &Path, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let key = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(bucket, &bucket.join(prefix), &mut out);
    out
}

/// An S3 notification for these landed keys: `events/s3-put.json`'s record, once per key.
fn notification(keys: &[&String]) -> Value {
    let sample: Value =
        serde_json::from_slice(&std::fs::read(Path::new(REPO).join("events/s3-put.json")).unwrap()).unwrap();
    let records: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut r = sample["Records"][0].clone();
            r["s3"]["object"]["key"] = json!(k.replace('=', "%3D")); // as S3 sends it: form-encoded
            r
        })
        .collect();
    json!({ "Records": records })
}

/// The lines the sales_lines manifests list, read from their files.
fn manifest_lines(bucket: &Path) -> Vec<SalesLine> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bucket.join("manifests/sales_lines/last-7-days.json")).unwrap()).unwrap();
    let mut lines = Vec::new();
    for uri in manifest["fileLocations"][0]["URIs"].as_array().unwrap() {
        let key = uri.as_str().unwrap().strip_prefix("s3://salesflow-data/").unwrap();
        let body = std::fs::read(bucket.join(key)).unwrap();
        lines.extend(
            read_rows(&body[..], &sales_lines::COLUMNS).unwrap().map(|r| SalesLine::from_row(&r.unwrap()).unwrap()),
        );
    }
    lines
}

fn summary(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn issue_14_a_replay_with_a_fixed_pipeline_reaches_a_compacted_hour_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_arg = store.to_str().unwrap();
    let bucket: PathBuf = store.join("salesflow-data");
    // The buggy pipeline: the sample one, with store S00002 dropped too.
    let sample = std::fs::read_to_string(Path::new(REPO).join("pipelines/sales.yaml")).unwrap();
    let buggy = sample
        .replace("where: \"@.store_id == 'S00000'\"", "where: \"@.store_id == 'S00000' || @.store_id == 'S00002'\"");
    assert_ne!(buggy, sample);
    std::fs::write(dir.path().join("buggy.yaml"), buggy).unwrap();
    std::fs::copy(Path::new(REPO).join("pipelines/stores.csv"), dir.path().join("stores.csv")).unwrap();
    let buggy_env = [("SALESFLOW_PIPELINE", dir.path().join("buggy.yaml").to_str().unwrap().to_string())];
    let buggy_env: Vec<(&str, &str)> = buggy_env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Receipts of a closed hour (three hours ago), arriving now, one Kinesis record each.
    let now = Timestamp::now();
    let emitted = now - SignedDuration::from_hours(3);
    let mut g = Generator::new(7, 5);
    let receipts: Vec<Value> =
        (0..40).map(|i| g.receipt_for(i % 5 + 1, emitted + SignedDuration::from_secs(i.into()))).collect();
    let lines_of_s2: usize =
        receipts.iter().filter(|r| r["store_id"] == "S00002").map(|r| r["lines"].as_array().unwrap().len()).sum();
    assert!(lines_of_s2 > 0);
    let all_lines: usize = receipts.iter().map(|r| r["lines"].as_array().unwrap().len()).sum();
    let records: Vec<Value> = receipts
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let seq = format!("4965619345540281144014847843726540810777649806622770{:04}", 1000 + i);
            let arrival = format!("{}.{:03}", now.as_second(), i);
            json!({"eventID": format!("shardId-000000000001:{seq}"), "kinesis": {"sequenceNumber": seq,
                "partitionKey": format!("pk-{i}"), "data": STANDARD.encode(serde_json::to_vec(r).unwrap()),
                "approximateArrivalTimestamp": arrival.parse::<serde_json::Number>().unwrap()}})
        })
        .collect();
    let event = dir.path().join("kinesis.json");
    std::fs::write(&event, serde_json::to_vec(&json!({ "Records": records })).unwrap()).unwrap();
    let scheduled = Path::new(REPO).join("events/eventbridge-scheduled.json");
    let grace0 = [("SALESFLOW_COMPACTION_GRACE_MINUTES", "0")];

    // The buggy run: ingest, export, compaction (grace 0: pieces deleted in the same run).
    salesflow(&["invoke", "ingest", "--event", event.to_str().unwrap(), "--store", store_arg], &buggy_env);
    let landed = files(&bucket, "landed");
    assert!(!landed.is_empty());
    let s3 = dir.path().join("s3.json");
    std::fs::write(&s3, serde_json::to_vec(&notification(&landed.keys().collect::<Vec<_>>())).unwrap()).unwrap();
    let o = salesflow(&["invoke", "export", "--event", s3.to_str().unwrap(), "--store", store_arg], &[]);
    assert_eq!(summary(&o)["objects"].as_array().unwrap().len(), landed.len());
    let o = salesflow(&["invoke", "export", "--event", scheduled.to_str().unwrap(), "--store", store_arg], &grace0);
    assert_eq!(summary(&o)["scheduled"]["hours_compacted"].as_array().unwrap().len(), 1);
    let before = manifest_lines(&bucket);
    assert_eq!(before.len(), all_lines - lines_of_s2);
    assert!(!before.iter().any(|l| l.store_id == "S00002"));

    // The replay with the fixed (embedded sample) pipeline, then the next scheduled run.
    let from = (now - SignedDuration::from_hours(1)).to_string();
    let to = (now + SignedDuration::from_hours(1)).to_string();
    let o = salesflow(&["replay", "--from", &from, "--to", &to, "--store", store_arg, "--quiet"], &[]);
    let s = summary(&o);
    assert_eq!(s["raw_objects"], 1, "{s}");
    assert_eq!(s["records_in"], 40);
    let sum = |s: &Value| ["landed", "filtered", "rejected"].iter().map(|f| s[f].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum(&s), 40, "{s}");
    assert_eq!(sum(&s["objects"][0]), s["objects"][0]["records_in"].as_u64().unwrap());
    assert!(s["landed_rewritten"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["exported"], s["landed_rewritten"].as_u64().unwrap() + s["landed_new"].as_u64().unwrap());
    assert!(String::from_utf8_lossy(&o.stderr).contains("records in = "));
    let o = salesflow(&["invoke", "export", "--event", scheduled.to_str().unwrap(), "--store", store_arg], &grace0);
    assert_eq!(
        summary(&o)["scheduled"]["hours_compacted"][0]["generation"],
        2,
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let after = manifest_lines(&bucket);
    let mut keys: Vec<(String, u32)> = after.iter().map(|l| (l.receipt_id.clone(), l.line_no)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), after.len(), "no line twice");
    assert_eq!(after.len(), all_lines, "every line, S00002's included");
    assert_eq!(after.iter().filter(|l| l.store_id == "S00002").count(), lines_of_s2);

    // An unchanged replay (by key): every landed object byte-identical, nothing exported, nothing to compact.
    let landed = files(&bucket, "landed");
    let raw: Vec<String> = files(&bucket, "raw").into_keys().collect();
    let o = salesflow(&["replay", &raw[0], "--store", store_arg, "--quiet"], &[]);
    let s = summary(&o);
    assert_eq!(
        (s["landed_rewritten"].as_u64(), s["landed_new"].as_u64(), s["exported"].as_u64()),
        (Some(0), Some(0), Some(0)),
        "{s}"
    );
    assert_eq!(s["landed_unchanged"].as_u64().unwrap(), landed.len() as u64);
    assert_eq!(files(&bucket, "landed"), landed);
    let o = salesflow(&["invoke", "export", "--event", scheduled.to_str().unwrap(), "--store", store_arg], &grace0);
    assert!(summary(&o)["scheduled"]["hours_compacted"].as_array().unwrap().is_empty());
    assert_eq!(manifest_lines(&bucket).len(), all_lines);
}
