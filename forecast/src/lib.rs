//! The turnover forecast behind `forecast_hourly`: from the last months of hourly turnover (of the chain, or of
//! one category), the next hours' point forecast and prediction interval, as exact decimals.
//!
//! **Model.** MSTL ([`augurs_mstl`], Grafana's augurs) splits the series into a daily (24 h) and a weekly (168 h)
//! seasonal component plus trend and remainder; an AutoETS model ([`augurs_ets`]) fits trend + remainder and
//! forecasts it with its interval, and the seasonal components of the last cycle are added back. The series is
//! indexed by **store-local** hour, not UTC, so trading hours stay at the same place in the daily cycle across
//! daylight-saving changes: the repeated hour of the autumn change is summed, the missing hour of the spring
//! change is 0 (shops are closed at 02:00 anyway).
//!
//! **Fallbacks, never a panic.** An empty series is [`ForecastError::Empty`]; fewer than 24 hours is
//! [`ForecastError::TooShort`]. A series of at least 24 hours that MSTL cannot take — shorter than two weeks
//! (two weekly cycles), constant (all zero included), or one MSTL/ETS refuses or forecasts as non-finite — is
//! forecast by a **seasonal naive** model instead: the same hour one week earlier (one day earlier under a
//! week of history), with a normal interval from the in-sample seasonal differences widened by √(cycles ahead).
//! The `model` column says which model produced a row. A series that never went below zero is not forecast
//! below zero (point and bounds are clamped at 0).
//!
//! **Money.** Turnover is summed as exact decimals per hour, becomes `f64` for the model (MSTL itself works in
//! `f32`: about 7 significant digits, a cent on €100,000 an hour), and the forecast comes back as decimals
//! rounded half-up to the cent ([`to_cents`]).
//!
//! **Why a crate of its own.** augurs-mstl + augurs-ets add 19 crates to the workspace's tree (nalgebra, simba,
//! wide, matrixmultiply, stlrs, …). Measured on the 2-core machine with one job (`cargo build --timings`, see
//! BENCHMARKS.md "Forecast backtest (issue 15)"), they cost about 28 s of release compile time. In
//! `salesflow-core` every crate (ingest, store, export, the fuzz targets, the tests) would pay it; here only the
//! forecast job and what calls it do.

use augurs_core::{Fit, Predict};
use augurs_ets::AutoETS;
use augurs_mstl::MSTLModel;
use jiff::civil::DateTime;
use jiff::{SignedDuration, ToSpan};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};
use salesflow_core::datasets::forecast_hourly::{ForecastHourly, ForecastModel, Scope};

/// Hours in the daily cycle.
pub const DAY: usize = 24;
/// Hours in the weekly cycle.
pub const WEEK: usize = 7 * DAY;
/// The longest history a series may span (gaps included): ten years of hours. A stray date far away would
/// otherwise fill gigabytes of zeros.
pub const MAX_SPAN_HOURS: usize = 10 * 366 * DAY;
/// The longest horizon forecast: one week.
pub const MAX_HORIZON: usize = WEEK;

/// Why no forecast could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error("the series is empty")]
    Empty,
    #[error("the series has {hours} hours; at least {DAY} are needed")]
    TooShort { hours: usize },
    #[error("{at} is not the start of an hour")]
    NotOnTheHour { at: DateTime },
    #[error("the series spans more than {MAX_SPAN_HOURS} hours (from {from} to {to})")]
    SpanTooLong { from: DateTime, to: DateTime },
    #[error("the turnover of {at} overflows an exact decimal")]
    Overflow { at: DateTime },
    #[error("level {0} % is not between 1 and 99")]
    InvalidLevel(u8),
    #[error("horizon {0} h is over the {MAX_HORIZON} h allowed")]
    HorizonTooLong(usize),
    #[error("the forecast for {at} ({value}) does not fit an exact decimal")]
    OutOfRange { at: DateTime, value: f64 },
    #[error("the forecast runs past the last date jiff holds")]
    PastTheCalendar,
}

/// Turnover per store-local hour, without gaps: `values[i]` is the hour `start + i h`.
#[derive(Debug, Clone, PartialEq)]
pub struct HourlySeries {
    start: DateTime,
    values: Vec<f64>,
}

