//! What `template.yaml` must say, asserted offline. cfn-lint and `sam validate` accept wrong values inside SAM
//! event properties (`StartingPosition: NEWEST`, a filter on the wrong prefix), so the values that matter are
//! checked here: IAM scope per function, the export's S3 filter (a wrong one loops the export on its own output),
//! the Kinesis event source settings, runtime and build, storage hardening, alarms, dashboard, QuickSight gating.
//!
//! Each `check_*` returns every problem it finds; a test asserts the repository's template has none, and the
//! `mutation_*` tests feed a broken copy of the template to the same check to show it would be caught.

#[path = "cfn.rs"]
mod cfn;

use std::collections::BTreeSet;

use cfn::{S3KeyFilter, Template, as_int, as_list, scalar_text};
use serde_json::{Value as J, json};

const INGEST: &str = "IngestFunction";
const EXPORT: &str = "ExportFunction";

// ------------------------------------------------------------------------------------------------- helpers

fn assert_clean(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}: {} problem(s):\n  {}", problems.len(), problems.join("\n  "));
}

/// The repository's template with `from` replaced by `to` (which must occur), parsed.
fn mutated(from: &str, to: &str) -> Template {
    let text = cfn::template_text();
    assert!(text.contains(from), "mutation: {from:?} not in template.yaml");
    Template::parse(&text.replacen(from, to, 1))
}

fn assert_caught(what: &str, problems: Vec<String>, expect: &str) {
    assert!(
        problems.iter().any(|p| p.contains(expect)),
        "{what}: expected a problem mentioning {expect:?}, got {problems:#?}"
    );
}

/// The single event of `kind` a function has.
fn event<'a>(t: &'a Template, function: &str, kind: &str) -> Result<(&'a str, &'a J), String> {
    let events = t.props(function)["Events"].as_object().ok_or(format!("{function}: no Events"))?;
    let found: Vec<_> = events.iter().filter(|(_, e)| e["Type"] == kind).collect();
    match found.as_slice() {
        [(name, e)] => Ok((name.as_str(), *e)),
        [] => Err(format!("{function}: no {kind} event")),
        _ => Err(format!("{function}: {} {kind} events, expected one", found.len())),
    }
}

/// The role a function runs with: must be an explicit `!GetAtt Role.Arn`, so SAM attaches no managed policies of
/// its own (its Kinesis event would add AWSLambdaKinesisExecutionRole, whose Kinesis resource is `*`).
fn function_role(t: &Template, function: &str, problems: &mut Vec<String>) -> Option<String> {
    let p = t.props(function);
    if p.get("Policies").is_some() {
        problems.push(format!("{function}: SAM Policies given; use the explicit role only"));
    }
    match p["Role"].get("Fn::GetAtt") {
        Some(att) if att[1] == "Arn" => Some(att[0].as_str().unwrap().to_string()),
        _ => {
            problems.push(format!("{function}: Role must be !GetAtt <Role>.Arn, is {}", p["Role"]));
            None
        }
    }
}

/// The integer range a property can take in a deploy: a literal, or a parameter's [MinValue, MaxValue] with its
/// default inside.
fn int_range(t: &Template, what: &str, v: &J, problems: &mut Vec<String>) -> Option<(i64, i64, i64)> {
    if let Some(name) = v.get("Ref").and_then(J::as_str) {
        let p = t.param(name);
        let (min, max, default) = (as_int(&p["MinValue"]), as_int(&p["MaxValue"]), as_int(&p["Default"]));
        match (min, max, default) {
            (Some(min), Some(max), Some(d)) if min <= d && d <= max => Some((min, max, d)),
            _ => {
                problems.push(format!("{what}: parameter {name} needs MinValue, MaxValue and a Default between them"));
                None
            }
        }
    } else if let Some(n) = as_int(v) {
        Some((n, n, n))
    } else {
        problems.push(format!("{what}: expected an integer or a !Ref to a Number parameter, got {v}"));
        None
    }
}

fn within(what: &str, range: Option<(i64, i64, i64)>, lo: i64, hi: i64, problems: &mut Vec<String>) {
    if let Some((min, max, _)) = range
        && (min < lo || max > hi)
    {
        problems.push(format!("{what}: allowed range {min}..={max} is not inside {lo}..={hi}"));
    }
}

fn s3_object_arn(t: &Template, prefix: &str) -> String {
    format!("arn:{}:s3:::{}/{prefix}*", cfn::PARTITION, t.bucket_name())
}

// ------------------------------------------------------------------------------------------------- checks

fn check_functions(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let functions = t.of_type("AWS::Serverless::Function");
    let ids: BTreeSet<&str> = functions.iter().map(|(id, _)| *id).collect();
    if ids != BTreeSet::from([INGEST, EXPORT]) {
        problems.push(format!("functions are {ids:?}, expected {INGEST} and {EXPORT}"));
    }
    for (id, binary) in [(INGEST, "salesflow-ingest"), (EXPORT, "salesflow-export")] {
        let r = t.resource(id);
        let p = &r["Properties"];
        if p["Runtime"] != "provided.al2023" {
            problems.push(format!("{id}: Runtime {} (expected provided.al2023)", p["Runtime"]));
        }
        if p["Architectures"] != json!(["arm64"]) {
            problems.push(format!("{id}: Architectures {} (expected [arm64])", p["Architectures"]));
        }
        if p["Handler"] != "bootstrap" {
            problems.push(format!("{id}: Handler {} (expected bootstrap)", p["Handler"]));
        }
        if r["Metadata"]["BuildMethod"] != "rust-cargolambda" {
            problems.push(format!(
                "{id}: Metadata.BuildMethod {} (expected rust-cargolambda)",
                r["Metadata"]["BuildMethod"]
            ));
        }
        if r["Metadata"]["BuildProperties"]["Binary"] != binary {
            problems.push(format!(
                "{id}: BuildProperties.Binary {} (expected {binary})",
                r["Metadata"]["BuildProperties"]["Binary"]
            ));
        }
        // CodeUri is the crate that defines that binary (sam build runs cargo lambda in it).
        let code = p["CodeUri"].as_str().unwrap_or_default().trim_end_matches('/').to_string();
        let manifest = format!("{code}/Cargo.toml");
        if !cfn::repo_path_exists(&manifest) {
            problems.push(format!("{id}: CodeUri {code:?} has no Cargo.toml"));
        } else if !cfn::repo_file(&manifest).contains(&format!("name = \"{binary}\"")) {
            problems.push(format!("{id}: {manifest} does not name the binary {binary}"));
        }
        function_role(t, id, &mut problems);
        // An explicit log group with retention, used by the function.
        let lg = p["LoggingConfig"]["LogGroup"]["Ref"].as_str();
        match lg {
            Some(lg) if t.resource(lg)["Type"] == "AWS::Logs::LogGroup" => {
                if t.props(lg).get("RetentionInDays").is_none() {
                    problems.push(format!("{lg}: no RetentionInDays"));
                }
                let name = scalar_text(&t.eval(&t.props(lg)["LogGroupName"]));
                let function_name = scalar_text(&t.eval(&p["FunctionName"]));
                if name != format!("/aws/lambda/{function_name}") {
                    problems.push(format!("{lg}: LogGroupName {name} is not /aws/lambda/{function_name}"));
                }
            }
            _ => problems.push(format!("{id}: LoggingConfig.LogGroup must !Ref an AWS::Logs::LogGroup")),
        }
    }
    for (id, r) in t.of_type("AWS::Logs::LogGroup") {
        if r["Properties"].get("RetentionInDays").is_none() {
            problems.push(format!("{id}: no RetentionInDays"));
        }
    }
    problems
}

