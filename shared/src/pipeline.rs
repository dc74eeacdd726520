//! A pipeline: an ordered list of steps loaded from YAML or JSON, validated once (unknown keys rejected, every
//! error named `pipeline[i].kind.field`), compiled into a plan, then run per record or per batch. Every input
//! ends in exactly one outcome — emitted, filtered by step k, or rejected by step k with a reason — and
//! [`Counts`] proves it: `records_in = emitted + filtered + rejected`.
//!
//! Two ways to run a record: [`Pipeline::apply`] on a `serde_json::Value` (what the Lambdas use, since the
//! combiner needs the records), and [`Pipeline::write_ndjson`], which writes the outputs as NDJSON and runs the
//! leading steps that have a borrowed form on slices of the input ([`crate::borrowed`]) — same bytes, much
//! less work; it is what `salesflow transform` runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::borrowed::BorrowedRecord;
use crate::error::{ConfigError, RecordError, Rejection};
use crate::keys::EventHour;
use crate::reference::Resources;
use crate::transforms::combiner::{Batch, Combiner, CombinerConfig};
use crate::transforms::{CompileContext, DefaultTimeZone, StepConfig, Transform};

/// A pipeline file: `pipeline:` followed by the steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// A free-text description, shown by `pipeline check`.
    #[serde(default)]
    pub description: Option<String>,
    pub pipeline: Vec<StepConfig>,
}

impl PipelineConfig {
    /// Parses a pipeline file, JSON when it starts with `{`, YAML otherwise. The error names the path of the
    /// offending key (`pipeline[2].splitter: unknown field "paht"`); the first of [`parse_all`](Self::parse_all)'s.
    pub fn parse(text: &str) -> Result<PipelineConfig, ConfigError> {
        Self::parse_all(text).map_err(|mut errors| errors.swap_remove(0))
    }

