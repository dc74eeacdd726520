//! The cargo-lambda deploy path (`scripts/deploy-cargo-lambda`) against `template.yaml`, value by value: the
//! functions' names, binaries, memory, timeout, runtime, architecture, log retention, layer and environment (for
//! the template's defaults and for other parameter values), the IAM policies (the same grants as the template's
//! roles), and the resources the user creates (stream, bucket, queues, roles, the event source mapping, the S3
//! notification, the schedule, the export's retries and DLQ). The script only prints here (`--print`,
//! `resources`, `policy`): no tool and no AWS account needed. `scripts/check-deploy` then runs `cargo lambda
//! deploy --dry` on the built bootstraps.

mod cfn;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use cfn::{ACCOUNT, REGION, Template, as_int, as_list, policy_grants, scalar_text};
use serde_json::{Value as J, json};

const INGEST: &str = "IngestFunction";
const EXPORT: &str = "ExportFunction";
const LAYER_ARN: &str = "arn:aws:lambda:eu-west-3:123456789012:layer:salesflow-pipeline:3";

/// What `scripts/deploy-cargo-lambda ARGS` prints (it must succeed).
fn script_output<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/deploy-cargo-lambda");
    let output = Command::new("bash").arg(path).args(args).env("CARGO", "cargo").output().expect("bash runs");
    let words: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    assert!(output.status.success(), "deploy-cargo-lambda {words:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The script's printed commands (comments skipped, `\` continuations joined), split into words as a shell would.
fn script<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<Vec<String>> {
    let joined = script_output(args).replace("\\\n", " ");
    let lines = joined.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    lines.map(|l| shlex::split(l).unwrap_or_else(|| panic!("not shell words: {l}"))).collect()
}

/// A command's `--flag value` pairs (a flag followed by another flag, or last, has the value `""`), and its words
/// that are no flag's value.
fn flags(command: &[String]) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let (mut flags, mut words) = (BTreeMap::<String, Vec<String>>::new(), Vec::new());
    let mut i = 0;
    while i < command.len() {
        if let Some(flag) = command[i].strip_prefix("--") {
            let value = command.get(i + 1).filter(|v| !v.starts_with("--"));
            flags.entry(flag.to_string()).or_default().push(value.cloned().unwrap_or_default());
            i += 1 + usize::from(value.is_some());
        } else {
            words.push(command[i].clone());
            i += 1;
        }
    }
    (flags, words)
}

/// `MaximumRetryAttempts` → `maximum-retry-attempts`: a CloudFormation property as the AWS CLI's flag.
fn kebab_case(property: &str) -> String {
    let mut out = String::new();
    for (i, c) in property.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn one<'a>(flags: &'a BTreeMap<String, Vec<String>>, flag: &str) -> &'a str {
    match flags.get(flag).map(Vec::as_slice) {
        Some([value]) => value,
        other => panic!("--{flag}: expected one value, got {other:?}"),
    }
}

/// The command whose first words are `prefix` (exactly one).
fn command<'a>(commands: &'a [Vec<String>], prefix: &[&str]) -> &'a [String] {
    let found: Vec<&Vec<String>> = commands.iter().filter(|c| c.iter().zip(prefix).all(|(a, b)| a == b)).collect();
    assert_eq!(found.len(), 1, "one `{}` command, got {found:?}", prefix.join(" "));
    found[0]
}

fn commands_named<'a>(commands: &'a [Vec<String>], prefix: &[&str]) -> Vec<&'a [String]> {
    commands.iter().filter(|c| c.iter().zip(prefix).all(|(a, b)| a == b)).map(Vec::as_slice).collect()
}

fn json_flag(flags: &BTreeMap<String, Vec<String>>, flag: &str) -> J {
    serde_json::from_str(one(flags, flag)).unwrap_or_else(|e| panic!("--{flag} is not JSON: {e}"))
}

