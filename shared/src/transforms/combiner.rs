//! `combiner`: the pipeline's batcher, not a transform (a task, in Vector's terms, where the other steps are
//! functions). It is written as the last step of a pipeline file, but the pipeline runs it apart: once per
//! output record it computes the record's partition — the UTC hour of an event-time field, a
//! [`crate::keys::EventHour`] — and that partition is carried with the record into its batch and on to the
//! landed key, never parsed again. Batches are bounded by a record count and a byte size and serialized as NDJSON,
//! the one format the export reads. Each batch remembers which input records it came from, so a handler can tell
//! which inputs are durably stored once some batches are written.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::CompileContext;
use crate::error::{ConfigError, RecordError};
use crate::keys::EventHour;
use crate::receipt::parse_instant;
use crate::view::{ObjectView, View};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CombinerConfig {
    /// RFC 3339 event-time field; batches are grouped by its UTC date and hour. Without it, one group.
    #[serde(default)]
    pub time_field: Option<String>,
    /// At most this many records per batch (default 10,000).
    #[serde(default = "default_max_records")]
    pub max_records: usize,
    /// At most this many payload bytes per batch, unless one record alone is larger (default 4 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// `ndjson`, the default and the only format the export reads (`json_array` is refused at compile time).
    #[serde(default)]
    pub format: BatchFormat,
}

fn default_max_records() -> usize {
    10_000
}
fn default_max_bytes() -> usize {
    4 << 20
}

/// How a batch is serialized. Only `ndjson` compiles: the export reads landed objects line by line, so a JSON
/// array would be one unreadable record (`json_array` is still parsed, to refuse it with a reason).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchFormat {
    #[default]
    Ndjson,
    JsonArray,
}

/// One output batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The event hour of every record in it (`None` without a `time_field`).
    pub partition: Option<EventHour>,
    /// 0, 1, ... within the partition, when the bounds split it.
    pub part: usize,
    pub records: usize,
    /// The lowest and highest index of the input records whose outputs are in this batch.
    pub first_input: usize,
    pub last_input: usize,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
pub struct Combiner {
    time_field: Option<String>,
    max_records: usize,
    max_bytes: usize,
}

impl CombinerConfig {
    pub fn compile(&self, ctx: &CompileContext) -> Result<Combiner, Vec<ConfigError>> {
        let mut errors = Vec::new();
        if self.max_records == 0 {
            errors.push(ctx.error("max_records", "must be at least 1"));
        }
        if self.max_bytes < 1024 {
            errors.push(ctx.error("max_bytes", format!("must be at least 1024, found {}", self.max_bytes)));
        }
        if self.format == BatchFormat::JsonArray {
            errors.push(ctx.error(
                "format",
                "json_array is not a format the export reads (it reads landed objects as NDJSON, one line per record); use ndjson",
            ));
        }
        if errors.is_empty() {
            Ok(Combiner {
                time_field: self.time_field.clone(),
                max_records: self.max_records,
                max_bytes: self.max_bytes,
            })
        } else {
            Err(errors)
        }
    }
}

impl Combiner {
    /// The partition a record goes to; a record without a valid event time is rejected.
    pub fn partition_of(&self, record: &Value) -> Result<Option<EventHour>, RecordError> {
        match record {
            Value::Object(map) => self.partition_in(map),
            _ => self.partition_in(&serde_json::Map::new()),
        }
    }

    /// [`partition_of`](Self::partition_of) on an object's fields (a tree's or a borrowed record's).
    pub fn partition_in(&self, record: &(impl ObjectView + ?Sized)) -> Result<Option<EventHour>, RecordError> {
        let Some(field) = &self.time_field else { return Ok(None) };
        match record.view(field) {
            Some(View::String(text)) => {
                parse_instant(&text).map(|ts| Some(EventHour::of(ts))).map_err(|e| RecordError::field(field, e))
            }
            Some(other) => {
                Err(RecordError::field(field, format!("expected an RFC 3339 time, found {}", other.describe())))
            }
            None => Err(RecordError::field(field, "missing (the combiner groups by it)")),
        }
    }

