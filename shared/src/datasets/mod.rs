//! The CSV datasets QuickSight imports: [`sales_lines`] (one row per receipt line), [`hourly_sales`] (one row
//! per UTC hour × store × category) and [`forecast_hourly`] (one row per forecast hour × chain or category; not
//! yet in [`Dataset`], whose members the compaction and manifests walk). Every file of a dataset has a header row and the same columns in the same
//! order; files are RFC 4180 (written by the `csv` crate, CRLF line ends, quotes only where needed), UTF-8
//! without BOM; decimals keep exactly their digits; text cells a spreadsheet would run as a formula are
//! neutralized ([`cell`]).

pub mod cell;
pub mod forecast_hourly;
pub mod format;
pub mod hourly_sales;
pub mod landed;
pub mod sales_lines;

use std::io::{Read, Write};

use jiff::Timestamp;
use rust_decimal::Decimal;

use crate::decimal::parse_decimal;

/// The datasets, by name: the name is the folder under `datasets/` and `manifests/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dataset {
    SalesLines,
    HourlySales,
}

impl Dataset {
    pub const ALL: [Dataset; 2] = [Dataset::SalesLines, Dataset::HourlySales];

    pub fn name(self) -> &'static str {
        match self {
            Dataset::SalesLines => "sales_lines",
            Dataset::HourlySales => "hourly_sales",
        }
    }

    /// The header row, in file order.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Dataset::SalesLines => *sales_lines::COLUMNS,
            Dataset::HourlySales => &hourly_sales::COLUMNS,
        }
    }
}

impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A CSV row that does not read back as a dataset row: which column and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct RowError {
    pub column: String,
    pub message: String,
}

impl RowError {
    pub fn new(column: impl Into<String>, message: impl Into<String>) -> Self {
        RowError { column: column.into(), message: message.into() }
    }
}

/// Reads the cells of one dataset row back, each error naming its column.
pub struct RowReader<'a> {
    row: &'a csv::StringRecord,
    columns: &'static [&'static str],
}

impl<'a> RowReader<'a> {
    /// Checks the row has the dataset's number of columns.
    pub fn new(row: &'a csv::StringRecord, columns: &'static [&'static str]) -> Result<Self, RowError> {
        if row.len() != columns.len() {
            return Err(RowError::new("", format!("expected {} columns, found {}", columns.len(), row.len())));
        }
        Ok(RowReader { row, columns })
    }

    /// The raw cell.
    pub fn cell(&self, i: usize) -> &'a str {
        self.row.get(i).unwrap_or_default()
    }

    /// An error about column `i`.
    pub fn error(&self, i: usize, message: &str) -> RowError {
        RowError::new(self.columns[i], message)
    }

    /// A text cell, formula neutralization undone.
    pub fn text(&self, i: usize) -> String {
        cell::restore(self.cell(i)).to_string()
    }

    /// A text cell, `None` when empty.
    pub fn opt_text(&self, i: usize) -> Option<String> {
        (!self.cell(i).is_empty()).then(|| self.text(i))
    }

    /// An exact decimal.
    pub fn num(&self, i: usize) -> Result<Decimal, RowError> {
        parse_decimal(self.cell(i)).ok_or_else(|| self.error(i, "expected a decimal"))
    }

    /// An exact decimal, `None` when empty.
    pub fn opt_num(&self, i: usize) -> Result<Option<Decimal>, RowError> {
        if self.cell(i).is_empty() { Ok(None) } else { self.num(i).map(Some) }
    }

    /// An integer of any width, `what` naming the expected kind in the error.
    pub fn parse<T: std::str::FromStr>(&self, i: usize, what: &str) -> Result<T, RowError> {
        self.cell(i).parse().map_err(|_| self.error(i, what))
    }
}

/// A dataset file being written: the header goes first, then rows; counts rows and bytes.
pub struct CsvWriter<W: Write> {
    inner: csv::Writer<Counting<W>>,
    rows: u64,
}

