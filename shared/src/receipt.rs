//! The sales receipt of both source documents: a store, an emission instant, an optional loyalty card, and
//! lines of (sku, name, category, quantity, unit price, discount). A return is a line with a negative quantity.
//! Validation collects every field error with its path; unknown fields are kept, never dropped.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::decimal::{decimal_from_value, decimal_from_view, decimal_to_value, describe};
use crate::error::{FieldError, RecordError};
use crate::view::{ObjectView, View};

/// One receipt as emitted by a store.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub receipt_id: String,
    pub store_id: String,
    /// The instant the receipt was emitted; its text had an explicit UTC offset.
    pub emitted_at: Timestamp,
    pub loyalty_card: Option<String>,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    pub lines: Vec<ReceiptLine>,
    /// Fields the model does not know, kept as they came.
    pub extra: Map<String, Value>,
}

/// One line of a receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptLine {
    pub sku: String,
    pub name: String,
    pub category: String,
    /// Negative for a return.
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub discount: Option<Decimal>,
    pub extra: Map<String, Value>,
}

impl ReceiptLine {
    /// quantity × unit_price − discount, exactly; `None` when it overflows a [`Decimal`] (never for a line
    /// [`Receipt::from_value`] accepted: its total is within [`MAX_AMOUNT`]).
    pub fn total(&self) -> Option<Decimal> {
        line_total(self.quantity, self.unit_price, self.discount)
    }

    /// A return (after-sale) line.
    pub fn is_return(&self) -> bool {
        self.quantity.is_sign_negative() && !self.quantity.is_zero()
    }
}

/// quantity × unit_price − discount, exactly, or `None` when it overflows.
pub fn line_total(quantity: Decimal, unit_price: Decimal, discount: Option<Decimal>) -> Option<Decimal> {
    quantity.checked_mul(unit_price)?.checked_sub(discount.unwrap_or_default())
}

/// Money amounts and quantities (and a line's total) must be smaller than this in magnitude: 10^15, a
/// quadrillion. A [`Decimal`] holds about 7.9 × 10^28, so an hour's `hourly_sales` turnover can sum 79 trillion
/// lines of the largest amount without overflowing; an amount past it is rejected at ingest, never summed.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);

/// `Ok(d)` when `|d| <` [`MAX_AMOUNT`]; otherwise the reason, for the field's error.
pub fn check_amount(d: Decimal) -> Result<Decimal, String> {
    if d.abs() < MAX_AMOUNT {
        Ok(d)
    } else {
        Err(format!("out of range: {d} is not smaller than 10^15 in magnitude (the datasets' sums must hold it)"))
    }
}

const RECEIPT_FIELDS: [&str; 6] = ["receipt_id", "store_id", "emitted_at", "loyalty_card", "currency", "lines"];
const LINE_FIELDS: [&str; 6] = ["sku", "name", "category", "quantity", "unit_price", "discount"];
/// The money and quantity fields of a line, the ones [`normalize_fields`] rewrites as numbers.
pub const LINE_DECIMAL_FIELDS: [&str; 3] = ["quantity", "unit_price", "discount"];

/// Reads the fields of a record, collecting every error so one pass reports all of them: the one reader of
/// receipts and of the records made from them, used by `validate` ([`Receipt::from_value`]) and by the export
/// ([`crate::datasets::sales_lines::SalesLine::from_record`]), so both accept and refuse the same values.
#[derive(Debug, Default)]
pub struct FieldReader {
    errors: Vec<FieldError>,
}

impl FieldReader {
    pub fn new() -> FieldReader {
        FieldReader::default()
    }

    /// Records an error at `path`.
    pub fn fail(&mut self, path: String, message: impl Into<String>) {
        self.errors.push(FieldError { path, message: message.into() });
    }

    /// Whether no error was recorded.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors so far, as one record error (`Ok` when there is none).
    pub fn finish(self) -> Result<(), RecordError> {
        if self.errors.is_empty() { Ok(()) } else { Err(RecordError::InvalidFields(self.errors)) }
    }

