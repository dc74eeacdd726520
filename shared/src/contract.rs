//! The landed-line contract: what ingest may land is what the export can read, a [`SalesLine`] (schema
//! [`SCHEMA`]). Ingest runs [`Pipeline::land`], which checks every output of the pipeline with
//! [`SalesLine::from_record`] — the reader the export uses on the landed bytes — and rejects an input one of
//! whose outputs fails it, with step label [`STEP`] and the reason naming the field, into `rejects/` (where
//! replay exists). So the export never meets a line ingest counted as emitted and cannot read.
//!
//! [`check_pipeline`] tells, before any record flows, whether a pipeline ends in the contract: it runs sample
//! receipts (generated ones, or the caller's) through the steps one at a time and, for each field the contract
//! refuses, names the step to blame (the one that removed it, or the last that changed it) or says no step sets
//! it. `salesflow pipeline check` prints it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

pub use crate::datasets::sales_lines::SCHEMA;
use crate::datasets::sales_lines::SalesLine;
use crate::error::{RecordError, Rejection};
use crate::pipeline::{Outcome, Pipeline};
use crate::view::ObjectView;

/// The step label of an input rejected because an output of the pipeline is not a sales line.
pub const STEP: &str = "contract";

/// Checks one output of the pipeline against the contract: `Ok` exactly when the export can read it.
pub fn check(record: &Value) -> Result<SalesLine, RecordError> {
    SalesLine::from_record(record)
}

/// [`check`] on an object's fields (a borrowed record's, in ingest's borrowed path).
pub fn check_fields(record: &(impl ObjectView + ?Sized)) -> Result<SalesLine, RecordError> {
    SalesLine::from_fields(record)
}

/// The rejection of an input whose output failed [`check`].
pub fn rejection(error: RecordError) -> Rejection {
    Rejection { step: None, step_kind: STEP, error }
}

/// A field of the pipeline's output the contract refuses, and which step is to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractProblem {
    pub field: String,
    pub message: String,
    /// `removed by pipeline[3].map`, `last set by pipeline[2].splitter`, `no step sets it`, ...
    pub blame: String,
}

impl std::fmt::Display for ContractProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.message, self.blame)
    }
}

/// What [`check_pipeline`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractCheck {
    /// Every output of the samples is a sales line.
    Met { samples: usize, lines: usize },
    /// Outputs the export would not read, by field.
    Broken(Vec<ContractProblem>),
    /// No sample came out of the pipeline (each filtered or rejected: the reasons), so nothing could be told.
    Untested(Vec<String>),
}

impl std::fmt::Display for ContractCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContractCheck::Met { samples, lines } => write!(
                f,
                "ends in the export's contract (sales_lines schema {SCHEMA}): {lines} lines of {samples} sample receipts checked"
            ),
            ContractCheck::Broken(problems) => {
                write!(
                    f,
                    "does not end in the export's contract (sales_lines schema {SCHEMA}): ingest would reject its records at step {STEP}"
                )?;
                for p in problems {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
            ContractCheck::Untested(reasons) => {
                write!(f, "contract not checked: no sample receipt came out of the pipeline")?;
                for r in reasons {
                    write!(f, "\n  {r}")?;
                }
                Ok(())
            }
        }
    }
}

/// Sample receipts of the embedded stores table (`pipelines/stores.csv`), deterministic.
pub fn sample_receipts() -> Vec<Value> {
    let mut generator = crate::generate::Generator::new(11, 10_000);
    let at: Timestamp = "2026-11-23T09:15:00Z".parse().expect("a valid instant");
    (0..4).map(|_| generator.receipt_at(at)).collect()
}

