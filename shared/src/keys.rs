//! Every S3 key salesflow writes or reads, as pure functions: the ingest and export functions agree on the
//! bucket layout through this module only. Partitions are Hive-style (`dt=YYYY-MM-DD/hour=HH`), in UTC.
//!
//! ```text
//! raw/dt=2026-11-23/hour=09/<shard>-<first seq>-<last seq>.ndjson.zst          arrival time
//! landed/dt=2026-11-23/hour=09/<shard>-<first seq>-<last seq>-<part>.ndjson.zst event time
//! rejects/dt=2026-11-23/hour=09/<shard>-<first seq>-<last seq>.ndjson          arrival time
//! datasets/<dataset>/dt=2026-11-23/hour=09/<landed object's name>.csv
//! manifests/<dataset>/dt=2026-11-23.json, manifests/<dataset>/last-<N>-days.json
//! ```
//!
//! `raw/` and `landed/` objects are zstd ([`COMPRESSED`]); landed keys written as `.ndjson.gz` (before the
//! switch to zstd) or `.ndjson` still read as landed objects. An object (or a listing's prefix) outside its bucket is an [`ObjectLocation`], shown as `s3://bucket/key`.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Serialize, Serializer};

/// A UTC date and hour: the event-time partition of a landed batch (`dt=…/hour=…`), computed once by the
/// pipeline's batcher ([`crate::transforms::combiner`]) and carried with the batch to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventHour {
    pub date: Date,
    pub hour: i8,
}

impl EventHour {
    /// The UTC hour an instant falls in.
    pub fn of(ts: Timestamp) -> EventHour {
        let dt = jiff::tz::TimeZone::UTC.to_datetime(ts);
        EventHour { date: dt.date(), hour: dt.hour() }
    }
}

/// The top-level prefixes, each ending in `/`. Configurable so several environments can share a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub raw: String,
    pub landed: String,
    pub rejects: String,
    pub datasets: String,
    pub manifests: String,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            raw: "raw/".into(),
            landed: "landed/".into(),
            rejects: "rejects/".into(),
            datasets: "datasets/".into(),
            manifests: "manifests/".into(),
        }
    }
}

/// Where an object is: its bucket and key (or, for a listing, the prefix). Shown as `s3://bucket/key`, the form
/// of QuickSight manifests and of messages; [`str::parse`] reads that form back from a manifest or user input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectLocation {
    pub bucket: String,
    pub key: String,
}

impl ObjectLocation {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> ObjectLocation {
        ObjectLocation { bucket: bucket.into(), key: key.into() }
    }
}

impl fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// A text that is not `s3://bucket/key` with a bucket and a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an s3://bucket/key location")]
pub struct NotALocation(pub String);

impl FromStr for ObjectLocation {
    type Err = NotALocation;

    /// `s3://bucket/key`, both non-empty; the key is everything after the bucket's `/` (it may end in `/`: a
    /// prefix).
    fn from_str(text: &str) -> Result<ObjectLocation, NotALocation> {
        match text.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(ObjectLocation::new(bucket, key)),
            _ => Err(NotALocation(text.to_string())),
        }
    }
}

/// As its text, `s3://bucket/key`.
impl Serialize for ObjectLocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A Kinesis batch's identity: its shard and the sequence numbers of its first and last records. Keys derived
/// from it are the same every time the same batch is delivered, so a redelivery overwrites instead of adding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchId<'a> {
    pub shard: &'a str,
    pub first_sequence: &'a str,
    pub last_sequence: &'a str,
}

impl BatchId<'_> {
    fn stem(&self) -> String {
        format!("{}-{}-{}", self.shard, self.first_sequence, self.last_sequence)
    }
}

/// The extension of `raw/` and `landed/` objects: zstd-compressed NDJSON.
pub const COMPRESSED: &str = ".ndjson.zst";

/// `dt=YYYY-MM-DD/hour=HH/`
pub fn partition_path(hour: EventHour) -> String {
    format!("dt={}/hour={:02}/", hour.date, hour.hour)
}

