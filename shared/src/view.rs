//! A JSON value as the field readers see it, whether it sits in a `serde_json::Value` tree or is a slice of the
//! input ([`BorrowedRecord`]): the readers of receipts and landed lines ([`crate::receipt::FieldReader`]), the
//! expressions of `set` and the decimal parser take a [`View`], so the `Value` path and the borrowed path apply
//! one set of rules and say the same thing when a value is wrong.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

use crate::borrowed::BorrowedRecord;

/// One JSON value, as far as a field reader looks into it: scalars with their text, containers by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum View<'v> {
    Null,
    Bool(bool),
    /// The number's text as a `Value` keeps it (serde_json's `arbitrary_precision`: `1e5` is `1e+5`).
    Number(Cow<'v, str>),
    /// The string, unescaped.
    String(Cow<'v, str>),
    Array,
    Object,
}

impl<'v> View<'v> {
    /// The view of a value of a tree.
    pub fn of(value: &'v Value) -> View<'v> {
        match value {
            Value::Null => View::Null,
            Value::Bool(b) => View::Bool(*b),
            Value::Number(n) => View::Number(Cow::Borrowed(n.as_str())),
            Value::String(s) => View::String(Cow::Borrowed(s)),
            Value::Array(_) => View::Array,
            Value::Object(_) => View::Object,
        }
    }

    /// The view of a slice of valid JSON (what a `RawValue` holds): borrowed unless the text has to be
    /// rewritten the way a `Value` would hold it (an escaped string, a number with an exponent).
    pub fn of_raw(raw: &'v RawValue) -> View<'v> {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'n') => View::Null,
            Some(b't') => View::Bool(true),
            Some(b'f') => View::Bool(false),
            Some(b'"') if !text.contains('\\') => View::String(Cow::Borrowed(&text[1..text.len() - 1])),
            // A RawValue is valid JSON, so these parses succeed; the fallbacks only keep the types total.
            Some(b'"') => View::String(Cow::Owned(serde_json::from_str(text).unwrap_or_default())),
            Some(b'[') => View::Array,
            Some(b'{') => View::Object,
            _ if text.contains(['e', 'E']) => View::Number(Cow::Owned(
                serde_json::from_str::<Number>(text).map_or_else(|_| text.to_string(), |n| n.as_str().to_string()),
            )),
            _ => View::Number(Cow::Borrowed(text)),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, View::Null)
    }

    /// A short description for error messages: `"abc"`, `null`, `12.5`, `an object`.
    pub fn describe(&self) -> String {
        match self {
            View::Null => "null".into(),
            View::Bool(b) => b.to_string(),
            View::Number(n) => n.to_string(),
            View::String(s) => {
                let mut shown: String = s.chars().take(40).collect();
                if shown.len() < s.len() {
                    shown.push('…');
                }
                format!("{shown:?}")
            }
            View::Array => "an array".into(),
            View::Object => "an object".into(),
        }
    }
}

/// A JSON object whose fields a reader can look at.
pub trait ObjectView {
    /// The field's value; `None` when the object has no such field.
    fn view(&self, name: &str) -> Option<View<'_>>;
}

impl ObjectView for Map<String, Value> {
    fn view(&self, name: &str) -> Option<View<'_>> {
        self.get(name).map(View::of)
    }
}

impl ObjectView for BorrowedRecord<'_> {
    fn view(&self, name: &str) -> Option<View<'_>> {
        self.get(name).map(|raw| View::of_raw(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_and_a_value_look_the_same() {
        for text in [
            "null",
            "true",
            "false",
            "0",
            "-1.50",
            "1e5",
            "2E-3",
            "12345678901234567890123456789012",
            "\"abc\"",
            "\"a\\u00e9\\n\\\"\"",
            "[1, 2]",
            "{\"a\": 1}",
            "\"\"",
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
            assert_eq!(View::of_raw(&raw), View::of(&value), "{text}");
            assert_eq!(View::of_raw(&raw).describe(), crate::decimal::describe(&value), "{text}");
        }
    }
}
