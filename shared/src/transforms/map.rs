//! `map`: the business-logic step (the source document's "Python" transform), declarative. An ordered list of
//! operations: `set` a field from an exact-decimal expression, `rename`, `drop`, `time_parts` (date, hour and
//! weekday of a timestamp in a time zone: its own `time_zone`, else the deployment's default zone) and `lookup`
//! (fields from a reference table such as `stores.csv`).

use std::borrow::Cow;

use jiff::tz::TimeZone;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{CompileContext, Transform};
use crate::borrowed::{BorrowedRecord, BorrowedTransform};
use crate::decimal::{decimal_to_value, describe};
use crate::error::{ConfigError, RecordError};
use crate::expr::Expr;
use crate::receipt::parse_instant;
use crate::reference::ReferenceTable;
use crate::view::{ObjectView, View};

/// The operations, applied in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct MapConfig(pub Vec<MapOpConfig>);

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MapOpConfig {
    /// `set: {field: line_total, expr: "quantity * unit_price - coalesce(discount, 0)"}`
    Set {
        /// Field to write.
        field: String,
        /// Exact-decimal expression over the record's fields (see `expr`).
        expr: String,
    },
    /// `rename: {from: qty, to: quantity}`; a record without `from` is left as it is.
    Rename { from: String, to: String },
    /// `drop: {fields: [internal_note]}`
    Drop { fields: Vec<String> },
    /// `time_parts: {field: emitted_at, time_zone: Europe/Paris}` writes `date` (YYYY-MM-DD), `hour` (0-23) and
    /// `weekday` (Monday..Sunday) of the instant in that zone; the output names can be changed. Without
    /// `time_zone`, the zone is the deployment's default ([`CompileContext::time_zone`]: `SALESFLOW_TIME_ZONE` in
    /// the functions and the CLI, UTC when the compiler is given none); a zone written here always wins.
    TimeParts {
        field: String,
        #[serde(default)]
        time_zone: Option<String>,
        #[serde(default = "date_name")]
        date: String,
        #[serde(default = "hour_name")]
        hour: String,
        #[serde(default = "weekday_name")]
        weekday: String,
    },
    /// `lookup: {table: stores.csv, key: store_id, fields: [city, region]}` copies columns of the row whose
    /// `key_column` (default: same name as `key`) equals the record's `key`.
    Lookup {
        table: String,
        key: String,
        #[serde(default)]
        key_column: Option<String>,
        fields: Vec<String>,
        /// `reject` (default): a key with no row rejects the record; `null`: the fields are set to null.
        #[serde(default)]
        on_missing: OnMissing,
    },
}

fn date_name() -> String {
    "date".into()
}
fn hour_name() -> String {
    "hour".into()
}
fn weekday_name() -> String {
    "weekday".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    #[default]
    Reject,
    Null,
}

