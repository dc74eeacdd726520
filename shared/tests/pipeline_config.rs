//! Loading pipeline files: unknown keys and steps are refused, and every error names the step, its kind and
//! the field, all of them at once.

use salesflow_core::reference::EmbeddedResources;
use salesflow_core::{DefaultTimeZone, Outcome, PipelineConfig};

fn errors(text: &str) -> Vec<String> {
    match PipelineConfig::parse(text) {
        Err(e) => vec![e.to_string()],
        Ok(config) => match config.compile(&EmbeddedResources(&[])) {
            Ok(_) => vec![],
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        },
    }
}

#[test]
fn unknown_keys_and_steps_are_refused_with_their_path() {
    assert_eq!(
        errors("pipeline:\n  - validate: {}\n  - filter: {paht: \"$.a\"}\n"),
        ["pipeline[1].filter.paht: unknown field `paht`, expected one of `path`, `where`, `mode`"]
    );
    assert_eq!(
        errors("pipeline:\n  - frobnicate: {}\n"),
        [
            "pipeline[0]: unknown variant `frobnicate`, expected one of `filter`, `splitter`, `map`, `validate`, `combiner`"
        ]
    );
    assert_eq!(
        errors("pipelines: []\n"),
        ["pipelines: unknown field `pipelines`, expected `description` or `pipeline`"]
    );
    assert_eq!(
        errors(r#"{"pipeline": [{"filter": {"where": "@.x > 1", "mode": "maybe"}}]}"#),
        ["pipeline[0].filter.mode: unknown variant `maybe`, expected `keep` or `drop`"]
    );
    assert!(errors("pipeline: [\n")[0].starts_with("pipeline file: invalid YAML: "));
}

/// Issue 12: `pipeline check` stopped at the first unknown key or step kind although the README promises
/// every error.
#[test]
fn every_unknown_key_and_step_kind_is_reported() {
    let text = "descripton: x\npipeline:\n  - filter: {paht: \"$.a\", mdoe: keep}\n  - frobnicate: {}\n  - validate: {}\n  - map:\n      - set: {field: t, expr: \"1\", extra: 1}\n  - splitter: {path: \"$.lines\", nope: 1}\n";
    let errors: Vec<String> = PipelineConfig::parse_all(text).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "descripton: unknown field `descripton`, expected `description` or `pipeline`",
            "pipeline[0].filter.paht: unknown field `paht`, expected one of `path`, `where`, `mode`",
            "pipeline[0].filter.mdoe: unknown field `mdoe`, expected one of `path`, `where`, `mode`",
            "pipeline[1]: unknown variant `frobnicate`, expected one of `filter`, `splitter`, `map`, `validate`, `combiner`",
            "pipeline[3].map[0].set.extra: unknown field `extra`, expected `field` or `expr`",
            "pipeline[4].splitter.nope: unknown field `nope`, expected one of `path`, `carry`, `index_field`",
        ]
    );
    // `parse` keeps answering the first.
    assert_eq!(PipelineConfig::parse(text).unwrap_err().to_string(), errors[0]);
}

#[test]
fn compile_errors_are_all_reported() {
    let got = errors(
        "pipeline:\n  - combiner: {time_field: emitted_at, max_records: 0}\n  - splitter: {path: \"$.lines[?@.x <]\"}\n  - map:\n      - set: {field: t, expr: \"a +\"}\n",
    );
    assert_eq!(
        got,
        [
            "pipeline[0].combiner: the combiner must be the last step",
            "pipeline[0].combiner.max_records: must be at least 1",
            "pipeline[1].splitter.path: invalid JSONPath at position 13: in long-hand segment, expected closing ']'",
            "pipeline[2].map[0].set.expr: invalid expression at position 4: unexpected end of expression",
        ]
    );
    assert_eq!(errors("pipeline: []\n"), ["pipeline: needs at least one step"]);
}