    /// [`parse`](Self::parse), reporting every unknown key and unknown step kind rather than the first: each
    /// step is read on its own, and an unknown key is set aside and the step read again (the way `compile`
    /// collects every compile error). Never an empty list.
    pub fn parse_all(text: &str) -> Result<PipelineConfig, Vec<ConfigError>> {
        // YAML is read into a JSON tree first: steps are written as one-key maps (`- filter: {...}`), the JSON
        // shape of an externally tagged enum, which YAML deserializers otherwise expect as `!filter` tags.
        let mut tree: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text)
                .map_err(|e| vec![ConfigError::new("pipeline file", format!("invalid JSON: {e}"))])?
        } else {
            check_yaml_nesting(text)
                .and_then(|()| serde_yaml_ng::from_str(text).map_err(|e| e.to_string()))
                .map_err(|e| vec![ConfigError::new("pipeline file", format!("invalid YAML: {e}"))])?
        };
        let steps = match tree.get_mut("pipeline") {
            Some(Value::Array(steps)) => std::mem::take(steps),
            _ => Vec::new(),
        };
        let mut errors = Vec::new();
        let config: Option<PipelineConfig> = deserialize_all(tree, "", &mut errors);
        let steps: Vec<Option<StepConfig>> = steps
            .into_iter()
            .enumerate()
            .map(|(i, step)| deserialize_all(step, &format!("pipeline[{i}]"), &mut errors))
            .collect();
        match (config, steps.into_iter().collect::<Option<Vec<_>>>()) {
            (Some(config), Some(pipeline)) if errors.is_empty() => Ok(PipelineConfig { pipeline, ..config }),
            _ => Err(errors),
        }
    }

    /// Validates every step and compiles the plan, collecting all errors rather than stopping at the first. A
    /// `time_parts` op without a `time_zone` uses UTC; deployments pass their zone with
    /// [`compile_with`](Self::compile_with).
    pub fn compile(&self, resources: &dyn Resources) -> Result<Pipeline, Vec<ConfigError>> {
        self.compile_with(resources, &DefaultTimeZone::utc())
    }

    /// [`compile`](Self::compile), with `time_zone` as the zone of the `time_parts` ops that name none (a zone
    /// written in the file always wins); the plan says which zone each op uses and where it came from.
    pub fn compile_with(
        &self,
        resources: &dyn Resources,
        time_zone: &DefaultTimeZone,
    ) -> Result<Pipeline, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut steps: Vec<CompiledStep> = Vec::new();
        let mut combiner = None;
        if self.pipeline.is_empty() {
            errors.push(ConfigError::new("pipeline", "needs at least one step"));
        }
        for (i, step) in self.pipeline.iter().enumerate() {
            let ctx = CompileContext { resources, time_zone, path: format!("pipeline[{i}].{}", step.kind()) };
            let compiled: Result<Box<dyn Transform>, Vec<ConfigError>> = match step {
                StepConfig::Filter(c) => c.compile(&ctx).map(|s| Box::new(s) as _),
                StepConfig::Splitter(c) => c.compile(&ctx).map(|s| Box::new(s) as _),
                StepConfig::Map(c) => c.compile(&ctx).map(|s| Box::new(s) as _),
                StepConfig::Validate(c) => c.compile(&ctx).map(|s| Box::new(s) as _),
                StepConfig::Combiner(c) => {
                    if i + 1 != self.pipeline.len() {
                        errors.push(ctx.error("", "the combiner must be the last step"));
                    }
                    match c.compile(&ctx) {
                        Ok(c) => {
                            combiner = Some(c);
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match compiled {
                Ok(transform) => steps.push(CompiledStep { kind: step.kind(), transform }),
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let combiner_configured = combiner.is_some();
        let combiner = combiner.unwrap_or_else(|| {
            let default: CombinerConfig = serde_json::from_str("{}").expect("the combiner has defaults");
            let ctx = CompileContext { resources, time_zone, path: String::new() };
            default.compile(&ctx).expect("the default combiner is valid")
        });
        // The combiner has no borrowed form, so a configured one ends the prefix too.
        let borrowed_steps = steps.iter().take_while(|s| s.transform.borrowed().is_some()).count();
        Ok(Pipeline { steps, borrowed_steps, combiner, combiner_configured, description: self.description.clone() })
    }
}

/// At most this many unknown keys are reported per step (each is one more read of the step).
const MAX_UNKNOWN_KEYS: usize = 32;

/// Deserializes `tree`, pushing every error to `errors` with `prefix` before its path: an unknown key is
/// removed and the tree read again, any other error ends the attempt. `Some` only when nothing was wrong.
fn deserialize_all<T: serde::de::DeserializeOwned>(
    mut tree: Value,
    prefix: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let before = errors.len();
    for _ in 0..MAX_UNKNOWN_KEYS {
        match serde_path_to_error::deserialize::<_, T>(tree.clone()) {
            Ok(value) => return (errors.len() == before).then_some(value),
            Err(e) => {
                let message = e.inner().to_string();
                let path = e.path().to_string();
                let located = match (prefix, path.as_str()) {
                    ("", "." | "") => "pipeline file".to_string(),
                    ("", path) => path.to_string(),
                    (prefix, "." | "") => prefix.to_string(),
                    (prefix, path) if path.starts_with('[') => format!("{prefix}{path}"),
                    (prefix, path) => format!("{prefix}.{path}"),
                };
                errors.push(ConfigError::new(located, message.clone()));
                if !message.starts_with("unknown field") || !remove_key(&mut tree, e.path()) {
                    return None;
                }
            }
        }
    }
    None
}

/// Removes the key `path` ends with from `tree`; false when the path does not lead to an object's key.
fn remove_key(tree: &mut Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((last, parents)) = segments.split_last() else { return false };
    let mut node = tree;
    for segment in parents {
        let next = match segment {
            Segment::Seq { index } => node.get_mut(*index),
            Segment::Map { key } => node.get_mut(key.as_str()),
            Segment::Enum { variant } => node.get_mut(variant.as_str()),
            _ => None,
        };
        let Some(next) = next else { return false };
        node = next;
    }
    match (last, node) {
        (Segment::Map { key }, Value::Object(map)) => map.shift_remove(key.as_str()).is_some(),
        _ => false,
    }
}

/// How deep YAML flow collections (`[...]`, `{...}`) may nest in a pipeline file: the same limit as
/// `serde_yaml_ng`'s recursion limit, which only applies after libyaml has scanned the whole document, and
/// scanning flow collections nested 100,000 deep took minutes.
pub const MAX_YAML_NESTING: usize = 128;

/// A cheap pre-scan refusing flow collections nested deeper than [`MAX_YAML_NESTING`], naming the line and
/// column of the bracket that goes too deep. Brackets in quoted scalars and comments do not count; a stray
/// `]` in a plain scalar only lowers the count. Block nesting needs no scan: libyaml refuses it quickly.
fn check_yaml_nesting(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    for (line_no, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        let mut chars = line.chars().enumerate().peekable();
        while let Some((column, c)) = chars.next() {
            match quote {
                Some('"') if c == '\\' => {
                    chars.next();
                }
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '#' if previous.is_whitespace() => break,
                    '\'' | '"' if previous.is_whitespace() || "[{,:".contains(previous) => quote = Some(c),
                    '[' | '{' => {
                        depth += 1;
                        if depth > MAX_YAML_NESTING {
                            return Err(format!(
                                "nested deeper than {MAX_YAML_NESTING} levels at line {} column {}",
                                line_no + 1,
                                column + 1
                            ));
                        }
                    }
                    ']' | '}' => depth = depth.saturating_sub(1),
                    _ => {}
                },
            }
            previous = c;
        }
    }
    Ok(())
}

#[derive(Debug)]
struct CompiledStep {
    kind: &'static str,
    transform: Box<dyn Transform>,
}

/// A compiled, ready-to-run pipeline.
#[derive(Debug)]
pub struct Pipeline {
    steps: Vec<CompiledStep>,
    /// How many leading steps have a borrowed form ([`Pipeline::write_ndjson`] runs those on slices).
    borrowed_steps: usize,
    combiner: Combiner,
    combiner_configured: bool,
    description: Option<String>,
}

/// What became of one input record. `E` is what was emitted: the records ([`Pipeline::apply`]), or how many
/// were written ([`Pipeline::write_ndjson`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<E = Vec<Value>> {
    /// One or more records came out of the last step.
    Emitted(E),
    /// Step `step` let nothing through.
    Filtered {
        step: usize,
    },
    Rejected(Rejection),
}

impl<E> Outcome<E> {
    /// The same outcome with what was emitted changed by `f`.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Outcome<F> {
        match self {
            Outcome::Emitted(e) => Outcome::Emitted(f(e)),
            Outcome::Filtered { step } => Outcome::Filtered { step },
            Outcome::Rejected(r) => Outcome::Rejected(r),
        }
    }
}

/// An output record with the partition the batcher computed for it (`None` without a `time_field`).
pub type Partitioned = (Option<EventHour>, Value);

/// An output record as its compact JSON, with its partition.
type Serialized = (Option<EventHour>, Vec<u8>);

impl Emitted for Vec<Serialized> {
    fn outputs(&self) -> usize {
        self.len()
    }
}

fn unpartitioned(records: Vec<Partitioned>) -> Vec<Value> {
    records.into_iter().map(|(_, r)| r).collect()
}

impl Emitted for Vec<Partitioned> {
    fn outputs(&self) -> usize {
        self.len()
    }
}

/// What an [`Outcome::Emitted`] holds, counted.
pub trait Emitted {
    fn outputs(&self) -> usize;
}

impl Emitted for Vec<Value> {
    fn outputs(&self) -> usize {
        self.len()
    }
}

impl Emitted for usize {
    fn outputs(&self) -> usize {
        *self
    }
}

/// A rejected input of a batch: its index in the batch and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedInput {
    pub input: usize,
    pub rejection: Rejection,
}