    /// A text field at `prefix` + `field`. A required one must be present, not null and not empty. A
    /// non-negative integer is read as its text: store, receipt and article ids often arrive as numbers
    /// (`"sku": 123` is `"123"`; `validate` with `normalize` rewrites it so). Any other value is an error.
    pub fn text(
        &mut self,
        obj: &(impl ObjectView + ?Sized),
        prefix: &str,
        field: &str,
        required: bool,
    ) -> Option<String> {
        let path = || format!("{prefix}{field}");
        match obj.view(field) {
            None | Some(View::Null) if !required => None,
            None | Some(View::Null) => {
                self.fail(path(), "missing");
                None
            }
            Some(View::String(s)) if s.is_empty() && required => {
                self.fail(path(), "must not be empty");
                None
            }
            Some(View::String(s)) => Some(s.into_owned()),
            Some(View::Number(n)) if text_number(&n) => Some(n.into_owned()),
            Some(other) => {
                self.fail(path(), format!("expected a string, found {}", other.describe()));
                None
            }
        }
    }

    /// An exact decimal (a JSON number or numeric string) smaller than [`MAX_AMOUNT`] in magnitude.
    pub fn decimal(
        &mut self,
        obj: &(impl ObjectView + ?Sized),
        prefix: &str,
        field: &str,
        required: bool,
    ) -> Option<Decimal> {
        let path = || format!("{prefix}{field}");
        match obj.view(field) {
            None | Some(View::Null) if !required => None,
            None | Some(View::Null) => {
                self.fail(path(), "missing");
                None
            }
            Some(v) => decimal_from_view(&v).and_then(check_amount).map_err(|e| self.fail(path(), e)).ok(),
        }
    }

    /// A required integer in `range`.
    pub fn integer(
        &mut self,
        obj: &(impl ObjectView + ?Sized),
        prefix: &str,
        field: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let path = || format!("{prefix}{field}");
        match obj.view(field) {
            None | Some(View::Null) => self.fail(path(), "missing"),
            Some(View::Number(n)) => match n.parse::<i64>().ok().filter(|i| range.contains(i)) {
                Some(i) => return Some(i),
                None => self.fail(path(), format!("expected an integer in {range:?}, found {n}")),
            },
            Some(other) => self.fail(path(), format!("expected an integer, found {}", other.describe())),
        }
        None
    }
}