impl Layout {
    /// The immutable raw copy of a batch, by arrival time.
    pub fn raw_key(&self, arrival: Timestamp, batch: &BatchId) -> String {
        format!("{}{}{}{COMPRESSED}", self.raw, partition_path(EventHour::of(arrival)), batch.stem())
    }

    /// The raw copies of one arrival day: `raw/dt=YYYY-MM-DD/`, for listing.
    pub fn raw_date_prefix(&self, date: Date) -> String {
        format!("{}dt={date}/", self.raw)
    }

    /// Reads a raw key back: its arrival hour. `None` for any key that is not a raw copy (another prefix, a
    /// malformed partition, not `.ndjson.zst`, `.ndjson.gz` or `.ndjson`).
    pub fn parse_raw_key(&self, key: &str) -> Option<EventHour> {
        let (partition, name) = parse_partition(key.strip_prefix(self.raw.as_str())?)?;
        stem(name).map(|_| partition)
    }

    /// One landed object: the records of one event-time partition of a batch (part 0, 1, ... when bounded).
    pub fn landed_key(&self, partition: EventHour, batch: &BatchId, part: usize) -> String {
        format!("{}{}{}-{part}{COMPRESSED}", self.landed, partition_path(partition), batch.stem())
    }

    /// The rejects of a batch, by arrival time.
    pub fn rejects_key(&self, arrival: Timestamp, batch: &BatchId) -> String {
        format!("{}{}{}.ndjson", self.rejects, partition_path(EventHour::of(arrival)), batch.stem())
    }

    /// Reads a landed key back: its partition and the object's name without extension. `None` for any key
    /// that is not a landed object (another prefix, a malformed partition).
    pub fn parse_landed_key(&self, key: &str) -> Option<LandedKey> {
        let (partition, name) = parse_partition(key.strip_prefix(self.landed.as_str())?)?;
        let name = stem(name)?;
        Some(LandedKey { partition, name: name.to_string() })
    }

    /// The prefix of one dataset's hour: `datasets/<dataset>/dt=.../hour=HH/`.
    pub fn dataset_hour_prefix(&self, dataset: &str, partition: EventHour) -> String {
        format!("{}{dataset}/{}", self.datasets, partition_path(partition))
    }

    /// The CSV a landed object becomes in a dataset: same partition, same name.
    pub fn dataset_key(&self, dataset: &str, landed: &LandedKey) -> String {
        format!("{}{}.csv", self.dataset_hour_prefix(dataset, landed.partition), landed.name)
    }

    /// The manifest of one day of a dataset.
    pub fn daily_manifest_key(&self, dataset: &str, date: Date) -> String {
        format!("{}{dataset}/dt={date}.json", self.manifests)
    }

    /// The rolling manifest of the last `days` days of a dataset.
    pub fn rolling_manifest_key(&self, dataset: &str, days: u32) -> String {
        format!("{}{dataset}/last-{days}-days.json", self.manifests)
    }
}

impl Layout {
    /// A dataset's files of one day: `datasets/<dataset>/dt=YYYY-MM-DD/`, for listing.
    pub fn dataset_date_prefix(&self, dataset: &str, date: Date) -> String {
        format!("{}{dataset}/dt={date}/", self.datasets)
    }

    /// A merged (compacted) file of a dataset's hour: `_compacted-g<generation>-<fingerprint>-p<part>.csv` in
    /// the hour's prefix. The leading `_` keeps it apart from the pieces, named after landed objects.
    pub fn merged_dataset_key(&self, dataset: &str, partition: EventHour, merged: &MergedName) -> String {
        format!("{}{}", self.dataset_hour_prefix(dataset, partition), merged.file_name())
    }