/// Script options with the template parameter each one sets.
const OPTIONS: &[(&str, &str)] = &[
    ("--stage", "Stage"),
    ("--ingest-memory", "IngestMemorySize"),
    ("--export-memory", "ExportMemorySize"),
    ("--time-zone", "TimeZone"),
    ("--window-days", "WindowDays"),
    ("--grace-minutes", "CompactionGraceMinutes"),
    ("--log-level", "LogLevel"),
    ("--log-retention-days", "LogRetentionDays"),
    ("--compaction-schedule", "CompactionSchedule"),
];

/// The template with these script options as parameters, and the script's arguments for them.
fn deployment(options: &[(&str, &str)], with_layer: bool) -> (Template, Vec<String>) {
    let mut t = Template::load().with_param("PipelineSource", json!(if with_layer { "bundled" } else { "embedded" }));
    let mut args: Vec<String> = ["--account", ACCOUNT, "--region", REGION].map(String::from).to_vec();
    for (option, value) in options {
        let (_, param) = OPTIONS.iter().find(|(o, _)| o == option).unwrap_or_else(|| panic!("no option {option}"));
        t = t.with_param(param, json!(value));
        args.extend([option.to_string(), value.to_string()]);
    }
    if with_layer {
        args.extend(["--pipeline-layer".into(), LAYER_ARN.into()]);
    }
    (t, args)
}

fn stage(t: &Template) -> String {
    scalar_text(&t.param_value("Stage"))
}

/// The ARN of a resource the template names (stream, queue, log group), as AWS forms it.
fn arn_of(t: &Template, id: &str) -> Option<String> {
    let p = t.eval(t.props(id));
    let name = |key: &str| scalar_text(&p[key]);
    Some(match t.resource(id)["Type"].as_str()? {
        "AWS::Kinesis::Stream" => format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{}", name("Name")),
        "AWS::SQS::Queue" => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}", name("QueueName")),
        "AWS::Logs::LogGroup" => format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{}:*", name("LogGroupName")),
        _ => return None,
    })
}

/// A template value with the `<Resource.Arn>` placeholders `cfn` leaves for streams, queues and log groups
/// replaced by the ARNs AWS gives them.
fn with_arns(t: &Template, v: &J) -> J {
    let placeholder = |s: &str| s.strip_prefix('<')?.strip_suffix(".Arn>").and_then(|id| arn_of(t, id));
    match v {
        J::String(s) if placeholder(s).is_some() => json!(placeholder(s)),
        J::Array(items) => J::Array(items.iter().map(|i| with_arns(t, i)).collect()),
        J::Object(o) => J::Object(o.iter().map(|(k, v)| (k.clone(), with_arns(t, v))).collect()),
        other => other.clone(),
    }
}