/// Whether a JSON number stands for a text field's value: a non-negative integer written without sign,
/// fraction or exponent (`123`, not `1.5`, `-3` or `1e3`).
pub fn text_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn extra_fields(obj: &Map<String, Value>, known: &[&str]) -> Map<String, Value> {
    obj.iter().filter(|(k, _)| !known.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A receipt's own fields (not its lines), as [`read_header`] read them.
pub(crate) struct Header {
    pub receipt_id: Option<String>,
    pub store_id: Option<String>,
    pub loyalty_card: Option<String>,
    pub currency: Option<String>,
    pub emitted_at: Option<Timestamp>,
}

/// Reads and checks a receipt's own fields: one set of rules for the `Value` and the borrowed `validate`.
pub(crate) fn read_header(obj: &(impl ObjectView + ?Sized), r: &mut FieldReader) -> Header {
    let receipt_id = r.text(obj, "", "receipt_id", true);
    let store_id = r.text(obj, "", "store_id", true);
    let loyalty_card = r.text(obj, "", "loyalty_card", false);
    let currency = r.text(obj, "", "currency", true);
    if let Some(c) = &currency
        && iso_currency::Currency::from_code(c).is_none()
    {
        r.fail("currency".into(), format!("expected an ISO 4217 currency code such as EUR, found {c:?}"));
    }
    let emitted_at = r.text(obj, "", "emitted_at", true).and_then(|t| match parse_instant(&t) {
        Ok(ts) => Some(ts),
        Err(e) => {
            r.fail("emitted_at".into(), e);
            None
        }
    });
    Header { receipt_id, store_id, loyalty_card, currency, emitted_at }
}

/// Checks a receipt's `lines` field is there and an array: `true` when its items are to be read (an empty
/// array is then refused by [`no_lines`]).
pub(crate) fn lines_are_an_array(lines: Option<View>, r: &mut FieldReader) -> bool {
    match lines {
        None | Some(View::Null) => r.fail("lines".into(), "missing"),
        Some(View::Array) => return true,
        Some(other) => r.fail("lines".into(), format!("expected an array of lines, found {}", other.describe())),
    }
    false
}

/// The error of a receipt whose `lines` is an empty array.
pub(crate) fn no_lines(r: &mut FieldReader) {
    r.fail("lines".into(), "a receipt needs at least one line");
}

/// The error of a line `i` that is not an object.
pub(crate) fn not_a_line(i: usize, item: &View, r: &mut FieldReader) {
    r.fail(format!("lines[{i}]"), format!("expected a line object, found {}", item.describe()));
}

/// A line's fields, as [`read_line`] read them: sku, name, category, quantity, unit price, discount.
pub(crate) type LineFields = (String, String, String, Decimal, Decimal, Option<Decimal>);

/// Reads and checks line `i` of a receipt: `Some` when every field is readable (the reader may still hold
/// errors of the line's amounts).
pub(crate) fn read_line(line: &impl ObjectView, i: usize, r: &mut FieldReader) -> Option<LineFields> {
    let prefix = format!("lines[{i}].");
    let sku = r.text(line, &prefix, "sku", true);
    let name = r.text(line, &prefix, "name", true);
    let category = r.text(line, &prefix, "category", true);
    let quantity = r.decimal(line, &prefix, "quantity", true);
    let unit_price = r.decimal(line, &prefix, "unit_price", true);
    let discount = r.decimal(line, &prefix, "discount", false);
    if unit_price.is_some_and(|p| p.is_sign_negative() && !p.is_zero()) {
        r.fail(format!("{prefix}unit_price"), "must not be negative (a return has a negative quantity)");
    }
    if let (Some(quantity), Some(unit_price), Some(discount)) = (quantity, unit_price, discount)
        && let Some(gross) = quantity.checked_mul(unit_price)
        && discount > gross.abs()
    {
        r.fail(format!("{prefix}discount"), format!("{discount} is larger than quantity × unit_price ({gross})"));
    }
    if let (Some(quantity), Some(unit_price)) = (quantity, unit_price)
        && let Err(e) = line_total(quantity, unit_price, discount)
            .ok_or_else(|| "out of range: overflows an exact decimal".to_string())
            .and_then(check_amount)
    {
        r.fail(format!("lines[{i}]"), format!("quantity × unit_price − discount: {e}"));
    }
    Some((sku?, name?, category?, quantity?, unit_price?, discount))
}

impl Receipt {
    /// Reads and validates a receipt, reporting every problem with its field path.
    pub fn from_value(value: &Value) -> Result<Receipt, RecordError> {
        let Some(obj) = value.as_object() else {
            return Err(RecordError::field("", format!("expected a receipt object, found {}", describe(value))));
        };
        let mut r = FieldReader::new();
        let header = read_header(obj, &mut r);
        let mut lines = Vec::new();
        if lines_are_an_array(obj.view("lines"), &mut r)
            && let Some(Value::Array(items)) = obj.get("lines")
        {
            if items.is_empty() {
                no_lines(&mut r);
            }
            for (i, item) in items.iter().enumerate() {
                let Some(line) = item.as_object() else {
                    not_a_line(i, &View::of(item), &mut r);
                    continue;
                };
                if let Some((sku, name, category, quantity, unit_price, discount)) = read_line(line, i, &mut r) {
                    lines.push(ReceiptLine {
                        sku,
                        name,
                        category,
                        quantity,
                        unit_price,
                        discount,
                        extra: extra_fields(line, &LINE_FIELDS),
                    });
                }
            }
        }
        let Header { receipt_id, store_id, loyalty_card, currency, emitted_at } = header;
        match (receipt_id, store_id, emitted_at, currency) {
            (Some(receipt_id), Some(store_id), Some(emitted_at), Some(currency)) if r.is_ok() => Ok(Receipt {
                receipt_id,
                store_id,
                emitted_at,
                loyalty_card,
                currency,
                lines,
                extra: extra_fields(obj, &RECEIPT_FIELDS),
            }),
            _ => Err(r.finish().err().unwrap_or_else(|| RecordError::field("", "incomplete receipt"))),
        }
    }

    /// The receipt as JSON: decimals as exact numbers, `emitted_at` in RFC 3339 with the given offset text.
    pub fn to_value(&self, emitted_at_text: &str) -> Value {
        let mut obj = Map::new();
        obj.insert("receipt_id".into(), self.receipt_id.clone().into());
        obj.insert("store_id".into(), self.store_id.clone().into());
        obj.insert("emitted_at".into(), emitted_at_text.into());
        if let Some(card) = &self.loyalty_card {
            obj.insert("loyalty_card".into(), card.clone().into());
        }
        obj.insert("currency".into(), self.currency.clone().into());
        let lines = self
            .lines
            .iter()
            .map(|l| {
                let mut line = Map::new();
                line.insert("sku".into(), l.sku.clone().into());
                line.insert("name".into(), l.name.clone().into());
                line.insert("category".into(), l.category.clone().into());
                line.insert("quantity".into(), decimal_to_value(l.quantity));
                line.insert("unit_price".into(), decimal_to_value(l.unit_price));
                if let Some(d) = l.discount {
                    line.insert("discount".into(), decimal_to_value(d));
                }
                line.extend(l.extra.clone());
                Value::Object(line)
            })
            .collect();
        obj.insert("lines".into(), Value::Array(lines));
        obj.extend(self.extra.clone());
        Value::Object(obj)
    }

    /// The receipt's total: the sum of its line totals (returns count negative); `None` when it overflows.
    pub fn total(&self) -> Option<Decimal> {
        self.lines.iter().try_fold(Decimal::ZERO, |sum, l| sum.checked_add(l.total()?))
    }
}

pub use crate::instant::parse_instant;

/// Rewrites a receipt's fields in their canonical JSON form: the numeric-string money fields of every line
/// (`"19.99"`) become JSON numbers with the same digits, so JSONPath filters compare them as numbers, and the
/// text fields that arrived as integers (`"sku": 123`) become the text [`FieldReader::text`] reads them as, so
/// filters compare them as text and every later reader sees a string. Values that are neither are left for
/// validation to report.
pub fn normalize_fields(receipt: &mut Value) {
    let Some(obj) = receipt.as_object_mut() else { return };
    normalize_text(obj, &RECEIPT_TEXT_FIELDS);
    let Some(Value::Array(lines)) = obj.get_mut("lines") else { return };
    for line in lines.iter_mut().filter_map(Value::as_object_mut) {
        normalize_text(line, &LINE_TEXT_FIELDS);
        for field in LINE_DECIMAL_FIELDS {
            if let Some(v @ Value::String(_)) = line.get_mut(field)
                && let Ok(d) = decimal_from_value(v)
            {
                *v = decimal_to_value(d);
            }
        }
    }
}

/// The text fields of a receipt and of a line, the ones [`normalize_fields`] rewrites from integers to text.
pub const RECEIPT_TEXT_FIELDS: [&str; 4] = ["receipt_id", "store_id", "loyalty_card", "currency"];
pub const LINE_TEXT_FIELDS: [&str; 3] = ["sku", "name", "category"];

fn normalize_text(obj: &mut Map<String, Value>, fields: &[&str]) {
    for field in fields {
        if let Some(v) = obj.get_mut(*field)
            && let Value::Number(n) = v
            && text_number(n.as_str())
        {
            *v = Value::String(n.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "receipt_id": "R1", "store_id": "S00042", "emitted_at": "2026-11-23T10:15:00+01:00",
            "loyalty_card": "LC-1", "currency": "EUR", "cashier": "C7",
            "lines": [
                {"sku": "A1", "name": "Crème fraîche", "category": "Dairy", "quantity": 2, "unit_price": "1.99", "discount": 0.5, "vat": 5.5},
                {"sku": "B2", "name": "Tomatoes", "category": "Fruits & Vegetables", "quantity": -1, "unit_price": 3.2}
            ]
        })
    }

    #[test]
    fn reads_a_receipt_exactly_and_keeps_unknown_fields() {
        let r = Receipt::from_value(&sample()).unwrap();
        assert_eq!(r.emitted_at.to_string(), "2026-11-23T09:15:00Z");
        assert_eq!(r.lines[0].total().unwrap().to_string(), "3.48");
        assert!(r.lines[1].is_return());
        assert_eq!(r.total().unwrap().to_string(), "0.28");
        assert_eq!(r.extra.get("cashier"), Some(&json!("C7")));
        assert_eq!(r.lines[0].extra.get("vat").map(ToString::to_string).as_deref(), Some("5.5"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut v = sample();
        v["lines"][1]["unit_price"] = json!("abc");
        v["emitted_at"] = json!("2026-11-23T10:15:00");
        v.as_object_mut().unwrap().remove("store_id");
        let err = Receipt::from_value(&v).unwrap_err().to_string();
        assert_eq!(
            err,
            "store_id: missing; emitted_at: expected an RFC 3339 time with a UTC offset (e.g. 2026-11-23T09:15:00+01:00), \
             found \"2026-11-23T10:15:00\"; lines[1].unit_price: expected a decimal, found \"abc\""
        );
    }

    /// Issue 11: amounts the datasets' sums cannot hold are rejected at ingest, each field named.
    #[test]
    fn issue_11_amounts_the_aggregates_cannot_hold_are_rejected() {
        let mut v = sample();
        v["lines"][0]["unit_price"] = json!("50000000000000000000000000000");
        v["lines"][1]["unit_price"] = json!("50000000000000000000000000000");
        let err = Receipt::from_value(&v).unwrap_err().to_string();
        assert_eq!(
            err,
            "lines[0].unit_price: out of range: 50000000000000000000000000000 is not smaller than 10^15 in magnitude \
             (the datasets' sums must hold it); lines[1].unit_price: out of range: 50000000000000000000000000000 is \
             not smaller than 10^15 in magnitude (the datasets' sums must hold it)"
        );
        let mut v = sample();
        v["lines"][0]["quantity"] = json!("99999999999999");
        v["lines"][0]["unit_price"] = json!("99999999999999");
        assert_eq!(
            Receipt::from_value(&v).unwrap_err().to_string(),
            "lines[0]: quantity × unit_price − discount: out of range: 9999999999999800000000000000 is not smaller \
             than 10^15 in magnitude (the datasets' sums must hold it)"
        );
        let mut v = sample();
        v["lines"][0]["quantity"] = json!("999999999999999.9999999999999");
        v["lines"][0]["unit_price"] = json!("999999999999999.9999999999999");
        assert!(Receipt::from_value(&v).unwrap_err().to_string().starts_with("lines[0]"));
        let mut v = sample();
        v["lines"][0]["quantity"] = json!(-999_999_999_999_999i64);
        v["lines"][0]["unit_price"] = json!(999_999_999_999_999i64);
        assert!(
            Receipt::from_value(&v).unwrap_err().to_string().starts_with("lines[0]: quantity × unit_price − discount")
        );
        // The largest amounts accepted still sum: a line's total fits, and so does the receipt's.
        let mut v = sample();
        v["lines"][0]["quantity"] = json!(1);
        v["lines"][0]["unit_price"] = json!("999999999999999.99");
        v["lines"][0]["discount"] = json!(0);
        let r = Receipt::from_value(&v).unwrap();
        assert_eq!(r.total().unwrap().to_string(), "999999999999996.79");
    }

    /// Issue 12 "Lax validation": a discount larger than the line, and a currency ISO 4217 does not list.
    #[test]
    fn issue_12_discounts_and_currencies_are_checked() {
        let mut v = sample();
        v["lines"][0]["discount"] = json!("3.99");
        v["currency"] = json!("XYZ");
        assert_eq!(
            Receipt::from_value(&v).unwrap_err().to_string(),
            "currency: expected an ISO 4217 currency code such as EUR, found \"XYZ\"; lines[0].discount: 3.99 is \
             larger than quantity × unit_price (3.98)"
        );
        // A discount of the whole line is fine, on a sale or a return; so is any listed currency.
        v["lines"][0]["discount"] = json!("3.98");
        v["lines"][1]["discount"] = json!("3.2");
        for code in ["EUR", "USD", "JPY", "CHF", "XTS"] {
            v["currency"] = json!(code);
            assert!(Receipt::from_value(&v).is_ok(), "{code}");
        }
        for code in ["eur", "EU", "EURO", "ABC"] {
            v["currency"] = json!(code);
            assert!(Receipt::from_value(&v).is_err(), "{code}");
        }
    }

    /// Issue 11: `emitted_at` outside the plausible range is refused as out of range.
    #[test]
    fn issue_11_extreme_emission_times_are_out_of_range() {
        for text in ["-009999-01-02T01:59:59Z", "9999-12-31T23:59:59Z"] {
            let mut v = sample();
            v["emitted_at"] = json!(text);
            let err = Receipt::from_value(&v).unwrap_err().to_string();
            assert!(err.starts_with("emitted_at: out of range"), "{err}");
        }
    }

    #[test]
    fn a_receipt_needs_lines() {
        let mut v = sample();
        v["lines"] = json!([]);
        assert_eq!(Receipt::from_value(&v).unwrap_err().to_string(), "lines: a receipt needs at least one line");
        assert_eq!(
            Receipt::from_value(&json!([1])).unwrap_err().to_string(),
            "expected a receipt object, found an array"
        );
    }

    #[test]
    fn normalizing_turns_numeric_strings_into_exact_numbers() {
        let mut v = sample();
        normalize_fields(&mut v);
        assert_eq!(serde_json::to_string(&v["lines"][0]["unit_price"]).unwrap(), "1.99");
        assert!(v["lines"][0]["unit_price"].is_number());
    }

    #[test]
    fn to_value_round_trips() {
        let r = Receipt::from_value(&sample()).unwrap();
        let back = Receipt::from_value(&r.to_value("2026-11-23T10:15:00+01:00")).unwrap();
        assert_eq!(r, back);
    }
}
