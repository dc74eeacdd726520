//! Exact decimals in and out of JSON. Money and quantities never pass through `f64`: JSON numbers keep their
//! text (serde_json's `arbitrary_precision`) and are parsed straight into [`Decimal`]; numeric strings
//! (`"19.99"`) are accepted the same way.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Number, Value};

use crate::view::View;

/// Reads an exact decimal from a JSON number or numeric string. The error says what was found instead.
pub fn decimal_from_value(value: &Value) -> Result<Decimal, String> {
    decimal_from_view(&View::of(value))
}

/// [`decimal_from_value`] on a [`View`] (a value of a tree or a slice of the input).
pub fn decimal_from_view(value: &View) -> Result<Decimal, String> {
    let text = match value {
        View::Number(n) => n.as_ref(),
        View::String(s) => s.as_ref(),
        other => return Err(format!("expected a decimal, found {}", other.describe())),
    };
    parse_decimal(text).ok_or_else(|| match number_digits(text) {
        Some(digits) if digits > 28 => {
            format!("{digits} significant digits, more than the 28 an exact decimal holds: {}", value.describe())
        }
        Some(_) => format!("out of range: {} does not fit an exact decimal (28 digits)", value.describe()),
        None => format!("expected a decimal, found {}", value.describe()),
    })
}

/// The number of significant digits of decimal text (`-0012.340e5` has 5), or `None` when the text is not a
/// number at all: what tells "too precise" or "too large" apart from "not a decimal" in an error.
fn number_digits(text: &str) -> Option<usize> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    if int.is_empty() || !all_digits(int) || !all_digits(frac) || !exponent_ok || mantissa.ends_with('.') {
        return None;
    }
    let digits: String = format!("{int}{frac}");
    Some(digits.trim_start_matches('0').len().max(1))
}

/// Parses decimal text exactly: `19.99`, `-3`, `1e2`, `2.5E-1`. No rounding: text with more precision than a
/// [`Decimal`] holds is an error, not a silently rounded number.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return Decimal::from_str_exact(text).ok();
    };
    let mut d = Decimal::from_str_exact(mantissa).ok()?;
    let exponent: i32 = exponent.parse().ok()?;
    if exponent < 0 {
        let scale = d.scale().checked_add(exponent.unsigned_abs())?;
        (scale <= 28).then_some(())?;
        d.set_scale(scale).ok()?;
    } else {
        for _ in 0..exponent {
            d = d.checked_mul(Decimal::TEN)?;
        }
    }
    Some(d)
}

/// Writes a decimal as a JSON number with exactly its digits (`2.50` stays `2.50`).
pub fn decimal_to_value(d: Decimal) -> Value {
    Value::Number(Number::from_str(&d.to_string()).expect("a Decimal always prints as a valid JSON number"))
}

/// A short description of a JSON value for error messages: `"abc"`, `null`, `an object`.
pub fn describe(value: &Value) -> String {
    View::of(value).describe()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_numeric_strings_parse_exactly() {
        let from_number = decimal_from_value(&serde_json::from_str::<Value>("19.99").unwrap()).unwrap();
        let from_string = decimal_from_value(&json!("19.99")).unwrap();
        assert_eq!(from_number, from_string);
        assert_eq!(from_number.to_string(), "19.99");
        // A value f64 cannot represent exactly stays exact.
        let big = decimal_from_value(&serde_json::from_str::<Value>("12345678901234567.89").unwrap()).unwrap();
        assert_eq!(big.to_string(), "12345678901234567.89");
    }

    #[test]
    fn scientific_notation_is_exact_or_refused() {
        assert_eq!(parse_decimal("1e2").unwrap().to_string(), "100");
        assert_eq!(parse_decimal("2.5E-1").unwrap().normalize().to_string(), "0.25");
        assert!(parse_decimal("1e40").is_none());
    }

    #[test]
    fn bad_input_says_what_was_found() {
        assert_eq!(decimal_from_value(&json!("abc")).unwrap_err(), "expected a decimal, found \"abc\"");
        assert_eq!(decimal_from_value(&json!(null)).unwrap_err(), "expected a decimal, found null");
        assert_eq!(decimal_from_value(&json!({"a": 1})).unwrap_err(), "expected a decimal, found an object");
        assert!(parse_decimal(" 1").is_none());
        assert!(parse_decimal("").is_none());
        assert!(parse_decimal("0.1234567890123456789012345678901").is_none(), "too precise is refused");
    }

    /// Issue 12 "Errors that mislead": a number too precise or too large says so.
    #[test]
    fn issue_12_too_many_digits_is_said_so() {
        let many = serde_json::from_str::<Value>("123456789012345678901234567890.123456789").unwrap();
        assert_eq!(
            decimal_from_value(&many).unwrap_err(),
            "39 significant digits, more than the 28 an exact decimal holds: 123456789012345678901234567890.123456789"
        );
        assert_eq!(
            decimal_from_value(&json!("0.1234567890123456789012345678901")).unwrap_err(),
            "31 significant digits, more than the 28 an exact decimal holds: \"0.1234567890123456789012345678901\""
        );
        let huge = serde_json::from_str::<Value>("1e400").unwrap();
        assert!(decimal_from_value(&huge).unwrap_err().starts_with("out of range: 1e+400"));
        assert_eq!(decimal_from_value(&json!("1.2.3")).unwrap_err(), "expected a decimal, found \"1.2.3\"");
        assert_eq!(decimal_from_value(&json!("1e")).unwrap_err(), "expected a decimal, found \"1e\"");
    }

    #[test]
    fn decimals_round_trip_through_json_text() {
        let v = decimal_to_value(Decimal::from_str("2.50").unwrap());
        assert_eq!(serde_json::to_string(&v).unwrap(), "2.50");
    }
}
