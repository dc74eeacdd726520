//! `forecast_hourly`: the turnover forecast for each store-local hour of a day, for the whole chain and for each
//! category, with a prediction interval, so a dashboard can draw actual vs forecast (hourly and cumulative)
//! from `hourly_sales` joined on `date` and `hour`. [`ForecastHourly`] is one serde type; its fields are the
//! columns, in file order (the model that fills it is the `salesflow-forecast` crate). Columns:
//!
//! | column | content |
//! |---|---|
//! | `date`, `hour` | the store-local date and hour (0-23) forecast, as in `hourly_sales` |
//! | `scope` | `chain` (every store, every category) or `category` (every store, one category) |
//! | `category` | the category for `scope = category`, empty for `chain` |
//! | `currency` | ISO 4217 code of the turnover forecast (one currency per series) |
//! | `forecast`, `lower`, `upper` | turnover: the point forecast and the prediction interval, exact decimals to the cent |
//! | `level` | the interval's coverage in percent (`80`: the hour's turnover falls in `[lower, upper]` 4 times in 5) |
//! | `model` | what produced the row ([`ForecastModel`]): `mstl_ets`, or a seasonal naive fallback |

use std::sync::LazyLock;

use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::format::{self, columns_of};

/// The columns of `forecast_hourly`, in file order: the fields of [`ForecastHourly`].
pub static COLUMNS: LazyLock<&'static [&'static str]> = LazyLock::new(columns_of::<ForecastHourly>);

/// Which turnover a row forecasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// All stores, all categories.
    Chain,
    /// All stores, one category.
    Category,
}

/// The model behind a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForecastModel {
    /// MSTL decomposition (daily and weekly seasonality) with an AutoETS trend (augurs).
    MstlEts,
    /// The same hour one week earlier (history of one to two weeks, or a constant one).
    SeasonalNaiveWeek,
    /// The same hour one day earlier (history of one day to one week).
    SeasonalNaiveDay,
}

/// One `forecast_hourly` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastHourly {
    #[serde(with = "format::date")]
    pub date: Date,
    pub hour: i8,
    pub scope: Scope,
    /// `Some` exactly when `scope` is [`Scope::Category`].
    #[serde(with = "format::opt_text")]
    pub category: Option<String>,
    #[serde(with = "format::opt_text")]
    pub currency: Option<String>,
    #[serde(with = "format::num")]
    pub forecast: Decimal,
    #[serde(with = "format::num")]
    pub lower: Decimal,
    #[serde(with = "format::num")]
    pub upper: Decimal,
    /// Percent.
    pub level: u8,
    pub model: ForecastModel,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::{CsvWriter, read_row, read_rows};

    fn row() -> ForecastHourly {
        ForecastHourly {
            date: "2026-11-23".parse().unwrap(),
            hour: 19,
            scope: Scope::Category,
            category: Some("=Toys".into()),
            currency: Some("EUR".into()),
            forecast: "3488.31".parse().unwrap(),
            lower: "2901.00".parse().unwrap(),
            upper: "4075.62".parse().unwrap(),
            level: 80,
            model: ForecastModel::MstlEts,
        }
    }

    #[test]
    fn header_and_rows_are_golden_and_read_back() {
        let chain = ForecastHourly {
            scope: Scope::Chain,
            category: None,
            hour: 8,
            model: ForecastModel::SeasonalNaiveWeek,
            ..row()
        };
        let mut w = CsvWriter::new(Vec::new(), *COLUMNS).unwrap();
        w.serialize(&row()).unwrap();
        w.serialize(&chain).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "date,hour,scope,category,currency,forecast,lower,upper,level,model\r\n\
             2026-11-23,19,category,'=Toys,EUR,3488.31,2901.00,4075.62,80,mstl_ets\r\n\
             2026-11-23,8,chain,,EUR,3488.31,2901.00,4075.62,80,seasonal_naive_week\r\n"
        );
        let back: Vec<ForecastHourly> =
            read_rows(&bytes[..], *COLUMNS).unwrap().map(|r| read_row(&r.unwrap(), *COLUMNS).unwrap()).collect();
        assert_eq!(back, [row(), chain]);
    }

    #[test]
    fn an_unknown_scope_is_refused() {
        let text = "date,hour,scope,category,currency,forecast,lower,upper,level,model\r\n\
                    2026-11-23,19,store,,EUR,1,0,2,80,mstl_ets\r\n";
        let record = read_rows(text.as_bytes(), *COLUMNS).unwrap().next().unwrap().unwrap();
        let err = read_row::<ForecastHourly>(&record, *COLUMNS).unwrap_err();
        assert!(err.message.contains("unknown variant `store`"), "{err}");
    }
}
