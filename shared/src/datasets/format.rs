//! How each kind of dataset cell is written and read, as serde `with` modules, so a dataset row is one serde
//! struct and the csv crate derives its header and cells from it: text neutralized ([`super::cell`]), decimals
//! with exactly their digits, instants in UTC to the second, dates `YYYY-MM-DD`, flags `1`/`0`, and an empty
//! cell for `None`. [`columns_of`] reads a row struct's column names from its serde definition.

use std::borrow::Cow;

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::Serializer;

use super::cell::{neutralize, restore};
use super::{format_utc_second, parse_utc_second};
use crate::decimal::parse_decimal;

fn cell<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'de, str>, D::Error> {
    struct CellVisitor;
    impl<'de> Visitor<'de> for CellVisitor {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a text cell")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_string()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v))
        }
    }
    d.deserialize_str(CellVisitor)
}

/// Text, neutralized when written, restored when read.
pub mod text {
    use super::*;
    pub fn serialize<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&neutralize(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(restore(&cell(d)?).to_string())
    }
}

/// Optional text: `None` is an empty cell (and an empty cell reads back as `None`).
pub mod opt_text {
    use super::*;
    pub fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_deref().map(neutralize).as_deref().unwrap_or(""))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let c = cell(d)?;
        Ok((!c.is_empty()).then(|| restore(&c).to_string()))
    }
}

fn read_decimal<E: de::Error>(c: &str) -> Result<Decimal, E> {
    parse_decimal(c).ok_or_else(|| E::custom(format!("expected a decimal, found {c:?}")))
}

/// An exact decimal, written with exactly its digits.
pub mod num {
    use super::*;
    pub fn serialize<S: Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        read_decimal(&cell(d)?)
    }
}

/// An optional exact decimal: `None` is an empty cell.
pub mod opt_num {
    use super::*;
    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_str(""),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let c = cell(d)?;
        if c.is_empty() { Ok(None) } else { read_decimal(&c).map(Some) }
    }
}

/// An instant in UTC to the second: `2026-11-23 08:29:54` ([`format_utc_second`]).
pub mod utc_second {
    use super::*;
    pub fn serialize<S: Serializer>(v: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_utc_second(*v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let c = cell(d)?;
        parse_utc_second(&c).ok_or_else(|| de::Error::custom(format!("expected YYYY-MM-DD HH:MM:SS, found {c:?}")))
    }
}

/// A civil date, `YYYY-MM-DD`.
pub mod date {
    use super::*;
    pub fn serialize<S: Serializer>(v: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let c = cell(d)?;
        c.parse().map_err(|_| de::Error::custom(format!("expected YYYY-MM-DD, found {c:?}")))
    }
}

/// A flag: `1` or `0` (QuickSight sums them as integers).
pub mod flag {
    use super::*;
    pub fn serialize<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *v { "1" } else { "0" })
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match &*cell(d)? {
            "1" => Ok(true),
            "0" => Ok(false),
            other => Err(de::Error::custom(format!("expected 1 or 0, found {other:?}"))),
        }
    }
}

/// The field names of a struct's serde definition, in declaration order: a row struct's columns. Asks the
/// struct's `Deserialize` impl for them (it names its fields to the deserializer), so they cannot drift from it.
pub fn columns_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Names(&'static [&'static str]);
    #[derive(Debug)]
    struct Done;
    impl std::fmt::Display for Done {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("field names read")
        }
    }
    impl std::error::Error for Done {}
    impl de::Error for Done {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Done
        }
    }
    struct Probe<'a>(&'a mut Option<Names>);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = Done;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Done> {
            Err(Done)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Done> {
            *self.0 = Some(Names(fields));
            Err(Done)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut names = None;
    let _ = T::deserialize(Probe(&mut names));
    names.map_or(&[], |n| n.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        #[serde(with = "text")]
        name: String,
        #[serde(with = "opt_text")]
        city: Option<String>,
        #[serde(with = "num")]
        price: Decimal,
        #[serde(with = "opt_num")]
        discount: Option<Decimal>,
        #[serde(with = "utc_second")]
        at: Timestamp,
        #[serde(with = "date")]
        day: Date,
        #[serde(with = "flag")]
        card: bool,
    }

    #[test]
    fn cells_keep_todays_formats_and_read_back() {
        let row = Row {
            name: "=SUM(A1)".into(),
            city: None,
            price: "2.50".parse().unwrap(),
            discount: Some("-0.10".parse().unwrap()),
            at: "2026-11-23T09:29:54+01:00".parse().unwrap(),
            day: "2026-11-23".parse().unwrap(),
            card: true,
        };
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        w.serialize(&row).unwrap();
        let bytes = w.into_inner().unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "'=SUM(A1),,2.50,-0.10,2026-11-23 08:29:54,2026-11-23,1\n"
        );
        let back: Row =
            csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[..]).deserialize().next().unwrap().unwrap();
        assert_eq!(back, row);
        assert_eq!(columns_of::<Row>(), ["name", "city", "price", "discount", "at", "day", "card"]);
    }
}