impl<W: Write> CsvWriter<W> {
    /// Starts a file with its header row.
    pub fn new(out: W, columns: &[&str]) -> csv::Result<Self> {
        let mut inner = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .has_headers(false)
            .from_writer(Counting { inner: out, bytes: 0 });
        inner.write_record(columns)?;
        Ok(CsvWriter { inner, rows: 0 })
    }

    pub fn write_row<I, T>(&mut self, cells: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.rows += 1;
        self.inner.write_record(cells)
    }

    /// Writes one row struct (a dataset row type whose serde form gives its cells, in column order).
    pub fn serialize(&mut self, row: &impl serde::Serialize) -> csv::Result<()> {
        self.rows += 1;
        self.inner.serialize(row)
    }

    /// Data rows written so far (the header is not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes written so far, header included (buffered bytes included once flushed; exact after `finish`).
    pub fn bytes_flushed(&self) -> u64 {
        self.inner.get_ref().bytes
    }

    /// Flushes and gives back the output.
    pub fn finish(self) -> std::io::Result<W> {
        self.inner.into_inner().map(|c| c.inner).map_err(|e| std::io::Error::other(e.to_string()))
    }
}

struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads one row into a row struct, by position (the header was checked by [`read_rows`]); the error names
/// the column.
pub fn read_row<T: serde::de::DeserializeOwned>(row: &csv::StringRecord, columns: &[&str]) -> Result<T, RowError> {
    if row.len() != columns.len() {
        return Err(RowError::new("", format!("expected {} columns, found {}", columns.len(), row.len())));
    }
    row.deserialize(None).map_err(|e| match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let column = err.field().and_then(|i| columns.get(i as usize)).copied().unwrap_or_default();
            let message = match err.kind() {
                csv::DeserializeErrorKind::Message(m) => m.clone(),
                other => other.to_string(),
            };
            RowError::new(column, message)
        }
        _ => RowError::new("", e.to_string()),
    })
}

/// Reads a dataset file: checks the header is exactly `columns`, then yields the data rows.
pub fn read_rows<R: Read>(input: R, columns: &[&str]) -> Result<csv::StringRecordsIntoIter<R>, RowError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
    let header = reader.headers().map_err(|e| RowError::new("", format!("unreadable header: {e}")))?;
    if header.iter().ne(columns.iter().copied()) {
        return Err(RowError::new(
            "",
            format!("unexpected header {:?}, expected {columns:?}", header.iter().collect::<Vec<_>>()),
        ));
    }
    Ok(reader.into_records())
}

/// `2026-11-23 08:29:54`: an instant in UTC to the second, a format QuickSight parses as a date.
pub fn format_utc_second(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// The inverse of [`format_utc_second`], for instants in [`crate::instant`]'s range only (what a dataset holds).
pub fn parse_utc_second(text: &str) -> Option<Timestamp> {
    let dt = jiff::fmt::strtime::parse("%Y-%m-%d %H:%M:%S", text).ok()?.to_datetime().ok()?;
    jiff::tz::TimeZone::UTC.to_timestamp(dt).ok().filter(|ts| crate::instant::in_range(*ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_have_a_header_crlf_and_no_bom() {
        let mut w = CsvWriter::new(Vec::new(), &["a", "b"]).unwrap();
        w.write_row(["x,y", "say \"hi\"\nthere"]).unwrap();
        assert_eq!(w.rows(), 1);
        let bytes = w.finish().unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), "a,b\r\n\"x,y\",\"say \"\"hi\"\"\nthere\"\r\n");
    }

    #[test]
    fn a_wrong_header_is_refused() {
        assert!(read_rows(&b"a,c\r\n1,2\r\n"[..], &["a", "b"]).is_err());
        assert_eq!(read_rows(&b"a,b\r\n1,2\r\n"[..], &["a", "b"]).unwrap().count(), 1);
    }

    #[test]
    fn utc_seconds_round_trip() {
        let ts: Timestamp = "2026-11-23T09:15:02+01:00".parse().unwrap();
        assert_eq!(format_utc_second(ts), "2026-11-23 08:15:02");
        assert_eq!(parse_utc_second("2026-11-23 08:15:02"), Some(ts));
        assert_eq!(parse_utc_second("2026-11-23T08:15:02"), None);
    }
}