/// The result of running a batch of inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    pub counts: Counts,
    pub batches: Vec<Batch>,
    pub rejects: Vec<RejectedInput>,
}

/// Outcome counts. Always `records_in == emitted + filtered + rejected`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Input records.
    pub records_in: u64,
    /// Inputs with at least one output.
    pub emitted: u64,
    /// Output records (a splitter makes several per input).
    pub outputs: u64,
    /// Inputs filtered out, in total and per step label (`pipeline[1].filter`).
    pub filtered: u64,
    pub filtered_by: BTreeMap<String, u64>,
    /// Inputs rejected, in total and per step label (`input` when the payload is not JSON).
    pub rejected: u64,
    pub rejected_by: BTreeMap<String, u64>,
}

impl Counts {
    /// Counts one outcome.
    pub fn record(&mut self, outcome: &Outcome<impl Emitted>, pipeline: &Pipeline) {
        self.records_in += 1;
        match outcome {
            Outcome::Emitted(records) => {
                self.emitted += 1;
                self.outputs += records.outputs() as u64;
            }
            Outcome::Filtered { step } => {
                self.filtered += 1;
                *self.filtered_by.entry(pipeline.step_label(*step)).or_default() += 1;
            }
            Outcome::Rejected(r) => {
                self.rejected += 1;
                *self.rejected_by.entry(r.step_label()).or_default() += 1;
            }
        }
    }