#[derive(Debug)]
enum MapOp {
    Set {
        field: String,
        expr: Expr,
        text: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Drop {
        fields: Vec<String>,
    },
    /// `origin` says where the zone came from, for the plan.
    TimeParts {
        field: String,
        zone: TimeZone,
        zone_name: String,
        origin: String,
        names: [String; 3],
    },
    Lookup {
        table: ReferenceTable,
        key: String,
        columns: Vec<(String, usize)>,
        on_missing: OnMissing,
    },
}

/// The compiled `map` step.
#[derive(Debug)]
pub struct MapStep {
    ops: Vec<MapOp>,
}

impl MapConfig {
    pub fn compile(&self, ctx: &CompileContext) -> Result<MapStep, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut ops = Vec::new();
        for (i, op) in self.0.iter().enumerate() {
            let at = |kind: &str, field: &str| ConfigError::new(format!("{}[{i}].{kind}.{field}", ctx.path), "");
            let fail = |kind: &str, field: &str, message: String| ConfigError { message, ..at(kind, field) };
            match op {
                MapOpConfig::Set { field, expr } => match Expr::parse(expr) {
                    Ok(e) => ops.push(MapOp::Set { field: field.clone(), expr: e, text: expr.clone() }),
                    Err(e) => errors.push(fail("set", "expr", e)),
                },
                MapOpConfig::Rename { from, to } => ops.push(MapOp::Rename { from: from.clone(), to: to.clone() }),
                MapOpConfig::Drop { fields } => ops.push(MapOp::Drop { fields: fields.clone() }),
                MapOpConfig::TimeParts { field, time_zone, date, hour, weekday } => {
                    let zone = match time_zone {
                        Some(name) => TimeZone::get(name)
                            .map(|zone| (zone, name.clone(), "set by time_zone".to_string()))
                            .map_err(|_| format!("unknown time zone {name:?} (use an IANA name such as Europe/Paris)")),
                        None => {
                            let default = ctx.time_zone;
                            Ok((
                                default.zone.clone(),
                                default.name.clone(),
                                format!("default zone, from {}", default.source),
                            ))
                        }
                    };
                    match zone {
                        Ok((zone, zone_name, origin)) => ops.push(MapOp::TimeParts {
                            field: field.clone(),
                            zone,
                            zone_name,
                            origin,
                            names: [date.clone(), hour.clone(), weekday.clone()],
                        }),
                        Err(message) => errors.push(fail("time_parts", "time_zone", message)),
                    }
                }
                MapOpConfig::Lookup { table, key, key_column, fields, on_missing } => {
                    let key_column = key_column.as_deref().unwrap_or(key);
                    let loaded = ctx
                        .resources
                        .read_to_string(table)
                        .and_then(|text| ReferenceTable::parse(table, &text, key_column));
                    match loaded {
                        Err(e) => errors.push(fail("lookup", "table", e)),
                        Ok(t) => {
                            let mut columns = Vec::new();
                            for (j, f) in fields.iter().enumerate() {
                                match t.column(f) {
                                    Ok(c) => columns.push((f.clone(), c)),
                                    Err(e) => errors.push(fail("lookup", &format!("fields[{j}]"), e)),
                                }
                            }
                            ops.push(MapOp::Lookup { table: t, key: key.clone(), columns, on_missing: *on_missing });
                        }
                    }
                }
            }
        }
        if errors.is_empty() { Ok(MapStep { ops }) } else { Err(errors) }
    }
}

fn weekday_text(w: jiff::civil::Weekday) -> &'static str {
    use jiff::civil::Weekday::*;
    match w {
        Monday => "Monday",
        Tuesday => "Tuesday",
        Wednesday => "Wednesday",
        Thursday => "Thursday",
        Friday => "Friday",
        Saturday => "Saturday",
        Sunday => "Sunday",
    }
}

