//! `validate`: check records against the receipt model ([`crate::receipt`]); an invalid receipt is rejected
//! with every field error named. With `normalize` (the default), numeric-string money fields (`"19.99"`) are
//! rewritten as JSON numbers with the same digits, so later filters compare prices as numbers, and text fields
//! that arrived as integers (`"sku": 123`) as the text validation read them as (`"123"`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{CompileContext, Transform};
use crate::borrowed::{BorrowedRecord, BorrowedTransform};
use crate::decimal::decimal_from_view;
use crate::error::{ConfigError, RecordError};
use crate::receipt::{
    FieldReader, LINE_DECIMAL_FIELDS, LINE_TEXT_FIELDS, RECEIPT_TEXT_FIELDS, Receipt, lines_are_an_array, no_lines,
    normalize_fields, not_a_line, read_header, read_line, text_number,
};
use crate::view::{ObjectView, View};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfig {
    /// Rewrite numeric-string money fields as numbers (default true).
    #[serde(default = "yes")]
    pub normalize: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug)]
pub struct Validate {
    normalize: bool,
}

impl ValidateConfig {
    pub fn compile(&self, _ctx: &CompileContext) -> Result<Validate, Vec<ConfigError>> {
        Ok(Validate { normalize: self.normalize })
    }
}

impl Transform for Validate {
    fn apply(&self, mut record: Value, out: &mut Vec<Value>) -> Result<(), RecordError> {
        Receipt::from_value(&record)?;
        if self.normalize {
            normalize_fields(&mut record);
        }
        out.push(record);
        Ok(())
    }

    fn borrowed(&self) -> Option<&dyn BorrowedTransform> {
        Some(self)
    }

    fn describe(&self) -> String {
        let normalize = if self.normalize { ", money fields normalised to numbers" } else { "" };
        format!("reject records that are not valid receipts{normalize}")
    }
}

impl BorrowedTransform for Validate {
    /// The receipt's rules on slices ([`read_header`], [`read_line`]: the readers of the `Value` form), and
    /// the same normalization; `None` (the `Value` path) when `lines` was made by an earlier step.
    fn apply_borrowed<'a>(
        &self,
        mut record: BorrowedRecord<'a>,
        out: &mut Vec<BorrowedRecord<'a>>,
    ) -> Option<Result<(), RecordError>> {
        let mut r = FieldReader::new();
        read_header(&record, &mut r);
        let mut lines = Vec::new();
        if lines_are_an_array(record.view("lines"), &mut r) {
            let Some(Cow::Borrowed(text)) = record.get("lines").cloned() else { return None };
            let items: Vec<&'a RawValue> = serde_json::from_str(text.get()).ok()?;
            if items.is_empty() {
                no_lines(&mut r);
            }
            for (i, item) in items.into_iter().enumerate() {
                match BorrowedRecord::from_raw(item) {
                    Some(line) => {
                        read_line(&line, i, &mut r);
                        lines.push(line);
                    }
                    None if item.get().starts_with('{') => return None,
                    None => not_a_line(i, &View::of_raw(item), &mut r),
                }
            }
        }
        if let Err(e) = r.finish() {
            return Some(Err(e));
        }
        if self.normalize {
            normalize_text(&mut record, &RECEIPT_TEXT_FIELDS)?;
            let mut changed = false;
            for line in &mut lines {
                changed |= normalize_text(line, &LINE_TEXT_FIELDS)?;
                for field in LINE_DECIMAL_FIELDS {
                    if let Some(v @ View::String(_)) = line.view(field)
                        && let Ok(d) = decimal_from_view(&v)
                    {
                        line.set(Cow::Borrowed(field), Cow::Owned(RawValue::from_string(d.to_string()).ok()?));
                        changed = true;
                    }
                }
            }
            if changed {
                let mut text = vec![b'['];
                for (i, line) in lines.iter().enumerate() {
                    if i > 0 {
                        text.push(b',');
                    }
                    line.write_json(&mut text)?;
                }
                text.push(b']');
                let text = String::from_utf8(text).ok()?;
                record.set(Cow::Borrowed("lines"), Cow::Owned(RawValue::from_string(text).ok()?));
            }
        }
        out.push(record);
        Some(Ok(()))
    }
}

/// The text fields of `record` that arrived as integers rewritten as text, as [`normalize_fields`] does;
/// whether any was.
fn normalize_text(record: &mut BorrowedRecord<'_>, fields: &[&'static str]) -> Option<bool> {
    let mut changed = false;
    for field in fields {
        if let Some(View::Number(n)) = record.view(field)
            && text_number(&n)
        {
            let text = serde_json::value::to_raw_value(n.as_ref()).ok()?;
            record.set(Cow::Borrowed(field), Cow::Owned(text));
            changed = true;
        }
    }
    Some(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::EmbeddedResources;
    use serde_json::json;

    #[test]
    fn rejects_with_reasons_and_normalizes() {
        let ctx = CompileContext {
            resources: &EmbeddedResources(&[]),
            time_zone: &Default::default(),
            path: "pipeline[0].validate".into(),
        };
        let v = ValidateConfig { normalize: true }.compile(&ctx).unwrap();
        let mut out = Vec::new();
        let good = json!({"receipt_id": "R", "store_id": "S", "emitted_at": "2026-11-23T10:00:00Z", "currency": "EUR",
            "lines": [{"sku": "A", "name": "n", "category": "c", "quantity": 1, "unit_price": "19.99"}]});
        v.apply(good, &mut out).unwrap();
        assert!(out[0]["lines"][0]["unit_price"].is_number());
        let bad = json!({"receipt_id": "R", "store_id": "S", "emitted_at": "2026-11-23T10:00:00Z", "currency": "EUR",
            "lines": [{"sku": "A", "name": "n", "category": "c", "quantity": 1, "unit_price": "abc"}]});
        assert_eq!(
            v.apply(bad, &mut out).unwrap_err().to_string(),
            "lines[0].unit_price: expected a decimal, found \"abc\""
        );
    }
}