fn check_functions(options: &[(&str, &str)], with_layer: bool) {
    let (t, mut args) = deployment(options, with_layer);
    let mut all = vec!["deploy".to_string(), "--print".into()];
    all.append(&mut args);
    all.extend(["--ingest-role", "arn:aws:iam::1:role/i", "--export-role", "arn:aws:iam::1:role/e"].map(String::from));
    let commands = script(&all);
    let what = format!("{options:?}, layer {with_layer}");

    let build = command(&commands, &["cargo", "lambda", "build"]);
    let (build_flags, _) = flags(build);
    assert!(build_flags.contains_key("release"), "{build:?}");
    for id in [INGEST, EXPORT] {
        let arch = &t.props(id)["Architectures"];
        assert_eq!(arch, &json!(["arm64"]), "{id}");
        assert!(build_flags.contains_key("arm64"), "{what}: the build is for {arch}: {build:?}");
    }
    let built: BTreeSet<&str> = build_flags["bin"].iter().map(String::as_str).collect();

    let deploys = commands_named(&commands, &["cargo", "lambda", "deploy"]);
    assert_eq!(deploys.len(), 2, "{what}: one deploy per function: {commands:?}");
    for (id, deploy) in [(INGEST, deploys[0]), (EXPORT, deploys[1])] {
        let p = t.eval(t.props(id));
        let (f, words) = flags(deploy);
        let name = words.last().expect("the function name");
        assert_eq!(name, &scalar_text(&p["FunctionName"]), "{what}: {id} name");
        let binary = one(&f, "binary-name");
        assert_eq!(binary, t.resource(id)["Metadata"]["BuildProperties"]["Binary"], "{what}: {id}");
        assert!(built.contains(binary), "{what}: {binary} is built: {build:?}");
        assert_eq!(one(&f, "memory"), scalar_text(&p["MemorySize"]), "{what}: {id} MemorySize");
        assert_eq!(one(&f, "timeout"), scalar_text(&p["Timeout"]), "{what}: {id} Timeout");
        assert_eq!(one(&f, "runtime"), scalar_text(&p["Runtime"]), "{what}: {id} Runtime");
        assert_eq!(one(&f, "description"), scalar_text(&p["Description"]), "{what}: {id} Description");
        let log_group = t.resource(id)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"].as_str().unwrap();
        assert_eq!(
            one(&f, "log-retention"),
            scalar_text(&t.eval(&t.props(log_group)["RetentionInDays"])),
            "{what}: {id} log retention"
        );
        assert_eq!(
            scalar_text(&t.eval(&t.props(log_group)["LogGroupName"])),
            format!("/aws/lambda/{name}"),
            "cargo-lambda creates the function's default log group: the template's must be the same"
        );
        let layers = p.get("Layers").map(as_list).unwrap_or_default();
        let given: Vec<&String> = f.get("layer").into_iter().flatten().collect();
        assert_eq!(given.len(), layers.len(), "{what}: {id} Layers {layers:?}, script {given:?}");
        let env: BTreeMap<String, String> = f["env-var"]
            .iter()
            .map(|v| v.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).expect("KEY=VALUE"))
            .collect();
        let template_env: BTreeMap<String, String> = p["Environment"]["Variables"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), scalar_text(v)))
            .collect();
        assert_eq!(env, template_env, "{what}: {id} Environment.Variables");
    }
}

#[test]
fn deploy_sets_what_the_template_sets_with_its_defaults() {
    check_functions(&[], true);
}

#[test]
fn deploy_sets_what_the_template_sets_with_other_parameters() {
    check_functions(
        &[
            ("--stage", "prod"),
            ("--ingest-memory", "2048"),
            ("--export-memory", "512"),
            ("--time-zone", "America/New_York"),
            ("--window-days", "14"),
            ("--grace-minutes", "30"),
            ("--log-level", "debug"),
            ("--log-retention-days", "90"),
        ],
        false,
    );
}

#[test]
fn code_only_updates_change_no_configuration() {
    let (_, args) = deployment(&[], true);
    let mut all = vec!["code".to_string(), "--print".into(), "--no-build".into()];
    all.extend(args);
    let commands = script(&all);
    assert!(commands_named(&commands, &["cargo", "lambda", "build"]).is_empty(), "--no-build: {commands:?}");
    for deploy in commands_named(&commands, &["cargo", "lambda", "deploy"]) {
        let (f, _) = flags(deploy);
        let keys: BTreeSet<&str> = f.keys().map(String::as_str).collect();
        // Any configuration flag makes cargo-lambda rewrite the configuration (and drop layers not named).
        assert_eq!(keys, BTreeSet::from(["region", "binary-name"]), "{deploy:?}");
    }
}

#[test]
fn policies_grant_what_the_template_roles_grant() {
    let (t, args) = deployment(&[], true);
    for (function, role) in [("ingest", "IngestRole"), ("export", "ExportRole")] {
        let mut problems = Vec::new();
        let expected: BTreeSet<String> = t
            .role_grants(role, &mut problems)
            .into_iter()
            .map(|g| format!("{} {} {} {}", g.sid, g.action, with_arns(&t, &json!(g.resource)), g.condition))
            .collect();
        let mut all = vec!["policy".to_string(), function.into()];
        all.extend(args.iter().cloned());
        let document: J = serde_json::from_str(&script_output(&all)).expect("the policy is JSON");
        assert_eq!(document["Version"], "2012-10-17");
        let got: BTreeSet<String> = policy_grants(function, &document, &mut problems)
            .into_iter()
            .map(|g| format!("{} {} {} {}", g.sid, g.action, json!(g.resource), g.condition))
            .collect();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(got, expected, "{function}: the script's policy and the template's {role}");
    }
}

