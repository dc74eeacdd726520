//! `hourly_sales`: one row per UTC hour × store × category (× currency, one per store in practice), the small,
//! additive dataset the dashboards are built on (hourly sales, category tree map, geo map, sales by manager,
//! turnover per category vs the same day last week). Columns, in this order in every file:
//!
//! | column | content |
//! |---|---|
//! | `hour_start_utc` | the UTC hour the lines fall in, `YYYY-MM-DD HH:00:00` (part of the key) |
//! | `date`, `hour`, `weekday` | that hour in store-local time (what the dashboards group by) |
//! | `store_id` | key |
//! | `city`, `region`, `latitude`, `longitude`, `manager` | the store's reference data |
//! | `category`, `currency` | key |
//! | `turnover` | exact sum of `line_total` (returns count negative) |
//! | `lines` | number of receipt lines |
//! | `receipts` | number of distinct receipts with at least one line in the group |
//! | `returns` | number of return lines (negative quantity) |
//!
//! `turnover`, `lines` and `returns` add up across files; `receipts` does only when no receipt is split across
//! files, which is why compaction recomputes the hour from the de-duplicated `sales_lines`. The rolling rollup
//! of the open hour ([`HourlyRollup`]) sums files as they are, so until the hour is compacted its `receipts`
//! over-counts a receipt whose lines landed in several objects, and all four columns count a line twice when a
//! redelivery put it in two landed objects.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;

use super::cell::neutralize;
use super::sales_lines::SalesLine;
use super::{CsvWriter, RowError, RowReader, format_utc_second, parse_utc_second};

/// The columns of `hourly_sales`, in file order.
pub const COLUMNS: [&str; 16] = [
    "hour_start_utc",
    "date",
    "hour",
    "weekday",
    "store_id",
    "city",
    "region",
    "latitude",
    "longitude",
    "manager",
    "category",
    "currency",
    "turnover",
    "lines",
    "receipts",
    "returns",
];

/// The grouping key of a row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HourlyKey {
    pub hour_start_utc: Timestamp,
    pub store_id: String,
    pub category: String,
    pub currency: Option<String>,
}

/// One `hourly_sales` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyRow {
    pub key: HourlyKey,
    pub date: Date,
    pub hour: i8,
    pub weekday: String,
    pub city: Option<String>,
    pub region: Option<String>,
    pub latitude: Option<Decimal>,
    pub longitude: Option<Decimal>,
    pub manager: Option<String>,
    pub turnover: Decimal,
    pub lines: u64,
    pub receipts: u64,
    pub returns: u64,
}

/// The start of the UTC hour an instant falls in. Lines carry instants of [`crate::instant`]'s range, whose
/// hours all start in range; an instant before the first whole hour jiff holds gives that instant itself.
pub fn hour_start(ts: Timestamp) -> Timestamp {
    let s = ts.as_second();
    Timestamp::from_second(s - s.rem_euclid(3600)).unwrap_or(ts)
}

/// A sum of `hourly_sales` that does not fit its column: the line or row is refused, the group left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hourly_sales.{column} overflows: the sum for {store_id} / {category} at {hour} does not fit")]
pub struct Overflow {
    /// `turnover`, `lines`, `receipts` or `returns`.
    pub column: &'static str,
    pub hour: String,
    pub store_id: String,
    pub category: String,
}

impl Overflow {
    fn of(column: &'static str, key: &HourlyKey) -> Overflow {
        Overflow {
            column,
            hour: format_utc_second(key.hour_start_utc),
            store_id: key.store_id.clone(),
            category: key.category.clone(),
        }
    }
}

