//! Shared test helpers: landed records from the generator (flattened like `pipelines/sales.yaml` does), hostile
//! text, landed objects, and a store wrapper that checks the manifests after every write and delete.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use jiff::Timestamp;
use salesflow_core::compaction::CompactionRecord;
use salesflow_core::datasets::Dataset;
use salesflow_core::generate::{Generator, store};
use salesflow_core::keys::{Layout, MergedName, ObjectLocation};
use salesflow_core::manifest::Manifest;
use salesflow_export::{ExportConfig, Exporter, MetricsOutput};
use salesflow_store::testing::MemoryStore;
use salesflow_store::{ObjectInfo, ObjectStore, StoreError};
use serde_json::{Map, Value, json};

pub const BUCKET: &str = "salesflow-data";

pub fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

pub fn event(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(repo_file(&format!("events/{name}"))).unwrap()).unwrap()
}

/// The names a spreadsheet or a naive CSV reader trips on.
pub const HOSTILE_NAMES: [&str; 8] = [
    "Eau minérale 6x1,5L",
    "Biscuits \"maison\", lot de 2",
    "Ligne 1\nLigne 2\r\nLigne 3",
    "=HYPERLINK(\"http://x\",\"clic\")",
    "+33 promo",
    "-50% sur le 2e",
    "@SUM(A1)",
    "\tTabulé 'quoted' Ünïcödé 日本 🥖",
];

/// A receipt's landed records: one per line with the carried receipt fields, exact line total, local time parts
/// and the store's reference data, as the sample pipeline writes them.
pub fn flatten(receipt: &Value, store_no: u32) -> Vec<Value> {
    let s = store(store_no);
    let emitted: Timestamp = receipt["emitted_at"].as_str().unwrap().parse().unwrap();
    let local = jiff::tz::TimeZone::get("Europe/Paris").unwrap().to_datetime(emitted);
    let mut out = Vec::new();
    for (i, line) in receipt["lines"].as_array().unwrap().iter().enumerate() {
        let mut r = Map::new();
        for f in ["receipt_id", "store_id", "emitted_at", "loyalty_card", "currency"] {
            if let Some(v) = receipt.get(f) {
                r.insert(f.into(), v.clone());
            }
        }
        r.insert("line_no".into(), json!(i));
        for (k, v) in line.as_object().unwrap() {
            if k != "promotion_id" {
                r.insert(k.clone(), v.clone());
            }
        }
        let q = salesflow_core::decimal::decimal_from_value(&line["quantity"]).unwrap();
        let p = salesflow_core::decimal::decimal_from_value(&line["unit_price"]).unwrap();
        let d =
            line.get("discount").map(|d| salesflow_core::decimal::decimal_from_value(d).unwrap()).unwrap_or_default();
        r.insert("line_total".into(), salesflow_core::decimal::decimal_to_value(q * p - d));
        r.insert("date".into(), json!(local.date().to_string()));
        r.insert("hour".into(), json!(local.hour()));
        r.insert("weekday".into(), json!(format!("{:?}", local.weekday())));
        r.insert("city".into(), json!(s.city));
        r.insert("region".into(), json!(s.region));
        r.insert("latitude".into(), json!(s.latitude));
        r.insert("longitude".into(), json!(s.longitude));
        r.insert("manager".into(), json!(s.manager));
        out.push(Value::Object(r));
    }
    out
}

/// `n` receipts' landed records emitted in the UTC hour starting at `hour_start`, some names made hostile.
pub fn records(seed: u64, n: usize, hour_start: &str) -> Vec<Value> {
    let mut g = Generator::new(seed, 50);
    let start: Timestamp = hour_start.parse().unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let store_no = (i as u32 % 50) + 1;
        let at = start + jiff::SignedDuration::from_secs((i as i64 * 37) % 3600);
        let receipt = g.receipt_for(store_no, at);
        out.extend(flatten(&receipt, store_no));
    }
    for (i, name) in HOSTILE_NAMES.iter().enumerate() {
        let idx = (i * 7) % out.len();
        out[idx]["name"] = json!(name);
    }
    out
}

