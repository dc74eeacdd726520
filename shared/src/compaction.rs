//! Compaction planning, as pure functions over a listing of one hour's dataset files and its compaction record.
//!
//! The export writes one small CSV per landed object per dataset ("pieces"). Two kinds of merge replace pieces
//! with merged `_compacted-g<gen>-<fingerprint>-p<part>.csv` files, and both go through the same steps:
//!
//! - **Compaction** ([`plan_compaction`]), once an hour is closed (its end plus a grace period for late records
//!   has passed): `sales_lines` pieces into de-duplicated merged files (parts bounded in size), `hourly_sales`
//!   recomputed from those de-duplicated lines into one file, exact.
//! - **Rollup** ([`plan_rollup`]), while an hour is open or inside its grace period, `hourly_sales` only: the
//!   pieces not yet rolled up and the previous generation's merged file are summed into one file, so a manifest
//!   lists one file for the open hour instead of thousands. `sales_lines` keeps its pieces until the hour
//!   closes. The rollup cannot de-duplicate across landed objects (that needs the lines), so until compaction
//!   a line redelivered in two objects is counted twice and `receipts` over-counts receipts split across
//!   objects; compaction then recomputes the hour from the de-duplicated `sales_lines` pieces (which a rollup
//!   never replaces) and its file replaces the last rollup.
//!
//! The order of the steps makes the switch atomic for manifests:
//!
//! 1. write the merged files under new names (no manifest lists them yet);
//! 2. write the hour's [`CompactionRecord`] (`datasets/_compactions/dt=…/hour=HH.json`): the commit point. From
//!    now on, [`HourState::live`] (what manifests list) is the merged files plus the pieces the record does not
//!    name as replaced; before it, the previous record's (or, without one, the pieces only). Merged files no
//!    record names are ignored. Each merge is one generation: the record names the current generation's merged
//!    files and every piece replaced so far, so earlier generations' merged files are no longer live;
//! 3. rewrite the manifests (one PUT each, atomic);
//! 4. on a later run, once `compacted_at` + the grace period has passed (so a QuickSight refresh that read the
//!    old manifest has finished), delete the replaced pieces and the merged files of earlier generations. While
//!    an hour is rolled up on every run, its record stays younger than the grace period when the schedule runs
//!    more often than that, so its deletions wait until its last merge is that old.
//!
//! A crash between any two steps leaves a state the next run completes: orphan merged files are rewritten or
//! deleted, a committed record is honoured. Late pieces (arriving after a merge) are listed next to the merged
//! files and folded into the next generation: a rollup sums them with the previous merged `hourly_sales` file;
//! a compaction reads the previous merged `sales_lines` files plus the new pieces, de-duplicated again, so
//! redeliveries across landed objects disappear too.
//!
//! A piece is named after its landed object, so a replay (`salesflow replay`) that lands an object again with
//! new content (a fixed pipeline) rewrites a piece a record may already name as replaced. The record therefore
//! keeps the content version of each `sales_lines` piece it replaced ([`DatasetRecord::versions`], from the
//! store's listing: [`HourState::versions`]), and a piece whose version changed is a new input: the next
//! compaction of the (closed) hour reads it first, then the previous generation's merged files and the new
//! pieces, de-duplicated, so its lines replace the previous ones (same `receipt_id` and `line_no`) and appear
//! exactly once, in a new generation switched atomically as above. Until then manifests keep listing the
//! previous generation (never both: a replaced name stays hidden whatever its version), and cleanup never
//! deletes a changed piece. A replay with an unchanged pipeline rewrites the same bytes, hence the same
//! version: nothing to do. Lines the fixed pipeline no longer lands at all stay in the merged files: a merge
//! keeps no trace of which piece a line came from.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::datasets::Dataset;
use crate::keys::EventHour;
use crate::keys::{Layout, MergedName};
use crate::manifest::ManifestPlan;

/// Which merged files replace which pieces in one dataset of one hour. Names are file names in the hour's prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRecord {
    pub merged: Vec<String>,
    pub replaced: BTreeSet<String>,
    /// The content version ([`HourState::versions`]) each replaced piece had when it was merged, when the store
    /// told it (`sales_lines` only). A replaced piece listed with another version is new input; one without a
    /// version on either side counts as replaced.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, String>,
}

/// The commit record of an hour's compaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactionRecord {
    pub generation: u32,
    /// RFC 3339, UTC.
    pub compacted_at: String,
    pub sales_lines: DatasetRecord,
    pub hourly_sales: DatasetRecord,
}

impl CompactionRecord {
    pub fn dataset(&self, dataset: Dataset) -> &DatasetRecord {
        match dataset {
            Dataset::SalesLines => &self.sales_lines,
            Dataset::HourlySales => &self.hourly_sales,
        }
    }

    pub fn compacted_at(&self) -> Option<Timestamp> {
        self.compacted_at.parse().ok()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a record always serializes");
        out.push(b'\n');
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<CompactionRecord, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("invalid compaction record: {e}"))
    }
}

/// One hour as listed: the file names present in each dataset's hour prefix, and its record if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourState {
    pub partition: EventHour,
    pub sales_lines: BTreeSet<String>,
    pub hourly_sales: BTreeSet<String>,
    /// The content version of each listed `sales_lines` file, when the store tells it (S3's ETag, an MD5 for the
    /// local store): equal bytes, equal version.
    pub versions: BTreeMap<String, String>,
    pub record: Option<CompactionRecord>,
}

fn is_piece(name: &str) -> bool {
    !name.starts_with(MergedName::PREFIX)
}