#[test]
fn resources_are_the_template_resources_with_the_same_settings() {
    let (t, args) = deployment(&[], true);
    let mut all = vec!["resources".to_string()];
    all.extend(args);
    let commands = script(&all);
    let stage = stage(&t);
    let bucket = t.bucket_name();

    // The stream.
    let stream = t.eval(t.props("ReceiptStream"));
    let (f, _) = flags(command(&commands, &["aws", "kinesis", "create-stream"]));
    assert_eq!(one(&f, "stream-name"), scalar_text(&stream["Name"]));
    assert_eq!(
        one(&f, "stream-mode-details"),
        format!("StreamMode={}", scalar_text(&stream["StreamModeDetails"]["StreamMode"]))
    );
    assert_eq!(scalar_text(&stream["RetentionPeriodHours"]), "24", "Kinesis' default, which the commands keep");
    let (f, _) = flags(command(&commands, &["aws", "kinesis", "start-stream-encryption"]));
    assert_eq!(
        (one(&f, "encryption-type"), one(&f, "key-id")),
        (
            &*scalar_text(&stream["StreamEncryption"]["EncryptionType"]),
            &*scalar_text(&stream["StreamEncryption"]["KeyId"])
        )
    );

    // The bucket.
    let b = t.eval(t.props("DataBucket"));
    let (f, _) = flags(command(&commands, &["aws", "s3api", "create-bucket"]));
    assert_eq!(one(&f, "bucket"), bucket);
    let (f, _) = flags(command(&commands, &["aws", "s3api", "put-bucket-encryption"]));
    let rules = json_flag(&f, "server-side-encryption-configuration");
    assert_eq!(
        rules["Rules"][0]["ApplyServerSideEncryptionByDefault"],
        b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    );
    let (f, _) = flags(command(&commands, &["aws", "s3api", "put-public-access-block"]));
    let blocks: BTreeMap<&str, J> = one(&f, "public-access-block-configuration")
        .split(',')
        .map(|kv| kv.split_once('=').map(|(k, v)| (k, json!(v == "true"))).unwrap())
        .collect();
    let template_blocks = b["PublicAccessBlockConfiguration"].as_object().unwrap();
    assert_eq!(
        blocks.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<serde_json::Map<_, _>>(),
        *template_blocks
    );
    let (f, _) = flags(command(&commands, &["aws", "s3api", "put-bucket-ownership-controls"]));
    let ownership = scalar_text(&b["OwnershipControls"]["Rules"][0]["ObjectOwnership"]);
    assert_eq!(one(&f, "ownership-controls"), format!("Rules=[{{ObjectOwnership={ownership}}}]"));
    let (f, _) = flags(command(&commands, &["aws", "s3api", "put-bucket-lifecycle-configuration"]));
    let lifecycle = json_flag(&f, "lifecycle-configuration");
    let template_rules = b["LifecycleConfiguration"]["Rules"].as_array().unwrap();
    assert_eq!(lifecycle["Rules"].as_array().unwrap().len(), template_rules.len());
    for (rule, template) in lifecycle["Rules"].as_array().unwrap().iter().zip(template_rules) {
        assert_eq!((&rule["ID"], &rule["Status"]), (&template["Id"], &template["Status"]));
        assert_eq!(rule["Filter"]["Prefix"].as_str(), template["Prefix"].as_str(), "{rule}");
        for (transition, expected) in as_list(&rule["Transitions"]).iter().zip(as_list(&template["Transitions"])) {
            assert_eq!(as_int(&transition["Days"]), as_int(&expected["TransitionInDays"]));
            assert_eq!(transition["StorageClass"], expected["StorageClass"]);
        }
        assert_eq!(rule["AbortIncompleteMultipartUpload"], template["AbortIncompleteMultipartUpload"]);
    }
    let (f, _) = flags(command(&commands, &["aws", "s3api", "put-bucket-policy"]));
    assert_eq!(json_flag(&f, "policy"), t.eval(&t.props("DataBucketPolicy")["PolicyDocument"]));

    // The queues.
    for id in ["IngestFailureQueue", "ExportDeadLetterQueue"] {
        let q = t.eval(t.props(id));
        let name = scalar_text(&q["QueueName"]);
        let create = commands_named(&commands, &["aws", "sqs", "create-queue"]);
        let create = create.iter().find(|c| c.contains(&name)).unwrap_or_else(|| panic!("no queue {name}"));
        let (f, _) = flags(create);
        let attributes = format!(
            "MessageRetentionPeriod={},SqsManagedSseEnabled={}",
            scalar_text(&q["MessageRetentionPeriod"]),
            scalar_text(&q["SqsManagedSseEnabled"])
        );
        assert_eq!(one(&f, "attributes"), attributes, "{id}");
    }

    // The roles: trusted by Lambda, with the script's policies (compared with the template's above).
    for (function, role) in [("ingest", "IngestRole"), ("export", "ExportRole")] {
        let role_name = format!("salesflow-{stage}-{function}");
        let (f, _) = flags(command(&commands, &["aws", "iam", "create-role", "--role-name", &role_name]));
        assert_eq!(json_flag(&f, "assume-role-policy-document"), t.eval(&t.props(role)["AssumeRolePolicyDocument"]));
        let (f, _) = flags(command(&commands, &["aws", "iam", "put-role-policy", "--role-name", &role_name]));
        let printed = script_output(&["policy", function, "--account", ACCOUNT, "--region", REGION]);
        assert_eq!(json_flag(&f, "policy-document"), serde_json::from_str::<J>(&printed).unwrap(), "{role}");
    }

    // The pipeline layer.
    let layer = t.eval(t.props("PipelineLayer"));
    let (f, _) = flags(command(&commands, &["aws", "lambda", "publish-layer-version"]));
    assert_eq!(one(&f, "layer-name"), scalar_text(&layer["LayerName"]));
    assert_eq!(one(&f, "compatible-runtimes"), scalar_text(&layer["CompatibleRuntimes"][0]));
    assert_eq!(one(&f, "compatible-architectures"), scalar_text(&layer["CompatibleArchitectures"][0]));

    // The ingest's event source mapping: every property of the template's Kinesis event.
    let ingest = t.eval(t.props(INGEST));
    let kinesis = ingest["Events"].as_object().unwrap().values().find(|e| e["Type"] == "Kinesis").unwrap();
    let k = with_arns(&t, &kinesis["Properties"]);
    let (f, _) = flags(command(&commands, &["aws", "lambda", "create-event-source-mapping"]));
    assert_eq!(one(&f, "function-name"), scalar_text(&ingest["FunctionName"]));
    // Every property of the template's event, whatever it holds, is the flag of the same name (kebab case), and
    // the command sets nothing else.
    let named =
        k.as_object().unwrap().keys().map(|p| if p == "Stream" { "event-source-arn".into() } else { kebab_case(p) });
    let expected: BTreeSet<String> = named.chain(["region".into(), "function-name".into()]).collect();
    assert_eq!(f.keys().cloned().collect::<BTreeSet<_>>(), expected);
    for (property, value) in k.as_object().unwrap() {
        match property.as_str() {
            "Stream" => assert_eq!(one(&f, "event-source-arn"), scalar_text(value)),
            "DestinationConfig" => {
                let destination = json_flag(&f, "destination-config");
                assert_eq!(destination["OnFailure"]["Destination"], value["OnFailure"]["Destination"]);
            }
            "FunctionResponseTypes" => assert_eq!(&json!(f["function-response-types"]), value),
            property => {
                let flag = kebab_case(property);
                match value {
                    J::Bool(true) => assert_eq!(one(&f, &flag), "", "--{flag}: a switch"),
                    J::Bool(false) => assert!(!f.contains_key(&flag), "--{flag} given, {property} is false"),
                    value => assert_eq!(one(&f, &flag), scalar_text(value), "--{flag} vs {property}"),
                }
            }
        }
    }

    // The export's S3 notification (the landed/ filter only) and schedule, retries and DLQ.
    let export = with_arns(&t, &t.eval(t.props(EXPORT)));
    let export_name = scalar_text(&export["FunctionName"]);
    let export_arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{export_name}");
    let events = export["Events"].as_object().unwrap();
    let s3 = &events.values().find(|e| e["Type"] == "S3").unwrap()["Properties"];
    let (f, _) = flags(command(&commands, &["aws", "s3api", "put-bucket-notification-configuration"]));
    let notification = json_flag(&f, "notification-configuration");
    let config = &notification["LambdaFunctionConfigurations"];
    assert_eq!(config.as_array().map(Vec::len), Some(1), "{notification}");
    assert_eq!(config[0]["LambdaFunctionArn"], json!(export_arn));
    assert_eq!(config[0]["Events"], json!(as_list(&s3["Events"])));
    let rules = &config[0]["Filter"]["Key"]["FilterRules"];
    let template_rules = &s3["Filter"]["S3Key"]["Rules"];
    assert_eq!(rules, template_rules, "the notification's filter is the template's (landed/ only)");
    assert_eq!(template_rules, &json!([{ "Name": "prefix", "Value": "landed/" }]));
    let schedule = &events.values().find(|e| e["Type"] == "Schedule").unwrap()["Properties"];
    let (f, _) = flags(command(&commands, &["aws", "events", "put-rule"]));
    assert_eq!(one(&f, "name"), scalar_text(&schedule["Name"]));
    assert_eq!(one(&f, "schedule-expression"), scalar_text(&schedule["Schedule"]));
    assert_eq!(one(&f, "description"), scalar_text(&schedule["Description"]));
    assert_eq!((one(&f, "state"), &schedule["Enabled"]), ("ENABLED", &json!(true)));
    let (f, _) = flags(command(&commands, &["aws", "events", "put-targets"]));
    assert_eq!(one(&f, "targets"), format!("Id=export,Arn={export_arn}"));
    let permissions = commands_named(&commands, &["aws", "lambda", "add-permission"]);
    let principals: BTreeSet<String> = permissions.iter().map(|c| one(&flags(c).0, "principal").to_string()).collect();
    assert_eq!(principals, BTreeSet::from(["events.amazonaws.com".into(), "s3.amazonaws.com".into()]));
    let (f, _) = flags(command(&commands, &["aws", "lambda", "put-function-event-invoke-config"]));
    let invoke = &export["EventInvokeConfig"];
    assert_eq!(one(&f, "maximum-retry-attempts"), scalar_text(&invoke["MaximumRetryAttempts"]));
    assert_eq!(one(&f, "maximum-event-age-in-seconds"), scalar_text(&invoke["MaximumEventAgeInSeconds"]));
    let (f, _) = flags(command(&commands, &["aws", "lambda", "update-function-configuration"]));
    assert_eq!(
        one(&f, "dead-letter-config"),
        format!("TargetArn={}", scalar_text(&export["DeadLetterQueue"]["TargetArn"]))
    );
    assert_eq!(export["DeadLetterQueue"]["Type"], "SQS");
}

#[test]
fn the_readme_shows_the_commands_the_script_prints() {
    let readme = cfn::repo_file("README.md");
    let (_, args) = deployment(&[], false);
    let printed = script_output(&[&["resources".to_string()], &args[..]].concat());
    // Each printed command, continuation lines included.
    let mut commands: Vec<String> = Vec::new();
    for line in printed.lines() {
        match commands.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.push('\n');
                last.push_str(line);
            }
            _ => commands.push(line.to_string()),
        }
    }
    for wanted in [
        "aws lambda create-event-source-mapping",
        "aws s3api put-bucket-notification-configuration",
        "aws events put-rule",
    ] {
        let command =
            commands.iter().find(|c| c.starts_with(wanted)).unwrap_or_else(|| panic!("the script prints no {wanted}"));
        assert!(
            readme.contains(command.as_str()),
            "README.md must show the script's command as it prints it:\n{command}"
        );
    }
}
