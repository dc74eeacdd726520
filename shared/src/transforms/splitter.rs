//! `splitter`: one record per node a JSONPath query selects (a receipt becomes one record per line), with
//! named parent fields carried into every child. The selected nodes are moved out of the parent, not cloned;
//! only the carried fields are copied. A record whose query selects nothing produces no child (it counts as
//! filtered by this step).
//!
//! Identity comes from the parent: the carried fields and the index field are the parent's, never the child's.
//! A child's own field of a carried name is replaced by the parent's value (or removed when the parent has
//! none), and a child's own index field is replaced by its index. A receipt line saying `"receipt_id": "V1"`
//! inside receipt X1, or `"line_no": 0` at index 2, cannot make it another receipt's line or a duplicate.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{CompileContext, Transform};
use crate::borrowed::{BorrowedRecord, BorrowedTransform, Node, indexed_children, member_index};
use crate::error::{ConfigError, RecordError};
use crate::jsonpath::Query;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitterConfig {
    /// RFC 9535 JSONPath selecting the children, e.g. `$.lines[*]` or `$.lines[?@.unit_price < 100]`.
    pub path: String,
    /// Parent fields copied into every child. They replace a child's own field of the same name (removed when
    /// the parent has none): a child cannot claim another parent's identity.
    #[serde(default)]
    pub carry: Vec<String>,
    /// Field receiving the child's index in its parent array (e.g. `line_no`), so children stay identifiable;
    /// it replaces a child's own field of that name.
    #[serde(default)]
    pub index_field: Option<String>,
}

#[derive(Debug)]
pub struct Splitter {
    query: Query,
    /// For the common `$.a.b[*]` shape: the field names leading to the array, whose elements are moved out
    /// directly without evaluating the query.
    array_path: Option<Vec<String>>,
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
            Some(query) if errors.is_empty() => Ok(Splitter {
                array_path: whole_array_path(&self.path),
                query,
                carry: self.carry.clone(),
                index_field: self.index_field.clone(),
            }),
            _ => Err(errors),
        }
    }
}

