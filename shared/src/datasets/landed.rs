//! The export's conversion of one landed object, line by line, as a pure state machine: each NDJSON line is
//! read into the contract ([`SalesLine::from_record`], the same reader ingest checks its outputs with), repeats
//! (same `receipt_id` and `line_no`) are dropped, and the rest become `sales_lines` rows and `hourly_sales`
//! aggregates. It lives in the core so ingest's tests and the property tests run exactly the export's reader;
//! the export only adds the I/O (gzip, S3) around it.

use super::CsvWriter;
use super::hourly_sales::{self, HourlyAggregator};
use super::sales_lines::{COLUMNS, Deduper, SalesLine};

/// Why one landed line was not exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRejected {
    /// 1-based line of the landed object.
    pub line: u64,
    pub reason: String,
}

/// Both datasets of one landed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub sales_lines: Vec<u8>,
    pub sales_rows: u64,
    pub hourly_sales: Vec<u8>,
    pub hourly_rows: u64,
    /// Non-empty lines read.
    pub records_read: u64,
    pub duplicates_dropped: u64,
}

/// One landed object being converted.
pub struct LandedConversion {
    lines: CsvWriter<Vec<u8>>,
    dedup: Deduper,
    hourly: HourlyAggregator,
    line_no: u64,
    records_read: u64,
}

impl Default for LandedConversion {
    fn default() -> Self {
        Self::new()
    }
}

impl LandedConversion {
    pub fn new() -> LandedConversion {
        LandedConversion {
            lines: CsvWriter::new(Vec::new(), &COLUMNS).expect("writing a header to memory"),
            dedup: Deduper::new(),
            hourly: HourlyAggregator::new(),
            line_no: 0,
            records_read: 0,
        }
    }

    /// Converts the next line of the object (its newline may be included); blank lines are skipped. A line
    /// that is not a sales line comes back as a [`LineRejected`]; the conversion goes on.
    pub fn add(&mut self, line: &[u8]) -> Result<(), LineRejected> {
        self.line_no += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            return Ok(());
        }
        self.records_read += 1;
        let reject = |reason: String| LineRejected { line: self.line_no, reason };
        let value = serde_json::from_slice(text).map_err(|e| reject(format!("invalid JSON: {e}")))?;
        let line = SalesLine::from_record(&value).map_err(|e| reject(e.to_string()))?;
        if self.dedup.first_time(&line) {
            // The aggregate first: a line whose sum would overflow is rejected from both datasets, not half-written.
            self.hourly.add(&line).map_err(|e| reject(e.to_string()))?;
            self.lines.serialize(&line).map_err(|e| reject(e.to_string()))?;
        }
        Ok(())
    }

    /// Counts a line the reader did not hold because it is longer than `max` bytes: it is rejected.
    pub fn too_long(&mut self, max: usize) -> LineRejected {
        self.line_no += 1;
        self.records_read += 1;
        LineRejected { line: self.line_no, reason: format!("line longer than {max} bytes") }
    }

    /// Both files.
    pub fn finish(self) -> Converted {
        let sales_rows = self.lines.rows();
        let sales_lines = self.lines.finish().expect("writing to memory");
        let (hourly_sales, hourly_rows) = hourly_sales::write_csv(self.hourly.into_rows()).expect("writing to memory");
        Converted {
            sales_lines,
            sales_rows,
            hourly_sales,
            hourly_rows,
            records_read: self.records_read,
            duplicates_dropped: self.dedup.dropped(),
        }
    }
}