/// What each function may do, exactly: (action, resource) pairs. Anything more, or missing, is a problem.
fn expected_grants(t: &Template, function: &str) -> BTreeSet<(String, String)> {
    let mut g = BTreeSet::new();
    let mut add = |actions: &[&str], resources: &[String]| {
        for a in actions {
            for r in resources {
                g.insert((a.to_string(), r.clone()));
            }
        }
    };
    let logs = ["logs:CreateLogStream", "logs:PutLogEvents"];
    match function {
        INGEST => {
            add(&logs, &["<IngestLogGroup.Arn>".into()]);
            add(
                &[
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:ListShards",
                ],
                &["<ReceiptStream.Arn>".into()],
            );
            add(
                &["s3:PutObject"],
                &[s3_object_arn(t, "raw/"), s3_object_arn(t, "landed/"), s3_object_arn(t, "rejects/")],
            );
            add(&["sqs:SendMessage"], &["<IngestFailureQueue.Arn>".into()]);
        }
        EXPORT => {
            add(&logs, &["<ExportLogGroup.Arn>".into()]);
            add(&["s3:GetObject"], &[s3_object_arn(t, "landed/"), s3_object_arn(t, "datasets/")]);
            add(&["s3:ListBucket"], &[format!("arn:{}:s3:::{}", cfn::PARTITION, t.bucket_name())]);
            add(&["s3:PutObject", "s3:DeleteObject"], &[s3_object_arn(t, "datasets/"), s3_object_arn(t, "manifests/")]);
            add(&["sqs:SendMessage"], &["<ExportDeadLetterQueue.Arn>".into()]);
        }
        other => panic!("no expectations for {other}"),
    }
    g
}

fn check_iam(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    for function in [INGEST, EXPORT] {
        let Some(role) = function_role(t, function, &mut problems) else {
            continue;
        };
        let grants = t.role_grants(&role, &mut problems);
        for g in &grants {
            let service = g.action.split(':').next().unwrap_or_default();
            if g.action.contains('*') {
                problems.push(format!("{role}.{}: wildcard action {}", g.sid, g.action));
            }
            if matches!(service, "s3" | "kinesis" | "sqs" | "logs")
                && (g.resource == "*" || g.resource.ends_with(":*:*"))
            {
                problems.push(format!("{role}.{}: {} on resource {}", g.sid, g.action, g.resource));
            }
            // A `*` in an S3 resource is only allowed as "every key under one of our prefixes".
            if service == "s3" {
                let bucket_arn = format!("arn:{}:s3:::{}", cfn::PARTITION, t.bucket_name());
                let ok = g.resource == bucket_arn
                    || g.resource.strip_prefix(&format!("{bucket_arn}/")).is_some_and(|rest| {
                        let (prefix, star) = rest.split_at(rest.len().saturating_sub(1));
                        star == "*" && prefix.ends_with('/') && !prefix.contains('*') && prefix.len() > 1
                    });
                if !ok {
                    problems.push(format!(
                        "{role}.{}: {} on {} (not the bucket or one prefix of it)",
                        g.sid, g.action, g.resource
                    ));
                }
            }
            if service == "kinesis" && !g.resource.starts_with("<ReceiptStream.") {
                problems.push(format!("{role}.{}: {} on {} (only the receipt stream)", g.sid, g.action, g.resource));
            }
        }
        let have: BTreeSet<(String, String)> = grants.iter().map(|g| (g.action.clone(), g.resource.clone())).collect();
        let want = expected_grants(t, function);
        for (a, r) in have.difference(&want) {
            problems.push(format!("{function} ({role}): grants {a} on {r}, which it must not have"));
        }
        for (a, r) in want.difference(&have) {
            problems.push(format!("{function} ({role}): lacks {a} on {r}"));
        }
        // Listing the bucket is scoped to the function's own prefixes.
        for g in grants.iter().filter(|g| g.action == "s3:ListBucket") {
            let prefixes = as_list(&g.condition["StringLike"]["s3:prefix"]);
            if prefixes.is_empty() {
                problems.push(format!("{role}.{}: s3:ListBucket without an s3:prefix condition", g.sid));
            }
            for p in prefixes {
                let p = scalar_text(&p);
                if !["datasets/", "manifests/"].iter().any(|own| p.starts_with(own)) {
                    problems.push(format!("{role}.{}: s3:ListBucket on prefix {p:?}", g.sid));
                }
            }
        }
        // The role can only be assumed by Lambda.
        let trust = t.eval(&t.props(&role)["AssumeRolePolicyDocument"]);
        for st in as_list(&trust["Statement"]) {
            if st["Principal"] != json!({"Service": "lambda.amazonaws.com"}) {
                problems.push(format!("{role}: trusts {}", st["Principal"]));
            }
        }
    }
    // The bucket the policies name is the bucket the template creates and the functions are told about.
    let bucket = t.bucket_name();
    for function in [INGEST, EXPORT] {
        let env = t.eval(&t.props(function)["Environment"]["Variables"]);
        if env["SALESFLOW_BUCKET"] != bucket.as_str() {
            problems.push(format!(
                "{function}: SALESFLOW_BUCKET {} is not the data bucket {bucket}",
                env["SALESFLOW_BUCKET"]
            ));
        }
    }
    problems
}