impl HourState {
    pub fn new(partition: EventHour) -> Self {
        HourState {
            partition,
            sales_lines: BTreeSet::new(),
            hourly_sales: BTreeSet::new(),
            versions: BTreeMap::new(),
            record: None,
        }
    }

    pub fn files(&self, dataset: Dataset) -> &BTreeSet<String> {
        match dataset {
            Dataset::SalesLines => &self.sales_lines,
            Dataset::HourlySales => &self.hourly_sales,
        }
    }

    pub fn files_mut(&mut self, dataset: Dataset) -> &mut BTreeSet<String> {
        match dataset {
            Dataset::SalesLines => &mut self.sales_lines,
            Dataset::HourlySales => &mut self.hourly_sales,
        }
    }

    /// The files a manifest lists for this hour: with a record, its merged files (those present) and the
    /// pieces it does not replace; without, every piece. Never a merged file together with a piece it replaced.
    pub fn live(&self, dataset: Dataset) -> Vec<String> {
        let files = self.files(dataset);
        match &self.record {
            None => files.iter().filter(|n| is_piece(n)).cloned().collect(),
            Some(record) => {
                let r = record.dataset(dataset);
                let merged = r.merged.iter().filter(|n| files.contains(*n)).cloned();
                let pieces = files.iter().filter(|n| is_piece(n) && !r.replaced.contains(*n)).cloned();
                merged.chain(pieces).collect()
            }
        }
    }

    /// The `sales_lines` pieces the record replaced but whose content changed since (rewritten by a replay):
    /// listed with a version other than the one the record kept.
    fn changed_pieces(&self) -> Vec<String> {
        let Some(record) = &self.record else { return Vec::new() };
        let r = &record.sales_lines;
        self.sales_lines
            .iter()
            .filter(|n| {
                is_piece(n)
                    && r.replaced.contains(*n)
                    && matches!((r.versions.get(*n), self.versions.get(*n)), (Some(kept), Some(now)) if kept != now)
            })
            .cloned()
            .collect()
    }

    /// The `sales_lines` pieces no record replaces yet.
    fn new_pieces(&self) -> Vec<String> {
        let replaced = self.record.as_ref().map(|r| &r.sales_lines.replaced);
        self.sales_lines.iter().filter(|n| is_piece(n) && replaced.is_none_or(|r| !r.contains(*n))).cloned().collect()
    }

    /// The end of the hour (at most [`Timestamp::MAX`]: a key may name 9999-12-31).
    pub fn end(&self) -> Timestamp {
        hour_start(self.partition).checked_add(SignedDuration::from_hours(1)).unwrap_or(Timestamp::MAX)
    }
}

/// The first instant of an event hour, at most [`Timestamp::MAX`] (9999-12-30T22:00Z): an hour read from a key
/// (`dt=9999-12-31/hour=23`) may lie past it, and must not panic.
pub fn hour_start(hour: EventHour) -> Timestamp {
    let dt = hour.date.at(hour.hour, 0, 0, 0);
    jiff::tz::TimeZone::UTC.to_timestamp(dt).unwrap_or(Timestamp::MAX)
}

/// An hour to compact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionPlan {
    pub partition: EventHour,
    pub generation: u32,
    /// A digest of the inputs' names: the merged files of two different plans never share a name.
    pub fingerprint: String,
    /// The `sales_lines` files to read, in order: the previous generation's merged files, then the new pieces.
    pub inputs: Vec<String>,
    /// The record to write once the merged files are in place (fill in `merged` and `compacted_at`).
    replaced_sales_lines: BTreeSet<String>,
    /// The versions of the replaced `sales_lines` pieces, as merged.
    versions: BTreeMap<String, String>,
    replaced_hourly_sales: BTreeSet<String>,
}

impl CompactionPlan {
    /// The name of merged file `part` of this plan.
    pub fn merged_name(&self, part: u32) -> MergedName {
        MergedName { generation: self.generation, fingerprint: self.fingerprint.clone(), part }
    }

    /// The commit record, once the merged files (names in the hour's prefix) are written.
    pub fn record(
        &self,
        sales_lines: Vec<String>,
        hourly_sales: Vec<String>,
        compacted_at: Timestamp,
    ) -> CompactionRecord {
        CompactionRecord {
            generation: self.generation,
            compacted_at: compacted_at.to_string(),
            sales_lines: DatasetRecord {
                merged: sales_lines,
                replaced: self.replaced_sales_lines.clone(),
                versions: self.versions.clone(),
            },
            hourly_sales: DatasetRecord {
                merged: hourly_sales,
                replaced: self.replaced_hourly_sales.clone(),
                versions: BTreeMap::new(),
            },
        }
    }
}