/// `$.lines[*]` (or `$.a.b.*`) → `["lines"]`: a query that selects every element of one array reached by
/// plain member names. Anything else is evaluated as a general query.
fn whole_array_path(query: &str) -> Option<Vec<String>> {
    let body = query.strip_prefix('$')?;
    let body = body.strip_suffix("[*]").or_else(|| body.strip_suffix(".*"))?;
    let names: Vec<String> = body.strip_prefix('.')?.split('.').map(str::to_string).collect();
    let plain = |n: &String| {
        n.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    names.iter().all(plain).then_some(names)
}

/// Whether one pointer lies inside another (`/lines/1` inside `/lines`), in which case nodes cannot be moved.
fn nested(pointers: &[String]) -> bool {
    pointers
        .iter()
        .any(|a| pointers.iter().any(|b| a != b && b.starts_with(a.as_str()) && b[a.len()..].starts_with('/')))
        || (1..pointers.len()).any(|i| pointers[..i].contains(&pointers[i]))
}

impl Splitter {
    /// Makes one child: the node's own fields, with the carried parent fields and the index in front (they
    /// replace the node's own fields of those names). A node that is not an object goes under `value`.
    fn child(&self, node: Value, index: u64, carried: &[(&String, Value)]) -> Value {
        let mut fields = match node {
            Value::Object(fields) => fields,
            other => {
                let mut fields = Map::new();
                fields.insert("value".to_string(), other);
                fields
            }
        };
        for name in self.carry.iter().chain(&self.index_field) {
            fields.shift_remove(name);
        }
        let mut at = 0;
        for (name, value) in carried {
            if !fields.contains_key(name.as_str()) {
                fields.shift_insert(at, (*name).clone(), value.clone());
                at += 1;
            }
        }
        if let Some(field) = &self.index_field
            && !fields.contains_key(field)
        {
            fields.shift_insert(at, field.clone(), Value::from(index));
        }
        Value::Object(fields)
    }

    /// What `[*]` selects at `path` (an array's elements, an object's member values), taken out of the
    /// record, each with its index.
    fn take_children(record: &mut Value, path: &[String]) -> Option<Vec<(u64, Value)>> {
        let mut node = record;
        for name in path {
            node = node.get_mut(name)?;
        }
        match node.take() {
            Value::Array(items) => Some(items.into_iter().enumerate().map(|(i, v)| (i as u64, v)).collect()),
            Value::Object(members) => {
                Some(members.into_iter().enumerate().map(|(i, (name, v))| (member_index(&name, i), v)).collect())
            }
            other => {
                *node = other;
                None
            }
        }
    }

    /// The borrowed form of the split: one child per node, with the parent's carried fields.
    fn push_borrowed_children<'a>(
        &self,
        parent: &BorrowedRecord<'a>,
        children: impl IntoIterator<Item = (u64, Node<'a>), IntoIter: ExactSizeIterator>,
        out: &mut Vec<BorrowedRecord<'a>>,
    ) {
        let carried: Vec<(Cow<'a, str>, Cow<'a, RawValue>)> =
            self.carry.iter().filter_map(|f| parent.entry(f).cloned()).collect();
        let children = children.into_iter();
        out.reserve(children.len());
        for (index, node) in children {
            out.push(self.borrowed_child(node, index, &carried));
        }
    }

    /// The borrowed form of [`child`](Self::child).
    fn borrowed_child<'a>(
        &self,
        node: Node<'a>,
        index: u64,
        carried: &[(Cow<'a, str>, Cow<'a, RawValue>)],
    ) -> BorrowedRecord<'a> {
        let mut child = match node {
            Node::Object(fields) => fields,
            Node::Other(value) => BorrowedRecord::single("value", Cow::Borrowed(value)),
        };
        for name in self.carry.iter().chain(&self.index_field) {
            child.remove(name);
        }
        let mut at = 0;
        for (name, value) in carried {
            if !child.contains(name) {
                child.insert_at(at, name.clone(), value.clone());
                at += 1;
            }
        }
        if let Some(field) = &self.index_field
            && !child.contains(field)
        {
            let index = RawValue::from_string(index.to_string()).expect("an integer is JSON");
            child.insert_at(at, Cow::Owned(field.clone()), Cow::Owned(index));
        }
        child
    }
}

impl BorrowedTransform for Splitter {
    fn apply_borrowed<'a>(
        &self,
        record: BorrowedRecord<'a>,
        out: &mut Vec<BorrowedRecord<'a>>,
    ) -> Option<Result<(), RecordError>> {
        let path = self.array_path.as_ref()?;
        // Walk to the selected value through the input's own slices (a value made by an earlier step is not
        // walked into: that record takes the `Value` path).
        let borrowed = |value: Option<&Cow<'a, RawValue>>| match value {
            None => Some(None),
            Some(Cow::Borrowed(v)) => Some(Some(*v)),
            Some(Cow::Owned(_)) => None,
        };
        let mut node = borrowed(record.get(&path[0]))?;
        for name in &path[1..] {
            let Some(parent) = node.and_then(BorrowedRecord::from_raw) else {
                node = None;
                break;
            };
            node = borrowed(parent.get(name))?;
        }
        if let Some(children) = node.and_then(indexed_children) {
            self.push_borrowed_children(&record, children, out);
        }
        Some(Ok(()))
    }

    /// `$.lines[*]` (not carried): the receipt and its lines are read in one pass.
    fn apply_to_text<'a>(&self, text: &'a str, out: &mut Vec<BorrowedRecord<'a>>) -> Option<Result<(), RecordError>> {
        if let Some([field]) = self.array_path.as_deref()
            && !self.carry.contains(field)
            && let Some((parent, children)) = BorrowedRecord::parse_split(text, field)
        {
            let children = children.unwrap_or_default().into_iter().enumerate();
            self.push_borrowed_children(&parent, children.map(|(i, child)| (i as u64, Node::Object(child))), out);
            return Some(Ok(()));
        }
        self.apply_borrowed(BorrowedRecord::parse(text)?, out)
    }
}