fn check_export_s3_trigger(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let (name, ev) = match event(t, EXPORT, "S3") {
        Ok(e) => e,
        Err(e) => return vec![e],
    };
    let p = &ev["Properties"];
    if p["Bucket"] != json!({"Ref": "DataBucket"}) {
        problems.push(format!("{EXPORT}.{name}: Bucket {} (expected !Ref DataBucket)", p["Bucket"]));
    }
    let events = as_list(&p["Events"]);
    if events != [json!("s3:ObjectCreated:*")] {
        problems.push(format!("{EXPORT}.{name}: Events {} (expected s3:ObjectCreated:*)", p["Events"]));
    }
    let rules = &p["Filter"]["S3Key"]["Rules"];
    let filter = S3KeyFilter::from_rules(rules, &mut problems);
    if filter.prefix != "landed/" {
        problems.push(format!("{EXPORT}.{name}: filter prefix {:?} (expected \"landed/\")", filter.prefix));
    }
    if as_list(rules).len() != 1 {
        problems.push(format!("{EXPORT}.{name}: filter rules {rules} (expected the landed/ prefix only)"));
    }
    // No loop: no key the export may write can match its own trigger (IAM lets it pick any name under a prefix).
    let mut scratch = Vec::new();
    if let Ok(role) = function_role(t, EXPORT, &mut scratch).ok_or(()) {
        let bucket_arn = format!("arn:{}:s3:::{}/", cfn::PARTITION, t.bucket_name());
        for g in t.role_grants(&role, &mut scratch).iter().filter(|g| g.action == "s3:PutObject") {
            let write_prefix = g.resource.strip_prefix(&bucket_arn).unwrap_or("").trim_end_matches('*');
            if filter.can_match_under(write_prefix) {
                problems.push(format!(
                    "{EXPORT}.{name}: loop: the export writes {write_prefix:?}* and its filter {filter:?} matches keys there"
                ));
            }
        }
    }
    // And concretely, with keys of the layout (shared/src/keys.rs):
    for key in [
        "datasets/sales_lines/dt=2026-11-23/hour=09/shardId-000000000000-1-2-0.csv",
        "datasets/hourly_sales/dt=2026-11-23/hour=09/shardId-000000000000-1-2-0.csv",
        "manifests/sales_lines/dt=2026-11-23.json",
        "manifests/hourly_sales/last-7-days.json",
        "raw/dt=2026-11-23/hour=09/shardId-000000000000-1-2.ndjson.zst",
        "rejects/dt=2026-11-23/hour=09/shardId-000000000000-1-2.ndjson",
    ] {
        if filter.matches(key) {
            problems.push(format!("{EXPORT}.{name}: filter {filter:?} triggers on {key}"));
        }
    }
    let landed = "landed/dt=2026-11-23/hour=09/shardId-000000000000-1-2-0.ndjson.zst";
    if !filter.matches(landed) {
        problems.push(format!("{EXPORT}.{name}: filter {filter:?} does not trigger on {landed}"));
    }
    // No other S3 trigger on any function, and no hand-written notification on the bucket.
    for (id, _) in t.of_type("AWS::Serverless::Function") {
        for (ev_name, e) in t.props(id)["Events"].as_object().into_iter().flatten() {
            if e["Type"] == "S3" && !(id == EXPORT && ev_name == name) {
                problems.push(format!("{id}.{ev_name}: another S3 trigger"));
            }
        }
    }
    if t.props("DataBucket").get("NotificationConfiguration").is_some() {
        problems.push("DataBucket: NotificationConfiguration written by hand (SAM derives it from the event)".into());
    }
    problems
}

fn check_kinesis_event(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let (name, ev) = match event(t, INGEST, "Kinesis") {
        Ok(e) => e,
        Err(e) => return vec![e],
    };
    let what = format!("{INGEST}.{name}");
    let p = &ev["Properties"];
    let known = [
        "Stream",
        "StartingPosition",
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "ParallelizationFactor",
        "FunctionResponseTypes",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "DestinationConfig",
        "Enabled",
    ];
    for k in p.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
        if !known.contains(&k.as_str()) {
            problems.push(format!("{what}: unexpected property {k}"));
        }
    }
    match p["Stream"]["Fn::GetAtt"].as_array() {
        Some(att) if att[1] == "Arn" && t.resource(att[0].as_str().unwrap())["Type"] == "AWS::Kinesis::Stream" => {}
        _ => problems.push(format!("{what}: Stream {} is not !GetAtt <a Kinesis stream>.Arn", p["Stream"])),
    }
    if !matches!(p["StartingPosition"].as_str(), Some("TRIM_HORIZON" | "LATEST")) {
        problems.push(format!("{what}: StartingPosition {} (TRIM_HORIZON or LATEST)", p["StartingPosition"]));
    }
    let batch = int_range(t, &format!("{what}.BatchSize"), &p["BatchSize"], &mut problems);
    within(&format!("{what}.BatchSize"), batch, 1, 10_000, &mut problems);
    let window = int_range(
        t,
        &format!("{what}.MaximumBatchingWindowInSeconds"),
        &p["MaximumBatchingWindowInSeconds"],
        &mut problems,
    );
    within(&format!("{what}.MaximumBatchingWindowInSeconds"), window, 0, 300, &mut problems);
    let pf = int_range(t, &format!("{what}.ParallelizationFactor"), &p["ParallelizationFactor"], &mut problems);
    within(&format!("{what}.ParallelizationFactor"), pf, 1, 10, &mut problems);
    if p["FunctionResponseTypes"] != json!(["ReportBatchItemFailures"]) {
        problems.push(format!(
            "{what}: FunctionResponseTypes {} (expected [ReportBatchItemFailures])",
            p["FunctionResponseTypes"]
        ));
    }
    if p["BisectBatchOnFunctionError"] != json!(true) {
        problems
            .push(format!("{what}: BisectBatchOnFunctionError {} (expected true)", p["BisectBatchOnFunctionError"]));
    }
    // Finite retries (-1 would retry a poison batch until it expires from the stream, blocking its shard).
    let retries = int_range(t, &format!("{what}.MaximumRetryAttempts"), &p["MaximumRetryAttempts"], &mut problems);
    within(&format!("{what}.MaximumRetryAttempts"), retries, 0, 10_000, &mut problems);
    // A finite record age, shorter than the stream keeps records: failed batches can still be replayed from it.
    let age =
        int_range(t, &format!("{what}.MaximumRecordAgeInSeconds"), &p["MaximumRecordAgeInSeconds"], &mut problems);
    within(&format!("{what}.MaximumRecordAgeInSeconds"), age, 60, 604_800, &mut problems);
    if let Some((_, _, age)) = age {
        let retention = as_int(&t.param_value("StreamRetentionHours")).unwrap_or(24) * 3600;
        if age >= retention {
            problems.push(format!(
                "{what}: MaximumRecordAgeInSeconds {age} is not below the stream retention {retention} s"
            ));
        }
    }
    let on_failure = &p["DestinationConfig"]["OnFailure"];
    if on_failure["Type"] != "SQS" {
        problems.push(format!("{what}: DestinationConfig.OnFailure.Type {} (expected SQS)", on_failure["Type"]));
    }
    match on_failure["Destination"]["Fn::GetAtt"].as_array() {
        Some(att) if att[1] == "Arn" && t.resource(att[0].as_str().unwrap())["Type"] == "AWS::SQS::Queue" => {}
        _ => problems.push(format!(
            "{what}: OnFailure.Destination {} is not !GetAtt <an SQS queue>.Arn",
            on_failure["Destination"]
        )),
    }
    if p.get("Enabled").is_some_and(|e| e != &json!(true)) {
        problems.push(format!("{what}: Enabled {}", p["Enabled"]));
    }
    problems
}