    /// Reads a dataset file key back: its hour and file name (`None` outside the dataset or for a key that is
    /// not a `.csv` directly under an hour).
    pub fn parse_dataset_key(&self, dataset: &str, key: &str) -> Option<(EventHour, String)> {
        let rest = key.strip_prefix(self.datasets.as_str())?.strip_prefix(dataset)?.strip_prefix('/')?;
        let (partition, name) = parse_partition(rest)?;
        if name.len() <= ".csv".len() || !name.ends_with(".csv") || name.contains('/') {
            return None;
        }
        Some((partition, name.to_string()))
    }

    /// The compaction record of an hour (which merged files replace which pieces, in both datasets):
    /// `datasets/_compactions/dt=YYYY-MM-DD/hour=HH.json`.
    pub fn compaction_record_key(&self, partition: EventHour) -> String {
        format!("{}_compactions/dt={}/hour={:02}.json", self.datasets, partition.date, partition.hour)
    }

    /// The compaction records of one day, for listing.
    pub fn compaction_records_date_prefix(&self, date: Date) -> String {
        format!("{}_compactions/dt={date}/", self.datasets)
    }

    /// Reads a compaction record key back.
    pub fn parse_compaction_record_key(&self, key: &str) -> Option<EventHour> {
        let rest = key.strip_prefix(self.datasets.as_str())?.strip_prefix("_compactions/dt=")?;
        let (dt, rest) = rest.split_once('/')?;
        let hour = rest.strip_prefix("hour=")?.strip_suffix(".json")?;
        let hour: i8 = hour.parse().ok().filter(|h| (0..24).contains(h))?;
        Some(EventHour { date: dt.parse().ok()?, hour })
    }

    /// The prefix of a dataset's manifests, for listing.
    pub fn manifests_prefix(&self, dataset: &str) -> String {
        format!("{}{dataset}/", self.manifests)
    }
}

/// The name of a `raw/` or `landed/` object without its extension (`.ndjson.zst`, or the `.ndjson.gz` and
/// `.ndjson` of older objects); `None` when empty, in a subfolder or with another extension.
fn stem(name: &str) -> Option<&str> {
    let stem = [COMPRESSED, ".ndjson.gz", ".ndjson"].iter().find_map(|suffix| name.strip_suffix(suffix))?;
    (!stem.is_empty() && !stem.contains('/')).then_some(stem)
}

/// `dt=YYYY-MM-DD/hour=HH/<rest>` read back into the hour and `<rest>`.
fn parse_partition(path: &str) -> Option<(EventHour, &str)> {
    let (dt, rest) = path.strip_prefix("dt=")?.split_once('/')?;
    let (hour, rest) = rest.strip_prefix("hour=")?.split_once('/')?;
    let date: Date = dt.parse().ok()?;
    let hour: i8 = hour.parse().ok().filter(|h| (0..24).contains(h))?;
    Some((EventHour { date, hour }, rest))
}

/// Part `part` (0-based) of a manifest that had to be split: part 0 is the key itself, part 1 is
/// `<stem>.part-2.json`, and so on.
pub fn manifest_part_key(key: &str, part: usize) -> String {
    if part == 0 {
        return key.to_string();
    }
    let stem = key.strip_suffix(".json").unwrap_or(key);
    format!("{stem}.part-{}.json", part + 1)
}

/// Which part of `key` a manifest key is (`Some(0)` for the key itself), or `None` if it is not one of its parts.
pub fn manifest_part_of(key: &str, candidate: &str) -> Option<usize> {
    if candidate == key {
        return Some(0);
    }
    let stem = key.strip_suffix(".json")?;
    let n: usize = candidate.strip_prefix(stem)?.strip_prefix(".part-")?.strip_suffix(".json")?.parse().ok()?;
    (n >= 2).then(|| n - 1)
}

/// The name of a merged file: generation, a fingerprint of the inputs, part number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MergedName {
    pub generation: u32,
    /// 16 hex digits.
    pub fingerprint: String,
    pub part: u32,
}

impl MergedName {
    pub const PREFIX: &'static str = "_compacted-";

    /// `_compacted-g0001-0123456789abcdef-p000.csv`
    pub fn file_name(&self) -> String {
        format!("{}g{:04}-{}-p{:03}.csv", Self::PREFIX, self.generation, self.fingerprint, self.part)
    }

