//! `splitter`: one record per node a JSONPath query selects (a receipt becomes one record per line), with
//! named parent fields carried into every child. The selected nodes are moved out of the parent, not cloned;
//! only the carried fields are copied. A record whose query selects nothing produces no child (it counts as
//! filtered by this step).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{CompileContext, Transform};
use crate::error::{ConfigError, RecordError};
use crate::jsonpath::Query;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitterConfig {
    /// RFC 9535 JSONPath selecting the children, e.g. `$.lines[*]` or `$.lines[?@.unit_price < 100]`.
    pub path: String,
    /// Parent fields copied into every child (when present in the parent). A child's own field of the same
    /// name wins.
    #[serde(default)]
    pub carry: Vec<String>,
    /// Field receiving the child's index in its parent array (e.g. `line_no`), so children stay identifiable.
    #[serde(default)]
    pub index_field: Option<String>,
}

#[derive(Debug)]
pub struct Splitter {
    query: Query,
    carry: Vec<String>,
    index_field: Option<String>,
}

impl SplitterConfig {
    pub fn compile(&self, ctx: &CompileContext) -> Result<Splitter, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let query = Query::compile(&self.path).map_err(|e| errors.push(ctx.error("path", e))).ok();
        for (i, field) in self.carry.iter().enumerate() {
            if field.is_empty() {
                errors.push(ctx.error(&format!("carry[{i}]"), "field name must not be empty"));
            }
        }
        match query {
            Some(query) if errors.is_empty() => {
                Ok(Splitter { query, carry: self.carry.clone(), index_field: self.index_field.clone() })
            }
            _ => Err(errors),
        }
    }
}

/// Whether one pointer lies inside another (`/lines/1` inside `/lines`), in which case nodes cannot be moved.
fn nested(pointers: &[String]) -> bool {
    pointers.iter().any(|a| pointers.iter().any(|b| a != b && b.starts_with(a.as_str()) && b[a.len()..].starts_with('/')))
        || (1..pointers.len()).any(|i| pointers[..i].contains(&pointers[i]))
}

impl Transform for Splitter {
    fn apply(&self, mut record: Value, out: &mut Vec<Value>) -> Result<(), RecordError> {
        let pointers = self.query.select_pointers(&record);
        if pointers.is_empty() {
            return Ok(());
        }
        let carried: Map<String, Value> = match &record {
            Value::Object(parent) => {
                self.carry.iter().filter_map(|f| parent.get(f).map(|v| (f.clone(), v.clone()))).collect()
            }
            _ => Map::new(),
        };
        let can_move = !nested(&pointers) && !pointers.iter().any(String::is_empty);
        out.reserve(pointers.len());
        for (position, pointer) in pointers.iter().enumerate() {
            let node = if can_move {
                record.pointer_mut(pointer).map(Value::take)
            } else {
                record.pointer(pointer).cloned()
            }
            .expect("a located node exists");
            let index = pointer.rsplit('/').next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(position as u64);
            let mut child = carried.clone();
            if let Some(field) = &self.index_field {
                child.insert(field.clone(), Value::from(index));
            }
            match node {
                Value::Object(fields) => child.extend(fields),
                other => {
                    child.insert("value".to_string(), other);
                }
            }
            out.push(Value::Object(child));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let mut text = format!("one record per node of {}", self.query.as_str());
        if !self.carry.is_empty() {
            text.push_str(&format!(", carrying {}", self.carry.join(", ")));
        }
        if let Some(f) = &self.index_field {
            text.push_str(&format!(", index in {f}"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::EmbeddedResources;
    use serde_json::json;

    fn splitter(path: &str, carry: &[&str], index_field: Option<&str>) -> Splitter {
        let ctx = CompileContext { resources: &EmbeddedResources(&[]), path: "pipeline[1].splitter".into() };
        SplitterConfig {
            path: path.into(),
            carry: carry.iter().map(|s| s.to_string()).collect(),
            index_field: index_field.map(str::to_string),
        }
        .compile(&ctx)
        .unwrap()
    }

    fn receipt() -> Value {
        serde_json::from_str(
            r#"{"receipt_id":"R1","store_id":"S1","lines":[{"sku":"A","unit_price":150},{"sku":"B","unit_price":9.5},{"sku":"C","unit_price":99}]}"#,
        )
        .unwrap()
    }

    fn run(s: &Splitter, v: Value) -> Vec<Value> {
        let mut out = Vec::new();
        s.apply(v, &mut out).unwrap();
        out
    }

    #[test]
    fn one_child_per_line_with_parent_fields() {
        let out = run(&splitter("$.lines[*]", &["receipt_id", "store_id", "loyalty_card"], Some("line_no")), receipt());
        assert_eq!(out.len(), 3);
        assert_eq!(serde_json::to_string(&out[1]).unwrap(), r#"{"receipt_id":"R1","store_id":"S1","line_no":1,"sku":"B","unit_price":9.5}"#);
    }

    #[test]
    fn a_filter_in_the_path_selects_children_and_keeps_their_index() {
        let out = run(&splitter("$.lines[?@.unit_price < 100]", &["receipt_id"], Some("line_no")), receipt());
        let skus: Vec<_> = out.iter().map(|c| (c["sku"].clone(), c["line_no"].clone())).collect();
        assert_eq!(skus, vec![(json!("B"), json!(1)), (json!("C"), json!(2))]);
        assert!(run(&splitter("$.lines[?@.unit_price > 1000]", &[], None), receipt()).is_empty());
    }

    #[test]
    fn nested_and_scalar_selections_are_copied() {
        let out = run(&splitter("$..sku", &["receipt_id"], None), receipt());
        assert_eq!(out[0], json!({"receipt_id": "R1", "value": "A"}));
        let both = run(&splitter("$['lines', 'lines'][0]", &[], None), receipt());
        assert_eq!(both.len(), 2);
        assert_eq!(both[0], both[1]);
    }

    #[test]
    fn nesting_is_detected() {
        assert!(nested(&["/lines".into(), "/lines/0".into()]));
        assert!(nested(&["/a".into(), "/a".into()]));
        assert!(!nested(&["/lines/1".into(), "/lines/10".into()]));
    }
}