fn check_environment(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let expect = |function: &str, want: &[(&str, &str)], problems: &mut Vec<String>| {
        let env = t.eval(&t.props(function)["Environment"]["Variables"]);
        for (k, v) in want {
            if env.get(*k).map(scalar_text).as_deref() != Some(*v) {
                problems.push(format!("{function}: {k}={} (expected {v})", env.get(*k).unwrap_or(&J::Null)));
            }
        }
        env
    };
    expect(
        INGEST,
        &[
            ("SALESFLOW_RAW_PREFIX", "raw/"),
            ("SALESFLOW_LANDED_PREFIX", "landed/"),
            ("SALESFLOW_REJECTS_PREFIX", "rejects/"),
            ("SALESFLOW_TIME_ZONE", "Europe/Paris"),
            ("SALESFLOW_PIPELINE", "/opt/sales.yaml"),
        ],
        &mut problems,
    );
    expect(
        EXPORT,
        &[
            ("SALESFLOW_LANDED_PREFIX", "landed/"),
            ("SALESFLOW_DATASETS_PREFIX", "datasets/"),
            ("SALESFLOW_MANIFESTS_PREFIX", "manifests/"),
            ("SALESFLOW_WINDOW_DAYS", "7"),
            ("SALESFLOW_COMPACTION_GRACE_MINUTES", "15"),
        ],
        &mut problems,
    );
    // Both functions name their stage, the `Stage` dimension of their metrics, which the alarms and dashboard read.
    for function in [INGEST, EXPORT] {
        let stage = &t.props(function)["Environment"]["Variables"]["SALESFLOW_STAGE"];
        if stage != &json!({"Ref": "Stage"}) {
            problems.push(format!("{function}: SALESFLOW_STAGE {stage} (expected !Ref Stage)"));
        }
    }
    // The bundled pipeline: a layer of pipelines/ (sales.yaml and the stores.csv it looks up) mounted at /opt.
    let layer = t.props("PipelineLayer");
    let dir = layer["ContentUri"].as_str().unwrap_or_default().trim_end_matches('/');
    for f in ["sales.yaml", "stores.csv"] {
        if !cfn::repo_path_exists(&format!("{dir}/{f}")) {
            problems.push(format!("PipelineLayer: {dir}/{f} does not exist"));
        }
    }
    if !cfn::repo_file(&format!("{dir}/sales.yaml")).contains("stores.csv") {
        problems.push(format!("PipelineLayer: {dir}/sales.yaml no longer looks up stores.csv; review the layer"));
    }
    let layers = t.eval(&t.props(INGEST)["Layers"]);
    if layers != json!(["<PipelineLayer>"]) {
        problems.push(format!("{INGEST}: Layers {layers} (expected the pipeline layer)"));
    }
    if layer["CompatibleArchitectures"] != json!(["arm64"]) || layer["CompatibleRuntimes"] != json!(["provided.al2023"])
    {
        problems.push("PipelineLayer: not marked for provided.al2023 on arm64".into());
    }
    // With the embedded pipeline, neither the layer nor the variable.
    let embedded = cfn::Template::parse(&cfn::template_text()).with_param("PipelineSource", json!("embedded"));
    let env = embedded.eval(&embedded.props(INGEST)["Environment"]["Variables"]);
    if env.get("SALESFLOW_PIPELINE").is_some() || embedded.eval(embedded.props(INGEST)).get("Layers").is_some() {
        problems.push(format!("{INGEST}: PipelineSource=embedded still sets SALESFLOW_PIPELINE or the layer"));
    }
    if embedded.is_created("PipelineLayer") {
        problems.push("PipelineLayer: created with PipelineSource=embedded".into());
    }
    problems
}

fn check_schedule(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    match event(t, EXPORT, "Schedule") {
        Ok((name, ev)) => {
            let schedule = scalar_text(&t.eval(&ev["Properties"]["Schedule"]));
            if !(schedule.starts_with("rate(") || schedule.starts_with("cron(")) {
                problems.push(format!("{EXPORT}.{name}: Schedule {schedule:?} is not rate(...) or cron(...)"));
            }
            if ev["Properties"].get("Enabled").is_some_and(|e| e != &json!(true)) {
                problems.push(format!("{EXPORT}.{name}: not enabled"));
            }
        }
        Err(e) => problems.push(e),
    }
    problems
}

