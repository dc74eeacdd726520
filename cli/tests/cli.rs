//! The `salesflow` binary as users run it: exit codes, what goes to stdout and stderr, and files written.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn salesflow(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_salesflow"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or_default()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn transform_counts_add_up_and_rejects_carry_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lines.ndjson");
    let rejects = dir.path().join("rejects.ndjson");
    let o = salesflow(
        &[
            "transform",
            "events/receipts.ndjson",
            "--out",
            out.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    assert!(stderr.starts_with("records in: 305, emitted: 301 (outputs: 4806), filtered: 0, rejected: 4"), "{stderr}");
    let lines = std::fs::read_to_string(&out).unwrap();
    assert_eq!(lines.lines().count(), 4806);
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    for field in ["receipt_id", "line_no", "line_total", "date", "hour", "weekday", "city", "manager"] {
        assert!(first.get(field).is_some(), "{field} missing from {first}");
    }
    let rejects = std::fs::read_to_string(&rejects).unwrap();
    let rejects: Vec<serde_json::Value> = rejects.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rejects.len(), 4);
    assert_eq!(rejects[3]["line"], 305);
    assert_eq!(rejects[3]["step"], "pipeline[0].validate");
    assert_eq!(rejects[3]["reason"], "expected a receipt object, found an array");
    assert_eq!(rejects[3]["payload"], "[1,2,3]");
}

#[test]
fn transform_reads_gzip_from_stdin_with_a_pipeline_file() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read("../tests/golden/split-filter/input.jsonl").unwrap()).unwrap();
    let o = salesflow(&["transform", "--pipeline", "pipelines/bench-split-filter.yaml"], Some(&gz.finish().unwrap()));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let expected = std::fs::read_to_string("../tests/golden/split-filter/expected.jsonl").unwrap();
    assert_eq!(text(&o.stdout), expected);
}

#[test]
fn jsonpath_prints_the_nodelist_or_exits_2() {
    let doc = br#"{"lines":[{"sku":"A","unit_price":99.99},{"sku":"B","unit_price":120}]}"#;
    let o = salesflow(&["jsonpath", "$.lines[?@.unit_price < 100].sku"], Some(doc));
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), "[\"A\"]\n");
    let o = salesflow(&["jsonpath", "$.lines[?@.unit_price <]"], Some(doc));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).starts_with("error: invalid JSONPath at position "), "{}", text(&o.stderr));
    let o = salesflow(&["jsonpath", "$"], Some(b"{not json"));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("- is not valid JSON"), "{}", text(&o.stderr));
}

#[test]
fn pipeline_check_prints_the_plan_or_every_error() {
    let o = salesflow(&["pipeline", "check", "pipelines/sales.yaml"], None);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("pipeline[2] splitter: one record per node of $.lines[*]"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "pipeline:\n  - filter: {where: '@.x <'}\n  - map:\n      - lookup: {table: nowhere.csv, key: store_id, fields: [city]}\n").unwrap();
    let o = salesflow(&["pipeline", "check", bad.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("2 error(s)"), "{stderr}");
    assert!(stderr.contains("pipeline[0].filter.where: invalid filter expression at position "), "{stderr}");
    assert!(stderr.contains("pipeline[1].map[0].lookup.table: cannot read "), "{stderr}");
}

#[test]
fn pipeline_check_tells_whether_the_pipeline_ends_in_the_exports_contract() {
    let o = salesflow(&["pipeline", "check", "pipelines/sales.yaml"], None);
    assert!(o.status.success());
    assert!(
        text(&o.stdout).contains("contract: ends in the export's contract (sales_lines schema 1)"),
        "{}",
        text(&o.stdout)
    );
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.yaml");
    std::fs::write(
        &wrong,
        "pipeline:\n  - validate: {}\n  - splitter: {path: \"$.lines[*]\", carry: [receipt_id, store_id, emitted_at], index_field: line_no}\n  - map:\n      - drop: {fields: [category]}\n",
    )
    .unwrap();
    let o = salesflow(&["pipeline", "check", wrong.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(out.contains("contract: does not end in the export's contract"), "{out}");
    assert!(out.contains("  category: missing (removed by pipeline[2].map)"), "{out}");
    assert!(out.contains("  hour: missing (no step sets it)"), "{out}");
}

#[test]
fn time_parts_without_a_zone_use_salesflow_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, "pipeline:\n  - map:\n      - time_parts: { field: at }\n").unwrap();
    let run = |zone: &str, args: &[&str], stdin: &[u8]| {
        Command::new(env!("CARGO_BIN_EXE_salesflow"))
            .args(args)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env("SALESFLOW_TIME_ZONE", zone)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(stdin)?;
                child.wait_with_output()
            })
            .unwrap()
    };
    let path = file.to_str().unwrap();
    let o = run("America/New_York", &["pipeline", "check", path], b"");
    assert!(o.status.success(), "no sample receipt has `at`: the contract is left untested, not failed");
    let plan = text(&o.stdout);
    assert!(
        plan.contains(
            "pipeline[0] map: date / hour / weekday of at in America/New_York (default zone, from SALESFLOW_TIME_ZONE)"
        ),
        "{plan}"
    );
    let o = run("America/New_York", &["transform", "--pipeline", path], b"{\"at\":\"2026-07-01T03:00:00Z\"}\n");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "{\"at\":\"2026-07-01T03:00:00Z\",\"date\":\"2026-06-30\",\"hour\":23,\"weekday\":\"Tuesday\"}\n"
    );
    // Empty is unset: the functions' default. A bad zone names the variable.
    let o = run("", &["pipeline", "check", path], b"");
    assert!(text(&o.stdout).contains("of at in Europe/Paris (default zone, from SALESFLOW_TIME_ZONE)"));
    let o = run("Mars/Olympus", &["pipeline", "check", path], b"");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("SALESFLOW_TIME_ZONE=\"Mars/Olympus\": not a known IANA time zone"),
        "{}",
        text(&o.stderr)
    );
    // A zone in the file wins.
    let o = run("America/New_York", &["pipeline", "check", "pipelines/sales.yaml"], b"");
    assert!(text(&o.stdout).contains("of emitted_at in Europe/Paris (set by time_zone)"));
}

