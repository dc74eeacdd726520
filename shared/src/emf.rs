//! CloudWatch Embedded Metric Format (EMF): a metric set becomes one JSON log line that CloudWatch turns into
//! metrics (namespace `salesflow`, dimension `Function`, plus any other dimension), readable in the logs too.
//! Both functions build their metric lines here; where the line goes is the caller's [`MetricsOutput`].

use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every salesflow metric.
pub const NAMESPACE: &str = "salesflow";

/// Metrics sharing the same dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSet {
    dimensions: Vec<(&'static str, String)>,
    /// (name, value, unit): unit is `Count`, `Bytes` or `Milliseconds`.
    values: Vec<(&'static str, i64, &'static str)>,
}

impl MetricSet {
    /// A set for one function (`ingest`, `export`): its `Function` dimension.
    pub fn for_function(function: &str) -> Self {
        MetricSet { dimensions: vec![("Function", function.to_string())], values: Vec::new() }
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

    /// The EMF document, stamped with `at`.
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
        let doc = MetricSet::for_function("export")
            .dimension("Dataset", "sales_lines")
            .count("RowsWritten", 17)
            .millis("ExportLagMs", -3)
            .to_emf(at);
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], json!(at.as_millisecond()));
        assert_eq!(declared["Namespace"], "salesflow");
        assert_eq!(declared["Dimensions"], json!([["Function", "Dataset"]]));
        assert_eq!(
            declared["Metrics"],
            json!([{"Name": "RowsWritten", "Unit": "Count"}, {"Name": "ExportLagMs", "Unit": "Milliseconds"}])
        );
        assert_eq!((doc["Function"].as_str(), doc["Dataset"].as_str()), (Some("export"), Some("sales_lines")));
        assert_eq!(doc["RowsWritten"].to_string(), "17");
        assert_eq!(doc["ExportLagMs"].to_string(), "-3");
    }
}
