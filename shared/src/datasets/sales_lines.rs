//! `sales_lines`: one CSV row per receipt line, flat and enriched: the landed-line contract. [`SalesLine`] is one
//! serde type; its fields are the columns, in file order, and each field's `#[serde(with = …)]` format
//! ([`super::format`]) is its cell. [`SalesLine::from_record`] reads a landed record (what the pipeline's end
//! produces) into it: ingest checks every output with it ([`crate::contract`]) and the export reads landed
//! lines with it, so they agree by construction. Columns:
//!
//! | column | content |
//! |---|---|
//! | `receipt_id` | text |
//! | `line_no` | integer, 0-based position of the line in its receipt |
//! | `store_id` | text |
//! | `emitted_at` | the receipt's instant in UTC, `YYYY-MM-DD HH:MM:SS` (kept to the second) |
//! | `date`, `hour`, `weekday` | the store-local date, hour (0-23) and weekday name |
//! | `category`, `sku`, `name` | text |
//! | `quantity`, `unit_price`, `discount`, `line_total` | exact decimals; `discount` empty when none; a return has a negative quantity |
//! | `currency` | ISO 4217 code, empty when absent |
//! | `is_return`, `has_loyalty_card` | `1` or `0` (QuickSight sums them as integers) |
//! | `city`, `region`, `latitude`, `longitude`, `manager` | the store's reference data, empty when absent |
//!
//! Text cells go through [`super::cell::neutralize`]; numbers are written with exactly their digits.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::format::{self, columns_of};
use super::{RowError, read_row};
use crate::decimal::describe;
use crate::error::RecordError;
use crate::receipt::{FieldReader, check_amount, line_total};
use crate::view::{ObjectView, View};

/// The columns of `sales_lines`, in file order: the fields of [`SalesLine`].
pub static COLUMNS: LazyLock<&'static [&'static str]> = LazyLock::new(columns_of::<SalesLine>);

/// The version of the landed-line contract [`SalesLine::from_record`] reads (and of the `sales_lines` columns).
/// Bump it when a field is added, removed or changes meaning.
pub const SCHEMA: u32 = 1;

/// One receipt line as exported: the contract between ingest and the export. Ingest checks every landed record
/// becomes one ([`SalesLine::from_record`]), the export reads landed records into it, and the `sales_lines`
/// header and cells are its serde form (one field, one column, in this order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesLine {
    #[serde(with = "format::text")]
    pub receipt_id: String,
    pub line_no: u32,
    #[serde(with = "format::text")]
    pub store_id: String,
    /// Truncated to the second.
    #[serde(with = "format::utc_second")]
    pub emitted_at: Timestamp,
    /// Store-local date, hour and weekday.
    #[serde(with = "format::date")]
    pub date: Date,
    pub hour: i8,
    #[serde(with = "format::text")]
    pub weekday: String,
    #[serde(with = "format::text")]
    pub category: String,
    #[serde(with = "format::text")]
    pub sku: String,
    #[serde(with = "format::text")]
    pub name: String,
    /// Negative for a return.
    #[serde(with = "format::num")]
    pub quantity: Decimal,
    #[serde(with = "format::num")]
    pub unit_price: Decimal,
    #[serde(with = "format::opt_num")]
    pub discount: Option<Decimal>,
    #[serde(with = "format::num")]
    pub line_total: Decimal,
    #[serde(with = "format::opt_text")]
    pub currency: Option<String>,
    /// Whether `quantity` is negative (a column of its own so QuickSight can sum returns); always agrees.
    #[serde(with = "format::flag")]
    pub is_return: bool,
    #[serde(with = "format::flag")]
    pub has_loyalty_card: bool,
    #[serde(with = "format::opt_text")]
    pub city: Option<String>,
    #[serde(with = "format::opt_text")]
    pub region: Option<String>,
    #[serde(with = "format::opt_num")]
    pub latitude: Option<Decimal>,
    #[serde(with = "format::opt_num")]
    pub longitude: Option<Decimal>,
    #[serde(with = "format::opt_text")]
    pub manager: Option<String>,
}

/// The fields of a landed record, read by the receipt module's [`FieldReader`] (the reader `validate` uses), so
/// the export accepts exactly the values ingest accepted: `"sku": 123` is the text `"123"` in both.
struct Fields<'a, O: ObjectView + ?Sized> {
    record: &'a O,
    reader: FieldReader,
}

