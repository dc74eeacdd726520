//! Borrowed records: the fast path of [`Pipeline::write_ndjson`](crate::Pipeline::write_ndjson), which is what
//! `salesflow transform` runs. Parsing into a `serde_json::Value` tree (every key an owned `String` in an
//! `IndexMap`) and serializing it again cost most of a transform's time; a [`BorrowedRecord`] instead holds the
//! record's top-level fields as slices of the input (`&RawValue`), and steps that have a borrowed form (see
//! [`BorrowedTransform`]) run on those slices. Output is written by copying them.
//!
//! The bytes written are exactly those of the `Value` path (compact JSON, serde_json's escaping, duplicate keys
//! resolved the way `Value` resolves them): a slice is copied only when serde_json would write that value
//! the same way, otherwise it goes through `Value`. Anything the borrowed form cannot express (a payload that is
//! not one JSON object, nesting deeper than serde_json accepts) returns `None` and the caller uses the `Value`
//! path, so both paths agree on every input; tests check it on the golden pipelines and on generated records.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::RecordError;

/// A JSON object's fields, in order, each value a slice of the input or a value made by a step.
#[derive(Debug, Clone, Default)]
pub struct BorrowedRecord<'a> {
    fields: Vec<(Cow<'a, str>, Cow<'a, RawValue>)>,
}

/// A step that can run on borrowed records with the same outcome as its `Value` form.
pub trait BorrowedTransform: Send + Sync {
    /// Pushes zero, one or many records to `out`, or rejects the record. `None` when this record needs the
    /// `Value` form after all (the caller then runs the whole input on the `Value` path).
    fn apply_borrowed<'a>(
        &self,
        record: BorrowedRecord<'a>,
        out: &mut Vec<BorrowedRecord<'a>>,
    ) -> Option<Result<(), RecordError>>;

    /// The step as the first of a pipeline, on the payload's text; a step may read the text in a way that
    /// saves a pass (see [`BorrowedRecord::parse_split`]). `None` as for `apply_borrowed`, and when the text is
    /// not one JSON object.
    fn apply_to_text<'a>(&self, text: &'a str, out: &mut Vec<BorrowedRecord<'a>>) -> Option<Result<(), RecordError>> {
        self.apply_borrowed(BorrowedRecord::parse(text)?, out)
    }
}

impl<'a> BorrowedRecord<'a> {
    /// Parses one JSON object; `None` when the text is anything else (or not JSON).
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut de = serde_json::Deserializer::from_str(text);
        let record = BorrowedRecord::deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(record)
    }

    /// Parses one JSON object whose field `split` is an array of objects, reading that array's objects in the
    /// same pass: the record (without `split`) and the objects, or no objects when the field is missing.
    /// `None` when the text is anything else; the caller then parses it the general way.
    pub fn parse_split(text: &'a str, split: &str) -> Option<(Self, Option<Vec<BorrowedRecord<'a>>>)> {
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = SplitSeed { split: Some(split) }.deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(parsed)
    }

    /// The fields of a value that is a JSON object; `None` for any other value.
    pub fn from_raw(raw: &'a RawValue) -> Option<Self> {
        if raw.get().starts_with('{') { Self::parse(raw.get()) } else { None }
    }

    /// A record of one field.
    pub fn single(name: &'a str, value: Cow<'a, RawValue>) -> Self {
        BorrowedRecord { fields: vec![(Cow::Borrowed(name), value)] }
    }

    /// The value of a field (the last one written, as `Value` keeps it).
    pub fn get(&self, name: &str) -> Option<&Cow<'a, RawValue>> {
        self.entry(name).map(|(_, value)| value)
    }

    /// A field's name (as the record spells it, borrowed when it can be) and value.
    pub fn entry(&self, name: &str) -> Option<&(Cow<'a, str>, Cow<'a, RawValue>)> {
        self.position(name).map(|i| &self.fields[i])
    }

    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|(k, _)| k == name)
    }

    /// Inserts a field at `index` (the field must not be present yet).
    pub fn insert_at(&mut self, index: usize, name: Cow<'a, str>, value: Cow<'a, RawValue>) {
        debug_assert!(!self.contains(&name));
        self.fields.insert(index, (name, value));
    }

    /// Removes a field, if present.
    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|(k, _)| k != name);
    }

    /// Removes a field and returns its value, as `Map::shift_remove` does.
    pub fn take(&mut self, name: &str) -> Option<Cow<'a, RawValue>> {
        self.position(name).map(|i| self.fields.remove(i).1)
    }

    /// Sets a field: its value replaced in place when present, else added last (`Map::insert`'s rule).
    pub fn set(&mut self, name: Cow<'a, str>, value: Cow<'a, RawValue>) {
        self.push(name, value);
    }

    /// Adds a field, or replaces its value in place when present: `Value`'s rule for a repeated key.
    fn push(&mut self, name: Cow<'a, str>, value: Cow<'a, RawValue>) {
        match self.position(&name) {
            Some(i) => self.fields[i].1 = value,
            None => self.fields.push((name, value)),
        }
    }

    /// The record as a `Value` (for steps without a borrowed form); `None` when a nested value is deeper
    /// than serde_json accepts.
    pub fn to_value(&self) -> Option<Value> {
        let mut map = Map::with_capacity(self.fields.len());
        for (name, value) in &self.fields {
            map.insert(name.to_string(), serde_json::from_str(value.get()).ok()?);
        }
        Some(Value::Object(map))
    }

    /// Writes the record as compact JSON, byte for byte what `serde_json::to_writer` writes for
    /// [`to_value`](Self::to_value). `None` as for `to_value`.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Option<()> {
        out.push(b'{');
        for (i, (name, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match name {
                // Borrowed names had no escapes in the input, and a JSON string cannot hold a bare `"` or
                // control character: serde_json writes them as they are.
                Cow::Borrowed(name) => {
                    out.push(b'"');
                    out.extend_from_slice(name.as_bytes());
                    out.push(b'"');
                }
                Cow::Owned(name) => serde_json::to_writer(&mut *out, name).expect("writing to memory"),
            }
            out.push(b':');
            let text = value.get();
            if written_as_is(text) {
                out.extend_from_slice(text.as_bytes());
            } else {
                let value: Value = serde_json::from_str(text).ok()?;
                serde_json::to_writer(&mut *out, &value).expect("writing to memory");
            }
        }
        out.push(b'}');
        Some(())
    }
}

