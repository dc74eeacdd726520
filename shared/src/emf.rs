//! CloudWatch Embedded Metric Format (EMF): a metric set becomes one JSON log line that CloudWatch turns into
//! metrics (namespace `salesflow`, dimensions `Stage` and `Function`, plus any other dimension), readable in the
//! logs too. Both functions build their metric lines here; where the line goes is the caller's [`MetricsOutput`].
//!
//! `Stage` is the deployment (`dev`, `prod`: the template's `Stage` parameter, passed to both functions as
//! `SALESFLOW_STAGE`), so two stacks in one account keep apart the metrics their alarms and dashboards read.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every salesflow metric.
pub const NAMESPACE: &str = "salesflow";

/// The environment variable naming the stage; each function reads it once at cold start.
pub const STAGE_VARIABLE: &str = "SALESFLOW_STAGE";

/// The stage when `SALESFLOW_STAGE` is unset: local runs (`salesflow invoke`, `dev`, `demo`, tests).
pub const DEFAULT_STAGE: &str = "local";

/// A `Stage` value CloudWatch accepts as a dimension value: 1 to 255 printable ASCII characters, not all spaces.
pub fn check_stage(stage: &str) -> Result<(), String> {
    if (1..=255).contains(&stage.len())
        && stage.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && stage.bytes().any(|b| b != b' ')
    {
        Ok(())
    } else {
        Err("expected a stage name like `dev` or `prod` (1-255 printable ASCII characters)".into())
    }
}

/// Metrics sharing the same dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSet {
    dimensions: Vec<(&'static str, String)>,
    /// (name, value, unit): unit is `Count`, `Bytes` or `Milliseconds`.
    values: Vec<(&'static str, i64, &'static str)>,
}

impl MetricSet {
    /// A set for one function (`ingest`, `export`) of one stage (`dev`, `prod`, [`DEFAULT_STAGE`]): its `Stage` and
    /// `Function` dimensions, which every salesflow metric carries.
    pub fn new(stage: &str, function: &str) -> Self {
        MetricSet {
            dimensions: vec![("Stage", stage.to_string()), ("Function", function.to_string())],
            values: Vec::new(),
        }
    }

    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    pub fn count(self, name: &'static str, value: u64) -> Self {
        self.value(name, i64::try_from(value).unwrap_or(i64::MAX), "Count")
    }

    pub fn bytes(self, name: &'static str, value: u64) -> Self {
        self.value(name, i64::try_from(value).unwrap_or(i64::MAX), "Bytes")
    }

    pub fn millis(self, name: &'static str, value: i64) -> Self {
        self.value(name, value, "Milliseconds")
    }

    fn value(mut self, name: &'static str, value: i64, unit: &'static str) -> Self {
        self.values.push((name, value, unit));
        self
    }

    /// The EMF document, stamped with `at`: one dimension set naming every dimension, each of them a property.
    pub fn to_emf(&self, at: Timestamp) -> Value {
        let names: Vec<&str> = self.dimensions.iter().map(|(n, _)| *n).collect();
        let metrics: Vec<Value> = self.values.iter().map(|(n, _, unit)| json!({"Name": n, "Unit": unit})).collect();
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": at.as_millisecond(),
                "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [names], "Metrics": metrics}]
            }),
        );
        for (name, value) in &self.dimensions {
            doc.insert((*name).into(), Value::String(value.clone()));
        }
        for (name, value, _) in &self.values {
            doc.insert((*name).into(), Value::from(*value));
        }
        Value::Object(doc)
    }
}

/// Where EMF lines go: stdout in Lambda (CloudWatch reads the log), stderr on the command line (whose stdout
/// carries the handler's response), or nowhere (tests, the demo).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsOutput {
    #[default]
    Stdout,
    Stderr,
    Off,
}

impl MetricsOutput {
    /// Writes the sets' EMF lines.
    pub fn emit(self, sets: &[MetricSet], at: Timestamp) {
        for set in sets {
            match self {
                MetricsOutput::Stdout => println!("{}", set.to_emf(at)),
                MetricsOutput::Stderr => eprintln!("{}", set.to_emf(at)),
                MetricsOutput::Off => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_documents_declare_their_metrics() {
        let at: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let doc = MetricSet::new("prod", "export")
            .dimension("Dataset", "sales_lines")
            .count("RowsWritten", 17)
            .millis("ExportLagMs", -3)
            .to_emf(at);
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], json!(at.as_millisecond()));
        assert_eq!(declared["Namespace"], "salesflow");
        assert_eq!(declared["Dimensions"], json!([["Stage", "Function", "Dataset"]]));
        assert_eq!(
            declared["Metrics"],
            json!([{"Name": "RowsWritten", "Unit": "Count"}, {"Name": "ExportLagMs", "Unit": "Milliseconds"}])
        );
        assert_eq!(
            (doc["Stage"].as_str(), doc["Function"].as_str(), doc["Dataset"].as_str()),
            (Some("prod"), Some("export"), Some("sales_lines"))
        );
        assert_eq!(doc["RowsWritten"].to_string(), "17");
        assert_eq!(doc["ExportLagMs"].to_string(), "-3");
    }

    #[test]
    fn every_document_carries_the_stage_dimension() {
        let at: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        for (stage, set) in [
            ("dev", MetricSet::new("dev", "ingest").count("Rejected", 2)),
            ("prod", MetricSet::new("prod", "export").dimension("Dataset", "hourly_sales").count("RowsWritten", 1)),
            (DEFAULT_STAGE, MetricSet::new(DEFAULT_STAGE, "export").count("HoursCompacted", 0)),
        ] {
            let doc = set.to_emf(at);
            assert_eq!(doc["Stage"], stage);
            // Every declared dimension set names Stage, and every dimension it names is a string property.
            let sets = doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"].as_array().unwrap().clone();
            assert!(!sets.is_empty());
            for names in sets {
                let names: Vec<&str> = names.as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
                assert!(names.contains(&"Stage"), "{names:?}");
                for name in names {
                    assert!(doc[name].is_string(), "{name} declared but not set: {doc}");
                }
            }
        }
    }

    #[test]
    fn stage_names_cloudwatch_accepts() {
        for ok in ["dev", "prod", "local", "ana-laptop", "Stage 2"] {
            assert_eq!(check_stage(ok), Ok(()), "{ok}");
        }
        for bad in ["", "   ", "d\tev", "é", &"x".repeat(256)] {
            assert!(check_stage(bad).is_err(), "{bad:?}");
        }
    }
}