impl<O: ObjectView + ?Sized> Fields<'_, O> {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.reader.fail(field.to_string(), message);
    }

    fn present(&self, field: &str) -> Option<View<'_>> {
        self.record.view(field).filter(|v| !v.is_null())
    }

    fn text(&mut self, field: &str) -> String {
        self.reader.text(self.record, "", field, true).unwrap_or_default()
    }

    fn optional_text(&mut self, field: &str) -> Option<String> {
        self.reader.text(self.record, "", field, false)
    }

    fn decimal(&mut self, field: &str) -> Decimal {
        self.reader.decimal(self.record, "", field, true).unwrap_or_default()
    }

    fn optional_decimal(&mut self, field: &str) -> Option<Decimal> {
        self.reader.decimal(self.record, "", field, false)
    }

    fn integer(&mut self, field: &str, range: std::ops::RangeInclusive<i64>) -> i64 {
        self.reader.integer(self.record, "", field, range).unwrap_or_default()
    }
}

impl SalesLine {
    /// Reads one landed record. Required: `receipt_id`, `line_no`, `store_id`, `emitted_at` (RFC 3339 with an
    /// offset), `date`, `hour`, `weekday`, `category`, `sku`, `name`, `quantity`, `unit_price`. `line_total`
    /// defaults to quantity × unit_price − discount; the store fields, `currency`, `discount` and `loyalty_card`
    /// are optional. Every bad field is named in the error.
    pub fn from_record(record: &Value) -> Result<SalesLine, RecordError> {
        let Value::Object(map) = record else {
            return Err(RecordError::field("", format!("expected an object, found {}", describe(record))));
        };
        Self::from_fields(map)
    }