impl Transform for Splitter {
    fn apply(&self, mut record: Value, out: &mut Vec<Value>) -> Result<(), RecordError> {
        let carried: Vec<(&String, Value)> = match &record {
            Value::Object(parent) => self.carry.iter().filter_map(|f| parent.get(f).map(|v| (f, v.clone()))).collect(),
            _ => Vec::new(),
        };
        if let Some(path) = &self.array_path {
            let children = Self::take_children(&mut record, path).unwrap_or_default();
            out.reserve(children.len());
            for (index, node) in children {
                out.push(self.child(node, index, &carried));
            }
            return Ok(());
        }
        let pointers = self.query.select_pointers(&record);
        let can_move = !nested(&pointers) && !pointers.iter().any(String::is_empty);
        out.reserve(pointers.len());
        for (position, pointer) in pointers.iter().enumerate() {
            let node =
                if can_move { record.pointer_mut(pointer).map(Value::take) } else { record.pointer(pointer).cloned() }
                    .expect("a located node exists");
            let index = pointer.rsplit('/').next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(position as u64);
            out.push(self.child(node, index, &carried));
        }
        Ok(())
    }

    fn borrowed(&self) -> Option<&dyn BorrowedTransform> {
        self.array_path.is_some().then_some(self as _)
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
        let ctx = CompileContext {
            resources: &EmbeddedResources(&[]),
            time_zone: &Default::default(),
            path: "pipeline[1].splitter".into(),
        };
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
        assert_eq!(
            serde_json::to_string(&out[1]).unwrap(),
            r#"{"receipt_id":"R1","store_id":"S1","line_no":1,"sku":"B","unit_price":9.5}"#
        );
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
    fn whole_array_queries_take_the_fast_path() {
        assert_eq!(whole_array_path("$.lines[*]"), Some(vec!["lines".to_string()]));
        assert_eq!(whole_array_path("$.a.b.*"), Some(vec!["a".to_string(), "b".to_string()]));
        for general in ["$.lines[?@.x]", "$..lines[*]", "$['lines'][*]", "$.lines[0]", "$[*]", "$.li-nes[*]"] {
            assert_eq!(whole_array_path(general), None, "{general}");
        }
        // Both paths give the same children.
        let fast = run(&splitter("$.lines[*]", &["receipt_id"], Some("line_no")), receipt());
        let general = run(&splitter("$['lines'][*]", &["receipt_id"], Some("line_no")), receipt());
        assert_eq!(fast, general);
        assert!(run(&splitter("$.nothing[*]", &[], None), receipt()).is_empty());
    }

    /// Issue 11: carried fields and the index are the parent's, on both paths (Value and borrowed).
    #[test]
    fn issue_11_carried_fields_and_the_index_replace_a_childs_own() {
        let s = splitter("$.lines[*]", &["receipt_id", "loyalty_card"], Some("line_no"));
        let text = r#"{"receipt_id":"X1","lines":[{"sku":"A","receipt_id":"V1","line_no":0,"loyalty_card":"LC"},{"line_no":0,"sku":"B"}]}"#;
        let expected = [r#"{"receipt_id":"X1","line_no":0,"sku":"A"}"#, r#"{"receipt_id":"X1","line_no":1,"sku":"B"}"#];
        let out = run(&s, serde_json::from_str(text).unwrap());
        assert_eq!(out.iter().map(|v| v.to_string()).collect::<Vec<_>>(), expected);
        let mut borrowed = Vec::new();
        s.apply_to_text(text, &mut borrowed).unwrap().unwrap();
        let written: Vec<String> = borrowed
            .iter()
            .map(|r| {
                let mut out = Vec::new();
                r.write_json(&mut out).unwrap();
                String::from_utf8(out).unwrap()
            })
            .collect();
        assert_eq!(written, expected);
    }

    #[test]
    fn nesting_is_detected() {
        assert!(nested(&["/lines".into(), "/lines/0".into()]));
        assert!(nested(&["/a".into(), "/a".into()]));
        assert!(!nested(&["/lines/1".into(), "/lines/10".into()]));
    }
}