#[test]
fn generate_is_deterministic_for_a_seed() {
    let a = salesflow(&["generate", "--receipts", "20", "--seed", "9", "--stores", "50"], None);
    let b = salesflow(&["generate", "--receipts", "20", "--seed", "9", "--stores", "50"], None);
    let c = salesflow(&["generate", "--receipts", "20", "--seed", "10", "--stores", "50"], None);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    assert_eq!(text(&a.stdout).lines().count(), 20);
}

/// Issue 12: `--hours 100000000` and `--start 9999-12-30T21:00:00Z` panicked; `--stores 0` silently used 1.
#[test]
fn generate_refuses_spans_past_the_end_of_time_and_zero_stores() {
    for (args, message) in [
        (
            &["--hours", "100000000"][..],
            "--start 2026-11-23T07:00:00Z plus --hours 100000000 ends after 9999-12-30T22:00:00.999999999Z",
        ),
        (
            &["--start", "9999-12-30T21:00:00Z"][..],
            "--start 9999-12-30T21:00:00Z plus --hours 13 ends after 9999-12-30T22:00:00.999999999Z",
        ),
        (&["--hours", "9223372036854775807"][..], "plus --hours 9223372036854775807 ends after"),
        (&["--stores", "0"][..], "invalid value '0' for '--stores <STORES>'"),
        (&["--hours", "0"][..], "invalid value '0' for '--hours <HOURS>'"),
    ] {
        let out = salesflow(&[&["generate", "--receipts", "3"][..], args].concat(), None);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(message) && !stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn invoke_shows_the_handlers_logs_and_the_export_says_why_it_rejected_a_line() {
    let store = tempfile::tempdir().unwrap();
    let key = "landed/dt=2026-11-23/hour=08/shardId-000000000001-49590338271490256608559692538361571095921575989136588818-49590338271490256608559692540925702759324208523137515618-0.ndjson.gz";
    let path = store.path().join("salesflow-data").join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let golden =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden/sales/expected.jsonl")).unwrap();
    let good = golden.lines().next().unwrap();
    std::fs::write(&path, format!("{good}\n{{\"receipt_id\": \"broken\"}}\n")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_salesflow"))
        .args(["invoke", "export", "--event", "events/s3-put.json", "--store", store.path().to_str().unwrap()])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("RUST_LOG", "rejects=warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    let logs: Vec<serde_json::Value> =
        stderr.lines().filter(|l| l.starts_with('{')).filter_map(|l| serde_json::from_str(l).ok()).collect();
    let rejected: Vec<&serde_json::Value> = logs.iter().filter(|l| l["target"] == "rejects").collect();
    assert_eq!(rejected.len(), 1, "{stderr}");
    let fields = &rejected[0]["fields"];
    assert_eq!(fields["key"], format!("s3://salesflow-data/{key}"));
    assert_eq!(fields["line"], 2);
    assert!(fields["reason"].as_str().unwrap().contains("line_no: missing"), "{fields}");
    assert!(
        !logs.iter().any(|l| l["fields"]["message"] == "exported a landed object"),
        "RUST_LOG=rejects=warn filters the rest: {stderr}"
    );
}