impl MapOp {
    /// Applies the operation to an object record.
    fn apply(&self, record: &mut Value) -> Result<(), RecordError> {
        if let MapOp::Set { field, expr, .. } = self {
            let value = expr.eval(record).map_err(|e| set_error(field, e))?;
            record.as_object_mut().expect("map records are objects").insert(field.clone(), decimal_to_value(value));
            return Ok(());
        }
        let obj = record.as_object_mut().expect("map records are objects");
        match self {
            MapOp::Set { .. } => unreachable!("handled above"),
            MapOp::Rename { from, to } => {
                if let Some(v) = obj.shift_remove(from) {
                    obj.insert(to.clone(), v);
                }
            }
            MapOp::Drop { fields } => fields.iter().for_each(|f| {
                obj.shift_remove(f);
            }),
            MapOp::TimeParts { field, zone, names, .. } => {
                let text = match obj.get(field) {
                    Some(Value::String(s)) => s,
                    Some(other) => return Err(not_a_timestamp(field, &View::of(other))),
                    None => return Err(RecordError::field(field, "missing")),
                };
                let zoned = zone.to_datetime(parse_instant(text).map_err(|e| RecordError::field(field, e))?);
                let [date, hour, weekday] = names;
                obj.insert(date.clone(), zoned.date().to_string().into());
                obj.insert(hour.clone(), zoned.hour().into());
                obj.insert(weekday.clone(), weekday_text(zoned.weekday()).into());
            }
            MapOp::Lookup { table, key, columns, on_missing } => {
                let key_value = match obj.get(key) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    Some(other) => return Err(not_a_lookup_key(key, &View::of(other))),
                    None => return Err(RecordError::field(key, "missing")),
                };
                match (table.row(&key_value), on_missing) {
                    (Some(row), _) => columns.iter().for_each(|(name, c)| {
                        obj.insert(name.clone(), row[*c].clone().into());
                    }),
                    (None, OnMissing::Null) => columns.iter().for_each(|(name, _)| {
                        obj.insert(name.clone(), Value::Null);
                    }),
                    (None, OnMissing::Reject) => return Err(no_row(key, &key_value, table)),
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        match self {
            MapOp::Set { field, text, .. } => format!("set {field} = {text}"),
            MapOp::Rename { from, to } => format!("rename {from} -> {to}"),
            MapOp::Drop { fields } => format!("drop {}", fields.join(", ")),
            MapOp::TimeParts { field, zone_name, origin, names, .. } => {
                format!("{} / {} / {} of {field} in {zone_name} ({origin})", names[0], names[1], names[2])
            }
            MapOp::Lookup { table, key, columns, .. } => format!(
                "look up {} in {} ({} rows) by {key}",
                columns.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
                table.name(),
                table.len()
            ),
        }
    }
}

impl MapOp {
    /// [`apply`](Self::apply) on a borrowed record, with the same outcome; `None` when this record needs the
    /// `Value` form (a `set` over a nested field path).
    fn apply_borrowed(&self, record: &mut BorrowedRecord<'_>) -> Option<Result<(), RecordError>> {
        match self {
            MapOp::Set { field, expr, .. } => {
                let value = match expr.eval_in(record)? {
                    Ok(value) => value,
                    Err(e) => return Some(Err(set_error(field, e))),
                };
                record.set(Cow::Owned(field.clone()), Cow::Owned(raw_number(value)?));
            }
            MapOp::Rename { from, to } => {
                if let Some(value) = record.take(from) {
                    record.set(Cow::Owned(to.clone()), value);
                }
            }
            MapOp::Drop { fields } => fields.iter().for_each(|f| record.remove(f)),
            MapOp::TimeParts { field, zone, names, .. } => {
                let zoned = match record.view(field) {
                    Some(View::String(text)) => match parse_instant(&text) {
                        Ok(instant) => zone.to_datetime(instant),
                        Err(e) => return Some(Err(RecordError::field(field, e))),
                    },
                    Some(other) => return Some(Err(not_a_timestamp(field, &other))),
                    None => return Some(Err(RecordError::field(field, "missing"))),
                };
                let [date, hour, weekday] = names;
                record.set(Cow::Owned(date.clone()), Cow::Owned(raw(&zoned.date().to_string())?));
                record.set(Cow::Owned(hour.clone()), Cow::Owned(raw(&zoned.hour())?));
                record.set(Cow::Owned(weekday.clone()), Cow::Owned(raw(weekday_text(zoned.weekday()))?));
            }
            MapOp::Lookup { table, key, columns, on_missing } => {
                let key_value = match record.view(key) {
                    Some(View::String(s)) => s,
                    Some(View::Number(n)) => n,
                    Some(other) => return Some(Err(not_a_lookup_key(key, &other))),
                    None => return Some(Err(RecordError::field(key, "missing"))),
                };
                match (table.row(&key_value), on_missing) {
                    (Some(row), _) => {
                        for (name, c) in columns {
                            record.set(Cow::Owned(name.clone()), Cow::Owned(raw(&row[*c])?));
                        }
                    }
                    (None, OnMissing::Null) => {
                        for (name, _) in columns {
                            record.set(Cow::Owned(name.clone()), Cow::Owned(raw(&())?));
                        }
                    }
                    (None, OnMissing::Reject) => return Some(Err(no_row(key, &key_value, table))),
                }
            }
        }
        Some(Ok(()))
    }
}

/// A `set` expression's error, named after the field it sets when the expression did not name one.
fn set_error(field: &str, error: RecordError) -> RecordError {
    match error {
        RecordError::InvalidFields(mut f) if f.len() == 1 && f[0].path.is_empty() => {
            f[0].path = field.to_string();
            RecordError::InvalidFields(f)
        }
        other => other,
    }
}

fn not_a_timestamp(field: &str, found: &View) -> RecordError {
    RecordError::field(field, format!("expected a timestamp, found {}", found.describe()))
}

fn not_a_lookup_key(key: &str, found: &View) -> RecordError {
    RecordError::field(key, format!("expected a lookup key, found {}", found.describe()))
}

fn no_row(key: &str, key_value: &str, table: &ReferenceTable) -> RecordError {
    RecordError::field(key, format!("no row for {key_value:?} in {}", table.name()))
}

/// A value as JSON text, written as `Value` writes it; `None` only if serde_json cannot write it.
fn raw<T: serde::Serialize + ?Sized>(value: &T) -> Option<Box<RawValue>> {
    serde_json::value::to_raw_value(value).ok()
}

/// A decimal as the JSON number [`decimal_to_value`] makes of it.
fn raw_number(value: rust_decimal::Decimal) -> Option<Box<RawValue>> {
    RawValue::from_string(value.to_string()).ok()
}

impl BorrowedTransform for MapStep {
    fn apply_borrowed<'a>(
        &self,
        mut record: BorrowedRecord<'a>,
        out: &mut Vec<BorrowedRecord<'a>>,
    ) -> Option<Result<(), RecordError>> {
        for op in &self.ops {
            if let Err(e) = op.apply_borrowed(&mut record)? {
                return Some(Err(e));
            }
        }
        out.push(record);
        Some(Ok(()))
    }
}

impl Transform for MapStep {
    fn apply(&self, mut record: Value, out: &mut Vec<Value>) -> Result<(), RecordError> {
        if !record.is_object() {
            return Err(RecordError::field("", format!("map needs an object, found {}", describe(&record))));
        }
        for op in &self.ops {
            op.apply(&mut record)?;
        }
        out.push(record);
        Ok(())
    }