fn check_storage(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    // Stream: server-side encryption, capacity mode from a parameter, retention from a parameter.
    let s = t.props("ReceiptStream");
    if s["StreamEncryption"]["EncryptionType"] != "KMS" || s["StreamEncryption"].get("KeyId").is_none() {
        problems.push(format!("ReceiptStream: StreamEncryption {} (expected KMS with a KeyId)", s["StreamEncryption"]));
    }
    for (mode, shards) in [("ON_DEMAND", false), ("PROVISIONED", true)] {
        let t = Template::parse(&cfn::template_text()).with_param("StreamMode", json!(mode));
        let p = t.eval(t.props("ReceiptStream"));
        if p["StreamModeDetails"]["StreamMode"] != mode || p.get("ShardCount").is_some() != shards {
            problems.push(format!("ReceiptStream: with StreamMode={mode}: {p}"));
        }
    }
    if s["RetentionPeriodHours"] != json!({"Ref": "StreamRetentionHours"}) {
        problems.push("ReceiptStream: RetentionPeriodHours is not the StreamRetentionHours parameter".into());
    }

    // Bucket: encryption, public access blocked, TLS only, lifecycle.
    let b = t.eval(t.props("DataBucket"));
    let sse =
        &b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"];
    if !matches!(sse.as_str(), Some("AES256" | "aws:kms" | "aws:kms:dsse")) {
        problems.push(format!("DataBucket: SSEAlgorithm {sse}"));
    }
    for k in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        if b["PublicAccessBlockConfiguration"][k] != json!(true) {
            problems.push(format!("DataBucket: PublicAccessBlockConfiguration.{k} is not true"));
        }
    }
    let policies: Vec<_> = t
        .of_type("AWS::S3::BucketPolicy")
        .into_iter()
        .filter(|(_, r)| r["Properties"]["Bucket"] == json!({"Ref": "DataBucket"}))
        .collect();
    let tls_only = policies.iter().any(|(_, r)| {
        as_list(&t.eval(&r["Properties"]["PolicyDocument"]["Statement"])).iter().any(|st| {
            let resources: BTreeSet<String> = as_list(&st["Resource"]).iter().map(scalar_text).collect();
            let bucket = format!("arn:aws:s3:::{}", t.bucket_name());
            st["Effect"] == "Deny"
                && st["Principal"] == "*"
                && as_list(&st["Action"]).contains(&json!("s3:*"))
                && st["Condition"]["Bool"]["aws:SecureTransport"] == "false"
                && resources.contains(&bucket)
                && resources.contains(&format!("{bucket}/*"))
        })
    });
    if !tls_only {
        problems.push(
            "DataBucket: no bucket policy denying s3:* without aws:SecureTransport on the bucket and its objects"
                .into(),
        );
    }
    let rules = as_list(&b["LifecycleConfiguration"]["Rules"]);
    let prefix_of = |r: &J| r.get("Prefix").or_else(|| r["Filter"].get("Prefix")).map(scalar_text).unwrap_or_default();
    let raw_rule = rules.iter().find(|r| prefix_of(r) == "raw/" && r["Status"] == "Enabled");
    match raw_rule {
        Some(r) => {
            let tr = &as_list(&r["Transitions"])[..];
            let archive = tr.iter().any(|x| {
                matches!(x["StorageClass"].as_str(), Some("GLACIER" | "GLACIER_IR" | "DEEP_ARCHIVE"))
                    && as_int(&x["TransitionInDays"]) == as_int(&t.param_value("RawArchiveDays"))
            });
            if !archive {
                problems.push(format!(
                    "DataBucket: raw/ rule {r} does not move raw/ to an archive tier after RawArchiveDays"
                ));
            }
            let unresolved = as_list(&t.props("DataBucket")["LifecycleConfiguration"]["Rules"]);
            let by_param = unresolved.iter().any(|r| {
                prefix_of(r) == "raw/"
                    && as_list(&r["Transitions"])
                        .iter()
                        .any(|x| x["TransitionInDays"] == json!({"Ref": "RawArchiveDays"}))
            });
            if !by_param {
                problems.push("DataBucket: raw/ transition age is not the RawArchiveDays parameter".into());
            }
        }
        None => problems.push("DataBucket: no enabled lifecycle rule for raw/".into()),
    }
    // rejects/ (and the datasets) are kept: no rule that could expire or move them.
    for r in &rules {
        let prefix = prefix_of(r);
        let touches = |p: &str| p.starts_with(&prefix) || prefix.starts_with(p);
        let acts = r.get("Transitions").is_some()
            || r.get("Transition").is_some()
            || r.get("ExpirationInDays").is_some()
            || r.get("ExpirationDate").is_some()
            || r.get("ExpiredObjectDeleteMarker").is_some();
        for kept in ["rejects/", "landed/", "datasets/", "manifests/"] {
            if acts && touches(kept) {
                problems.push(format!(
                    "DataBucket: lifecycle rule {} (prefix {prefix:?}) expires or moves {kept}",
                    r["Id"]
                ));
            }
        }
    }
    // Queues encrypted and keeping messages the longest SQS allows.
    for (id, r) in t.of_type("AWS::SQS::Queue") {
        let p = &r["Properties"];
        if p["SqsManagedSseEnabled"] != json!(true) && p.get("KmsMasterKeyId").is_none() {
            problems.push(format!("{id}: not encrypted"));
        }
        if as_int(&p["MessageRetentionPeriod"]) != Some(1_209_600) {
            problems.push(format!("{id}: MessageRetentionPeriod {} (expected 14 days)", p["MessageRetentionPeriod"]));
        }
    }
    problems
}

/// The dimension sets the functions' EMF lines declare (shared/src/emf.rs): `Stage` and `Function`, plus `Dataset`
/// on the export's `RowsWritten`. An alarm or a widget names one of them exactly, or CloudWatch finds no data.
fn emitted_dimension_sets() -> Vec<BTreeSet<String>> {
    use salesflow_core::emf::MetricSet;
    let at: jiff::Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
    [MetricSet::new("dev", "ingest"), MetricSet::new("dev", "export").dimension("Dataset", "sales_lines")]
        .into_iter()
        .map(|set| {
            let doc = set.count("M", 1).to_emf(at);
            as_list(&doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0])
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// The (namespace, metric name, dimensions) an alarm reads: its own metric, or each metric of its `Metrics`.
fn alarm_metrics(p: &J) -> Vec<(J, J, Vec<J>)> {
    let mut metrics = Vec::new();
    if p.get("MetricName").is_some() {
        metrics.push((p["Namespace"].clone(), p["MetricName"].clone(), as_list(&p["Dimensions"])));
    }
    for m in as_list(&p["Metrics"]) {
        let metric = &m["MetricStat"]["Metric"];
        if metric.is_object() {
            metrics.push((metric["Namespace"].clone(), metric["MetricName"].clone(), as_list(&metric["Dimensions"])));
        }
    }
    metrics
}

/// (namespace, metric, dimension name, dimension value as written) of every alarm that must exist.
fn required_alarms() -> Vec<(&'static str, &'static str, &'static str, J)> {
    vec![
        ("salesflow", "Rejected", "Function", json!("ingest")),
        ("salesflow", "RecordsRejected", "Function", json!("export")),
        ("salesflow", "ObjectsRejected", "Function", json!("export")),
        ("AWS/Lambda", "IteratorAge", "FunctionName", json!({"Ref": INGEST})),
        ("AWS/Lambda", "Errors", "FunctionName", json!({"Ref": INGEST})),
        ("AWS/Lambda", "Throttles", "FunctionName", json!({"Ref": INGEST})),
        ("AWS/Lambda", "Errors", "FunctionName", json!({"Ref": EXPORT})),
        ("AWS/Lambda", "Throttles", "FunctionName", json!({"Ref": EXPORT})),
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            json!({"Fn::GetAtt": ["IngestFailureQueue", "QueueName"]}),
        ),
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            json!({"Fn::GetAtt": ["ExportDeadLetterQueue", "QueueName"]}),
        ),
    ]
}

