//! Input JSON read strictly: an object that repeats a key is refused. serde_json (like most parsers) keeps the
//! last value of a repeated key silently, so `{"unit_price": 1, "unit_price": 1000}` would be validated as one
//! thing by one reader and another by the next; RFC 8259 leaves such objects' meaning undefined. Both ways a
//! pipeline runs a payload ([`crate::Pipeline::apply_json`] and the borrowed fast path) check it here first.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// `Ok` when `payload` is JSON with no object repeating a key; otherwise serde_json's error, which for a
/// repeated key reads `duplicate key "sku" at line 1 column 40`.
pub fn check_unique_keys(payload: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    Unique::deserialize(&mut de)?;
    de.end()
}

/// Any JSON value, walked without being built, objects checked for repeated keys.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Unique, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_none<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Unique, D::Error> {
        Unique::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    /// Small objects (receipts, lines) are checked against a short list; large ones against a set, so a
    /// payload of one huge object stays linear.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut few: Vec<Cow<'de, str>> = Vec::new();
        let mut many: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let repeated = if many.is_empty() && few.len() < 32 {
                let seen = few.contains(&key);
                few.push(key.clone());
                seen
            } else {
                many.extend(few.drain(..));
                !many.insert(key.clone())
            };
            if repeated {
                return Err(de::Error::custom(format_args!("duplicate key {:?}", key.as_ref())));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

/// An object key, borrowed from the payload when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 "Lax validation": a repeated key is refused, naming the key, at any depth.
    #[test]
    fn issue_12_duplicate_keys_are_refused_naming_the_key() {
        let err = check_unique_keys(br#"{"receipt_id":"R1","lines":[{"sku":"A","unit_price":1,"unit_price":1000}]}"#)
            .unwrap_err();
        assert_eq!(err.to_string(), "duplicate key \"unit_price\" at line 1 column 66");
        assert!(
            check_unique_keys(br#"{"a":1,"\u0061":2}"#).unwrap_err().to_string().starts_with("duplicate key \"a\"")
        );
        let many: String = (0..100).map(|i| format!("\"k{i}\":{i},")).collect();
        assert!(check_unique_keys(format!("{{{many}\"k7\":0}}").as_bytes()).is_err(), "past the short list too");
        assert!(check_unique_keys(format!("{{{many}\"k100\":0}}").as_bytes()).is_ok());
        // Same names in different objects, numbers of every shape, and nesting are fine.
        assert!(check_unique_keys(br#"{"a":{"a":1e400,"b":[{"a":-0.5},{"a":null}]},"b":"a"}"#).is_ok());
        assert!(check_unique_keys(b"{} x").is_err(), "trailing input");
    }
}