/// `sum + n` for each counted column, or the first column that overflows.
fn add_counts(
    sum: &HourlyRow,
    turnover: Decimal,
    counts: [(&'static str, u64, u64); 3],
) -> Result<(Decimal, [u64; 3]), Overflow> {
    let turnover = sum.turnover.checked_add(turnover).ok_or_else(|| Overflow::of("turnover", &sum.key))?;
    let mut out = [0; 3];
    for (slot, (column, total, n)) in out.iter_mut().zip(counts) {
        *slot = total.checked_add(n).ok_or_else(|| Overflow::of(column, &sum.key))?;
    }
    Ok((turnover, out))
}

impl HourlyRow {
    /// The CSV cells, in [`COLUMNS`] order.
    pub fn cells(&self) -> [Cow<'_, str>; 16] {
        fn opt_text(s: &Option<String>) -> Cow<'_, str> {
            s.as_deref().map(neutralize).unwrap_or(Cow::Borrowed(""))
        }
        let opt_num = |d: Option<Decimal>| d.map(|d| Cow::Owned(d.to_string())).unwrap_or(Cow::Borrowed(""));
        [
            Cow::Owned(format_utc_second(self.key.hour_start_utc)),
            Cow::Owned(self.date.to_string()),
            Cow::Owned(self.hour.to_string()),
            neutralize(&self.weekday),
            neutralize(&self.key.store_id),
            opt_text(&self.city),
            opt_text(&self.region),
            opt_num(self.latitude),
            opt_num(self.longitude),
            opt_text(&self.manager),
            neutralize(&self.key.category),
            opt_text(&self.key.currency),
            Cow::Owned(self.turnover.to_string()),
            Cow::Owned(self.lines.to_string()),
            Cow::Owned(self.receipts.to_string()),
            Cow::Owned(self.returns.to_string()),
        ]
    }

    /// Reads a row back (the inverse of [`HourlyRow::cells`]).
    pub fn from_row(row: &csv::StringRecord) -> Result<HourlyRow, RowError> {
        let r = RowReader::new(row, &COLUMNS)?;
        Ok(HourlyRow {
            key: HourlyKey {
                hour_start_utc: parse_utc_second(r.cell(0))
                    .ok_or_else(|| r.error(0, "expected YYYY-MM-DD HH:MM:SS"))?,
                store_id: r.text(4),
                category: r.text(10),
                currency: r.opt_text(11),
            },
            date: r.parse(1, "expected YYYY-MM-DD")?,
            hour: r.parse(2, "expected an hour")?,
            weekday: r.text(3),
            city: r.opt_text(5),
            region: r.opt_text(6),
            latitude: r.opt_num(7)?,
            longitude: r.opt_num(8)?,
            manager: r.opt_text(9),
            turnover: r.num(12)?,
            lines: r.parse(13, "expected a count")?,
            receipts: r.parse(14, "expected a count")?,
            returns: r.parse(15, "expected a count")?,
        })
    }
}

fn receipt_hash(receipt_id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    receipt_id.hash(&mut h);
    h.finish()
}

#[derive(Debug)]
struct Group {
    row: HourlyRow,
    receipts: HashSet<u64>,
}

/// Sums lines into `hourly_sales` rows. Feed it de-duplicated lines; rows come out sorted by key, so the same
/// lines always give the same file.
#[derive(Debug, Default)]
pub struct HourlyAggregator {
    groups: BTreeMap<HourlyKey, Group>,
}

impl HourlyAggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a line to its group. An overflowing sum is refused with the column that overflows, and the group
    /// stays as it was (the caller rejects the line).
    pub fn add(&mut self, line: &SalesLine) -> Result<(), Overflow> {
        let key = HourlyKey {
            hour_start_utc: hour_start(line.emitted_at),
            store_id: line.store_id.clone(),
            category: line.category.clone(),
            currency: line.currency.clone(),
        };
        if let Some(group) = self.groups.get_mut(&key) {
            let row = &group.row;
            let (turnover, [lines, returns, _]) = add_counts(
                row,
                line.line_total,
                [("lines", row.lines, 1), ("returns", row.returns, u64::from(line.is_return())), ("receipts", 0, 0)],
            )?;
            group.row.turnover = turnover;
            group.row.lines = lines;
            group.row.returns = returns;
            group.receipts.insert(receipt_hash(&line.receipt_id));
            return Ok(());
        }
        let group = self.groups.entry(key).or_insert_with_key(|key| Group {
            row: HourlyRow {
                key: key.clone(),
                date: line.date,
                hour: line.hour,
                weekday: line.weekday.clone(),
                city: line.city.clone(),
                region: line.region.clone(),
                latitude: line.latitude,
                longitude: line.longitude,
                manager: line.manager.clone(),
                turnover: Decimal::ZERO,
                lines: 0,
                receipts: 0,
                returns: 0,
            },
            receipts: HashSet::new(),
        });
        group.row.turnover = line.line_total;
        group.row.lines = 1;
        group.row.returns = u64::from(line.is_return());
        group.receipts.insert(receipt_hash(&line.receipt_id));
        Ok(())
    }

    /// Number of groups so far.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The rows, sorted by key.
    pub fn into_rows(self) -> Vec<HourlyRow> {
        self.groups.into_values().map(|g| HourlyRow { receipts: g.receipts.len() as u64, ..g.row }).collect()
    }
}