impl HourlySeries {
    /// Builds the series from (store-local hour, turnover) points in any order: points of the same hour are
    /// summed, hours without a point between the first and the last are 0.
    pub fn from_local_hours(points: impl IntoIterator<Item = (DateTime, Decimal)>) -> Result<Self, ForecastError> {
        let mut points: Vec<(DateTime, Decimal)> = points.into_iter().collect();
        points.sort_by_key(|(at, _)| *at);
        let (Some(&(start, _)), Some(&(end, _))) = (points.first(), points.last()) else {
            return Err(ForecastError::Empty);
        };
        if let Some((at, _)) =
            points.iter().find(|(at, _)| at.minute() != 0 || at.second() != 0 || at.subsec_nanosecond() != 0)
        {
            return Err(ForecastError::NotOnTheHour { at: *at });
        }
        let span = hours_between(start, end);
        if span >= MAX_SPAN_HOURS {
            return Err(ForecastError::SpanTooLong { from: start, to: end });
        }
        let mut sums = vec![Decimal::ZERO; span + 1];
        for (at, turnover) in points {
            let slot = &mut sums[hours_between(start, at)];
            *slot = slot.checked_add(turnover).ok_or(ForecastError::Overflow { at })?;
        }
        // Every decimal converts (its magnitude is under 8e28), the fallback is never taken.
        let values = sums.iter().map(|d| d.to_f64().unwrap_or_default()).collect();
        Ok(HourlySeries { start, values })
    }

    /// The first hour.
    pub fn start(&self) -> DateTime {
        self.start
    }

    /// The turnover of each hour, from [`HourlySeries::start`].
    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

/// Whole hours from `from` to `to` (both on the hour, `from <= to`, less than [`MAX_SPAN_HOURS`] apart once
/// checked).
fn hours_between(from: DateTime, to: DateTime) -> usize {
    usize::try_from(to.duration_since(from).as_hours()).unwrap_or(usize::MAX)
}

/// One forecast hour, in the series' currency, before rounding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastHour {
    pub at: DateTime,
    pub point: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The forecast of the hours after a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub model: ForecastModel,
    /// Coverage of `[lower, upper]`, in percent.
    pub level: u8,
    pub hours: Vec<ForecastHour>,
}

/// Forecasts the `horizon` hours after the series' last hour, with a `level` % prediction interval
/// (the module doc says which model and when).
pub fn forecast(series: &HourlySeries, horizon: usize, level: u8) -> Result<Forecast, ForecastError> {
    if !(1..=99).contains(&level) {
        return Err(ForecastError::InvalidLevel(level));
    }
    if horizon > MAX_HORIZON {
        return Err(ForecastError::HorizonTooLong(horizon));
    }
    let y = &series.values;
    if y.len() < DAY {
        return Err(ForecastError::TooShort { hours: y.len() });
    }
    let constant = y.iter().all(|v| *v == y[0]);
    let mstl = (y.len() >= 2 * WEEK && !constant).then(|| mstl_ets(y, horizon, level)).flatten();
    let (model, bands) = match mstl {
        Some(bands) => (ForecastModel::MstlEts, bands),
        None if y.len() >= WEEK => (ForecastModel::SeasonalNaiveWeek, seasonal_naive(y, WEEK, horizon, level)),
        None => (ForecastModel::SeasonalNaiveDay, seasonal_naive(y, DAY, horizon, level)),
    };
    let floor = if y.iter().all(|v| *v >= 0.0) { 0.0 } else { f64::NEG_INFINITY };
    let first = series
        .start
        .checked_add(SignedDuration::from_hours(y.len() as i64))
        .map_err(|_| ForecastError::PastTheCalendar)?;
    let hours = bands
        .into_iter()
        .enumerate()
        .map(|(i, [point, lower, upper])| {
            let at = first.checked_add((i as i64).hours()).map_err(|_| ForecastError::PastTheCalendar)?;
            Ok(ForecastHour { at, point: point.max(floor), lower: lower.max(floor), upper: upper.max(floor) })
        })
        .collect::<Result<_, ForecastError>>()?;
    Ok(Forecast { model, level, hours })
}