fn check_alarms(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let alarms = t.of_type("AWS::CloudWatch::Alarm");
    for (ns, metric, dim, value) in required_alarms() {
        let found = alarms.iter().find(|(_, a)| {
            let p = &a["Properties"];
            p["Namespace"] == ns
                && p["MetricName"] == metric
                && as_list(&p["Dimensions"]).iter().any(|d| d["Name"] == dim && d["Value"] == value)
        });
        match found {
            None => problems.push(format!("no alarm on {ns} {metric} {dim}={value}")),
            Some((id, a)) => {
                let p = &a["Properties"];
                if !as_list(&p["AlarmActions"]).contains(&json!({"Ref": "AlarmTopic"})) {
                    problems.push(format!("{id}: does not notify AlarmTopic"));
                }
                if metric != "IteratorAge"
                    && !(p["ComparisonOperator"] == "GreaterThanThreshold" && as_int(&p["Threshold"]) == Some(0))
                {
                    problems.push(format!("{id}: must fire on any {metric} (> 0)"));
                }
                if metric == "IteratorAge" && p["Threshold"] != json!({"Ref": "IteratorAgeAlarmMs"}) {
                    problems.push(format!("{id}: threshold is not the IteratorAgeAlarmMs parameter"));
                }
            }
        }
    }
    // Every alarm on the pipeline's own metrics reads this stage's: two stacks in one account must not share them.
    let emitted = emitted_dimension_sets();
    for (id, a) in &alarms {
        for (ns, metric, dims) in alarm_metrics(&a["Properties"]) {
            if ns != "salesflow" {
                continue;
            }
            if !dims.iter().any(|d| d["Name"] == "Stage" && d["Value"] == json!({"Ref": "Stage"})) {
                problems.push(format!("{id}: salesflow {metric} has no dimension Stage = !Ref Stage"));
            }
            let names: BTreeSet<String> = dims.iter().filter_map(|d| d["Name"].as_str().map(String::from)).collect();
            if !emitted.contains(&names) {
                problems.push(format!(
                    "{id}: salesflow {metric} dimensions {names:?} are none of the emitted sets {emitted:?}"
                ));
            }
        }
    }
    let topic = t.of_type("AWS::SNS::Subscription");
    let email = topic.iter().any(|(id, s)| {
        let p = &s["Properties"];
        p["Protocol"] == "email"
            && p["Endpoint"] == json!({"Ref": "AlarmEmail"})
            && p["TopicArn"] == json!({"Ref": "AlarmTopic"})
            && t.resource(id)["Condition"] == "HasAlarmEmail"
    });
    if !email {
        problems.push("no e-mail subscription of AlarmEmail to AlarmTopic (conditional on HasAlarmEmail)".into());
    }
    problems
}

/// The dashboard, as deployed with `t`'s parameters: every salesflow metric it shows is of `t`'s stage.
fn check_dashboard(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let dashboards = t.of_type("AWS::CloudWatch::Dashboard");
    let [(id, d)] = dashboards.as_slice() else {
        return vec![format!("{} dashboards, expected one", dashboards.len())];
    };
    let body = scalar_text(&t.eval(&d["Properties"]["DashboardBody"]));
    let body: J = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => return vec![format!("{id}: DashboardBody is not JSON: {e}")],
    };
    let stage = scalar_text(&t.param_value("Stage"));
    let emitted = emitted_dimension_sets();
    let mut shown = BTreeSet::new();
    for w in as_list(&body["widgets"]) {
        for m in as_list(&w["properties"]["metrics"]) {
            // [namespace, metric, dimension, value, dimension, value, ..., {rendering options}]
            let m: Vec<String> = as_list(&m).iter().map_while(|x| x.as_str().map(String::from)).collect();
            if m.len() < 2 {
                continue;
            }
            if m[0] == "." || m[0] == ".." || m[0] == "..." {
                problems.push(format!("{id}: metric {m:?} repeats the previous line's; write each metric in full"));
                continue;
            }
            let dims: Vec<(&str, &str)> =
                m[2..].chunks(2).map(|p| (p[0].as_str(), p.get(1).map_or("", |v| v))).collect();
            if m[0] == "salesflow" {
                if !dims.contains(&("Stage", stage.as_str())) {
                    problems.push(format!("{id}: salesflow {} {dims:?} is not of this stage (Stage={stage})", m[1]));
                }
                let names: BTreeSet<String> = dims.iter().map(|(n, _)| n.to_string()).collect();
                if !emitted.contains(&names) {
                    problems.push(format!(
                        "{id}: salesflow {} dimensions {names:?} are none of the emitted sets {emitted:?}",
                        m[1]
                    ));
                }
            }
            let key = dims.iter().find(|(n, _)| *n == "Function").or(dims.first());
            if let Some((_, value)) = key {
                shown.insert((m[0].clone(), m[1].clone(), value.to_string()));
            }
        }
    }
    let ingest =
        ["RecordsIn", "UserRecords", "Emitted", "Filtered", "Rejected", "BytesLanded", "ObjectsWritten", "IngestLagMs"];
    let export = ["ObjectsRead", "RowsWritten", "DuplicatesDropped", "BytesWritten", "ExportLagMs"];
    for (function, metrics) in [("ingest", &ingest[..]), ("export", &export[..])] {
        for m in metrics {
            if !shown.contains(&("salesflow".to_string(), m.to_string(), function.to_string())) {
                problems.push(format!("{id}: does not show salesflow {m} Function={function}"));
            }
        }
    }
    let ingest_name = scalar_text(&t.eval(&json!({"Ref": INGEST})));
    if !shown.contains(&("AWS/Lambda".into(), "IteratorAge".into(), ingest_name.clone())) {
        problems.push(format!("{id}: does not show the ingest's IteratorAge"));
    }
    problems
}

fn check_quicksight(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    if t.param("QuickSightPrincipalArn")["Default"] != "" {
        problems.push("QuickSightPrincipalArn: must default to empty (QuickSight off)".into());
    }
    if t.doc["Conditions"]["EnableQuickSight"]
        != json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "QuickSightPrincipalArn"}, ""]}]})
    {
        problems.push(format!("EnableQuickSight: {}", t.doc["Conditions"]["EnableQuickSight"]));
    }
    let gated: Vec<&str> = t
        .resources()
        .iter()
        .filter(|(id, r)| {
            r["Type"].as_str().is_some_and(|ty| ty.starts_with("AWS::QuickSight::")) || id.starts_with("QuickSight")
        })
        .map(|(id, _)| id.as_str())
        .collect();
    if gated.is_empty() {
        problems.push("no QuickSight resources".into());
    }
    for id in &gated {
        if t.resource(id)["Condition"] != "EnableQuickSight" {
            problems.push(format!("{id}: not gated by EnableQuickSight"));
        }
        if t.is_created(id) {
            problems.push(format!("{id}: created by default"));
        }
    }
    let on = Template::parse(&cfn::template_text())
        .with_param("QuickSightPrincipalArn", json!("arn:aws:quicksight:eu-west-3:123456789012:user/default/ana"));
    for id in &gated {
        if !on.is_created(id) {
            problems.push(format!("{id}: not created when a QuickSight principal is given"));
        }
    }
    for (id, ds) in on.of_type("AWS::QuickSight::DataSource") {
        let p = on.eval(&ds["Properties"]);
        let loc = &p["DataSourceParameters"]["S3Parameters"]["ManifestFileLocation"];
        let key = scalar_text(&loc["Key"]);
        let ok = ["sales_lines", "hourly_sales"].iter().any(|d| key == format!("manifests/{d}/last-7-days.json"));
        if !ok || scalar_text(&loc["Bucket"]) != on.bucket_name() {
            problems.push(format!("{id}: manifest {loc} is not a rolling manifest of the data bucket"));
        }
    }
    problems
}

