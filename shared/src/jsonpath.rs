//! RFC 9535 JSONPath queries, compiled once at pipeline load. The engine is `serde_json_path`: on the official
//! compliance suite (703 cases) it passes all of them, where `jsonpath-rust` 1.0.12 fails 9 (see the README).

use serde_json::Value;
use serde_json_path::{JsonPath, NodeList};

/// A compiled JSONPath query, keeping its text for plans and messages.
#[derive(Debug, Clone)]
pub struct Query {
    text: String,
    path: JsonPath,
}

impl Query {
    /// Compiles a query; the error names the 1-based position: `invalid JSONPath at position 7: ...`.
    pub fn compile(text: &str) -> Result<Query, String> {
        JsonPath::parse(text)
            .map(|path| Query { text: text.to_string(), path })
            .map_err(|e| format!("invalid JSONPath at position {}: {}", e.position(), e.message()))
    }

    /// The nodes the query selects in `value`, in document order as RFC 9535 defines it.
    pub fn select<'a>(&self, value: &'a Value) -> NodeList<'a> {
        self.path.query(value)
    }

    /// JSON pointers (RFC 6901) to the selected nodes.
    pub fn select_pointers(&self, value: &Value) -> Vec<String> {
        self.path.query_located(value).locations().map(|l| l.to_json_pointer()).collect()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_lines_under_a_price() {
        let q = Query::compile("$.lines[?(@.unit_price < 100)]").unwrap();
        let doc: Value =
            serde_json::from_str(r#"{"lines":[{"unit_price":99.99},{"unit_price":100},{"unit_price":5}]}"#).unwrap();
        assert_eq!(q.select(&doc).len(), 2);
        assert_eq!(q.select_pointers(&doc), vec!["/lines/0", "/lines/2"]);
    }

    #[test]
    fn errors_name_the_position() {
        let err = Query::compile("$.lines[?@.x <]").unwrap_err();
        assert!(err.starts_with("invalid JSONPath at position "), "{err}");
        assert!(Query::compile("$.a").is_ok());
        let _ = json!(null);
    }
}
