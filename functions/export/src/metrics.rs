//! CloudWatch embedded metric format (EMF): one JSON line per metric set on stdout, namespace `salesflow`,
//! dimension `Function=export` (and `Dataset` for per-dataset metrics). CloudWatch turns the lines into
//! metrics; they stay readable in the logs.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "salesflow";
pub const FUNCTION: &str = "export";

/// A metric set with the same dimensions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricSet {
    pub dimensions: Vec<(&'static str, String)>,
    /// (name, value, unit): unit is `Count`, `Bytes` or `Milliseconds`.
    pub values: Vec<(&'static str, f64, &'static str)>,
}

impl MetricSet {
    pub fn new() -> Self {
        MetricSet { dimensions: vec![("Function", FUNCTION.to_string())], values: Vec::new() }
    }

    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    pub fn count(mut self, name: &'static str, value: u64) -> Self {
        self.values.push((name, value as f64, "Count"));
        self
    }

    pub fn bytes(mut self, name: &'static str, value: u64) -> Self {
        self.values.push((name, value as f64, "Bytes"));
        self
    }

    pub fn millis(mut self, name: &'static str, value: i64) -> Self {
        self.values.push((name, value as f64, "Milliseconds"));
        self
    }

    /// The EMF document.
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
            let number = if value.fract() == 0.0 && value.abs() < 9e15 {
                serde_json::Number::from(*value as i64)
            } else {
                serde_json::Number::from_f64(*value).unwrap_or_else(|| 0.into())
            };
            doc.insert((*name).into(), Value::Number(number));
        }
        Value::Object(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_documents_declare_their_metrics() {
        let at: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let doc = MetricSet::new().dimension("Dataset", "sales_lines").count("RowsWritten", 17).to_emf(at);
        assert_eq!(doc["_aws"]["Timestamp"], json!(at.as_millisecond()));
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "salesflow");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function", "Dataset"]]));
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"], json!([{"Name": "RowsWritten", "Unit": "Count"}]));
        assert_eq!((doc["Function"].as_str(), doc["Dataset"].as_str()), (Some("export"), Some("sales_lines")));
        assert_eq!(doc["RowsWritten"].to_string(), "17");
    }
}