/// The QuickSight data sets read the CSVs the export writes: their input columns are the datasets' columns, in
/// the header's order (shared/src/datasets), and every cast names one of them.
fn check_quicksight_datasets() -> Vec<String> {
    use salesflow_core::datasets::{hourly_sales, sales_lines};
    let mut problems = Vec::new();
    let on = Template::parse(&cfn::template_text())
        .with_param("QuickSightPrincipalArn", json!("arn:aws:quicksight:eu-west-3:123456789012:user/default/ana"));
    for (id, source, manifest, columns) in [
        ("SalesLinesDataSet", "SalesLinesDataSource", "sales_lines", &sales_lines::COLUMNS[..]),
        ("HourlySalesDataSet", "HourlySalesDataSource", "hourly_sales", &hourly_sales::COLUMNS[..]),
    ] {
        if on.resources().get(id).is_none() {
            problems.push(format!("no QuickSight data set {id}"));
            continue;
        }
        let p = on.props(id);
        let physical = p["PhysicalTableMap"].as_object().cloned().unwrap_or_default();
        let Some((_, table)) = physical.iter().next() else {
            problems.push(format!("{id}: no physical table"));
            continue;
        };
        let s3 = &table["S3Source"];
        if s3["DataSourceArn"] != json!({"Fn::GetAtt": [source, "Arn"]}) {
            problems.push(format!("{id}: DataSourceArn {} (expected {source})", s3["DataSourceArn"]));
        }
        let ds_key = on.eval(&on.props(source)["DataSourceParameters"]["S3Parameters"]["ManifestFileLocation"]["Key"]);
        if !scalar_text(&ds_key).starts_with(&format!("manifests/{manifest}/")) {
            problems.push(format!("{source}: manifest {ds_key} is not one of {manifest}"));
        }
        if s3["UploadSettings"]["ContainsHeader"] != json!(true) || s3["UploadSettings"]["Format"] != "CSV" {
            problems.push(format!("{id}: UploadSettings {}", s3["UploadSettings"]));
        }
        let names: Vec<String> =
            as_list(&s3["InputColumns"]).iter().map(|c| c["Name"].as_str().unwrap_or_default().to_string()).collect();
        if names != columns {
            problems.push(format!("{id}: InputColumns {names:?} are not the CSV columns {columns:?}"));
        }
        for c in as_list(&s3["InputColumns"]) {
            if c["Type"] != "STRING" {
                problems.push(format!(
                    "{id}: input column {} is {} (S3 CSV inputs are STRING; cast them)",
                    c["Name"], c["Type"]
                ));
            }
        }
        for (_, logical) in p["LogicalTableMap"].as_object().cloned().unwrap_or_default() {
            for op in as_list(&logical["DataTransforms"]) {
                if let Some(cast) = op.get("CastColumnTypeOperation") {
                    let name = cast["ColumnName"].as_str().unwrap_or_default();
                    if !columns.contains(&name) {
                        problems.push(format!("{id}: casts {name}, which is not a column"));
                    }
                }
            }
        }
    }
    problems
}

fn check_outputs(t: &Template) -> Vec<String> {
    let mut problems = Vec::new();
    let outputs = t.doc["Outputs"].as_object().cloned().unwrap_or_default();
    for k in ["StreamName", "BucketName", "SalesLinesManifestUri", "HourlySalesManifestUri", "IngestFailureQueueUrl"] {
        if !outputs.contains_key(k) {
            problems.push(format!("no output {k}"));
        }
    }
    let bucket = t.bucket_name();
    for (k, d) in [("SalesLinesManifestUri", "sales_lines"), ("HourlySalesManifestUri", "hourly_sales")] {
        if let Some(o) = outputs.get(k) {
            let v = scalar_text(&t.eval(&o["Value"]));
            if v != format!("s3://{bucket}/manifests/{d}/last-7-days.json") {
                problems.push(format!("output {k} = {v}"));
            }
        }
    }
    problems
}

// ------------------------------------------------------------------------------------------------- tests

#[test]
fn functions_are_rust_on_al2023_arm64_with_log_groups() {
    assert_clean("functions", check_functions(&Template::load()));
}

#[test]
fn iam_is_least_privilege_per_function() {
    assert_clean("IAM", check_iam(&Template::load()));
}

#[test]
fn export_s3_trigger_is_landed_prefix_only_and_cannot_loop() {
    assert_clean("export S3 trigger", check_export_s3_trigger(&Template::load()));
}

#[test]
fn ingest_kinesis_event_source_settings() {
    assert_clean("ingest Kinesis event", check_kinesis_event(&Template::load()));
}

#[test]
fn environment_follows_the_agreed_interface() {
    assert_clean("environment", check_environment(&Template::load()));
}

#[test]
fn export_has_a_compaction_schedule() {
    assert_clean("schedule", check_schedule(&Template::load()));
}

#[test]
fn stream_bucket_and_queues_are_hardened() {
    assert_clean("storage", check_storage(&Template::load()));
}

#[test]
fn alarms_cover_rejects_lag_errors_throttles_and_failure_queues() {
    assert_clean("alarms", check_alarms(&Template::load()));
}

#[test]
fn dashboard_shows_the_pipeline_metrics() {
    assert_clean("dashboard", check_dashboard(&Template::load()));
    assert_clean("dashboard, Stage=prod", check_dashboard(&Template::load().with_param("Stage", json!("prod"))));
}

#[test]
fn quicksight_is_optional_and_off_by_default() {
    assert_clean("QuickSight", check_quicksight(&Template::load()));
}

#[test]
fn quicksight_data_sets_match_the_csv_columns() {
    assert_clean("QuickSight data sets", check_quicksight_datasets());
}

#[test]
fn outputs_name_stream_bucket_and_manifests() {
    assert_clean("outputs", check_outputs(&Template::load()));
}

#[test]
fn samconfig_has_default_and_prod_environments() {
    let text = cfn::repo_file("samconfig.toml");
    for section in [
        "[default.build.parameters]",
        "[default.deploy.parameters]",
        "[prod.build.parameters]",
        "[prod.deploy.parameters]",
    ] {
        assert!(text.contains(section), "samconfig.toml: no {section}");
    }
    assert!(text.contains("Stage=prod"), "samconfig.toml: prod does not deploy Stage=prod");
    assert!(text.contains("CAPABILITY_IAM"), "samconfig.toml: the stack creates roles and needs CAPABILITY_IAM");
}

// ------------------------------------------------------------------------------------------------- mutations

#[test]
fn mutation_export_filter_on_the_whole_bucket_is_a_loop() {
    let t = mutated(
        "                  - Name: prefix\n                    Value: landed/\n",
        "                  - Name: suffix\n                    Value: .gz\n",
    );
    assert_caught("suffix-only filter", check_export_s3_trigger(&t), "loop");
    let t = mutated("Value: landed/", "Value: \"\"");
    assert_caught("empty prefix", check_export_s3_trigger(&t), "loop");
    let t = mutated("Value: landed/", "Value: datasets/");
    assert_caught("filter on the export's own output", check_export_s3_trigger(&t), "loop");
    let t = mutated("Value: landed/", "Value: land");
    assert_caught("prefix without the slash", check_export_s3_trigger(&t), "filter prefix");
}

