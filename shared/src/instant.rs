//! Instants as receipts write them: strict RFC 3339 (`2026-11-23T09:15:00+01:00`, `…Z`, an optional `.` fraction
//! of up to 9 digits), inside a plausible range. jiff's own parser reads a superset (ISO 8601 basic format,
//! minutes-only times, comma fractions, six-digit years, offsets up to ±25:59), and its range reaches
//! -9999-01-02, where the hour arithmetic of the datasets fails; one parser here keeps validation, the map step,
//! the combiner and the export agreeing on what a time is.
//!
//! The range is [`EARLIEST`] (1970-01-01T00:00:00Z) to [`LATEST`] (9998-12-31T23:59:59.999999999Z): Unix seconds
//! are never negative, every key and dataset cell has a four-digit year, and any store's local time of an
//! instant in range is still a valid date.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;

/// The earliest instant a receipt may carry.
pub const EARLIEST: Timestamp = Timestamp::UNIX_EPOCH;
/// The latest instant a receipt may carry: the last nanosecond of year 9998, UTC.
pub const LATEST: Timestamp = Timestamp::constant(253_370_764_799, 999_999_999);

const EXAMPLE: &str = "e.g. 2026-11-23T09:15:00+01:00";

/// Whether an instant lies in [`EARLIEST`]..=[`LATEST`].
pub fn in_range(ts: Timestamp) -> bool {
    (EARLIEST..=LATEST).contains(&ts)
}

fn out_of_range(text: &str) -> String {
    format!("out of range: expected an instant from 1970-01-01T00:00:00Z to 9998-12-31T23:59:59Z, found {text:?}")
}

/// Parses a strict RFC 3339 instant with an explicit offset (`Z` or `±HH:MM`, hours 00–23). The error says what
/// is wrong: not RFC 3339, an invalid date or time, or a valid instant outside the accepted range.
pub fn parse_instant(text: &str) -> Result<Timestamp, String> {
    let not_rfc3339 = || format!("expected an RFC 3339 time with a UTC offset ({EXAMPLE}), found {text:?}");
    if let Some(year) = extended_year(text) {
        // ISO 8601's expanded years (`-009999`, `+002026`) are not RFC 3339; say so, or that it is out of range.
        return Err(if (1970..=9998).contains(&year) {
            format!("{}: a year has four digits", not_rfc3339())
        } else {
            out_of_range(text)
        });
    }
    let fields = Fields::read(text.as_bytes()).ok_or_else(not_rfc3339)?;
    if !(1970..=9998).contains(&fields.year) {
        return Err(out_of_range(text));
    }
    let invalid = |what: &str| format!("invalid {what} in {text:?} ({EXAMPLE})");
    if fields.offset_hours > 23 || fields.offset_minutes > 59 {
        return Err(invalid("UTC offset"));
    }
    // A leap second (`:60`) is read as the last second of its minute, as jiff and most systems do.
    let second = fields.second.min(59);
    let dt =
        DateTime::new(fields.year, fields.month, fields.day, fields.hour, fields.minute, second, fields.nanosecond)
            .map_err(|_| invalid("date or time"))?;
    if fields.second > 60 {
        return Err(invalid("date or time"));
    }
    let seconds = fields.offset_sign * (i32::from(fields.offset_hours) * 3600 + i32::from(fields.offset_minutes) * 60);
    let offset = Offset::from_seconds(seconds).map_err(|_| invalid("UTC offset"))?;
    let ts = offset.to_timestamp(dt).map_err(|_| out_of_range(text))?;
    if !in_range(ts) {
        return Err(out_of_range(text));
    }
    Ok(ts)
}

/// The year of an ISO 8601 expanded-year date (`±YYYYYY-`), if `text` starts with one.
fn extended_year(text: &str) -> Option<i32> {
    let b = text.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = b.get(1..7)?;
    (digits.iter().all(u8::is_ascii_digit) && b.get(7) == Some(&b'-'))
        .then(|| sign * digits.iter().fold(0, |acc, d| acc * 10 + i32::from(d - b'0')))
}

/// The fields of `YYYY-MM-DDTHH:MM:SS[.fffffffff](Z|±HH:MM)` (`t` and `z` in either case), unchecked.
struct Fields {
    year: i16,
    month: i8,
    day: i8,
    hour: i8,
    minute: i8,
    second: i8,
    nanosecond: i32,
    offset_sign: i32,
    offset_hours: u8,
    offset_minutes: u8,
}