    /// Groups records (each as its compact JSON, with the index of the input it came from) into bounded
    /// batches: partitions in ascending hour order, records in input order within each.
    pub fn combine(&self, records: Vec<(usize, Option<EventHour>, Vec<u8>)>) -> Vec<Batch> {
        let mut groups: BTreeMap<Option<EventHour>, Vec<(usize, Vec<u8>)>> = BTreeMap::new();
        for (input, partition, record) in records {
            groups.entry(partition).or_default().push((input, record));
        }
        let mut batches = Vec::new();
        for (partition, records) in groups {
            let mut current: Option<Batch> = None;
            let mut part = 0;
            for (input, bytes) in records {
                let extra = bytes.len() + 1;
                if let Some(b) = &current
                    && (b.records >= self.max_records || b.payload.len() + extra + 1 > self.max_bytes)
                {
                    batches.extend(current.take());
                    part += 1;
                }
                let b = current.get_or_insert_with(|| Batch {
                    partition,
                    part,
                    records: 0,
                    first_input: input,
                    last_input: input,
                    payload: Vec::new(),
                });
                b.payload.extend_from_slice(&bytes);
                b.payload.push(b'\n');
                b.records += 1;
                b.first_input = b.first_input.min(input);
                b.last_input = b.last_input.max(input);
            }
            batches.extend(current);
        }
        batches
    }

    /// One line for `salesflow pipeline check`'s plan.
    pub fn describe(&self) -> String {
        let by =
            self.time_field.as_ref().map_or(String::from("one group"), |f| format!("grouped by the UTC hour of {f}"));
        format!("NDJSON batches {by}, at most {} records / {} bytes each", self.max_records, self.max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::EmbeddedResources;
    use serde_json::json;

    fn combiner(max_records: usize, max_bytes: usize, format: BatchFormat) -> Combiner {
        let ctx = CompileContext {
            resources: &EmbeddedResources(&[]),
            time_zone: &Default::default(),
            path: "pipeline[3].combiner".into(),
        };
        CombinerConfig { time_field: Some("at".into()), max_records, max_bytes, format }.compile(&ctx).unwrap()
    }

    fn rec(i: usize, at: &str) -> (usize, Option<EventHour>, Vec<u8>) {
        let v = json!({"i": i, "at": at});
        let c = combiner(10, 1024, BatchFormat::Ndjson);
        (i, c.partition_of(&v).unwrap(), serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn groups_by_utc_hour_and_bounds_batches() {
        let c = combiner(2, 1024, BatchFormat::Ndjson);
        let batches = c.combine(vec![
            rec(0, "2026-11-23T10:59:59+01:00"),
            rec(1, "2026-11-23T10:00:00Z"),
            rec(2, "2026-11-23T09:30:00Z"),
            rec(3, "2026-11-23T09:00:00Z"),
        ]);
        let summary: Vec<_> = batches
            .iter()
            .map(|b| (b.partition.unwrap().hour, b.part, b.records, b.first_input, b.last_input))
            .collect();
        assert_eq!(summary, vec![(9, 0, 2, 0, 2), (9, 1, 1, 3, 3), (10, 0, 1, 1, 1)]);
        assert_eq!(
            String::from_utf8(batches[0].payload.clone()).unwrap(),
            "{\"i\":0,\"at\":\"2026-11-23T10:59:59+01:00\"}\n{\"i\":2,\"at\":\"2026-11-23T09:30:00Z\"}\n"
        );
    }

    #[test]
    fn byte_bound() {
        let c = combiner(100, 1024, BatchFormat::Ndjson);
        let records: Vec<_> = (0..40).map(|i| rec(i, "2026-11-23T09:00:00Z")).collect();
        let batches = c.combine(records);
        assert!(batches.len() > 1);
        for b in &batches {
            assert!(b.payload.len() <= 1024);
            let lines = b.payload.split(|&c| c == b'\n').filter(|l| !l.is_empty());
            let parsed: Vec<Value> = lines.map(|l| serde_json::from_slice(l).unwrap()).collect();
            assert_eq!(parsed.len(), b.records);
        }
        assert_eq!(batches.iter().map(|b| b.records).sum::<usize>(), 40);
    }

    #[test]
    fn json_array_is_refused_since_the_export_reads_ndjson() {
        let ctx = CompileContext {
            resources: &EmbeddedResources(&[]),
            time_zone: &Default::default(),
            path: "pipeline[3].combiner".into(),
        };
        let config: CombinerConfig = serde_json::from_str(r#"{"format": "json_array"}"#).unwrap();
        let errors = config.compile(&ctx).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .to_string()
                .starts_with("pipeline[3].combiner.format: json_array is not a format the export reads"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn records_without_event_time_are_rejected() {
        let c = combiner(10, 1024, BatchFormat::Ndjson);
        assert_eq!(c.partition_of(&json!({})).unwrap_err().to_string(), "at: missing (the combiner groups by it)");
        assert!(c.partition_of(&json!({"at": "yesterday"})).is_err());
    }
}