/// Whether and how to compact an hour at `now`: only once `end + grace <= now`, and only when it has
/// `sales_lines` pieces no record replaces yet, or replaced ones whose content changed (a replay). The inputs
/// are the changed pieces first (their lines win the de-duplication), then the previous generation's merged
/// files, then the new pieces. The merged `hourly_sales` file is recomputed from all the
/// hour's lines, so it replaces the previous generation's (a rollup's or a compaction's) and every
/// `hourly_sales` piece named like an input `sales_lines` piece (both come from the same landed object),
/// including one not written yet: the export writes the `sales_lines` piece first, and the recomputed file
/// already holds its lines. An `hourly_sales` piece whose `sales_lines` piece was not listed stays live until
/// the next compaction.
pub fn plan_compaction(state: &HourState, now: Timestamp, grace: SignedDuration) -> Option<CompactionPlan> {
    if state.end() + grace > now {
        return None;
    }
    let changed = state.changed_pieces();
    let new = state.new_pieces();
    if new.is_empty() && changed.is_empty() {
        return None;
    }
    let previous = state.record.as_ref();
    let mut inputs = changed.clone();
    inputs.extend(
        previous.iter().flat_map(|r| &r.sales_lines.merged).filter(|n| state.sales_lines.contains(*n)).cloned(),
    );
    inputs.extend(new.iter().cloned());
    let mut replaced_sales_lines = previous.map(|r| r.sales_lines.replaced.clone()).unwrap_or_default();
    replaced_sales_lines.extend(new.iter().cloned());
    let mut versions = previous.map(|r| r.sales_lines.versions.clone()).unwrap_or_default();
    for piece in changed.iter().chain(&new) {
        match state.versions.get(piece) {
            Some(v) => versions.insert(piece.clone(), v.clone()),
            None => versions.remove(piece),
        };
    }
    let mut replaced_hourly_sales = previous.map(|r| r.hourly_sales.replaced.clone()).unwrap_or_default();
    replaced_hourly_sales.extend(new.iter().cloned());
    let mut h = DefaultHasher::new();
    state.partition.hash(&mut h);
    inputs.hash(&mut h);
    Some(CompactionPlan {
        partition: state.partition,
        generation: previous.map_or(1, |r| r.generation + 1),
        fingerprint: format!("{:016x}", h.finish()),
        inputs,
        replaced_sales_lines,
        versions,
        replaced_hourly_sales,
    })
}

/// An open hour's `hourly_sales` to roll up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupPlan {
    pub partition: EventHour,
    pub generation: u32,
    /// A digest of the inputs' names: the merged files of two different plans never share a name.
    pub fingerprint: String,
    /// The `hourly_sales` files to sum, in order: the previous generation's merged file, then the new pieces.
    pub inputs: Vec<String>,
    /// Carried over unchanged: a rollup never replaces `sales_lines` files.
    sales_lines: DatasetRecord,
    replaced_hourly_sales: BTreeSet<String>,
}

impl RollupPlan {
    /// The name of this plan's merged `hourly_sales` file.
    pub fn merged_name(&self) -> MergedName {
        MergedName { generation: self.generation, fingerprint: self.fingerprint.clone(), part: 0 }
    }

    /// The commit record, once the merged file (its name in the hour's prefix) is written.
    pub fn record(&self, hourly_sales: String, compacted_at: Timestamp) -> CompactionRecord {
        CompactionRecord {
            generation: self.generation,
            compacted_at: compacted_at.to_string(),
            sales_lines: self.sales_lines.clone(),
            hourly_sales: DatasetRecord {
                merged: vec![hourly_sales],
                replaced: self.replaced_hourly_sales.clone(),
                versions: BTreeMap::new(),
            },
        }
    }
}

/// Whether and how to roll up an hour's `hourly_sales` at `now`: only while compaction may not run yet
/// (`now < end + grace`: the open hour, a future one, or a closed one inside its grace period), and only when
/// it has `hourly_sales` pieces no record replaces yet and the merge would leave fewer live files (at least two
/// inputs). The inputs are the previous generation's merged `hourly_sales` file (if present) and those pieces;
/// the new record replaces them all and keeps the `sales_lines` side of the previous record as it was.
pub fn plan_rollup(state: &HourState, now: Timestamp, grace: SignedDuration) -> Option<RollupPlan> {
    if state.end() + grace <= now {
        return None;
    }
    let previous = state.record.as_ref();
    let replaced = previous.map(|r| &r.hourly_sales.replaced);
    let new: Vec<String> = state
        .hourly_sales
        .iter()
        .filter(|n| is_piece(n) && replaced.is_none_or(|r| !r.contains(*n)))
        .cloned()
        .collect();
    if new.is_empty() {
        return None;
    }
    let mut inputs: Vec<String> = previous
        .map(|r| r.hourly_sales.merged.iter().filter(|n| state.hourly_sales.contains(*n)).cloned().collect())
        .unwrap_or_default();
    inputs.extend(new.iter().cloned());
    if inputs.len() < 2 {
        return None;
    }
    let mut replaced_hourly_sales = replaced.cloned().unwrap_or_default();
    replaced_hourly_sales.extend(new);
    let mut h = DefaultHasher::new();
    "rollup".hash(&mut h);
    state.partition.hash(&mut h);
    inputs.hash(&mut h);
    Some(RollupPlan {
        partition: state.partition,
        generation: previous.map_or(1, |r| r.generation + 1),
        fingerprint: format!("{:016x}", h.finish()),
        inputs,
        sales_lines: previous.map(|r| r.sales_lines.clone()).unwrap_or_default(),
        replaced_hourly_sales,
    })
}

/// The files to delete in an hour at `now` (dataset, file name): once the record is `delay` old, the pieces
/// it replaced (not a `sales_lines` piece whose content changed since: the next compaction's input) and merged
/// files it does not list from its own or earlier generations (superseded, or left by a crashed or concurrent
/// run).
pub fn plan_cleanup(state: &HourState, now: Timestamp, delay: SignedDuration) -> Vec<(Dataset, String)> {
    let Some(record) = &state.record else {
        return Vec::new();
    };
    if record.compacted_at().is_none_or(|at| at + delay > now) {
        return Vec::new();
    }
    let changed = state.changed_pieces();
    let mut out = Vec::new();
    for dataset in Dataset::ALL {
        let r = record.dataset(dataset);
        for name in state.files(dataset) {
            let delete = match MergedName::parse(name) {
                None => r.replaced.contains(name) && !(dataset == Dataset::SalesLines && changed.contains(name)),
                Some(m) => m.generation <= record.generation && !r.merged.contains(name),
            };
            if delete {
                out.push((dataset, name.clone()));
            }
        }
    }
    out
}

