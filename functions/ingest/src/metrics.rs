//! CloudWatch Embedded Metric Format: one JSON line per batch, namespace `salesflow`, dimension
//! `Function=ingest`. CloudWatch turns the line into metrics; the SAM template alarms on `Rejected`.

use jiff::Timestamp;
use serde_json::{Value, json};

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchMetrics {
    /// Kinesis records in the event.
    pub records_in: u64,
    /// Records after KPL de-aggregation: `emitted + filtered + rejected`.
    pub user_records: u64,
    /// User records with at least one output.
    pub emitted: u64,
    pub filtered: u64,
    /// Undecodable user records and pipeline rejects.
    pub rejected: u64,
    /// Compressed bytes written under `landed/`.
    pub bytes_landed: u64,
    /// Objects written (raw, landed, rejects).
    pub objects_written: u64,
    /// Now minus the oldest `approximateArrivalTimestamp` of the batch.
    pub ingest_lag_ms: i64,
}

/// Where the EMF lines go: stdout in Lambda (CloudWatch reads it), stderr for the command line, whose stdout
/// is the handler's response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsOutput {
    #[default]
    Stdout,
    Stderr,
}

impl BatchMetrics {
    /// The EMF document.
    pub fn emf(&self, now: Timestamp) -> Value {
        let counts = ["RecordsIn", "UserRecords", "Emitted", "Filtered", "Rejected", "ObjectsWritten"];
        let mut metrics: Vec<Value> = counts.iter().map(|name| json!({"Name": name, "Unit": "Count"})).collect();
        metrics.push(json!({"Name": "BytesLanded", "Unit": "Bytes"}));
        metrics.push(json!({"Name": "IngestLagMs", "Unit": "Milliseconds"}));
        json!({
            "_aws": {
                "Timestamp": now.as_millisecond(),
                "CloudWatchMetrics": [{"Namespace": "salesflow", "Dimensions": [["Function"]], "Metrics": metrics}],
            },
            "Function": "ingest",
            "RecordsIn": self.records_in,
            "UserRecords": self.user_records,
            "Emitted": self.emitted,
            "Filtered": self.filtered,
            "Rejected": self.rejected,
            "ObjectsWritten": self.objects_written,
            "BytesLanded": self.bytes_landed,
            "IngestLagMs": self.ingest_lag_ms,
        })
    }

    /// Writes the EMF line.
    pub fn emit(&self, now: Timestamp, output: MetricsOutput) {
        let line = self.emf(now).to_string();
        match output {
            MetricsOutput::Stdout => println!("{line}"),
            MetricsOutput::Stderr => eprintln!("{line}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agreed_metric_is_declared_and_set() {
        let m = BatchMetrics {
            records_in: 3,
            user_records: 5,
            emitted: 3,
            filtered: 1,
            rejected: 1,
            bytes_landed: 900,
            objects_written: 3,
            ingest_lag_ms: 1200,
        };
        let emf = m.emf("2026-11-23T09:00:00Z".parse().unwrap());
        let declared = &emf["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "salesflow");
        assert_eq!(declared["Dimensions"], json!([["Function"]]));
        assert_eq!(emf["Function"], "ingest");
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
        assert_eq!(emf["Rejected"], 1);
        assert_eq!(emf["_aws"]["Timestamp"], 1_795_424_400_000i64);
    }
}