pub fn ndjson(records: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        serde_json::to_writer(&mut out, r).unwrap();
        out.push(b'\n');
    }
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn config() -> ExportConfig {
    ExportConfig::default()
}

pub fn exporter<S: ObjectStore>(store: S) -> Exporter<S> {
    Exporter::new(store, config()).with_metrics_output(MetricsOutput::Off)
}

/// A memory store that, after every put and delete, checks every manifest in the bucket: valid for QuickSight,
/// every listed file exists, no manifest lists a merged file together with a piece its hour's record says it
/// replaced, nor merged files of two generations of the same hour. `violations` collects what it found.
/// `fail_put` makes the next put whose key contains the given text fail (transiently), once: a crash between
/// two steps.
#[derive(Debug, Default)]
pub struct CheckingStore {
    pub inner: MemoryStore,
    pub violations: std::sync::Mutex<Vec<String>>,
    pub checks: std::sync::atomic::AtomicUsize,
    pub fail_put: std::sync::Mutex<Option<String>>,
}

impl CheckingStore {
    pub fn check(&self) {
        self.checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let objects: BTreeMap<String, Bytes> = self.inner.objects(BUCKET).into_iter().collect();
        let layout = Layout::default();
        let mut problems = Vec::new();
        for (key, body) in objects.iter().filter(|(k, _)| k.starts_with(&layout.manifests)) {
            let manifest: Manifest = match serde_json::from_slice(body) {
                Ok(m) => m,
                Err(e) => {
                    problems.push(format!("{key}: {e}"));
                    continue;
                }
            };
            if let Err(e) = manifest.validate(|_| 0) {
                problems.push(format!("{key}: {e:?}"));
            }
            let mut listed: BTreeMap<(Dataset, salesflow_core::keys::EventHour), BTreeSet<String>> = BTreeMap::new();
            for uri in manifest.uris() {
                let ObjectLocation { bucket, key: file } = uri.parse().unwrap();
                if bucket != BUCKET || !objects.contains_key(&file) {
                    problems.push(format!("{key} lists missing {uri}"));
                }
                for dataset in Dataset::ALL {
                    if let Some((hour, name)) = layout.parse_dataset_key(dataset.name(), &file) {
                        listed.entry((dataset, hour)).or_default().insert(name);
                    }
                }
            }
            for ((dataset, hour), names) in listed {
                let generations: BTreeSet<u32> =
                    names.iter().filter_map(|n| MergedName::parse(n)).map(|m| m.generation).collect();
                if generations.is_empty() {
                    continue;
                }
                if generations.len() > 1 {
                    problems.push(format!("{key} lists merged files of generations {generations:?} of {hour:?}"));
                }
                let Some(record) = objects.get(&layout.compaction_record_key(hour)) else {
                    problems.push(format!("{key} lists a merged file of {hour:?} without a record"));
                    continue;
                };
                let record = CompactionRecord::from_bytes(record).unwrap();
                for n in &names {
                    if record.dataset(dataset).replaced.contains(n) {
                        problems.push(format!("{key} lists a merged file and the piece {n} it replaced"));
                    }
                }
            }
        }
        self.violations.lock().unwrap().extend(problems);
    }
}

impl ObjectStore for CheckingStore {
    async fn put(&self, bucket: &str, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        {
            let mut fail = self.fail_put.lock().unwrap();
            if fail.as_deref().is_some_and(|text| key.contains(text)) {
                *fail = None;
                return Err(StoreError::Transient {
                    op: "put",
                    location: ObjectLocation::new(bucket, key),
                    message: "injected failure".into(),
                });
            }
        }
        self.inner.put(bucket, key, body, content_type).await?;
        self.check();
        Ok(())
    }
    async fn put_if_absent(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<bool, StoreError> {
        let r = self.inner.put_if_absent(bucket, key, body, content_type).await?;
        self.check();
        Ok(r)
    }
    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StoreError> {
        self.inner.get(bucket, key).await
    }
    async fn get_file(&self, bucket: &str, key: &str) -> Result<std::fs::File, StoreError> {
        self.inner.get_file(bucket, key).await
    }
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.inner.list(bucket, prefix).await
    }
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.inner.delete(bucket, key).await?;
        self.check();
        Ok(())
    }
}
