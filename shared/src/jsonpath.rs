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
    /// Compiles a query; the error names the 1-based position: `invalid JSONPath at position 7: ...`. A query
    /// nesting brackets or parentheses deeper than [`MAX_NESTING`] is refused before the (recursive) parser sees it.
    pub fn compile(text: &str) -> Result<Query, String> {
        check_nesting(text)?;
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

/// How deep `[`, `(` may nest in a query. `serde_json_path` parses (and evaluates) recursively with no limit of
/// its own, so a query nested a few thousand deep overflowed the stack; real queries nest a handful of levels.
pub const MAX_NESTING: usize = 64;

/// Refuses a query nesting `[` / `(` deeper than [`MAX_NESTING`], naming the 1-based position of the bracket
/// that goes too deep. Brackets inside string literals (`'...'`, `"..."`, with `\` escapes) do not count.
fn check_nesting(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in text.chars().enumerate() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' | '(' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(format!(
                            "invalid JSONPath at position {}: nested deeper than {MAX_NESTING} brackets",
                            i + 1
                        ));
                    }
                }
                ']' | ')' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    Ok(())
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

    /// Issue 12: a query nested 5,000 deep overflowed the stack (exit 134); now refused, naming the position.
    #[test]
    fn a_query_nested_5000_deep_is_refused_not_a_stack_overflow() {
        let deep = format!("$.a{}{}", "[?(@.a".repeat(5_000), ")]".repeat(5_000));
        let err = Query::compile(&deep).unwrap_err();
        assert_eq!(err, "invalid JSONPath at position 196: nested deeper than 64 brackets");
        let parens = format!("$[?{}@.a{}]", "(".repeat(5_000), ")".repeat(5_000));
        assert!(Query::compile(&parens).unwrap_err().contains("nested deeper than 64"));
        // At the limit it still compiles, and brackets inside strings do not count.
        let at_limit = format!("$[?{}@.a{}]", "(".repeat(63), ")".repeat(63));
        assert!(Query::compile(&at_limit).is_ok());
        let quoted = format!("$[?@.a == '{}']", "[(".repeat(200));
        assert!(Query::compile(&quoted).is_ok(), "{:?}", Query::compile(&quoted).err());
    }
}
