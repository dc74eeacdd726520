//! Golden pipelines: each `tests/golden/<case>/` holds a `pipeline.yaml` and an `input.jsonl`, and the expected
//! `expected.jsonl` (outputs), `expected.rejects.jsonl` (line, step, reason) and `expected.counts.json`.
//! Every line also goes through `Pipeline::write_ndjson` (the borrowed fast path of `salesflow transform`),
//! which must give the same outcome and the same bytes. Adding a folder adds a case. `UPDATE_GOLDEN=1 cargo test -p salesflow-core --test golden` rewrites the
//! expected files: review the diff before committing it.

use std::path::{Path, PathBuf};

use salesflow_core::reference::DirResources;
use salesflow_core::{Counts, Outcome, PipelineConfig};
use serde_json::json;

fn run_case(dir: &Path) -> (String, String, String) {
    let text = std::fs::read_to_string(dir.join("pipeline.yaml")).unwrap();
    let pipeline = PipelineConfig::parse(&text).unwrap().compile(&DirResources(dir.to_path_buf())).unwrap();
    let input = std::fs::read_to_string(dir.join("input.jsonl")).unwrap();
    let (mut outputs, mut rejects, mut counts) = (String::new(), String::new(), Counts::default());
    for (i, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let outcome = pipeline.apply_json(line.as_bytes());
        counts.record(&outcome, &pipeline);
        let mut written = Vec::new();
        let fast = pipeline.write_ndjson(line.as_bytes(), &mut written);
        let mut expected = String::new();
        match outcome {
            Outcome::Emitted(records) => {
                for r in &records {
                    expected.push_str(&serde_json::to_string(r).unwrap());
                    expected.push('\n');
                }
                assert_eq!(fast, Outcome::Emitted(records.len()), "{}, line {}", dir.display(), i + 1);
                outputs.push_str(&expected);
            }
            Outcome::Filtered { step } => assert_eq!(fast, Outcome::Filtered { step }),
            Outcome::Rejected(r) => {
                assert_eq!(fast, Outcome::Rejected(r.clone()), "{}, line {}", dir.display(), i + 1);
                let line = json!({"line": i + 1, "step": r.step_label(), "reason": r.error.to_string()});
                rejects.push_str(&serde_json::to_string(&line).unwrap());
                rejects.push('\n');
            }
        }
        assert_eq!(String::from_utf8(written).unwrap(), expected, "{}, line {}", dir.display(), i + 1);
    }
    assert!(counts.balanced(), "{}: counts do not add up: {counts:?}", dir.display());
    (outputs, rejects, serde_json::to_string_pretty(&counts).unwrap() + "\n")
}

#[test]
fn golden_pipelines() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden"));
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(cases.len() >= 3, "golden cases missing under {}", root.display());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for dir in &cases {
        let (outputs, rejects, counts) = run_case(dir);
        for (file, got) in
            [("expected.jsonl", outputs), ("expected.rejects.jsonl", rejects), ("expected.counts.json", counts)]
        {
            let path = dir.join(file);
            if update {
                std::fs::write(&path, &got).unwrap();
            } else if std::fs::read_to_string(&path).unwrap_or_default() != got {
                mismatches.push(format!("{} differs; got:\n{got}", path.display()));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