/// MSTL (24 h, 168 h) + AutoETS: `[point, lower, upper]` per hour, or `None` when augurs refuses the series or
/// gives a non-finite number.
fn mstl_ets(y: &[f64], horizon: usize, level: u8) -> Option<Vec<[f64; 3]>> {
    let model = MSTLModel::new(vec![DAY, WEEK], AutoETS::non_seasonal().into_trend_model());
    let forecast = model.fit(y).ok()?.predict(horizon, f64::from(level) / 100.0).ok()?;
    let intervals = forecast.intervals?;
    let bands: Vec<[f64; 3]> =
        forecast.point.iter().zip(&intervals.lower).zip(&intervals.upper).map(|((p, l), u)| [*p, *l, *u]).collect();
    (bands.len() == horizon && bands.iter().flatten().all(|v| v.is_finite())).then_some(bands)
}

/// The value one `period` earlier, with a normal interval whose σ is that of the in-sample differences
/// `y[t] - y[t - period]`, times √k for the k-th cycle ahead. `y.len() >= period`.
fn seasonal_naive(y: &[f64], period: usize, horizon: usize, level: u8) -> Vec<[f64; 3]> {
    let differences: Vec<f64> = y.iter().skip(period).zip(y).map(|(now, before)| now - before).collect();
    let sigma = if differences.is_empty() {
        0.0
    } else {
        (differences.iter().map(|d| d * d).sum::<f64>() / differences.len() as f64).sqrt()
    };
    let z = distrs::Normal::ppf(0.5 + f64::from(level) / 200.0, 0.0, 1.0);
    let last_cycle = &y[y.len() - period..];
    (0..horizon)
        .map(|h| {
            let point = last_cycle[h % period];
            let half = z * sigma * ((h / period + 1) as f64).sqrt();
            [point, point - half, point + half]
        })
        .collect()
}

/// A model's `f64` as money: the nearest decimal, rounded half-up (away from zero) to the cent and written with
/// two decimals; `None` for a non-finite value or one beyond an exact decimal's range.
pub fn to_cents(value: f64) -> Option<Decimal> {
    let mut cents = Decimal::from_f64(value)?.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    cents.rescale(2);
    if cents.is_zero() {
        cents.set_sign_positive(true);
    }
    Some(cents)
}