    /// Reads a file name back; `None` for a piece (a landed object's CSV).
    pub fn parse(name: &str) -> Option<MergedName> {
        let rest = name.strip_prefix(Self::PREFIX)?.strip_suffix(".csv")?;
        let mut it = rest.split('-');
        let generation = it.next()?.strip_prefix('g')?.parse().ok()?;
        let fingerprint = it.next()?.to_string();
        let part = it.next()?.strip_prefix('p')?.parse().ok()?;
        (it.next().is_none()).then_some(MergedName { generation, fingerprint, part })
    }
}

/// A parsed landed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandedKey {
    pub partition: EventHour,
    /// `<shard>-<first seq>-<last seq>-<part>`
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> BatchId<'static> {
        BatchId {
            shard: "shardId-000000000001",
            first_sequence: "49590338271490256608559692538361571095921575989136588818",
            last_sequence: "49590338271490256608559692540925702759324208523137515618",
        }
    }

    #[test]
    fn keys_have_the_documented_shape() {
        let l = Layout::default();
        let at: Timestamp = "2026-11-23T09:59:59.999+00:00".parse().unwrap();
        let b = batch();
        assert_eq!(
            l.raw_key(at, &b),
            format!(
                "raw/dt=2026-11-23/hour=09/shardId-000000000001-{}-{}.ndjson.zst",
                b.first_sequence, b.last_sequence
            )
        );
        let hour = EventHour::of("2026-11-23T00:30:00+01:00".parse().unwrap());
        let landed = l.landed_key(hour, &b, 2);
        assert!(landed.starts_with("landed/dt=2026-11-22/hour=23/shardId-000000000001-"), "{landed}");
        assert!(landed.ends_with("-2.ndjson.zst"));
        assert!(l.rejects_key(at, &b).starts_with("rejects/dt=2026-11-23/hour=09/"));
        assert_eq!(l.daily_manifest_key("hourly_sales", hour.date), "manifests/hourly_sales/dt=2026-11-22.json");
        assert_eq!(l.rolling_manifest_key("sales_lines", 7), "manifests/sales_lines/last-7-days.json");
    }

    #[test]
    fn landed_keys_parse_back_and_map_to_datasets() {
        let l = Layout::default();
        let hour = EventHour::of("2026-11-23T09:10:00Z".parse().unwrap());
        let key = l.landed_key(hour, &batch(), 0);
        let parsed = l.parse_landed_key(&key).unwrap();
        assert_eq!(parsed.partition, hour);
        for older in [".ndjson.gz", ".ndjson"] {
            let older_key = key.replace(COMPRESSED, older);
            assert_eq!(l.parse_landed_key(&older_key).as_ref(), Some(&parsed), "{older_key}");
        }
        assert_eq!(
            l.dataset_key("sales_lines", &parsed),
            format!("datasets/sales_lines/dt=2026-11-23/hour=09/{}.csv", parsed.name)
        );
        for bad in [
            "raw/dt=2026-11-23/hour=09/a.ndjson.gz",
            "landed/dt=2026-13-01/hour=09/a.ndjson.gz",
            "landed/dt=2026-11-23/hour=24/a.ndjson.gz",
            "landed/dt=2026-11-23/hour=09/a.csv",
            "landed/dt=2026-11-23/hour=09/x/a.ndjson",
        ] {
            assert_eq!(l.parse_landed_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn raw_keys_parse_back_to_their_arrival_hour() {
        let l = Layout::default();
        let arrival: Timestamp = "2026-11-23T09:59:59Z".parse().unwrap();
        let key = l.raw_key(arrival, &batch());
        assert!(key.starts_with(&l.raw_date_prefix(EventHour::of(arrival).date)));
        assert_eq!(l.parse_raw_key(&key), Some(EventHour::of(arrival)));
        for bad in [
            "landed/dt=2026-11-23/hour=09/a.ndjson.zst",
            "raw/dt=2026-11-23/hour=9x/a.ndjson.zst",
            "raw/dt=2026-11-23/hour=09/.ndjson.zst",
            "raw/dt=2026-11-23/hour=09/a.json",
        ] {
            assert_eq!(l.parse_raw_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn dataset_and_compaction_keys_parse_back() {
        let l = Layout::default();
        let hour = EventHour::of("2026-11-23T09:10:00Z".parse().unwrap());
        let parsed = l.parse_landed_key(&l.landed_key(hour, &batch(), 0)).unwrap();
        let piece = l.dataset_key("hourly_sales", &parsed);
        assert_eq!(l.parse_dataset_key("hourly_sales", &piece), Some((hour, format!("{}.csv", parsed.name))));
        assert_eq!(l.parse_dataset_key("sales_lines", &piece), None);
        let merged = MergedName { generation: 3, fingerprint: "0123456789abcdef".into(), part: 7 };
        let key = l.merged_dataset_key("sales_lines", hour, &merged);
        assert_eq!(key, "datasets/sales_lines/dt=2026-11-23/hour=09/_compacted-g0003-0123456789abcdef-p007.csv");
        let (h, name) = l.parse_dataset_key("sales_lines", &key).unwrap();
        assert_eq!((h, MergedName::parse(&name)), (hour, Some(merged)));
        assert_eq!(MergedName::parse(&format!("{}.csv", parsed.name)), None);
        let record = l.compaction_record_key(hour);
        assert_eq!(record, "datasets/_compactions/dt=2026-11-23/hour=09.json");
        assert!(record.starts_with(&l.compaction_records_date_prefix(hour.date)));
        assert_eq!(l.parse_compaction_record_key(&record), Some(hour));
        assert_eq!(l.dataset_date_prefix("sales_lines", hour.date), "datasets/sales_lines/dt=2026-11-23/");
        for bad in [
            "datasets/sales_lines/dt=2026-11-23/hour=09/.csv",
            "datasets/sales_lines/dt=2026-11-23/hour=09/a.json",
            "datasets/sales_lines/dt=2026-11-23/a.csv",
        ] {
            assert_eq!(l.parse_dataset_key("sales_lines", bad), None, "{bad}");
        }
    }

    #[test]
    fn locations_show_as_s3_uris_and_parse_back() {
        let at = ObjectLocation::new("salesflow-data", "datasets/hourly_sales/dt=2026-11-23/hour=09/a b.csv");
        assert_eq!(at.to_string(), "s3://salesflow-data/datasets/hourly_sales/dt=2026-11-23/hour=09/a b.csv");
        assert_eq!(at.to_string().parse(), Ok(at.clone()));
        assert_eq!(serde_json::to_value(&at).unwrap(), at.to_string());
        let prefix: ObjectLocation = "s3://b/datasets/x/".parse().unwrap();
        assert_eq!((prefix.bucket.as_str(), prefix.key.as_str()), ("b", "datasets/x/"));
        for bad in ["b/k.csv", "s3://b", "s3://b/", "s3:///k.csv", "S3://b/k", ""] {
            assert_eq!(bad.parse::<ObjectLocation>(), Err(NotALocation(bad.into())), "{bad}");
        }
        assert_eq!(NotALocation("b/k".into()).to_string(), r#""b/k" is not an s3://bucket/key location"#);
    }

    #[test]
    fn manifest_parts_are_numbered_from_two() {
        let base = Layout::default().rolling_manifest_key("sales_lines", 7);
        assert_eq!(manifest_part_key(&base, 0), base);
        assert_eq!(manifest_part_key(&base, 1), "manifests/sales_lines/last-7-days.part-2.json");
        for part in 0..5 {
            assert_eq!(manifest_part_of(&base, &manifest_part_key(&base, part)), Some(part));
        }
        assert_eq!(manifest_part_of(&base, "manifests/sales_lines/last-7-days.part-1.json"), None);
        assert_eq!(manifest_part_of(&base, "manifests/sales_lines/last-70-days.json"), None);
    }
}