/// Whether serde_json writes this (valid, whitespace-trimmed) JSON value exactly as it reads: literals, numbers
/// without exponent (`1e5` is written `1e+5`) and strings without escapes. Objects and arrays always go
/// through `Value`, which settles their whitespace, escapes and repeated keys.
fn written_as_is(text: &str) -> bool {
    match text.as_bytes().first() {
        Some(b'"') => !text.as_bytes().contains(&b'\\'),
        Some(b'-' | b'0'..=b'9') => !text.bytes().any(|b| b == b'e' || b == b'E'),
        Some(b't' | b'f' | b'n') => true,
        _ => false,
    }
}

/// A key borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for BorrowedRecord<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(SplitSeed { split: None }.deserialize(deserializer)?.0)
    }
}

/// A node `[*]` selected: an object, already split into its fields, or any other value.
pub enum Node<'a> {
    Object(BorrowedRecord<'a>),
    Other(&'a RawValue),
}

impl<'a> Node<'a> {
    fn of(raw: &'a RawValue) -> Option<Self> {
        if raw.get().starts_with('{') {
            BorrowedRecord::parse(raw.get()).map(Node::Object)
        } else {
            Some(Node::Other(raw))
        }
    }
}

/// Reads a JSON object into a [`BorrowedRecord`], and the field `split`, when given, as an array of objects.
struct SplitSeed<'s> {
    split: Option<&'s str>,
}

impl<'de> DeserializeSeed<'de> for SplitSeed<'_> {
    type Value = (BorrowedRecord<'de>, Option<Vec<BorrowedRecord<'de>>>);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SplitSeed<'_> {
    type Value = (BorrowedRecord<'de>, Option<Vec<BorrowedRecord<'de>>>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.split {
            Some(split) => write!(f, "a JSON object whose `{split}` is an array of objects"),
            None => f.write_str("a JSON object"),
        }
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut record = BorrowedRecord { fields: Vec::with_capacity(map.size_hint().unwrap_or(8)) };
        let mut children = None;
        while let Some(Key(name)) = map.next_key()? {
            if self.split == Some(name.as_ref()) {
                children = Some(map.next_value()?); // a repeated field: the last one wins, as in `Value`
            } else {
                let value: &'de RawValue = map.next_value()?;
                record.push(name, Cow::Borrowed(value));
            }
        }
        Ok((record, children))
    }
}

