//! CloudWatch Embedded Metric Format: one JSON line per batch, namespace `salesflow`, dimensions `Stage` (from
//! `SALESFLOW_STAGE`) and `Function=ingest`. CloudWatch turns the line into metrics; the SAM template alarms on
//! `Rejected` of its own stage.

use jiff::Timestamp;
use salesflow_core::Counts;
pub use salesflow_core::emf::MetricsOutput;
use salesflow_core::emf::{DEFAULT_STAGE, MetricSet};
use serde_json::Value;

/// What one batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMetrics {
    /// The `Stage` dimension: the function's `SALESFLOW_STAGE` ([`DEFAULT_STAGE`] by default).
    pub stage: String,
    /// Kinesis records in the event.
    pub records_in: u64,
    /// What became of the user records (records after KPL de-aggregation): `UserRecords` is its `records_in`,
    /// then `Emitted`, `Filtered`, `Rejected` (undecodable user records, counted by step `decode`, and pipeline
    /// rejects).
    pub counts: Counts,
    /// Compressed bytes written under `landed/`.
    pub bytes_landed: u64,
    /// Objects written (raw, landed, rejects).
    pub objects_written: u64,
    /// Now minus the oldest `approximateArrivalTimestamp` of the batch.
    pub ingest_lag_ms: i64,
}

impl Default for BatchMetrics {
    fn default() -> Self {
        BatchMetrics {
            stage: DEFAULT_STAGE.to_string(),
            records_in: 0,
            counts: Counts::default(),
            bytes_landed: 0,
            objects_written: 0,
            ingest_lag_ms: 0,
        }
    }
}

impl BatchMetrics {
    /// The batch's metric set.
    pub fn metric_set(&self) -> MetricSet {
        MetricSet::new(&self.stage, "ingest")
            .count("RecordsIn", self.records_in)
            .count("UserRecords", self.counts.records_in)
            .count("Emitted", self.counts.emitted)
            .count("Filtered", self.counts.filtered)
            .count("Rejected", self.counts.rejected)
            .count("ObjectsWritten", self.objects_written)
            .bytes("BytesLanded", self.bytes_landed)
            .millis("IngestLagMs", self.ingest_lag_ms)
    }

    /// The EMF document.
    pub fn emf(&self, now: Timestamp) -> Value {
        self.metric_set().to_emf(now)
    }

    /// Writes the EMF line.
    pub fn emit(&self, now: Timestamp, output: MetricsOutput) {
        output.emit(&[self.metric_set()], now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_agreed_metric_is_declared_and_set() {
        let m = BatchMetrics {
            stage: "prod".into(),
            records_in: 3,
            counts: Counts { records_in: 5, emitted: 3, filtered: 1, rejected: 1, ..Counts::default() },
            bytes_landed: 900,
            objects_written: 3,
            ingest_lag_ms: 1200,
        };
        let emf = m.emf("2026-11-23T09:00:00Z".parse().unwrap());
        let declared = &emf["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "salesflow");
        assert_eq!(declared["Dimensions"], json!([["Stage", "Function"]]));
        assert_eq!((emf["Stage"].as_str(), emf["Function"].as_str()), (Some("prod"), Some("ingest")));
        let names: Vec<&str> =
            declared["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
        for name in [
            "RecordsIn",
            "UserRecords",
            "Emitted",
            "Filtered",
            "Rejected",
            "BytesLanded",
            "ObjectsWritten",
            "IngestLagMs",
        ] {
            assert!(names.contains(&name), "{name}");
            assert!(emf[name].is_number(), "{name}");
        }
        assert_eq!((emf["UserRecords"].as_u64(), emf["Emitted"].as_u64()), (Some(5), Some(3)));
        assert_eq!((emf["Filtered"].as_u64(), emf["Rejected"].as_u64()), (Some(1), Some(1)));
        assert_eq!(emf["_aws"]["Timestamp"], 1_795_424_400_000i64);
    }

    #[test]
    fn the_stage_defaults_to_local() {
        let emf = BatchMetrics::default().emf("2026-11-23T09:00:00Z".parse().unwrap());
        assert_eq!(emf["Stage"], DEFAULT_STAGE);
    }
}