    fn describe(&self) -> String {
        self.ops.iter().map(MapOp::describe).collect::<Vec<_>>().join("; ")
    }

    fn borrowed(&self) -> Option<&dyn BorrowedTransform> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::EmbeddedResources;
    use crate::transforms::DefaultTimeZone;
    use serde_json::json;

    const FILES: &[(&str, &str)] = &[("stores.csv", "store_id,city,manager\nS1,\"Lyon, Part-Dieu\",Ana\n")];

    fn compile(yaml: &str) -> Result<MapStep, Vec<ConfigError>> {
        compile_in(yaml, &DefaultTimeZone::utc())
    }

    /// Compiles with `time_zone` as the deployment's default zone.
    fn compile_in(yaml: &str, time_zone: &DefaultTimeZone) -> Result<MapStep, Vec<ConfigError>> {
        let tree: Value = serde_yaml_ng::from_str(yaml).unwrap();
        let config: MapConfig = serde_json::from_value(tree).unwrap();
        config.compile(&CompileContext {
            resources: &EmbeddedResources(FILES),
            time_zone,
            path: "pipeline[2].map".into(),
        })
    }

    fn paris() -> DefaultTimeZone {
        DefaultTimeZone::new("Europe/Paris", "SALESFLOW_TIME_ZONE").unwrap()
    }

    /// `[date, hour, weekday]` of `at` through a compiled `time_parts` step.
    fn parts(step: &MapStep, at: &str) -> (String, u64, String) {
        let out = apply(step, json!({ "at": at })).unwrap();
        (out["date"].as_str().unwrap().into(), out["hour"].as_u64().unwrap(), out["weekday"].as_str().unwrap().into())
    }

    fn apply(step: &MapStep, record: Value) -> Result<Value, String> {
        let mut out = Vec::new();
        step.apply(record, &mut out).map_err(|e| e.to_string())?;
        Ok(out.pop().unwrap())
    }