/// The dates of the rolling window ending on `today`: `days` dates, oldest first.
pub fn window_dates(today: Date, days: u32) -> Vec<Date> {
    (0..days.max(1)).rev().map(|back| today - jiff::Span::new().days(i64::from(back))).collect()
}

/// The manifests of one dataset: one per day of the window (`dt=YYYY-MM-DD.json`) and the rolling
/// `last-<N>-days.json`, each split at [`crate::manifest::MAX_FILES`]. `hours` are the states of the window's
/// hours; `existing` the manifest keys already in the bucket under the dataset's manifest prefix.
pub fn plan_manifests(
    layout: &Layout,
    bucket: &str,
    dataset: Dataset,
    hours: &[HourState],
    today: Date,
    window_days: u32,
    existing: &[String],
) -> ManifestPlan {
    let dates = window_dates(today, window_days);
    let mut by_date: BTreeMap<Date, Vec<String>> = dates.iter().map(|d| (*d, Vec::new())).collect();
    let mut sorted: Vec<&HourState> = hours.iter().filter(|h| by_date.contains_key(&h.partition.date)).collect();
    sorted.sort_by_key(|h| h.partition);
    for h in sorted {
        let keys = h
            .live(dataset)
            .into_iter()
            .map(|name| format!("{}{name}", layout.dataset_hour_prefix(dataset.name(), h.partition)));
        by_date.get_mut(&h.partition.date).expect("filtered above").extend(keys);
    }
    let mut plan = ManifestPlan::default();
    let mut all = Vec::new();
    for (date, keys) in &by_date {
        plan.add(&layout.daily_manifest_key(dataset.name(), *date), bucket, keys, existing);
        all.extend(keys.iter().cloned());
    }
    plan.add(&layout.rolling_manifest_key(dataset.name(), window_days), bucket, &all, existing);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 (unwrap audit): an hour named by a key past jiff's last instant saturates, never panics.
    #[test]
    fn hours_past_the_end_of_time_do_not_panic() {
        let last = EventHour { date: jiff::civil::date(9999, 12, 31), hour: 23 };
        assert_eq!(hour_start(last), Timestamp::MAX);
    }
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn hour() -> EventHour {
        EventHour { date: "2026-11-23".parse().unwrap(), hour: 9 }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const GRACE: SignedDuration = SignedDuration::from_mins(15);

    fn state(pieces: &[&str]) -> HourState {
        let mut s = HourState::new(hour());
        for p in pieces {
            s.sales_lines.insert(format!("{p}.csv"));
            s.hourly_sales.insert(format!("{p}.csv"));
        }
        s
    }

    #[test]
    fn an_open_hour_is_not_compacted() {
        let s = state(&["a", "b"]);
        assert_eq!(plan_compaction(&s, at("2026-11-23T10:14:59Z"), GRACE), None);
        let plan = plan_compaction(&s, at("2026-11-23T10:15:00Z"), GRACE).unwrap();
        assert_eq!(plan.generation, 1);
        assert_eq!(plan.inputs, ["a.csv", "b.csv"]);
        assert_eq!(plan_compaction(&state(&[]), at("2026-11-24T00:00:00Z"), GRACE), None);
    }

    /// Issue 14: a replay rewrites a piece the record replaced, with new content (a fixed pipeline). The new
    /// version is the next compaction's first input (its lines win), cleanup keeps it until then, manifests keep
    /// the previous generation meanwhile; rewriting the same bytes (same version) changes nothing.
    #[test]
    fn issue_14_a_replaced_piece_rewritten_with_new_content_is_compacted_again() {
        let mut s = state(&["a", "b"]);
        s.versions = BTreeMap::from([("a.csv".into(), "v1".into()), ("b.csv".into(), "w1".into())]);
        let now = at("2026-11-23T11:00:00Z");
        let plan = plan_compaction(&s, now, GRACE).unwrap();
        let m1 = plan.merged_name(0).file_name();
        s.sales_lines.insert(m1.clone());
        s.hourly_sales.insert(m1.clone());
        s.record = Some(plan.record(vec![m1.clone()], vec![m1.clone()], now));
        let kept = &s.record.as_ref().unwrap().sales_lines.versions;
        assert_eq!(kept.get("a.csv").map(String::as_str), Some("v1"));
        // Grace 0: the pieces go at once. Then the same bytes come back (an unchanged replay): still replaced.
        assert_eq!(plan_cleanup(&s, now, SignedDuration::ZERO).len(), 4);
        assert_eq!(plan_compaction(&s, now + GRACE, GRACE), None, "same version: nothing to compact");
        // `a` comes back with other bytes: live lists the merged file only, compaction takes `a` first.
        s.versions.insert("a.csv".into(), "v2".into());
        assert_eq!(s.live(Dataset::SalesLines), std::slice::from_ref(&m1));
        assert_eq!(s.live(Dataset::HourlySales), std::slice::from_ref(&m1));
        let cleanup = plan_cleanup(&s, now + GRACE, GRACE);
        assert!(!cleanup.contains(&(Dataset::SalesLines, "a.csv".to_string())), "{cleanup:?}");
        assert!(cleanup.contains(&(Dataset::SalesLines, "b.csv".to_string())), "{cleanup:?}");
        let later = now + GRACE;
        let plan = plan_compaction(&s, later, GRACE).unwrap();
        assert_eq!(plan.generation, 2);
        assert_eq!(plan.inputs, ["a.csv".to_string(), m1.clone()]);
        let m2 = plan.merged_name(0).file_name();
        assert_ne!(m1, m2);
        s.sales_lines.insert(m2.clone());
        s.hourly_sales.insert(m2.clone());
        s.record = Some(plan.record(vec![m2.clone()], vec![m2.clone()], later));
        assert_eq!(s.live(Dataset::SalesLines), std::slice::from_ref(&m2));
        assert_eq!(s.record.as_ref().unwrap().sales_lines.versions["a.csv"], "v2");
        assert_eq!(plan_compaction(&s, later + GRACE, GRACE), None, "folded in once");
        let cleanup = plan_cleanup(&s, later + GRACE, GRACE);
        for name in ["a.csv", &m1] {
            assert!(cleanup.contains(&(Dataset::SalesLines, name.to_string())), "{name}: {cleanup:?}");
        }
    }

    /// A record written before versions were kept (or a store that tells none) replaces by name, as before.
    #[test]
    fn without_versions_a_replaced_name_stays_replaced() {
        let mut s = state(&["a"]);
        let now = at("2026-11-23T11:00:00Z");
        let plan = plan_compaction(&s, now, GRACE).unwrap();
        let m = plan.merged_name(0).file_name();
        s.sales_lines.insert(m.clone());
        s.record = Some(plan.record(vec![m.clone()], vec![m], now));
        s.versions.insert("a.csv".into(), "v2".into());
        assert_eq!(plan_compaction(&s, now + GRACE, GRACE), None);
        let old: CompactionRecord = CompactionRecord::from_bytes(
            br#"{"generation":1,"compacted_at":"2026-11-23T11:00:00Z","sales_lines":{"merged":[],"replaced":["a.csv"]},"hourly_sales":{"merged":[],"replaced":[]}}"#,
        )
        .unwrap();
        assert!(old.sales_lines.versions.is_empty());
    }

    #[test]
    fn a_committed_record_switches_live_files_and_cleanup_waits() {
        let mut s = state(&["a", "b"]);
        s.hourly_sales.remove("b.csv"); // not written yet when listed: replaced all the same
        s.hourly_sales.insert("c.csv".into()); // its sales_lines piece is not an input: stays live
        let now = at("2026-11-23T11:00:00Z");
        let plan = plan_compaction(&s, now, GRACE).unwrap();
        let m = plan.merged_name(0).file_name();
        s.sales_lines.insert(m.clone());
        s.hourly_sales.insert(m.clone());
        assert_eq!(s.live(Dataset::SalesLines), ["a.csv", "b.csv"], "no record yet: merged files are invisible");
        s.record = Some(plan.record(vec![m.clone()], vec![m.clone()], now));
        assert_eq!(s.live(Dataset::SalesLines), std::slice::from_ref(&m));
        assert_eq!(s.live(Dataset::HourlySales), [m.clone(), "c.csv".to_string()]);
        s.hourly_sales.insert("b.csv".into()); // its lines are in the merged file already: never listed
        assert_eq!(s.live(Dataset::HourlySales), [m.clone(), "c.csv".to_string()]);
        s.hourly_sales.remove("b.csv");
        assert_eq!(plan_cleanup(&s, now + GRACE - SignedDuration::from_secs(1), GRACE), vec![]);
        let cleanup = plan_cleanup(&s, now + GRACE, GRACE);
        assert_eq!(
            cleanup,
            [
                (Dataset::SalesLines, "a.csv".to_string()),
                (Dataset::SalesLines, "b.csv".to_string()),
                (Dataset::HourlySales, "a.csv".to_string())
            ]
        );
    }

    #[test]
    fn late_pieces_start_a_new_generation_from_the_merged_files() {
        let mut s = state(&["a"]);
        let now = at("2026-11-23T11:00:00Z");
        let p1 = plan_compaction(&s, now, GRACE).unwrap();
        let m1 = p1.merged_name(0).file_name();
        s.sales_lines.insert(m1.clone());
        s.record = Some(p1.record(vec![m1.clone()], vec![], now));
        assert_eq!(plan_compaction(&s, now, GRACE), None, "nothing new");
        s.sales_lines.insert("late.csv".into());
        assert_eq!(s.live(Dataset::SalesLines), [m1.clone(), "late.csv".to_string()]);
        let p2 = plan_compaction(&s, now, GRACE).unwrap();
        assert_eq!(p2.generation, 2);
        assert_eq!(p2.inputs, [m1.clone(), "late.csv".to_string()]);
        assert_ne!(p2.fingerprint, p1.fingerprint);
        let m2 = p2.merged_name(0).file_name();
        s.sales_lines.insert(m2.clone());
        s.record = Some(p2.record(vec![m2.clone()], vec![], now));
        let cleanup: Vec<String> = plan_cleanup(&s, now + GRACE, GRACE)
            .into_iter()
            .filter(|(d, _)| *d == Dataset::SalesLines)
            .map(|(_, n)| n)
            .collect();
        assert_eq!(cleanup, [m1, "a.csv".to_string(), "late.csv".to_string()]);
    }

    #[test]
    fn open_hours_are_rolled_up_then_compacted_from_the_lines() {
        let mut s = state(&["a", "b"]);
        let t = at("2026-11-23T09:30:00Z");
        assert_eq!(plan_compaction(&s, t, GRACE), None);
        assert_eq!(plan_rollup(&state(&["a"]), t, GRACE), None, "one piece: nothing to merge");
        let r1 = plan_rollup(&s, t, GRACE).unwrap();
        assert_eq!((r1.generation, r1.inputs.as_slice()), (1, ["a.csv".to_string(), "b.csv".to_string()].as_slice()));
        let n1 = r1.merged_name().file_name();
        s.hourly_sales.insert(n1.clone());
        assert_eq!(s.live(Dataset::HourlySales), ["a.csv", "b.csv"], "no record yet: the rollup is invisible");
        s.record = Some(r1.record(n1.clone(), t));
        assert_eq!(s.live(Dataset::HourlySales), std::slice::from_ref(&n1));
        assert_eq!(s.live(Dataset::SalesLines), ["a.csv", "b.csv"], "a rollup leaves sales_lines alone");
        assert_eq!(plan_rollup(&s, t, GRACE), None, "nothing new");

        // A later piece: the next generation sums it with the previous rollup.
        s.sales_lines.insert("c.csv".into());
        s.hourly_sales.insert("c.csv".into());
        let t2 = at("2026-11-23T10:14:59Z"); // closed, but inside the grace period: still rolled up
        let r2 = plan_rollup(&s, t2, GRACE).unwrap();
        assert_eq!((r2.generation, r2.inputs.clone()), (2, vec![n1.clone(), "c.csv".to_string()]));
        let n2 = r2.merged_name().file_name();
        assert_ne!(n2, n1);
        s.hourly_sales.insert(n2.clone());
        s.record = Some(r2.record(n2.clone(), t2));
        assert_eq!(s.live(Dataset::HourlySales), std::slice::from_ref(&n2));
        assert_eq!(plan_cleanup(&s, t2 + GRACE - SignedDuration::from_secs(1), GRACE), vec![]);

        // The hour is closed: compaction reads every sales_lines piece and replaces the rollup.
        let t3 = at("2026-11-23T10:15:00Z");
        assert_eq!(plan_rollup(&s, t3, GRACE), None);
        let c = plan_compaction(&s, t3, GRACE).unwrap();
        assert_eq!((c.generation, c.inputs.clone()), (3, vec!["a.csv".into(), "b.csv".into(), "c.csv".into()]));
        let m = c.merged_name(0).file_name();
        s.sales_lines.insert(m.clone());
        s.hourly_sales.insert(m.clone());
        s.record = Some(c.record(vec![m.clone()], vec![m.clone()], t3));
        assert_eq!(s.live(Dataset::HourlySales), std::slice::from_ref(&m));
        assert_eq!(s.live(Dataset::SalesLines), std::slice::from_ref(&m));
        let cleanup: BTreeSet<(Dataset, String)> = plan_cleanup(&s, t3 + GRACE, GRACE).into_iter().collect();
        let expected: BTreeSet<(Dataset, String)> = ["a.csv", "b.csv", "c.csv"]
            .iter()
            .flat_map(|p| [(Dataset::SalesLines, p.to_string()), (Dataset::HourlySales, p.to_string())])
            .chain([(Dataset::HourlySales, n1), (Dataset::HourlySales, n2)])
            .collect();
        assert_eq!(cleanup, expected);
    }

    #[test]
    fn manifests_cover_the_window_and_split() {
        let layout = Layout::default();
        let today: Date = "2026-11-23".parse().unwrap();
        let mut hours = Vec::new();
        for (date, hour, n) in [("2026-11-16", 1, 5), ("2026-11-17", 1, 2), ("2026-11-23", 9, 1200)] {
            let mut s = HourState::new(EventHour { date: date.parse().unwrap(), hour });
            s.hourly_sales = (0..n).map(|i| format!("p{i:05}.csv")).collect();
            hours.push(s);
        }
        let plan = plan_manifests(&layout, "b", Dataset::HourlySales, &hours, today, 7, &[]);
        let keys: Vec<&str> = plan.writes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "manifests/hourly_sales/dt=2026-11-17.json",
                "manifests/hourly_sales/dt=2026-11-23.json",
                "manifests/hourly_sales/dt=2026-11-23.part-2.json",
                "manifests/hourly_sales/last-7-days.json",
                "manifests/hourly_sales/last-7-days.part-2.json",
            ]
        );
        for (_, m) in &plan.writes {
            m.validate(|_| 0).unwrap();
        }
        assert_eq!(plan.splits.len(), 2);
        assert_eq!(window_dates(today, 7)[0].to_string(), "2026-11-17");
    }

    /// A model bucket: a piece holds a set of line ids (pieces may repeat lines: redeliveries); a merged file
    /// stands for the pieces it was made from. Pieces arrive and compaction runs step by step, crashing at times;
    /// after every single step, the live files of each dataset stand for each piece at most once (never a
    /// merged file with a piece it replaced) and, for `sales_lines`, for every line that arrived.
    #[derive(Debug, Clone)]
    enum Op {
        Arrive(Vec<u8>),
        Compact { crash_after_merged: bool },
        Cleanup,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => proptest::collection::vec(0u8..40, 0..6).prop_map(Op::Arrive),
            2 => any::<bool>().prop_map(|c| Op::Compact { crash_after_merged: c }),
            1 => Just(Op::Cleanup),
        ]
    }

    type Origins = BTreeMap<String, BTreeSet<String>>;

    fn check(
        s: &HourState,
        origins: &Origins,
        lines: &BTreeMap<String, BTreeSet<u8>>,
        complete: bool,
    ) -> Result<(), TestCaseError> {
        for dataset in Dataset::ALL {
            let mut pieces = BTreeSet::new();
            for name in s.live(dataset) {
                for piece in &origins[&name] {
                    prop_assert!(
                        pieces.insert(piece.clone()),
                        "{} twice in {:?} live {:?}",
                        piece,
                        dataset,
                        s.live(dataset)
                    );
                }
            }
            let covered: BTreeSet<u8> = pieces.iter().flat_map(|p| lines[p].iter().copied()).collect();
            let arrived: BTreeSet<u8> = lines.values().flatten().copied().collect();
            if dataset == Dataset::SalesLines || complete {
                prop_assert_eq!(covered, arrived, "{:?}", dataset);
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn no_step_lists_a_piece_twice_or_loses_a_line(ops in proptest::collection::vec(op(), 1..25)) {
            let mut s = HourState::new(hour());
            let mut origins = Origins::new();
            let mut lines: BTreeMap<String, BTreeSet<u8>> = BTreeMap::new();
            let mut now = at("2026-11-23T11:00:00Z");
            for (i, op) in ops.into_iter().enumerate() {
                now += SignedDuration::from_mins(10);
                match op {
                    Op::Arrive(l) => {
                        let name = format!("piece{i:03}.csv");
                        lines.insert(name.clone(), l.into_iter().collect());
                        origins.insert(name.clone(), BTreeSet::from([name.clone()]));
                        s.sales_lines.insert(name.clone());
                        check(&s, &origins, &lines, false)?; // sales_lines written, hourly_sales not yet
                        s.hourly_sales.insert(name);
                    }
                    Op::Compact { crash_after_merged } => {
                        let Some(plan) = plan_compaction(&s, now, GRACE) else { continue };
                        let from: BTreeSet<String> = plan.inputs.iter().flat_map(|n| origins[n].iter().cloned()).collect();
                        let name = plan.merged_name(0).file_name();
                        origins.insert(name.clone(), from);
                        s.sales_lines.insert(name.clone());
                        check(&s, &origins, &lines, true)?;
                        s.hourly_sales.insert(name.clone());
                        check(&s, &origins, &lines, true)?;
                        if crash_after_merged {
                            continue;
                        }
                        s.record = Some(plan.record(vec![name.clone()], vec![name], now));
                    }
                    Op::Cleanup => {
                        for (dataset, name) in plan_cleanup(&s, now, GRACE) {
                            s.files_mut(dataset).remove(&name);
                            check(&s, &origins, &lines, true)?;
                        }
                    }
                }
                check(&s, &origins, &lines, true)?;
            }
        }
    }

    /// Rollups in the model bucket: a landed object's `sales_lines` piece is written first and its
    /// `hourly_sales` piece later (compaction may run in between), objects are redelivered, rollups run while
    /// the hour is open and compactions once it is closed, each of them crashing at times, and time passes.
    /// Files carry a multiset of line ids: a piece its lines once each, a rollup the sum of its inputs, a
    /// compaction the de-duplicated union. After every step, each dataset's live files stand for each piece at
    /// most once and miss no line; in the end, compaction gives every line exactly once.
    #[derive(Debug, Clone)]
    enum Step {
        Arrive(Vec<u8>),
        HourlyLands,
        Redeliver(prop::sample::Index),
        Rollup { crash_after_merged: bool },
        Compact { crash_after_merged: bool },
        Cleanup,
        Wait,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => proptest::collection::vec(0u8..30, 1..6).prop_map(Step::Arrive),
            3 => Just(Step::HourlyLands),
            1 => any::<prop::sample::Index>().prop_map(Step::Redeliver),
            3 => any::<bool>().prop_map(|c| Step::Rollup { crash_after_merged: c }),
            2 => any::<bool>().prop_map(|c| Step::Compact { crash_after_merged: c }),
            1 => Just(Step::Cleanup),
            1 => Just(Step::Wait),
        ]
    }

    type Lines = BTreeMap<u8, u32>;

    #[derive(Default)]
    struct Model {
        /// Per landed object, its lines.
        objects: BTreeMap<String, BTreeSet<u8>>,
        /// Objects whose `hourly_sales` piece is not written yet.
        pending: Vec<String>,
        /// Per file: the objects it stands for and its lines.
        files: BTreeMap<(Dataset, String), (BTreeSet<String>, Lines)>,
    }

    impl Model {
        fn piece(&mut self, s: &mut HourState, dataset: Dataset, name: &str) {
            let lines = self.objects[name].iter().map(|l| (*l, 1)).collect();
            self.files.insert((dataset, name.to_string()), (BTreeSet::from([name.to_string()]), lines));
            s.files_mut(dataset).insert(name.to_string());
        }

        fn merged(&mut self, s: &mut HourState, dataset: Dataset, name: &str, inputs: &[String], dedup: bool) {
            let mut origins = BTreeSet::new();
            let mut lines = Lines::new();
            // A compaction reads `sales_lines` (both merged files come from the lines), a rollup `hourly_sales`.
            let source = if dedup { Dataset::SalesLines } else { Dataset::HourlySales };
            for input in inputs {
                assert!(s.files(source).contains(input), "{input} is an input but not listed");
                let (o, l) = &self.files[&(source, input.clone())];
                origins.extend(o.iter().cloned());
                for (line, n) in l {
                    let count = lines.entry(*line).or_default();
                    *count = if dedup { 1 } else { *count + n };
                }
            }
            self.files.insert((dataset, name.to_string()), (origins, lines));
            s.files_mut(dataset).insert(name.to_string());
        }

        fn check(&self, s: &HourState, exact: bool) -> Result<(), TestCaseError> {
            for dataset in Dataset::ALL {
                let mut pieces = BTreeSet::new();
                let mut lines = Lines::new();
                for name in s.live(dataset) {
                    let (origins, l) = &self.files[&(dataset, name.clone())];
                    for piece in origins {
                        prop_assert!(
                            pieces.insert(piece.clone()),
                            "{} twice in {:?} {:?}",
                            piece,
                            dataset,
                            s.live(dataset)
                        );
                    }
                    for (line, n) in l {
                        *lines.entry(*line).or_default() += n;
                    }
                }
                let landed: BTreeSet<String> = match dataset {
                    Dataset::SalesLines => self.objects.keys().cloned().collect(),
                    Dataset::HourlySales => {
                        self.objects.keys().filter(|o| !self.pending.contains(o)).cloned().collect()
                    }
                };
                prop_assert!(pieces.is_superset(&landed), "{:?} misses {:?}", dataset, landed.difference(&pieces));
                prop_assert!(pieces.iter().all(|p| self.objects.contains_key(p)));
                // Never a line more often than the pieces that hold it, never one missing.
                let covered: BTreeSet<u8> = pieces.iter().flat_map(|p| self.objects[p].iter().copied()).collect();
                prop_assert_eq!(lines.keys().copied().collect::<BTreeSet<u8>>(), covered, "{:?}", dataset);
                for (line, n) in &lines {
                    let holders = pieces.iter().filter(|p| self.objects[*p].contains(line)).count() as u32;
                    prop_assert!(*n <= holders, "{:?}: line {} {} times, in {} pieces", dataset, line, n, holders);
                    if exact {
                        prop_assert_eq!(*n, 1, "{:?}: line {} after compaction", dataset, line);
                    }
                }
            }
            Ok(())
        }
    }

    fn compact(s: &mut HourState, m: &mut Model, now: Timestamp, crash: bool) -> Result<bool, TestCaseError> {
        let Some(plan) = plan_compaction(s, now, GRACE) else { return Ok(false) };
        prop_assert_eq!(plan_rollup(s, now, GRACE), None, "a rollup and a compaction of the same hour");
        let name = plan.merged_name(0).file_name();
        m.merged(s, Dataset::SalesLines, &name, &plan.inputs, true);
        m.check(s, false)?;
        m.merged(s, Dataset::HourlySales, &name, &plan.inputs, true);
        m.check(s, false)?;
        if !crash {
            s.record = Some(plan.record(vec![name.clone()], vec![name], now));
        }
        Ok(true)
    }

    proptest! {
        #[test]
        fn rollups_then_compaction_count_every_piece_once_and_end_exact(steps in proptest::collection::vec(step(), 1..40)) {
            let mut s = HourState::new(hour());
            let mut m = Model::default();
            let mut now = at("2026-11-23T09:00:00Z");
            for (i, step) in steps.into_iter().enumerate() {
                now += SignedDuration::from_mins(3);
                match step {
                    Step::Arrive(lines) => {
                        let name = format!("object{i:03}.csv");
                        m.objects.insert(name.clone(), lines.into_iter().collect());
                        m.piece(&mut s, Dataset::SalesLines, &name);
                        m.pending.push(name);
                    }
                    Step::HourlyLands => {
                        if m.pending.is_empty() { continue }
                        let name = m.pending.remove(0);
                        m.piece(&mut s, Dataset::HourlySales, &name);
                    }
                    Step::Redeliver(which) => {
                        let names: Vec<String> = m.objects.keys().cloned().collect();
                        if names.is_empty() { continue }
                        let name = which.get(&names).clone();
                        m.piece(&mut s, Dataset::SalesLines, &name);
                        m.check(&s, false)?;
                        m.piece(&mut s, Dataset::HourlySales, &name);
                        m.pending.retain(|p| *p != name);
                    }
                    Step::Rollup { crash_after_merged } => {
                        let Some(plan) = plan_rollup(&s, now, GRACE) else { continue };
                        prop_assert_eq!(plan_compaction(&s, now, GRACE), None);
                        let name = plan.merged_name().file_name();
                        m.merged(&mut s, Dataset::HourlySales, &name, &plan.inputs, false);
                        m.check(&s, false)?;
                        if !crash_after_merged {
                            s.record = Some(plan.record(name, now));
                        }
                    }
                    Step::Compact { crash_after_merged } => {
                        compact(&mut s, &mut m, now, crash_after_merged)?;
                    }
                    Step::Cleanup => {
                        for (dataset, name) in plan_cleanup(&s, now, GRACE) {
                            s.files_mut(dataset).remove(&name);
                            m.check(&s, false)?;
                        }
                    }
                    Step::Wait => now += SignedDuration::from_mins(20),
                }
                m.check(&s, false)?;
            }
            // Every hourly piece lands, the hour closes: compaction leaves every line exactly once, and so does
            // the cleanup after it.
            while !m.pending.is_empty() {
                let name = m.pending.remove(0);
                m.piece(&mut s, Dataset::HourlySales, &name);
                m.check(&s, false)?;
            }
            now = now.max(s.end() + GRACE) + SignedDuration::from_mins(1);
            compact(&mut s, &mut m, now, false)?;
            m.check(&s, true)?;
            for (dataset, name) in plan_cleanup(&s, now + GRACE, GRACE) {
                s.files_mut(dataset).remove(&name);
                m.check(&s, true)?;
            }
            prop_assert_eq!(plan_compaction(&s, now + GRACE, GRACE), None);
        }
    }
}