    /// Adds another set of counts (from another batch or thread).
    pub fn merge(&mut self, other: &Counts) {
        self.records_in += other.records_in;
        self.emitted += other.emitted;
        self.outputs += other.outputs;
        self.filtered += other.filtered;
        self.rejected += other.rejected;
        for (k, v) in &other.filtered_by {
            *self.filtered_by.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.rejected_by {
            *self.rejected_by.entry(k.clone()).or_default() += v;
        }
    }

    /// Whether every input is accounted for exactly once.
    pub fn balanced(&self) -> bool {
        self.records_in == self.emitted + self.filtered + self.rejected
            && self.filtered == self.filtered_by.values().sum::<u64>()
            && self.rejected == self.rejected_by.values().sum::<u64>()
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "records in: {}, emitted: {} (outputs: {}), filtered: {}, rejected: {}",
            self.records_in, self.emitted, self.outputs, self.filtered, self.rejected
        )?;
        for (label, n) in &self.filtered_by {
            write!(f, "\n  filtered by {label}: {n}")?;
        }
        for (label, n) in &self.rejected_by {
            write!(f, "\n  rejected by {label}: {n}")?;
        }
        Ok(())
    }
}

impl Pipeline {
    /// `pipeline[i].kind` for a step index (the combiner is the last index).
    pub fn step_label(&self, step: usize) -> String {
        format!("pipeline[{step}].{}", self.step_kind(step))
    }