impl Forecast {
    /// The `forecast_hourly` rows of this forecast: of the chain when `category` is `None`, else of that
    /// category; amounts rounded half-up to the cent.
    pub fn rows(&self, category: Option<&str>, currency: &str) -> Result<Vec<ForecastHourly>, ForecastError> {
        let cents = |at: DateTime, value: f64| to_cents(value).ok_or(ForecastError::OutOfRange { at, value });
        self.hours
            .iter()
            .map(|h| {
                Ok(ForecastHourly {
                    date: h.at.date(),
                    hour: h.at.hour(),
                    scope: if category.is_some() { Scope::Category } else { Scope::Chain },
                    category: category.map(str::to_string),
                    currency: Some(currency.to_string()),
                    forecast: cents(h.at, h.point)?,
                    lower: cents(h.at, h.lower)?,
                    upper: cents(h.at, h.upper)?,
                    level: self.level,
                    model: self.model,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    /// `weeks` weeks of a known hourly pattern from Monday 2026-05-04 00:00: closed at night, a daily double
    /// peak, Saturday the busiest, plus a slight upward trend and ±5 % noise (seeded).
    fn shop(weeks: usize) -> (Vec<(DateTime, Decimal)>, impl Fn(usize) -> f64) {
        use rand::{Rng, SeedableRng};
        let truth = |i: usize| {
            let (hour, weekday) = (i % DAY, (i / DAY) % 7);
            let daily = match hour {
                8..=20 => {
                    1.0 + 0.6 * (-((hour as f64 - 11.0).powi(2)) / 4.0).exp()
                        + 0.8 * (-((hour as f64 - 18.0).powi(2)) / 4.0).exp()
                }
                _ => 0.0,
            };
            let weekly = [0.8, 0.85, 0.95, 1.0, 1.15, 1.4, 0.5][weekday];
            1000.0 * daily * weekly * (1.0 + 0.0005 * (i / DAY) as f64)
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
        let start = date(2026, 5, 4).at(0, 0, 0, 0);
        let points = (0..weeks * WEEK)
            .map(|i| {
                let value = truth(i) * (1.0 + rng.random_range(-0.05..0.05));
                (start + (i as i64).hours(), Decimal::from_f64(value).unwrap().round_dp(2))
            })
            .collect();
        (points, truth)
    }

    #[test]
    fn mstl_recovers_a_daily_and_weekly_pattern() {
        let weeks = 8;
        let (points, truth) = shop(weeks);
        let series = HourlySeries::from_local_hours(points).unwrap();
        let f = forecast(&series, WEEK, 80).unwrap();
        assert_eq!(f.model, ForecastModel::MstlEts);
        assert_eq!(f.hours.len(), WEEK);
        assert_eq!(f.hours[0].at, date(2026, 6, 29).at(0, 0, 0, 0), "the Monday after the eighth week");
        let n = weeks * WEEK;
        let mut inside = 0;
        for (h, fh) in f.hours.iter().enumerate() {
            let expected = truth(n + h);
            // Within 6 % of the hour's truth, or €30 where the truth is 0 (nights, closed).
            assert!((fh.point - expected).abs() <= (0.06 * expected).max(30.0), "{} {fh:?} vs {expected}", fh.at);
            assert!(fh.lower <= fh.point && fh.point <= fh.upper, "{fh:?}");
            inside += usize::from(fh.lower <= expected && expected <= fh.upper);
        }
        // The weekly shape is there: Saturday 18:00 is forecast well above Monday 18:00.
        assert!(f.hours[5 * DAY + 18].point > 1.5 * f.hours[18].point);
        assert!(inside * 10 >= WEEK * 7, "80 % interval holds the truth in {inside} of {WEEK} hours");
    }

    #[test]
    fn rows_are_cents_half_up_and_name_their_scope() {
        let (points, _) = shop(3);
        let f = forecast(&HourlySeries::from_local_hours(points).unwrap(), 24, 95).unwrap();
        let rows = f.rows(Some("Toys"), "EUR").unwrap();
        assert_eq!(rows.len(), 24);
        assert_eq!((rows[0].date, rows[0].hour), (date(2026, 5, 25), 0));
        assert_eq!((rows[23].scope, rows[23].category.as_deref(), rows[23].level), (Scope::Category, Some("Toys"), 95));
        assert!(rows.iter().all(|r| r.forecast.scale() == 2 && r.lower <= r.forecast && r.forecast <= r.upper));
        let chain = f.rows(None, "EUR").unwrap();
        assert_eq!((chain[0].scope, chain[0].category.as_deref()), (Scope::Chain, None));
        assert_eq!(to_cents(3488.305).unwrap().to_string(), "3488.31");
        assert_eq!(to_cents(-0.001).unwrap().to_string(), "0.00");
        assert_eq!(to_cents(12.5).unwrap().to_string(), "12.50");
        assert_eq!(to_cents(f64::NAN), None);
        assert_eq!(to_cents(1e30), None);
    }

    #[test]
    fn short_and_constant_series_fall_back_to_seasonal_naive() {
        let (points, _) = shop(2);
        let start = points[0].0;
        // 10 days: less than two weekly cycles, the same hour last week.
        let ten_days = HourlySeries::from_local_hours(points[..10 * DAY].iter().copied()).unwrap();
        let f = forecast(&ten_days, 24, 80).unwrap();
        assert_eq!(f.model, ForecastModel::SeasonalNaiveWeek);
        assert_eq!(f.hours[11].point, ten_days.values()[3 * DAY + 11], "Thursday 11:00 one week earlier");
        assert!(f.hours[11].upper > f.hours[11].point);
        // 2 days: the same hour yesterday.
        let two_days = HourlySeries::from_local_hours(points[..2 * DAY].iter().copied()).unwrap();
        let f = forecast(&two_days, 30, 80).unwrap();
        assert_eq!(f.model, ForecastModel::SeasonalNaiveDay);
        assert_eq!(f.hours[29].point, two_days.values()[DAY + 5]);
        // Constant (here all zero) over 3 weeks: MSTL is not asked, the interval is empty.
        let zeros =
            HourlySeries::from_local_hours((0..3 * WEEK as i64).map(|i| (start + i.hours(), Decimal::ZERO))).unwrap();
        let f = forecast(&zeros, 24, 80).unwrap();
        assert_eq!(f.model, ForecastModel::SeasonalNaiveWeek);
        assert!(f.hours.iter().all(|h| (h.point, h.lower, h.upper) == (0.0, 0.0, 0.0)));
        assert_eq!(f.rows(None, "EUR").unwrap()[0].forecast.to_string(), "0.00");
    }

    #[test]
    fn bad_series_are_errors_not_panics() {
        let at = date(2026, 11, 23).at(9, 0, 0, 0);
        assert_eq!(HourlySeries::from_local_hours([]), Err(ForecastError::Empty));
        let short = HourlySeries::from_local_hours([(at, Decimal::ONE), (at + 22.hours(), Decimal::TEN)]).unwrap();
        assert_eq!(short.values().len(), 23);
        assert_eq!(short.values()[1], 0.0, "a gap is 0");
        assert_eq!(forecast(&short, 24, 80), Err(ForecastError::TooShort { hours: 23 }));
        let late = at + 30.minutes();
        assert_eq!(
            HourlySeries::from_local_hours([(late, Decimal::ONE)]),
            Err(ForecastError::NotOnTheHour { at: late })
        );
        let far = date(2100, 1, 1).at(0, 0, 0, 0);
        assert_eq!(
            HourlySeries::from_local_hours([(at, Decimal::ONE), (far, Decimal::ONE)]),
            Err(ForecastError::SpanTooLong { from: at, to: far })
        );
        assert_eq!(
            HourlySeries::from_local_hours([(at, Decimal::MAX), (at, Decimal::MAX)]),
            Err(ForecastError::Overflow { at })
        );
        let day = HourlySeries::from_local_hours((0..48).map(|i| (at + i.hours(), Decimal::from(i)))).unwrap();
        assert_eq!(forecast(&day, 24, 0), Err(ForecastError::InvalidLevel(0)));
        assert_eq!(forecast(&day, 24, 100), Err(ForecastError::InvalidLevel(100)));
        assert_eq!(forecast(&day, MAX_HORIZON + 1, 80), Err(ForecastError::HorizonTooLong(MAX_HORIZON + 1)));
        assert!(forecast(&day, 0, 80).unwrap().hours.is_empty());
        let end = jiff::civil::DateTime::MAX.date().at(0, 0, 0, 0);
        let at_the_end =
            HourlySeries::from_local_hours((0..24).map(|i| (end - (23 - i).hours(), Decimal::ONE))).unwrap();
        assert_eq!(forecast(&at_the_end, 24, 80), Err(ForecastError::PastTheCalendar));
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let at = date(2026, 5, 4).at(0, 0, 0, 0);
        // Huge turnover, one spike in zeros, alternating signs: each gives a forecast or a clear error.
        let huge = (0..3 * WEEK as i64).map(|i| (at + i.hours(), Decimal::MAX / Decimal::from(1000 + i % 7)));
        let spike = (0..3 * WEEK as i64)
            .map(|i| (at + i.hours(), if i == 100 { Decimal::from(1_000_000) } else { Decimal::ZERO }));
        let signs = (0..3 * WEEK as i64).map(|i| (at + i.hours(), Decimal::from(if i % 2 == 0 { 5 } else { -5 })));
        for points in [huge.collect::<Vec<_>>(), spike.collect(), signs.collect()] {
            let f = forecast(&HourlySeries::from_local_hours(points).unwrap(), 24, 80).unwrap();
            assert_eq!(f.hours.len(), 24);
            match f.rows(None, "EUR") {
                Ok(rows) => assert_eq!(rows.len(), 24),
                Err(e) => assert!(matches!(e, ForecastError::OutOfRange { .. }), "{e}"),
            }
        }
    }
}