#[test]
fn the_plan_describes_each_step() {
    let config = PipelineConfig::parse(salesflow_core::defaults::SALES_PIPELINE).unwrap();
    let plan = config.compile(&salesflow_core::defaults::EMBEDDED_FILES).unwrap().plan();
    assert!(plan.contains("pipeline[1] filter: drop records where @.store_id == 'S00000'"), "{plan}");
    assert!(plan.contains("pipeline[4] combiner: NDJSON batches grouped by the UTC hour of emitted_at"), "{plan}");
}

#[test]
fn time_parts_use_the_default_zone_given_to_compile_with_unless_they_name_one() {
    let config = PipelineConfig::parse(
        "pipeline:\n  - map:\n      - time_parts: {field: at}\n      - time_parts: {field: at, time_zone: UTC, hour: utc_hour, date: utc_date, weekday: utc_weekday}\n",
    )
    .unwrap();
    let paris = DefaultTimeZone::new("Europe/Paris", "SALESFLOW_TIME_ZONE").unwrap();
    let pipeline = config.compile_with(&EmbeddedResources(&[]), &paris).unwrap();
    assert_eq!(
        pipeline.plan().lines().next().unwrap(),
        "pipeline[0] map: date / hour / weekday of at in Europe/Paris (default zone, from SALESFLOW_TIME_ZONE); \
         utc_date / utc_hour / utc_weekday of at in UTC (set by time_zone)"
    );
    let Outcome::Emitted(out) = pipeline.apply(serde_json::json!({"at": "2026-03-29T01:30:00Z"})) else { panic!() };
    assert_eq!((out[0]["hour"].as_u64(), out[0]["utc_hour"].as_u64()), (Some(3), Some(1)));
    // `compile` gives no default zone: UTC, and the plan says so.
    let plan = config.compile(&EmbeddedResources(&[])).unwrap().plan();
    assert!(plan.contains("of at in UTC (default zone, from the built-in fallback)"), "{plan}");
    // The default never hides a bad zone in the file.
    let bad = PipelineConfig::parse(
        "pipeline:\n  - validate: {}\n  - map:\n      - time_parts: {field: at, time_zone: Mars/Olympus}\n",
    )
    .unwrap()
    .compile_with(&EmbeddedResources(&[]), &paris)
    .unwrap_err();
    assert_eq!(
        bad.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "pipeline[1].map[0].time_parts.time_zone: unknown time zone \"Mars/Olympus\" (use an IANA name such as Europe/Paris)"
        ]
    );
}

#[test]
fn a_batch_format_the_export_cannot_read_is_refused() {
    assert_eq!(
        errors("pipeline:\n  - combiner: {time_field: at, format: json_array}\n"),
        [
            "pipeline[0].combiner.format: json_array is not a format the export reads (it reads landed objects as NDJSON, one line per record); use ndjson"
        ]
    );
}

#[test]
fn the_batcher_partitions_each_output_once_and_carries_the_hour_with_the_batch() {
    let text = "pipeline:\n  - splitter: {path: \"$.lines[*]\", carry: [at]}\n  - combiner: {time_field: at}\n";
    let pipeline = PipelineConfig::parse(text).unwrap().compile(&EmbeddedResources(&[])).unwrap();
    let payloads: [&[u8]; 3] = [
        br#"{"at": "2026-11-23T09:59:59+01:00", "lines": [{"n": 1}, {"n": 2}]}"#,
        br#"{"at": "2026-11-23T09:00:00Z", "lines": [{"n": 3}]}"#,
        br#"{"at": "not a time", "lines": [{"n": 4}]}"#,
    ];
    let out = pipeline.run(payloads);
    let hours: Vec<(String, i8, usize)> = out
        .batches
        .iter()
        .map(|b| (b.partition.unwrap().date.to_string(), b.partition.unwrap().hour, b.records))
        .collect();
    assert_eq!(hours, [("2026-11-23".to_string(), 8, 2), ("2026-11-23".to_string(), 9, 1)]);
    assert_eq!(out.rejects.len(), 1);
    assert_eq!(out.rejects[0].rejection.step_label(), "pipeline[1].combiner");
    assert!(
        matches!(pipeline.apply(serde_json::json!({"lines": [{}]})), Outcome::Rejected(r) if r.error.to_string() == "at: missing (the combiner groups by it)")
    );
}