#[test]
fn mutation_wildcard_resources_are_refused() {
    let t = mutated("Resource: !GetAtt ReceiptStream.Arn", "Resource: \"*\"");
    assert_caught("kinesis on *", check_iam(&t), "kinesis:GetRecords on resource *");
    let t = mutated(
        "- !Sub arn:${AWS::Partition}:s3:::salesflow-${Stage}-${AWS::AccountId}-${AWS::Region}/rejects/*",
        "- !Sub arn:${AWS::Partition}:s3:::salesflow-${Stage}-${AWS::AccountId}-${AWS::Region}/*",
    );
    assert_caught("ingest writes the whole bucket", check_iam(&t), "not the bucket or one prefix");
    let t = mutated("Action: s3:GetObject", "Action: s3:*");
    assert_caught("s3:*", check_iam(&t), "wildcard action");
    let t = mutated(
        "Resource: !Sub arn:${AWS::Partition}:s3:::salesflow-${Stage}-${AWS::AccountId}-${AWS::Region}/landed/*",
        "Resource: !Sub arn:${AWS::Partition}:s3:::salesflow-${Stage}-${AWS::AccountId}-${AWS::Region}/raw/*",
    );
    assert_caught("export reads raw/", check_iam(&t), "must not have");
    let t = mutated("s3:prefix: [datasets/*, manifests/*]", "s3:prefix: [\"*\"]");
    assert_caught("list everything", check_iam(&t), "s3:ListBucket on prefix");
    let t = mutated("      Role: !GetAtt IngestRole.Arn\n", "");
    assert_caught("SAM-generated role", check_iam(&t), "Role must be");
}

#[test]
fn mutation_kinesis_settings_linters_accept_are_refused() {
    for (from, to, expect) in [
        ("StartingPosition: TRIM_HORIZON", "StartingPosition: NEWEST", "StartingPosition"),
        ("BisectBatchOnFunctionError: true", "BisectBatchOnFunctionError: false", "BisectBatchOnFunctionError"),
        ("FunctionResponseTypes: [ReportBatchItemFailures]", "FunctionResponseTypes: []", "FunctionResponseTypes"),
        ("MaximumRetryAttempts: 5", "MaximumRetryAttempts: -1", "MaximumRetryAttempts"),
        (
            "                Type: SQS\n                Destination",
            "                Type: SNS\n                Destination",
            "OnFailure.Type",
        ),
        (
            "    MaxValue: 10\n    Description: Concurrent",
            "    MaxValue: 11\n    Description: Concurrent",
            "ParallelizationFactor",
        ),
        ("Default: 21600", "Default: 86400", "stream retention"),
    ] {
        let t = mutated(from, to);
        assert_caught(&format!("{from} -> {to}"), check_kinesis_event(&t), expect);
    }
}

#[test]
fn mutation_raw_lifecycle_on_rejects_is_refused() {
    let t = mutated("Prefix: raw/", "Prefix: rejects/");
    let problems = check_storage(&t);
    assert_caught("rejects archived", problems.clone(), "moves rejects/");
    assert_caught("raw not archived", problems, "no enabled lifecycle rule for raw/");
}

#[test]
fn mutation_missing_reject_alarm_is_refused() {
    let t = mutated("MetricName: Rejected", "MetricName: Emitted");
    assert_caught("no reject alarm", check_alarms(&t), "Rejected");
}

#[test]
fn mutation_metrics_without_the_stage_are_refused() {
    let t = mutated(
        "          Value: ingest\n        - Name: Stage\n          Value: !Ref Stage\n",
        "          Value: ingest\n",
    );
    assert_caught(
        "reject alarm of every stage",
        check_alarms(&t),
        "RejectedRecordsAlarm: salesflow \"Rejected\" has no dimension Stage",
    );
    let t = mutated("Value: !Ref Stage\n", "Value: dev\n");
    assert_caught("alarm on a fixed stage", check_alarms(&t), "no dimension Stage = !Ref Stage");
    let t = mutated(
        "        - Name: Stage\n          Value: !Ref Stage\n",
        "        - Name: Stage\n          Value: !Ref Stage\n        - Name: Shard\n          Value: shardId-000000000000\n",
    );
    assert_caught("alarm on a dimension set no line declares", check_alarms(&t), "none of the emitted sets");
    let t = mutated(
        r#"["salesflow", "Rejected", "Function", "ingest", "Stage", "${Stage}"]"#,
        r#"["salesflow", "Rejected", "Function", "ingest"]"#,
    );
    assert_caught("widget of every stage", check_dashboard(&t), "salesflow Rejected");
    let t = mutated(
        r#""RecordsIn", "Function", "ingest", "Stage", "${Stage}""#,
        r#""RecordsIn", "Function", "ingest", "Stage", "dev""#,
    )
    .with_param("Stage", json!("prod"));
    assert_caught("widget on a fixed stage", check_dashboard(&t), "not of this stage (Stage=prod)");
    let t = mutated("SALESFLOW_STAGE: !Ref Stage", "SALESFLOW_STAGE: dev");
    assert_caught("ingest on a fixed stage", check_environment(&t), "IngestFunction: SALESFLOW_STAGE");
    let t = mutated("          SALESFLOW_STAGE: !Ref Stage\n          RUST_LOG", "          RUST_LOG");
    assert_caught("ingest without a stage", check_environment(&t), "IngestFunction: SALESFLOW_STAGE null");
}

#[test]
fn short_tags_become_cloudformation_json() {
    let t = Template::parse(
        "Parameters: {Stage: {Type: String, Default: dev}}\nConditions: {IsDev: !Equals [!Ref Stage, dev]}\n\
         Resources:\n  B: {Type: AWS::S3::Bucket, Properties: {BucketName: !Sub 'x-${Stage}-${AWS::Region}'}}\n  \
         Q: {Type: AWS::SQS::Queue, Properties: {N: !If [IsDev, !GetAtt B.Arn, !Ref AWS::NoValue], L: [!Join ['-', [a, !Ref Stage]]]}}\n",
    );
    assert_eq!(t.props("Q")["N"], json!({"Fn::If": ["IsDev", {"Fn::GetAtt": ["B", "Arn"]}, {"Ref": "AWS::NoValue"}]}));
    assert_eq!(t.eval(t.props("Q")), json!({"N": "arn:aws:s3:::x-dev-eu-west-3", "L": ["a-dev"]}));
    let t = t.with_param("Stage", json!("prod"));
    assert!(!t.condition("IsDev"));
    assert_eq!(t.eval(t.props("Q")), json!({"L": ["a-prod"]}));
}