impl Fields {
    fn read(b: &[u8]) -> Option<Fields> {
        let digits = |at: usize, n: usize| -> Option<i32> {
            let part = b.get(at..at + n)?;
            part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |acc, d| acc * 10 + i32::from(d - b'0')))
        };
        let byte = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
        let two = |at: usize| digits(at, 2).map(|d| d as i8);
        if !(byte(4, b"-") && byte(7, b"-") && byte(10, b"Tt") && byte(13, b":") && byte(16, b":")) {
            return None;
        }
        let mut fields = Fields {
            year: digits(0, 4)? as i16,
            month: two(5)?,
            day: two(8)?,
            hour: two(11)?,
            minute: two(14)?,
            second: two(17)?,
            nanosecond: 0,
            offset_sign: 1,
            offset_hours: 0,
            offset_minutes: 0,
        };
        let mut at = 19;
        if byte(at, b".") {
            let n = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=9).contains(&n) {
                return None;
            }
            fields.nanosecond = digits(at + 1, n)? * 10i32.pow(9 - n as u32);
            at += 1 + n;
        }
        match b.get(at..)? {
            [b'Z' | b'z'] => {}
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                fields.offset_sign = if *sign == b'-' { -1 } else { 1 };
                fields.offset_hours = digits(at + 1, 2)? as u8;
                fields.offset_minutes = digits(at + 4, 2)? as u8;
            }
            _ => return None,
        }
        Some(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rfc3339_instants_with_their_offset() {
        for (text, utc) in [
            ("2026-11-23T10:15:00+01:00", "2026-11-23T09:15:00Z"),
            ("2026-11-23T09:15:00Z", "2026-11-23T09:15:00Z"),
            ("2026-11-23t09:15:00z", "2026-11-23T09:15:00Z"),
            ("2026-11-23T09:29:54.940+01:00", "2026-11-23T08:29:54.94Z"),
            ("2026-11-23T09:15:00.123456789-05:30", "2026-11-23T14:45:00.123456789Z"),
            ("2026-11-23T09:15:00-00:00", "2026-11-23T09:15:00Z"),
            ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z"),
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
            ("9998-12-31T23:59:59Z", "9998-12-31T23:59:59Z"),
        ] {
            assert_eq!(parse_instant(text).map(|t| t.to_string()), Ok(utc.to_string()), "{text}");
        }
    }

    /// Issue 11 and 12: extreme years are out of range, said as such (not "expected an offset").
    #[test]
    fn issue_11_extreme_times_are_out_of_range() {
        for text in ["-009999-01-02T01:59:59Z", "9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z", "0000-01-01T00:00:00Z"]
        {
            let err = parse_instant(text).unwrap_err();
            assert!(err.starts_with("out of range"), "{text}: {err}");
        }
        assert_eq!(
            parse_instant("-009999-01-02T01:59:59Z").unwrap_err(),
            "out of range: expected an instant from 1970-01-01T00:00:00Z to 9998-12-31T23:59:59Z, found \"-009999-01-02T01:59:59Z\""
        );
        let err = parse_instant("1970-01-01T00:30:00+01:00").unwrap_err();
        assert!(err.starts_with("out of range"), "{err}");
    }

    /// Issue 12 "Lax validation": what jiff accepts but RFC 3339 does not.
    #[test]
    fn issue_12_not_rfc3339_is_refused() {
        for text in [
            "2026-11-30T10:15:00+25:59",
            "2026-11-30T10:15:00+24:00",
            "20261130T101500Z",
            "2026-11-30T10:15Z",
            "2026-11-30T10:15:00,5Z",
            "-000001-11-30T10:15:00Z",
            "+002026-11-30T10:15:00Z",
            "0000-11-30T10:15:00Z",
            "2026-11-30 10:15:00Z",
            "2026-11-30T10:15:00",
            "2026-11-30T10:15:00+0100",
            "2026-11-30T10:15:00.Z",
            "2026-11-30T10:15:00.1234567890Z",
            "2026-11-30T10:15:00Z[Europe/Paris]",
            "2026-02-30T10:15:00Z",
            "2026-11-30T24:00:00Z",
            "2026-11-30T10:15:61Z",
            "２026-11-30T10:15:00Z",
            "",
        ] {
            assert!(parse_instant(text).is_err(), "{text:?} was accepted");
        }
        assert_eq!(
            parse_instant("2026-11-30T10:15:00+24:00").unwrap_err(),
            "invalid UTC offset in \"2026-11-30T10:15:00+24:00\" (e.g. 2026-11-23T09:15:00+01:00)"
        );
        assert_eq!(
            parse_instant("20261130T101500Z").unwrap_err(),
            "expected an RFC 3339 time with a UTC offset (e.g. 2026-11-23T09:15:00+01:00), found \"20261130T101500Z\""
        );
    }
}
