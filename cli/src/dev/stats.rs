//! What `dev` counts: one [`Tally`] of everything that happened, shown live in the status line and summed up in
//! the JSON summary; the lag, the freshness samples and the last activity beside it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Instant;

use jiff::Timestamp;
use salesflow_core::Counts;
use serde::{Serialize, Serializer};
use serde_json::Value;

/// The counters, in the order the summary lists them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// Kinesis records delivered to the ingest handler and handled.
    pub records: u64,
    /// What the handler made of their user records (after KPL de-aggregation), in the summary as
    /// `user_records`, `emitted`, `filtered`, `rejected`.
    #[serde(flatten, serialize_with = "user_counts")]
    pub handled: Counts,
    pub batches: u64,
    pub retries: u64,
    pub failed_batches: u64,
    /// Invocations that ended in a function error (a panic, or `batchItemFailures` naming no record of the batch).
    pub function_errors: u64,
    /// Batches split in two after a function error.
    pub bisections: u64,
    /// Records older than `--max-record-age`, sent to the on-failure destination undelivered.
    pub expired_records: u64,
    pub messages: u64,
    pub objects_exported: u64,
    pub export_errors: u64,
    pub scheduled_runs: u64,
}

fn user_counts<S: Serializer>(counts: &Counts, serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct UserCounts {
        user_records: u64,
        emitted: u64,
        filtered: u64,
        rejected: u64,
    }
    let c = counts;
    UserCounts { user_records: c.records_in, emitted: c.emitted, filtered: c.filtered, rejected: c.rejected }
        .serialize(serializer)
}

/// Everything the tasks count, shared between them.
#[derive(Debug, Default)]
pub struct Stats {
    tally: Mutex<Tally>,
    /// `MillisBehindLatest` of the last GetRecords, over all shards.
    lag_ms: AtomicI64,
    /// Milliseconds from a record's arrival in Kinesis to its CSV rows being written.
    freshness_ms: Mutex<Vec<i64>>,
    /// Landed keys not yet exported → arrival times of the records of the batch that wrote them.
    landed_arrivals: Mutex<HashMap<String, Vec<Timestamp>>>,
    /// Last time anything happened (records read, messages received), for `--until-idle`.
    last_activity: Mutex<Option<Instant>>,
}

/// The JSON summary: the tally, the rates, the freshness percentiles.
#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    tally: Tally,
    elapsed_s: f64,
    records_per_s: f64,
    freshness_ms: Freshness,
}

#[derive(Serialize)]
struct Freshness {
    samples: usize,
    p50: Option<i64>,
    p95: Option<i64>,
    max: Option<i64>,
}

impl Stats {
    /// Counts something.
    pub fn add(&self, count: impl FnOnce(&mut Tally)) {
        count(&mut self.tally.lock().expect("not poisoned"));
    }

    pub fn tally(&self) -> Tally {
        self.tally.lock().expect("not poisoned").clone()
    }

    pub fn set_lag(&self, millis_behind: i64) {
        self.lag_ms.store(millis_behind, Relaxed);
    }

    /// Something happened now.
    pub fn touch(&self) {
        *self.last_activity.lock().expect("not poisoned") = Some(Instant::now());
    }

    /// How long nothing has happened (`None` before anything did).
    pub fn quiet_for(&self) -> Option<std::time::Duration> {
        self.last_activity.lock().expect("not poisoned").map(|t| t.elapsed())
    }

    /// A batch whose records arrived at `arrivals` wrote these landed keys.
    pub fn landed(&self, keys: impl IntoIterator<Item = String>, arrivals: &[Timestamp]) {
        let mut landed = self.landed_arrivals.lock().expect("not poisoned");
        for key in keys {
            landed.insert(key, arrivals.to_vec());
        }
    }

    /// These landed keys are exported at `done`: their records' freshness is known.
    pub fn exported<'a>(&self, keys: impl IntoIterator<Item = &'a str>, done: Timestamp) {
        let mut landed = self.landed_arrivals.lock().expect("not poisoned");
        let mut samples = Vec::new();
        for key in keys {
            if let Some(arrivals) = landed.remove(key) {
                samples.extend(arrivals.iter().map(|a| done.as_millisecond() - a.as_millisecond()));
            }
        }
        drop(landed);
        self.freshness_ms.lock().expect("not poisoned").extend(samples);
    }

    /// The live status line.
    pub fn status_line(&self, started: Instant) -> String {
        let t = self.tally();
        format!(
            "{} records ({:.0}/s) | lag {:.1}s | batches {} | emitted {} | rejects {} | retries {} | failed batches {} | expired {} | exported {} objects",
            t.records,
            t.records as f64 / started.elapsed().as_secs_f64().max(0.001),
            self.lag_ms.load(Relaxed) as f64 / 1000.0,
            t.batches,
            t.handled.emitted,
            t.handled.rejected,
            t.retries,
            t.failed_batches,
            t.expired_records,
            t.objects_exported,
        )
    }

    /// The summary printed at the end (and written to `--stats`).
    pub fn summary(&self, started: Instant) -> Value {
        let elapsed = started.elapsed().as_secs_f64();
        let mut freshness = self.freshness_ms.lock().expect("not poisoned").clone();
        freshness.sort_unstable();
        let tally = self.tally();
        let summary = Summary {
            records_per_s: (tally.records as f64 / elapsed.max(0.001)).round(),
            tally,
            elapsed_s: (elapsed * 1000.0).round() / 1000.0,
            freshness_ms: Freshness {
                samples: freshness.len(),
                p50: percentile(&freshness, 50.0),
                p95: percentile(&freshness, 95.0),
                max: freshness.last().copied(),
            },
        };
        serde_json::to_value(summary).expect("plain numbers serialize")
    }
}

/// The nearest-rank percentile `p` of sorted samples.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn the_summary_lists_every_counter_once_in_order() {
        let stats = Stats::default();
        stats.add(|t| {
            t.records = 240;
            t.handled = Counts { records_in: 250, emitted: 240, filtered: 2, rejected: 8, ..Counts::default() };
            t.scheduled_runs = 1;
        });
        let at: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        stats.landed(["landed/a".to_string()], &[at, at + jiff::SignedDuration::from_millis(500)]);
        stats.exported(["landed/a", "landed/unknown"], at + jiff::SignedDuration::from_secs(2));
        let summary = stats.summary(Instant::now());
        let keys: Vec<&str> = summary.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "records",
                "user_records",
                "emitted",
                "filtered",
                "rejected",
                "batches",
                "retries",
                "failed_batches",
                "function_errors",
                "bisections",
                "expired_records",
                "messages",
                "objects_exported",
                "export_errors",
                "scheduled_runs",
                "elapsed_s",
                "records_per_s",
                "freshness_ms"
            ]
        );
        assert_eq!((summary["records"].as_u64(), summary["user_records"].as_u64()), (Some(240), Some(250)));
        assert_eq!((summary["rejected"].as_u64(), summary["scheduled_runs"].as_u64()), (Some(8), Some(1)));
        let f = &summary["freshness_ms"];
        assert_eq!((f["samples"].as_u64(), f["p50"].as_i64(), f["max"].as_i64()), (Some(2), Some(1500), Some(2000)));
        let line = stats.status_line(Instant::now());
        assert!(line.starts_with("240 records (") && line.contains("| emitted 240 | rejects 8 |"), "{line}");
    }
}