/// An `hourly_sales` CSV file (header and rows, in memory) and its row count.
pub fn write_csv(rows: impl IntoIterator<Item = HourlyRow>) -> csv::Result<(Vec<u8>, u64)> {
    let mut out = CsvWriter::new(Vec::new(), &COLUMNS)?;
    for row in rows {
        out.write_row(row.cells().iter().map(|c| c.as_bytes()))?;
    }
    let rows = out.rows();
    Ok((out.finish()?, rows))
}

/// Sums `hourly_sales` rows with the same key: the rolling rollup of an open hour, whose inputs are the hour's
/// pieces and its previous rollup. `turnover`, `lines` and `returns` add up exactly; `receipts` is the sum of
/// each file's distinct count (see the module docs). A key keeps the reference data of its first row. Rows come
/// out sorted by key, so the same inputs in any order give the same file.
#[derive(Debug, Default)]
pub struct HourlyRollup {
    rows: BTreeMap<HourlyKey, HourlyRow>,
}

impl HourlyRollup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a row to the sum of its key. An overflowing sum is refused with the column that overflows, and
    /// the sum stays as it was.
    pub fn add(&mut self, row: HourlyRow) -> Result<(), Overflow> {
        match self.rows.entry(row.key.clone()) {
            Entry::Vacant(e) => {
                e.insert(row);
            }
            Entry::Occupied(mut e) => {
                let sum = e.get_mut();
                let (turnover, [lines, receipts, returns]) = add_counts(
                    sum,
                    row.turnover,
                    [
                        ("lines", sum.lines, row.lines),
                        ("receipts", sum.receipts, row.receipts),
                        ("returns", sum.returns, row.returns),
                    ],
                )?;
                sum.turnover = turnover;
                sum.lines = lines;
                sum.receipts = receipts;
                sum.returns = returns;
            }
        }
        Ok(())
    }

    /// Number of rows so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, sorted by key.
    pub fn into_rows(self) -> Vec<HourlyRow> {
        self.rows.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::sales_lines::tests::{arb_line, record};
    use crate::datasets::{CsvWriter, read_rows};
    use proptest::prelude::*;

    #[test]
    fn lines_sum_per_hour_store_and_category() {
        let mut agg = HourlyAggregator::new();
        for (rid, no, q, total) in [("R1", 0, "2", "5.00"), ("R1", 1, "-1", "-2.50"), ("R2", 0, "1", "2.50")] {
            agg.add(&SalesLine::from_record(&record(rid, no, "Baguette", q, total)).unwrap()).unwrap();
        }
        let rows = agg.into_rows();
        assert_eq!(rows.len(), 1);
        let cells: Vec<String> = rows[0].cells().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            cells,
            [
                "2026-11-23 08:00:00",
                "2026-11-23",
                "9",
                "Monday",
                "S00042",
                "Lyon",
                "Auvergne-Rhône-Alpes",
                "45.7300",
                "4.8585",
                "Chloé Girard",
                "Bakery",
                "EUR",
                "5.00",
                "3",
                "2",
                "1"
            ]
        );
    }

    /// Issue 11: sums that do not fit are refused with the column, the group unchanged; nothing panics.
    #[test]
    fn issue_11_overflowing_sums_are_refused_not_panics() {
        let mut line = SalesLine::from_record(&record("R1", 0, "Baguette", "1", "2.50")).unwrap();
        line.line_total = Decimal::MAX;
        let mut agg = HourlyAggregator::new();
        agg.add(&line).unwrap();
        line.line_no = 1;
        let err = agg.add(&line).unwrap_err();
        assert_eq!(err.column, "turnover");
        assert_eq!(
            err.to_string(),
            "hourly_sales.turnover overflows: the sum for S00042 / Bakery at 2026-11-23 08:00:00 does not fit"
        );
        let rows = agg.into_rows();
        assert_eq!((rows[0].turnover, rows[0].lines), (Decimal::MAX, 1), "the refused line left no trace");

        let mut rollup = HourlyRollup::new();
        let row = rows[0].clone();
        rollup.add(HourlyRow { turnover: Decimal::ONE, lines: u64::MAX, ..row.clone() }).unwrap();
        assert_eq!(rollup.add(HourlyRow { turnover: Decimal::ONE, ..row.clone() }).unwrap_err().column, "lines");
        assert_eq!(rollup.add(HourlyRow { lines: 0, ..row.clone() }).unwrap_err().column, "turnover");
        assert_eq!(rollup.into_rows()[0].lines, u64::MAX);
    }

    proptest! {
        #[test]
        fn sums_are_preserved_and_rows_round_trip(lines in proptest::collection::vec(arb_line(), 0..40)) {
            let mut agg = HourlyAggregator::new();
            for l in &lines {
                agg.add(l).unwrap();
            }
            let rows = agg.into_rows();
            let turnover: Decimal = rows.iter().map(|r| r.turnover).sum();
            prop_assert_eq!(turnover, lines.iter().map(|l| l.line_total).sum::<Decimal>());
            prop_assert_eq!(rows.iter().map(|r| r.lines).sum::<u64>(), lines.len() as u64);
            prop_assert_eq!(rows.iter().map(|r| r.returns).sum::<u64>(), lines.iter().filter(|l| l.is_return()).count() as u64);
            let distinct: HashSet<_> = lines.iter().map(|l| (hour_start(l.emitted_at), &l.store_id, &l.category, &l.currency, &l.receipt_id)).collect();
            prop_assert_eq!(rows.iter().map(|r| r.receipts).sum::<u64>(), distinct.len() as u64);

            let mut w = CsvWriter::new(Vec::new(), &COLUMNS).unwrap();
            for r in &rows {
                w.write_row(r.cells().iter().map(|c| c.as_bytes())).unwrap();
            }
            let bytes = w.finish().unwrap();
            let back: Vec<HourlyRow> = read_rows(&bytes[..], &COLUMNS).unwrap().map(|r| HourlyRow::from_row(&r.unwrap()).unwrap()).collect();
            prop_assert_eq!(back, rows);
        }

        /// Splitting the lines into pieces (as landed objects do), aggregating each piece and summing the pieces'
        /// rows in any order gives the whole hour's turnover, lines and returns exactly; `receipts` never
        /// under-counts, and is exact when no receipt is split across pieces.
        #[test]
        fn a_rollup_of_pieces_sums_exactly(
            lines in proptest::collection::vec((arb_line(), 0u8..4, 0u8..2, 0u8..2), 0..40),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
            by_receipt in any::<bool>(),
            reverse in any::<bool>(),
        ) {
            // Few receipts, stores and categories, one hour: pieces share keys and receipts.
            let mut lines: Vec<SalesLine> = lines
                .into_iter()
                .map(|(mut l, receipt, store, category)| {
                    l.receipt_id = format!("R{receipt}");
                    l.store_id = format!("S{store}");
                    l.category = format!("C{category}");
                    l.emitted_at = Timestamp::from_second(1_795_424_400 + i64::from(receipt) * 60).unwrap();
                    l
                })
                .collect();
            if by_receipt {
                lines.sort_by(|a, b| a.receipt_id.cmp(&b.receipt_id));
            }
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(lines.len() + 1)).collect();
            bounds.extend([0, lines.len()]);
            bounds.sort_unstable();
            bounds.dedup();
            if by_receipt {
                // Move each cut to a receipt boundary, so no receipt spans two pieces.
                for b in &mut bounds {
                    while *b > 0 && *b < lines.len() && lines[*b - 1].receipt_id == lines[*b].receipt_id {
                        *b += 1;
                    }
                }
                bounds.dedup();
            }
            let mut pieces: Vec<Vec<HourlyRow>> = bounds
                .windows(2)
                .map(|w| {
                    let mut agg = HourlyAggregator::new();
                    lines[w[0]..w[1]].iter().for_each(|l| agg.add(l).unwrap());
                    agg.into_rows()
                })
                .collect();
            if reverse {
                pieces.reverse();
            }
            let mut rollup = HourlyRollup::new();
            for row in pieces.into_iter().flatten() {
                rollup.add(row).unwrap();
            }
            let rolled = rollup.into_rows();
            let mut whole = HourlyAggregator::new();
            lines.iter().for_each(|l| whole.add(l).unwrap());
            let exact = whole.into_rows();
            prop_assert_eq!(rolled.len(), exact.len());
            for (r, e) in rolled.iter().zip(&exact) {
                prop_assert_eq!(&r.key, &e.key);
                prop_assert_eq!((r.turnover, r.lines, r.returns), (e.turnover, e.lines, e.returns));
                prop_assert!(r.receipts >= e.receipts);
                if by_receipt {
                    prop_assert_eq!(r.receipts, e.receipts);
                }
            }
        }
    }
}