/// Runs `samples` through the pipeline step by step and checks every output against the contract.
pub fn check_pipeline(pipeline: &Pipeline, samples: &[Value]) -> ContractCheck {
    let mut problems: BTreeMap<String, ContractProblem> = BTreeMap::new();
    let mut unusable = Vec::new();
    let mut lines = 0;
    let mut emitting = 0;
    for (i, sample) in samples.iter().enumerate() {
        let (stages, outcome) = pipeline.trace(sample.clone());
        let outputs = match outcome {
            Outcome::Emitted(outputs) => outputs,
            Outcome::Filtered { step } => {
                unusable.push(format!("sample {}: filtered by {}", i + 1, pipeline.step_label(step)));
                continue;
            }
            Outcome::Rejected(r) => {
                unusable.push(format!("sample {}: {r}", i + 1));
                continue;
            }
        };
        emitting += 1;
        for output in &outputs {
            lines += 1;
            let Err(RecordError::InvalidFields(errors)) = check(output) else { continue };
            for e in errors {
                problems.entry(e.path.clone()).or_insert_with(|| ContractProblem {
                    blame: blame(pipeline, &stages, &e.path),
                    field: e.path,
                    message: e.message,
                });
            }
        }
    }
    if !problems.is_empty() {
        ContractCheck::Broken(problems.into_values().collect())
    } else if emitting == 0 {
        ContractCheck::Untested(unusable)
    } else {
        ContractCheck::Met { samples: emitting, lines }
    }
}

/// Which step made `field` what the contract refuses, from the first record after each step (`stages[0]` is
/// the input, `stages[k + 1]` what step `k` output).
fn blame(pipeline: &Pipeline, stages: &[Value], field: &str) -> String {
    let value = |k: usize| stages[k].get(field).filter(|v| !v.is_null());
    let last = stages.len() - 1;
    if value(last).is_none() {
        return match (0..last).rev().find(|&k| value(k).is_some()) {
            Some(k) => format!("removed by {}", pipeline.step_label(k)),
            None => "no step sets it".to_string(),
        };
    }
    match (0..last).rev().find(|&k| value(k) != value(k + 1)) {
        Some(k) => format!("last set by {}", pipeline.step_label(k)),
        None => "as it comes in; no step sets it".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::{EMBEDDED_FILES, sales_pipeline};
    use crate::pipeline::PipelineConfig;

    fn compile(text: &str) -> Pipeline {
        PipelineConfig::parse(text).unwrap().compile(&EMBEDDED_FILES).unwrap()
    }

    #[test]
    fn the_sample_pipeline_ends_in_the_contract() {
        let check = check_pipeline(&sales_pipeline(), &sample_receipts());
        assert!(matches!(check, ContractCheck::Met { samples: 4, lines } if lines > 4), "{check}");
    }

    #[test]
    fn a_pipeline_that_drops_and_never_sets_fields_is_told_which_step() {
        let p = compile(
            "pipeline:\n  - validate: {}\n  - splitter: {path: \"$.lines[*]\", carry: [receipt_id, store_id, emitted_at], index_field: line_no}\n  - map:\n      - drop: {fields: [sku]}\n      - rename: {from: name, to: label}\n",
        );
        let ContractCheck::Broken(problems) = check_pipeline(&p, &sample_receipts()) else { panic!() };
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        for expected in [
            "sku: missing (removed by pipeline[2].map)",
            "name: missing (removed by pipeline[2].map)",
            "hour: missing (no step sets it)",
            "date: missing (no step sets it)",
        ] {
            assert!(shown.iter().any(|s| s == expected), "{expected} not in {shown:#?}");
        }
    }

    #[test]
    fn a_wrong_type_blames_the_step_that_set_it() {
        let p = compile(
            "pipeline:\n  - validate: {}\n  - splitter: {path: \"$.lines[*]\", carry: [receipt_id, store_id, emitted_at], index_field: line_no}\n  - map:\n      - time_parts: {field: emitted_at}\n      - set: {field: line_total, expr: \"quantity * unit_price\"}\n      - set: {field: sku, expr: \"quantity\"}\n",
        );
        let ContractCheck::Broken(problems) = check_pipeline(&p, &sample_receipts()) else { panic!() };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "sku");
        assert_eq!(problems[0].blame, "last set by pipeline[2].map");
    }

    #[test]
    fn samples_that_never_come_out_leave_the_contract_untested() {
        let p = compile("pipeline:\n  - filter: {where: \"@.store_id != 'none'\", mode: drop}\n");
        assert!(matches!(check_pipeline(&p, &sample_receipts()), ContractCheck::Untested(r) if r.len() == 4));
    }
}