/// What `[*]` selects in a value, each with the index a splitter child gets: the elements of an array (their
/// positions), or the member values of an object (the member name when it is a number, as in the node's
/// JSON pointer, else the position); `None` for any other value.
pub fn indexed_children(raw: &RawValue) -> Option<Vec<(u64, Node<'_>)>> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'[') => {
            // An array of objects (the usual case) is read in one pass; anything else element by element.
            if let Ok(objects) = serde_json::from_str::<Vec<BorrowedRecord>>(text) {
                return Some(objects.into_iter().enumerate().map(|(i, r)| (i as u64, Node::Object(r))).collect());
            }
            let items: Vec<&RawValue> = serde_json::from_str(text).ok()?;
            items.into_iter().enumerate().map(|(i, v)| Some((i as u64, Node::of(v)?))).collect()
        }
        Some(b'{') => BorrowedRecord::parse(text)?
            .fields
            .into_iter()
            .enumerate()
            .map(|(i, (name, value))| match value {
                Cow::Borrowed(value) => Some((member_index(&name, i), Node::of(value)?)),
                Cow::Owned(_) => None,
            })
            .collect(),
        _ => None,
    }
}

/// The index of an object member's child: its name when that is a number (the last segment of its JSON
/// pointer), else its position.
pub fn member_index(name: &str, position: usize) -> u64 {
    name.parse().unwrap_or(position as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> (String, String) {
        let mut fast = Vec::new();
        BorrowedRecord::parse(text).expect("an object").write_json(&mut fast).expect("writable");
        let value: Value = serde_json::from_str(text).unwrap();
        (String::from_utf8(fast).unwrap(), serde_json::to_string(&value).unwrap())
    }

    #[test]
    fn writes_what_value_writes() {
        for text in [
            r#"{"a":1,"b":"x y","c":true,"d":null,"e":-0.50}"#,
            r#" { "a" : 1e5 , "b" : "\u00e9\/\n" , "c" : [ 1 , {"x" : 2 } ] , "d" : { } } "#,
            r#"{"a":1,"b":2,"a":3}"#,
            r#"{"k\"ey":"v","\u0041":"é","n":123456789012345678901234567890.000}"#,
            r#"{}"#,
        ] {
            let (fast, value) = round_trip(text);
            assert_eq!(fast, value, "{text}");
        }
    }

    #[test]
    fn repeated_keys_keep_the_first_position_and_the_last_value() {
        let r = BorrowedRecord::parse(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(r.get("a").unwrap().get(), "3");
        assert_eq!(r.to_value().unwrap(), serde_json::json!({"a": 3, "b": 2}));
    }

    #[test]
    fn anything_but_one_object_is_left_to_the_value_path() {
        for text in ["[1]", "1", "\"x\"", "{", "{} {}", "{\"a\":1} x", ""] {
            assert!(BorrowedRecord::parse(text).is_none(), "{text}");
        }
        let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        let record = BorrowedRecord::parse(&deep).expect("RawValue does not limit depth");
        assert!(record.to_value().is_none() && record.write_json(&mut Vec::new()).is_none());
    }

    #[test]
    fn parse_split_reads_the_array_of_objects_in_one_pass() {
        let (parent, lines) =
            BorrowedRecord::parse_split(r#"{"id":1,"lines":[{"a":1},{"b":"x"}],"z":2}"#, "lines").unwrap();
        assert_eq!(parent.to_value().unwrap(), serde_json::json!({"id": 1, "z": 2}));
        let lines: Vec<Value> = lines.unwrap().iter().map(|r| r.to_value().unwrap()).collect();
        assert_eq!(lines, [serde_json::json!({"a": 1}), serde_json::json!({"b": "x"})]);
        assert!(BorrowedRecord::parse_split(r#"{"id":1}"#, "lines").unwrap().1.is_none());
        for other in [r#"{"lines":[1]}"#, r#"{"lines":{}}"#, r#"{"lines":[]} x"#, "[]"] {
            assert!(BorrowedRecord::parse_split(other, "lines").is_none(), "{other}");
        }
    }

    #[test]
    fn children_of_arrays_and_objects() {
        let raw = |t: &str| RawValue::from_string(t.to_string()).unwrap();
        let texts = |v: Vec<(u64, Node)>| {
            v.iter()
                .map(|(i, node)| match node {
                    Node::Object(r) => (*i, r.to_value().unwrap().to_string()),
                    Node::Other(raw) => (*i, raw.get().to_string()),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            texts(indexed_children(&raw(r#"[1, {"a":2}]"#)).unwrap()),
            [(0, "1".to_string()), (1, r#"{"a":2}"#.to_string())]
        );
        assert_eq!(
            texts(indexed_children(&raw(r#"{"x":1,"7":"z"}"#)).unwrap()),
            [(0, "1".to_string()), (7, r#""z""#.to_string())]
        );
        assert!(indexed_children(&raw("3")).is_none());
        let mixed = texts(indexed_children(&raw(r#"[{"a":1}, [2], "x"]"#)).unwrap());
        assert_eq!(mixed, [(0, r#"{"a":1}"#.to_string()), (1, "[2]".to_string()), (2, r#""x""#.to_string())]);
    }
}