    #[test]
    fn business_logic_in_order() {
        let step = compile(
            r#"
- set: {field: line_total, expr: "quantity * unit_price - coalesce(discount, 0)"}
- time_parts: {field: emitted_at, time_zone: Europe/Paris}
- lookup: {table: stores.csv, key: store_id, fields: [city, manager]}
- rename: {from: sku, to: product}
- drop: {fields: [internal]}
"#,
        )
        .unwrap();
        let rec: Value = serde_json::from_str(
            r#"{"store_id":"S1","sku":"A","quantity":3,"unit_price":"0.10","internal":1,"emitted_at":"2026-11-22T23:30:00Z"}"#,
        )
        .unwrap();
        let out = apply(&step, rec).unwrap();
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"store_id":"S1","quantity":3,"unit_price":"0.10","emitted_at":"2026-11-22T23:30:00Z","line_total":0.30,"date":"2026-11-23","hour":0,"weekday":"Monday","city":"Lyon, Part-Dieu","manager":"Ana","product":"A"}"#
        );
    }

    #[test]
    fn record_errors_name_the_field() {
        let step = compile("- set: {field: t, expr: \"quantity * unit_price\"}").unwrap();
        assert_eq!(apply(&step, json!({"quantity": 1})).unwrap_err(), "unit_price: missing");
        let step = compile("- lookup: {table: stores.csv, key: store_id, fields: [city]}").unwrap();
        assert_eq!(apply(&step, json!({"store_id": "S9"})).unwrap_err(), "store_id: no row for \"S9\" in stores.csv");
        let step = compile("- lookup: {table: stores.csv, key: store_id, fields: [city], on_missing: 'null'}").unwrap();
        assert_eq!(apply(&step, json!({"store_id": "S9"})).unwrap()["city"], Value::Null);
        let step = compile("- time_parts: {field: at}").unwrap();
        assert!(
            apply(&step, json!({"at": "2026-11-22 23:30"})).unwrap_err().starts_with("at: expected an RFC 3339 time")
        );
    }

    #[test]
    fn config_errors_name_op_and_field() {
        let errors = compile(
            r#"
- set: {field: t, expr: "a +"}
- time_parts: {field: at, time_zone: Mars/Olympus}
- lookup: {table: stores.csv, key: store_id, fields: [city, budget]}
- lookup: {table: nope.csv, key: store_id, fields: [city]}
"#,
        )
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "pipeline[2].map[0].set.expr: invalid expression at position 4: unexpected end of expression",
                "pipeline[2].map[1].time_parts.time_zone: unknown time zone \"Mars/Olympus\" (use an IANA name such as Europe/Paris)",
                "pipeline[2].map[2].lookup.fields[1]: stores.csv has no column \"budget\" (columns: store_id, city, manager)",
                "pipeline[2].map[3].lookup.table: no embedded file named \"nope.csv\"",
            ]
        );
    }

    #[test]
    fn time_parts_without_a_zone_use_the_default_zone_and_say_so() {
        let step = compile_in("- time_parts: {field: at}", &paris()).unwrap();
        assert_eq!(
            step.describe(),
            "date / hour / weekday of at in Europe/Paris (default zone, from SALESFLOW_TIME_ZONE)"
        );
        assert_eq!(parts(&step, "2026-11-22T23:30:00Z"), ("2026-11-23".into(), 0, "Monday".into()));
        // No default given: UTC, and the plan says it is the fallback.
        let step = compile("- time_parts: {field: at}").unwrap();
        assert_eq!(step.describe(), "date / hour / weekday of at in UTC (default zone, from the built-in fallback)");
        assert_eq!(parts(&step, "2026-11-22T23:30:00Z"), ("2026-11-22".into(), 23, "Sunday".into()));
    }

    #[test]
    fn an_explicit_zone_wins_over_the_default() {
        let step = compile_in("- time_parts: {field: at, time_zone: America/New_York}", &paris()).unwrap();
        assert_eq!(step.describe(), "date / hour / weekday of at in America/New_York (set by time_zone)");
        assert_eq!(parts(&step, "2026-11-22T23:30:00Z"), ("2026-11-22".into(), 18, "Sunday".into()));
        let step = compile_in("- time_parts: {field: at, time_zone: UTC}", &paris()).unwrap();
        assert_eq!(parts(&step, "2026-11-22T23:30:00Z"), ("2026-11-22".into(), 23, "Sunday".into()));
    }

    #[test]
    fn the_default_zone_follows_daylight_saving_time() {
        let step = compile_in("- time_parts: {field: at, hour: h}", &paris()).unwrap();
        let hour = |at: &str| apply(&step, json!({ "at": at })).unwrap()["h"].as_u64().unwrap();
        assert_eq!(hour("2026-01-15T12:00:00Z"), 13, "winter: UTC+1");
        assert_eq!(hour("2026-07-15T12:00:00Z"), 14, "summer: UTC+2");
        // 2026-03-29: 02:00 local does not exist, 01:59 CET is followed by 03:00 CEST.
        assert_eq!(hour("2026-03-29T00:59:59Z"), 1);
        assert_eq!(hour("2026-03-29T01:00:00Z"), 3);
        // 2026-10-25: 02:00-02:59 local happens twice, first in CEST then in CET.
        assert_eq!(hour("2026-10-25T00:30:00Z"), 2);
        assert_eq!(hour("2026-10-25T01:30:00Z"), 2);
        assert_eq!(hour("2026-10-25T02:00:00Z"), 3);
    }

    #[test]
    fn a_bad_explicit_zone_is_an_error_at_its_path_whatever_the_default() {
        let errors =
            compile_in("- rename: {from: a, to: b}\n- time_parts: {field: at, time_zone: Europe/Pariss}", &paris())
                .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "pipeline[2].map[1].time_parts.time_zone: unknown time zone \"Europe/Pariss\" (use an IANA name such as Europe/Paris)"
            ]
        );
        assert_eq!(
            DefaultTimeZone::new("Mars/Olympus", "SALESFLOW_TIME_ZONE").unwrap_err(),
            "unknown time zone \"Mars/Olympus\" (use an IANA name such as Europe/Paris)"
        );
    }
}