    /// [`from_record`](Self::from_record) on an object's fields, from a tree or a borrowed record (what ingest's
    /// borrowed path checks its outputs with).
    pub fn from_fields(record: &(impl ObjectView + ?Sized)) -> Result<SalesLine, RecordError> {
        let mut f = Fields { record, reader: FieldReader::new() };
        let receipt_id = f.text("receipt_id");
        let line_no = f.integer("line_no", 0..=i64::from(u32::MAX)) as u32;
        let store_id = f.text("store_id");
        let emitted_text = f.text("emitted_at");
        let emitted_at = match crate::receipt::parse_instant(&emitted_text) {
            Ok(ts) => truncate_to_second(ts),
            Err(e) => {
                if !emitted_text.is_empty() {
                    f.fail("emitted_at", e);
                }
                Timestamp::UNIX_EPOCH
            }
        };
        let date_text = f.text("date");
        let date = date_text.parse::<Date>().unwrap_or_else(|_| {
            if !date_text.is_empty() {
                f.fail("date", format!("expected YYYY-MM-DD, found {date_text:?}"));
            }
            Date::default()
        });
        let hour = f.integer("hour", 0..=23) as i8;
        let weekday = f.text("weekday");
        let category = f.text("category");
        let sku = f.text("sku");
        let name = f.text("name");
        let quantity = f.decimal("quantity");
        let unit_price = f.decimal("unit_price");
        let discount = f.optional_decimal("discount");
        let line_total = match f.optional_decimal("line_total") {
            Some(total) => total,
            None => match line_total(quantity, unit_price, discount).map(check_amount) {
                Some(Ok(total)) => total,
                Some(Err(e)) => {
                    f.fail("line_total", format!("quantity × unit_price − discount: {e}"));
                    Decimal::ZERO
                }
                None => {
                    f.fail("line_total", "quantity × unit_price − discount: out of range: overflows an exact decimal");
                    Decimal::ZERO
                }
            },
        };
        let currency = f.optional_text("currency");
        let has_loyalty_card = match f.present("loyalty_card") {
            None => false,
            Some(View::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        let city = f.optional_text("city");
        let region = f.optional_text("region");
        let latitude = f.optional_decimal("latitude");
        let longitude = f.optional_decimal("longitude");
        let manager = f.optional_text("manager");
        f.reader.finish()?;
        Ok(SalesLine {
            receipt_id,
            line_no,
            store_id,
            emitted_at,
            date,
            hour,
            weekday,
            category,
            sku,
            name,
            quantity,
            unit_price,
            discount,
            line_total,
            currency,
            is_return: is_negative(quantity),
            has_loyalty_card,
            city,
            region,
            latitude,
            longitude,
            manager,
        })
    }

    /// A return line: negative quantity.
    pub fn is_return(&self) -> bool {
        self.is_return
    }

    /// The line's identity for de-duplication.
    pub fn key(&self) -> LineKey {
        LineKey::of(&self.receipt_id, self.line_no)
    }

    /// Reads a `sales_lines` row back; the error names the column.
    pub fn from_row(row: &csv::StringRecord) -> Result<SalesLine, RowError> {
        let line: SalesLine = read_row(row, &COLUMNS)?;
        if line.is_return != is_negative(line.quantity) {
            return Err(RowError::new("is_return", "disagrees with the sign of quantity"));
        }
        Ok(line)
    }
}

fn is_negative(d: Decimal) -> bool {
    d.is_sign_negative() && !d.is_zero()
}

fn truncate_to_second(ts: Timestamp) -> Timestamp {
    // A valid timestamp's whole second is valid too; the fallback is never taken.
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

/// The identity of a receipt line: a 128-bit digest of (receipt_id, line_no). Compaction keeps hundreds of
/// millions of them in memory, so they are digests, not strings; two SipHash passes with different domain
/// bytes make a collision (which would drop a distinct line) vanishingly unlikely (~n²/2¹²⁹).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineKey(u128);

impl LineKey {
    pub fn of(receipt_id: &str, line_no: u32) -> LineKey {
        let half = |domain: u8| {
            let mut h = DefaultHasher::new();
            domain.hash(&mut h);
            receipt_id.hash(&mut h);
            line_no.hash(&mut h);
            h.finish()
        };
        LineKey((u128::from(half(1)) << 64) | u128::from(half(2)))
    }
}

/// Drops repeated lines (same receipt_id and line_no): the first one seen is kept.
#[derive(Debug, Default)]
pub struct Deduper {
    seen: HashSet<LineKey>,
    dropped: u64,
}

impl Deduper {
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` the first time a line's key is seen; `false` (and counted) for a repeat.
    pub fn first_time(&mut self, line: &SalesLine) -> bool {
        let new = self.seen.insert(line.key());
        if !new {
            self.dropped += 1;
        }
        new
    }

    /// How many repeats were dropped.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// How many distinct lines were kept.
    pub fn kept(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::datasets::{CsvWriter, read_rows};
    use proptest::prelude::*;
    use serde_json::json;

    pub(crate) fn record(receipt: &str, line_no: u32, name: &str, quantity: &str, line_total: &str) -> Value {
        let mut v = json!({
            "receipt_id": receipt, "store_id": "S00042", "emitted_at": "2026-11-23T09:29:54.940+01:00",
            "loyalty_card": "LC0000000001", "currency": "EUR", "line_no": line_no, "sku": "SKU-000001",
            "ean": "3000000000001", "name": name, "category": "Bakery", "unit": "pce", "vat_rate": 5.5,
            "date": "2026-11-23", "hour": 9, "weekday": "Monday", "city": "Lyon", "region": "Auvergne-Rhône-Alpes",
            "latitude": "45.7300", "longitude": "4.8585", "manager": "Chloé Girard"
        });
        let map = v.as_object_mut().unwrap();
        map.insert("quantity".into(), serde_json::from_str(quantity).unwrap());
        map.insert("unit_price".into(), serde_json::from_str("2.50").unwrap());
        map.insert("line_total".into(), serde_json::from_str(line_total).unwrap());
        v
    }

    /// Issue 11: a landed line the datasets cannot hold (written by an older version or by hand) is an error
    /// naming the field, not a panic later.
    #[test]
    fn issue_11_a_landed_line_out_of_range_is_an_error() {
        let mut huge = record("R1", 0, "Baguette", "1", "2.50");
        huge["unit_price"] = serde_json::from_str("50000000000000000000000000000").unwrap();
        huge.as_object_mut().unwrap().remove("line_total");
        let err = SalesLine::from_record(&huge).unwrap_err().to_string();
        assert!(err.starts_with("unit_price: out of range"), "{err}");
        let mut product = record("R1", 0, "Baguette", "99999999999999", "2.50");
        product["unit_price"] = json!("99999999999999");
        product.as_object_mut().unwrap().remove("line_total");
        let err = SalesLine::from_record(&product).unwrap_err().to_string();
        assert!(err.starts_with("line_total: quantity × unit_price − discount: out of range"), "{err}");
        let mut early = record("R1", 0, "Baguette", "1", "2.50");
        early["emitted_at"] = json!("-009999-01-02T01:59:59Z");
        let err = SalesLine::from_record(&early).unwrap_err().to_string();
        assert!(err.starts_with("emitted_at: out of range"), "{err}");
    }

    #[test]
    fn a_landed_record_becomes_a_row_with_documented_cells() {
        let line = SalesLine::from_record(&record("S00042-1", 3, "=cmd|' /C calc'!A0", "-2", "-5.00")).unwrap();
        let mut w = CsvWriter::new(Vec::new(), &COLUMNS).unwrap();
        w.serialize(&line).unwrap();
        let bytes = w.finish().unwrap();
        let cells: Vec<String> =
            read_rows(&bytes[..], &COLUMNS).unwrap().next().unwrap().unwrap().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            cells,
            [
                "S00042-1",
                "3",
                "S00042",
                "2026-11-23 08:29:54",
                "2026-11-23",
                "9",
                "Monday",
                "Bakery",
                "SKU-000001",
                "'=cmd|' /C calc'!A0",
                "-2",
                "2.50",
                "",
                "-5.00",
                "EUR",
                "1",
                "1",
                "Lyon",
                "Auvergne-Rhône-Alpes",
                "45.7300",
                "4.8585",
                "Chloé Girard"
            ]
        );
    }

    #[test]
    fn missing_and_wrong_fields_are_all_named() {
        let mut r = record("R", 0, "x", "1", "2.50");
        let map = r.as_object_mut().unwrap();
        map.remove("sku");
        map.insert("hour".into(), json!(24));
        map.insert("quantity".into(), json!("abc"));
        map.insert("emitted_at".into(), json!("2026-11-23 09:00"));
        let err = SalesLine::from_record(&r).unwrap_err().to_string();
        for field in
            ["sku: missing", "hour: expected an integer", "quantity: expected a decimal", "emitted_at: expected"]
        {
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn line_total_defaults_to_the_exact_product() {
        let mut r = record("R", 0, "x", "0.333", "0");
        let map = r.as_object_mut().unwrap();
        map.remove("line_total");
        map.insert("discount".into(), serde_json::from_str("0.10").unwrap());
        assert_eq!(SalesLine::from_record(&r).unwrap().line_total.to_string(), "0.73250");
    }

    #[test]
    fn deduper_keeps_the_first_of_each_key() {
        let mut d = Deduper::new();
        let a = SalesLine::from_record(&record("R1", 0, "a", "1", "2.50")).unwrap();
        let b = SalesLine::from_record(&record("R1", 1, "b", "1", "2.50")).unwrap();
        let c = SalesLine::from_record(&record("R2", 0, "c", "1", "2.50")).unwrap();
        let kept: Vec<bool> = [&a, &b, &a, &c, &b].iter().map(|l| d.first_time(l)).collect();
        assert_eq!(kept, [true, true, false, true, false]);
        assert_eq!((d.kept(), d.dropped()), (3, 2));
    }

    /// An arbitrary exported line, with hostile text.
    pub(crate) fn arb_line() -> impl Strategy<Value = SalesLine> {
        let text = prop_oneof![
            "\\PC{0,12}",
            "[=+\\-@'\t\r][a-z,\"\n ]{0,8}",
            Just("Crème \"brûlée\", 6×1,5L\nbio".to_string()),
        ];
        let dec = (any::<i64>(), 0u32..6).prop_map(|(m, s)| Decimal::new(m % 10_000_000_000, s));
        (
            ("[A-Z0-9-]{1,20}", any::<u32>(), text.clone(), 1_700_000_000i64..2_000_000_000),
            (text.clone(), text.clone(), text.clone(), dec.clone(), dec.clone(), proptest::option::of(dec.clone())),
            (dec.clone(), proptest::option::of("[A-Z]{3}"), any::<bool>(), proptest::option::of(text.clone())),
            (proptest::option::of(dec.clone()), proptest::option::of(dec), proptest::option::of(text)),
        )
            .prop_map(
                |(
                    (rid, line_no, store, secs),
                    (category, sku, name, q, p, disc),
                    (total, cur, loyal, city),
                    (lat, lon, manager),
                )| {
                    SalesLine {
                        receipt_id: rid,
                        line_no,
                        store_id: store,
                        emitted_at: Timestamp::from_second(secs).unwrap(),
                        date: "2026-11-23".parse().unwrap(),
                        hour: (secs % 24) as i8,
                        weekday: "Monday".into(),
                        category,
                        sku,
                        name,
                        quantity: q,
                        unit_price: p,
                        discount: disc,
                        line_total: total,
                        currency: cur,
                        is_return: is_negative(q),
                        has_loyalty_card: loyal,
                        city: city.filter(|c| !c.is_empty()),
                        region: None,
                        latitude: lat,
                        longitude: lon,
                        manager: manager.filter(|m| !m.is_empty()),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn rows_round_trip_through_csv(lines in proptest::collection::vec(arb_line(), 0..20)) {
            let mut w = CsvWriter::new(Vec::new(), &COLUMNS).unwrap();
            for l in &lines {
                w.serialize(l).unwrap();
            }
            let bytes = w.finish().unwrap();
            let back: Vec<SalesLine> =
                read_rows(&bytes[..], &COLUMNS).unwrap().map(|r| SalesLine::from_row(&r.unwrap()).unwrap()).collect();
            prop_assert_eq!(back, lines);
        }
    }
}
