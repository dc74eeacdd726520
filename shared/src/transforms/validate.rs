//! `validate`: check records against the receipt model ([`crate::receipt`]); an invalid receipt is rejected
//! with every field error named. With `normalize` (the default), numeric-string money fields (`"19.99"`) are
//! rewritten as JSON numbers with the same digits, so later filters compare prices as numbers, and text fields
//! that arrived as integers (`"sku": 123`) as the text validation read them as (`"123"`).

use serde::Deserialize;
use serde_json::Value;

use super::{CompileContext, Transform};
use crate::error::{ConfigError, RecordError};
use crate::receipt::{Receipt, normalize_fields};

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

    fn describe(&self) -> String {
        let normalize = if self.normalize { ", money fields normalised to numbers" } else { "" };
        format!("reject records that are not valid receipts{normalize}")
    }
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