    fn step_kind(&self, step: usize) -> &'static str {
        self.steps.get(step).map_or("combiner", |s| s.kind)
    }

    /// Parses one JSON payload and applies the pipeline to it. A payload whose objects repeat a key is
    /// rejected as invalid JSON ([`crate::json`]).
    pub fn apply_json(&self, payload: &[u8]) -> Outcome {
        self.apply_json_partitioned(payload).map(unpartitioned)
    }

    /// [`apply_json`](Self::apply_json), each output with its partition.
    fn apply_json_partitioned(&self, payload: &[u8]) -> Outcome<Vec<Partitioned>> {
        match crate::json::check_unique_keys(payload).and_then(|()| serde_json::from_slice::<Value>(payload)) {
            Ok(record) => self.apply_from(0, vec![record]),
            Err(e) => Outcome::Rejected(Rejection {
                step: None,
                step_kind: "input",
                error: RecordError::InvalidJson(e.to_string()),
            }),
        }
    }

    /// Applies every step to one record. A rejection anywhere rejects the whole input (no partial output), so a
    /// fixed record can be replayed without duplicating what already went through.
    pub fn apply(&self, record: Value) -> Outcome {
        self.apply_from(0, vec![record]).map(unpartitioned)
    }

    /// Applies the steps from `first` on to the records one input became, then the batcher (when configured)
    /// partitions each output, once: a record it cannot partition rejects the input, at the combiner's index.
    fn apply_from(&self, first: usize, mut current: Vec<Value>) -> Outcome<Vec<Partitioned>> {
        let mut next = Vec::new();
        for (step, s) in self.steps.iter().enumerate().skip(first) {
            for record in current.drain(..) {
                if let Err(error) = s.transform.apply(record, &mut next) {
                    return Outcome::Rejected(Rejection { step: Some(step), step_kind: s.kind, error });
                }
            }
            if next.is_empty() {
                return Outcome::Filtered { step };
            }
            std::mem::swap(&mut current, &mut next);
        }
        let mut partitioned = Vec::with_capacity(current.len());
        for record in current {
            match self.combiner.partition_of(&record) {
                Ok(partition) => partitioned.push((partition, record)),
                Err(error) => {
                    let step = self.steps.len();
                    return Outcome::Rejected(Rejection { step: Some(step), step_kind: self.step_kind(step), error });
                }
            }
        }
        Outcome::Emitted(partitioned)
    }

    /// Applies the pipeline to one JSON payload and appends what it emits to `out`, one compact JSON record per
    /// line. The outcome and the bytes are exactly those of [`apply_json`](Self::apply_json) followed by
    /// `serde_json::to_writer`; the leading steps with a borrowed form run on slices of the payload.
    pub fn write_ndjson(&self, payload: &[u8], out: &mut Vec<u8>) -> Outcome<usize> {
        let start = out.len();
        if let Some(outcome) = self.write_borrowed(payload, out) {
            return outcome;
        }
        out.truncate(start);
        write_outcome(self.apply_json(payload), out)
    }

    /// The borrowed run of [`write_ndjson`](Self::write_ndjson); `None` when the input needs the `Value` path
    /// (no borrowed step, not one JSON object, or a value a borrowed step cannot decide).
    fn write_borrowed(&self, payload: &[u8], out: &mut Vec<u8>) -> Option<Outcome<usize>> {
        let current = match self.borrowed_prefix(payload)? {
            Outcome::Emitted(records) => records,
            Outcome::Filtered { step } => return Some(Outcome::Filtered { step }),
            Outcome::Rejected(rejection) => return Some(Outcome::Rejected(rejection)),
        };
        if self.borrowed_steps == self.len() {
            for record in &current {
                record.write_json(out)?;
                out.push(b'\n');
            }
            return Some(Outcome::Emitted(current.len()));
        }
        let values = current.iter().map(BorrowedRecord::to_value).collect::<Option<Vec<_>>>()?;
        Some(write_outcome(self.apply_from(self.borrowed_steps, values).map(unpartitioned), out))
    }

    /// The leading steps that have a borrowed form, run on slices of `payload`: what came out of the last of
    /// them, or the filter or rejection that ended the input. `None` as for
    /// [`write_borrowed`](Self::write_borrowed).
    fn borrowed_prefix<'a>(&self, payload: &'a [u8]) -> Option<Outcome<Vec<BorrowedRecord<'a>>>> {
        if self.borrowed_steps == 0 {
            return None;
        }
        // A repeated key is the `Value` path's rejection (the borrowed reader would keep the last value).
        crate::json::check_unique_keys(payload).ok()?;
        let text = std::str::from_utf8(payload).ok()?;
        let mut current = Vec::new();
        let mut next = Vec::new();
        for (step, compiled) in self.steps[..self.borrowed_steps].iter().enumerate() {
            let transform = compiled.transform.borrowed()?;
            let mut result = Ok(());
            if step == 0 {
                result = transform.apply_to_text(text, &mut next)?;
            }
            for record in current.drain(..) {
                result = transform.apply_borrowed(record, &mut next)?;
                if result.is_err() {
                    break;
                }
            }
            if let Err(error) = result {
                return Some(Outcome::Rejected(Rejection { step: Some(step), step_kind: compiled.kind, error }));
            }
            if next.is_empty() {
                return Some(Outcome::Filtered { step });
            }
            std::mem::swap(&mut current, &mut next);
        }
        Some(Outcome::Emitted(current))
    }

    /// Runs a batch of payloads: outcomes counted, rejects listed with their input index, outputs combined into
    /// batches (by the configured combiner, or one unbounded-by-time group when there is none).
    pub fn run<'a>(&self, payloads: impl IntoIterator<Item = &'a [u8]>) -> RunOutput {
        self.run_with(payloads, false)
    }

    /// What ingest runs: [`run`](Self::run), and every output checked against the export's contract
    /// ([`crate::contract`]): an input with an output the export could not read is rejected (step `contract`,
    /// the reason naming the field) instead of landing.
    pub fn land<'a>(&self, payloads: impl IntoIterator<Item = &'a [u8]>) -> RunOutput {
        self.run_with(payloads, true)
    }

    fn run_with<'a>(&self, payloads: impl IntoIterator<Item = &'a [u8]>, contract: bool) -> RunOutput {
        let mut counts = Counts::default();
        let mut outputs = Vec::new();
        let mut rejects = Vec::new();
        for (input, payload) in payloads.into_iter().enumerate() {
            let outcome = match self.land_borrowed(payload, contract) {
                Some(outcome) => outcome,
                None => self.land_value(payload, contract),
            };
            counts.record(&outcome, self);
            match outcome {
                Outcome::Emitted(records) => {
                    outputs.extend(records.into_iter().map(|(partition, record)| (input, partition, record)));
                }
                Outcome::Filtered { .. } => {}
                Outcome::Rejected(rejection) => rejects.push(RejectedInput { input, rejection }),
            }
        }
        RunOutput { counts, batches: self.combiner.combine(outputs), rejects }
    }

    /// One payload through every step, each output partitioned, checked against the contract when asked, and
    /// written as compact JSON: the `Value` way.
    fn land_value(&self, payload: &[u8], contract: bool) -> Outcome<Vec<Serialized>> {
        let mut outcome = self.apply_json_partitioned(payload);
        if contract
            && let Outcome::Emitted(records) = &outcome
            && let Some(error) = records.iter().find_map(|(_, r)| crate::contract::check(r).err())
        {
            outcome = Outcome::Rejected(crate::contract::rejection(error));
        }
        outcome.map(|records| {
            records
                .into_iter()
                .map(|(partition, record)| (partition, serde_json::to_vec(&record).expect("a JSON value serializes")))
                .collect()
        })
    }

    /// [`land_value`](Self::land_value) on slices of the payload when every step has a borrowed form: the same
    /// outcome and bytes (the partition, the contract and the records read through the same [`crate::view`]
    /// rules), without a `Value` tree. `None` when the input needs the `Value` path.
    fn land_borrowed(&self, payload: &[u8], contract: bool) -> Option<Outcome<Vec<Serialized>>> {
        if self.borrowed_steps != self.steps.len() {
            return None;
        }
        let records = match self.borrowed_prefix(payload)? {
            Outcome::Emitted(records) => records,
            Outcome::Filtered { step } => return Some(Outcome::Filtered { step }),
            Outcome::Rejected(rejection) => return Some(Outcome::Rejected(rejection)),
        };
        let mut partitions = Vec::with_capacity(records.len());
        for record in &records {
            match self.combiner.partition_in(record) {
                Ok(partition) => partitions.push(partition),
                Err(error) => {
                    let step = self.steps.len();
                    return Some(Outcome::Rejected(Rejection {
                        step: Some(step),
                        step_kind: self.step_kind(step),
                        error,
                    }));
                }
            }
        }
        if contract && let Some(error) = records.iter().find_map(|r| crate::contract::check_fields(r).err()) {
            return Some(Outcome::Rejected(crate::contract::rejection(error)));
        }
        let mut serialized = Vec::with_capacity(records.len());
        for (record, partition) in records.iter().zip(partitions) {
            let mut bytes = Vec::with_capacity(512);
            record.write_json(&mut bytes)?;
            serialized.push((partition, bytes));
        }
        Some(Outcome::Emitted(serialized))
    }

    /// The records after each step (`[0]` the input, `[k + 1]` the first output of step `k`; the combiner is
    /// not a step here) and the outcome: what [`crate::contract::check_pipeline`] reads to blame a step.
    pub(crate) fn trace(&self, record: Value) -> (Vec<Value>, Outcome) {
        let mut stages = vec![record.clone()];
        let mut current = vec![record];
        for (step, s) in self.steps.iter().enumerate() {
            let mut next = Vec::new();
            for record in current.drain(..) {
                if let Err(error) = s.transform.apply(record, &mut next) {
                    let rejection = Rejection { step: Some(step), step_kind: s.kind, error };
                    return (stages, Outcome::Rejected(rejection));
                }
            }
            let Some(first) = next.first() else { return (stages, Outcome::Filtered { step }) };
            stages.push(first.clone());
            current = next;
        }
        (stages, Outcome::Emitted(current))
    }

    /// The same pipeline with its borrowed forms off: every input through `Value` trees. The reference the
    /// property tests and the benchmarks compare the borrowed path with (same outcomes, same bytes).
    pub fn value_path_only(mut self) -> Pipeline {
        self.borrowed_steps = 0;
        self
    }

    /// The compiled plan, one line per step, for `salesflow pipeline check`.
    pub fn plan(&self) -> String {
        let mut lines = Vec::new();
        if let Some(d) = &self.description {
            lines.push(format!("# {d}"));
        }
        for (i, s) in self.steps.iter().enumerate() {
            lines.push(format!("pipeline[{i}] {}: {}", s.kind, s.transform.describe()));
        }
        let combiner_line = self.combiner.describe();
        if self.combiner_configured {
            lines.push(format!("pipeline[{}] combiner: {combiner_line}", self.steps.len()));
        } else {
            lines.push(format!("(no combiner: landing uses {combiner_line})"));
        }
        lines.join("\n")
    }

    /// Number of steps, the combiner included when configured.
    pub fn len(&self) -> usize {
        self.steps.len() + usize::from(self.combiner_configured)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Appends the emitted records (if any) to `out` as NDJSON; the outcome keeps their number.
fn write_outcome(outcome: Outcome, out: &mut Vec<u8>) -> Outcome<usize> {
    match outcome {
        Outcome::Emitted(records) => {
            for record in &records {
                serde_json::to_writer(&mut *out, record).expect("writing to memory");
                out.push(b'\n');
            }
            Outcome::Emitted(records.len())
        }
        Outcome::Filtered { step } => Outcome::Filtered { step },
        Outcome::Rejected(rejection) => Outcome::Rejected(rejection),
    }
}
