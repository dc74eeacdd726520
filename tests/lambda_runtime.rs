//! The functions' real binaries under the Lambda Runtime API emulator: `cargo lambda watch --bin <function>`
//! runs `functions/*/src/main.rs` as Lambda would (runtime API, environment, JSON logs on stdout), with the
//! environment `template.yaml` gives each function, and `cargo lambda invoke --data-file events/…` sends the
//! sample events. Checked on content: the responses (`batchItemFailures`, the export summary), the objects written
//! to LocalStack's S3 (through the real S3 client, `AWS_ENDPOINT_URL`), the JSON log lines and the EMF metric
//! lines; a bad `SALESFLOW_*` variable stops the cold start with the documented error; a store that cannot be
//! reached makes the export answer a runtime error of type `Transient` (Lambda retries) and the ingest report the
//! batch's first record in `batchItemFailures`.
//!
//! Gated: runs when `SALESFLOW_LAMBDA_E2E=1` (`scripts/test` sets it after `scripts/localstack start`); then
//! missing tools or an unreachable LocalStack fail the test with the reason. cargo-lambda comes from
//! `scripts/install-deploy-tools` (`$SALESFLOW_DEPLOY_VENV/bin`, else `.venv-deploy/bin`, else `PATH`). The watch
//! runs `cargo run --bin <function>`, which reuses a `cargo build --workspace --bins` (same feature set); run that
//! first, or the first start compiles the binaries.

mod cfn;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cfn::{Template, scalar_text};
use salesflow_store::{ObjectStore, S3Store};
use serde_json::{Value, json};

/// How long a function may take to answer one event, its cold start included (a stale build compiles first).
const INVOKE_DEADLINE: Duration = Duration::from_secs(600);

fn enabled() -> bool {
    std::env::var("SALESFLOW_LAMBDA_E2E").is_ok_and(|v| v == "1")
}

fn skip() -> bool {
    if !enabled() {
        eprintln!(
            "not run: set SALESFLOW_LAMBDA_E2E=1 with cargo-lambda installed (scripts/install-deploy-tools) and \
             LocalStack running (scripts/localstack start), or run scripts/test"
        );
    }
    !enabled()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// The pinned cargo-lambda of `scripts/install-deploy-tools`, or one on `PATH`.
fn cargo_lambda() -> PathBuf {
    let venv = std::env::var_os("SALESFLOW_DEPLOY_VENV").map(PathBuf::from).unwrap_or(workspace().join(".venv-deploy"));
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    std::iter::once(venv.join("bin"))
        .chain(on_path)
        .map(|dir| dir.join("cargo-lambda"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "SALESFLOW_LAMBDA_E2E=1 but cargo-lambda is not in {}/bin nor on PATH: run scripts/install-deploy-tools",
                venv.display()
            )
        })
}

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "http://127.0.0.1:4566".into())
}

/// A port nothing listens on once this returns.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A stage of its own per run (a valid `Stage` parameter), so buckets never collide with another run's.
fn unique_stage() -> String {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    format!("rt{:x}", (millis as u64 ^ (u64::from(std::process::id()) << 24)) & 0xffff_ffff)
}

/// What `template.yaml` sets in a function's `Environment`, for `stage`; the pipeline layer mounted at `/opt` is
/// its `ContentUri` in the repository.
fn template_env(function: &str, stage: &str) -> BTreeMap<String, String> {
    let t = Template::load().with_param("Stage", json!(stage));
    let layer = workspace().join(scalar_text(&t.props("PipelineLayer")["ContentUri"]));
    let vars = t.eval(&t.props(function)["Environment"]["Variables"]);
    let vars = vars.as_object().unwrap_or_else(|| panic!("{function}: no Environment.Variables"));
    vars.iter()
        .map(|(k, v)| {
            let v = scalar_text(v);
            let v = match v.strip_prefix("/opt/") {
                Some(in_layer) => layer.join(in_layer).to_string_lossy().into_owned(),
                None => v,
            };
            (k.clone(), v)
        })
        .collect()
}

/// The AWS side of a function's environment: LocalStack (or whatever `endpoint` is), dummy credentials.
fn aws_env(endpoint: &str) -> BTreeMap<String, String> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// One `cargo lambda watch` serving one function (stopped, with the function, on drop).
struct Watch {
    what: String,
    port: u16,
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    tool: PathBuf,
}

impl Watch {
    /// Starts the emulator for `bin` with exactly `env` (written to an `--env-file`; no `SALESFLOW_*` or `AWS_*`
    /// variable of this process leaks in) and waits until it listens. The function itself starts on the first
    /// invocation (a cold start).
    fn start(what: &str, bin: &str, env: &BTreeMap<String, String>, dir: &Path) -> Watch {
        let tool = cargo_lambda();
        let port = free_port();
        let env_file = dir.join(format!("{what}.env"));
        let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&env_file, text).unwrap();
        let mut cmd = Command::new(&tool);
        // `-v`: cargo says why it rebuilds anything (`Dirty …`), printed when the watch stops.
        cmd.args(["lambda", "watch", "--bin", bin, "--ignore-changes", "-v", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string(), "--env-file"])
            .arg(&env_file)
            .current_dir(workspace())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Nor what `cargo test` sets for this test: a build script reading `CARGO_MANIFEST_DIR` (ring's) would
        // see it changed, and `cargo run` would rebuild the AWS SDK instead of reusing the workspace build.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let dropped = ["SALESFLOW_", "AWS_", "CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_CRATE_", "CARGO_PRIMARY_"];
            let test_only = ["CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR"];
            if dropped.iter().any(|p| name.starts_with(p)) || test_only.contains(&&*name) {
                cmd.env_remove(&*name);
            }
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{}: {e}", tool.display()));
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ] {
            let (stream, output) = (stream.expect("piped"), output.clone());
            std::thread::spawn(move || {
                let lines = BufReader::new(stream).lines().map_while(Result::ok);
                for line in lines.filter(|l| !l.trim_start().starts_with("Fresh ")) {
                    output.lock().unwrap().push(line);
                }
            });
        }
        eprintln!("lambda_runtime: {what}: cargo lambda watch --bin {bin} on 127.0.0.1:{port}");
        let mut watch = Watch { what: what.into(), port, child, output, tool };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = watch.child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() > Duration::from_secs(60) {
                panic!("{what}: cargo lambda watch does not listen on {port} ({exited:?}):\n{}", watch.dump());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        watch
    }

    /// The JSON lines of the function's output (logs and EMF), in order.
    fn json_lines(&self) -> Vec<Value> {
        let lines = self.output.lock().unwrap();
        lines.iter().filter(|l| l.starts_with('{')).filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    fn dump(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Waits for a JSON line `matches` accepts (the function logs before it answers, the reader may lag).
    fn wait_for(&self, what: &str, matches: impl Fn(&Value) -> bool, deadline: Duration) -> Value {
        let started = Instant::now();
        loop {
            if let Some(line) = self.json_lines().into_iter().find(&matches) {
                return line;
            }
            if started.elapsed() > deadline {
                panic!("{}: no {what} after {deadline:?}; output:\n{}", self.what, self.dump());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The line the function logged at its cold start.
    fn start_line(&self, message: &str) -> Value {
        self.wait_for(message, |l| l["fields"]["message"] == message, Duration::from_secs(30))
    }

    /// `cargo lambda invoke --data-file event`: the function's answer, or why there is none: the error
    /// cargo-lambda printed (a function error is `Error: <errorType>` and the message), or the function process
    /// ending before it answered (the emulator would wait for it forever; Lambda reports `Runtime.ExitError`).
    /// No answer within [`INVOKE_DEADLINE`] fails the test.
    fn invoke(&self, event: &Path) -> Result<Value, String> {
        let child = Command::new(&self.tool)
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1", "--invoke-port", &self.port.to_string()])
            .args(["--output-format", "json", "--color", "never", "--data-file"])
            .arg(event)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cargo lambda invoke runs");
        let pid = child.id().to_string();
        let (sender, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || sender.send(child.wait_with_output()));
        let started = Instant::now();
        let output = loop {
            if let Ok(output) = answer.recv_timeout(Duration::from_millis(100)) {
                break output.expect("cargo lambda invoke ends");
            }
            let gave_up = if self.function_exited() {
                Some("the function process ended before it answered")
            } else if started.elapsed() > INVOKE_DEADLINE {
                Some("no answer: the function did not start or did not answer")
            } else {
                None
            };
            if let Some(why) = gave_up {
                let _ = Command::new("kill").arg(&pid).status();
                let message = format!("{}: {}: {why}; output:\n{}", self.what, event.display(), self.dump());
                assert!(started.elapsed() <= INVOKE_DEADLINE, "{message}");
                return Err(message);
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            Ok(serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("{}: answer is not JSON ({e}): {stdout}\n{stderr}", self.what)))
        } else {
            Err(stderr.into_owned())
        }
    }

    /// Whether the function's process ended: `cargo run` started it (and execs it), and no process descends from
    /// `cargo lambda watch` any more.
    fn function_exited(&self) -> bool {
        let started = self.output.lock().unwrap().iter().any(|l| l.trim_start().starts_with("Running `"));
        started && descendants(self.child.id()).is_empty()
    }

    fn invoke_ok(&self, event: &Path) -> Value {
        self.invoke(event)
            .unwrap_or_else(|e| panic!("{}: {} failed: {e}\noutput:\n{}", self.what, event.display(), self.dump()))
    }

    /// The EMF lines of the function (one per batch, object or scheduled run).
    fn metrics(&self) -> Vec<Value> {
        self.json_lines().into_iter().filter(|l| l.get("_aws").is_some()).collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // What `cargo run` did: after `cargo build --workspace --bins`, only `Finished` and `Running`.
        let output = self.output.lock().unwrap().clone();
        let words = ["Compiling", "Finished", "Running", "Blocking", "Dirty"];
        for line in output.iter().filter(|l| words.iter().any(|w| l.trim_start().starts_with(w))) {
            eprintln!("lambda_runtime: {}: cargo: {}", self.what, line.trim());
        }
        // SIGTERM: cargo-lambda passes it on to the function and exits; what is left then gets SIGKILL.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let started = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let left = descendants(self.child.id()).into_iter().chain([self.child.id()]);
        for pid in left.map(|p| p.to_string()) {
            let _ = Command::new("kill").args(["-KILL", &pid]).stderr(Stdio::null()).status();
        }
        let _ = self.child.wait();
    }
}

/// The live (not zombie) processes below `ancestor`, from `/proc`.
fn descendants(ancestor: u32) -> Vec<u32> {
    let parents: BTreeMap<u32, u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            // `pid (comm) state ppid …`
            let (pid, rest) = stat.split_once(" (")?;
            let fields: Vec<&str> = rest.rsplit_once(") ")?.1.split(' ').collect();
            (fields.first() != Some(&"Z")).then_some((pid.parse().ok()?, fields.get(1)?.parse().ok()?))
        })
        .collect();
    let below = |mut pid: u32| {
        while let Some(&parent) = parents.get(&pid) {
            if parent == ancestor {
                return true;
            }
            pid = parent;
        }
        false
    };
    parents.keys().copied().filter(|&pid| below(pid)).collect()
}

fn event_file(name: &str) -> PathBuf {
    workspace().join("events").join(name)
}

/// The receipts a Kinesis sample event carries (records that decode to JSON objects).
fn receipts_of(event: &Path) -> Vec<Value> {
    let event: Value = serde_json::from_slice(&std::fs::read(event).unwrap()).unwrap();
    let records = event["Records"].as_array().expect("Records");
    let decoded = records.iter().filter_map(|r| STANDARD.decode(r["kinesis"]["data"].as_str()?).ok());
    decoded.filter_map(|data| serde_json::from_slice::<Value>(&data).ok()).filter(Value::is_object).collect()
}

/// LocalStack's S3, through the same client code the functions use.
struct Bucket {
    name: String,
    store: S3Store,
    runtime: tokio::runtime::Runtime,
}

impl Bucket {
    fn create(name: &str, endpoint: &str) -> Bucket {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = runtime.block_on(async {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(endpoint)
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "rt"))
                .load()
                .await;
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build())
        });
        runtime.block_on(client.create_bucket().bucket(name).send()).unwrap_or_else(|e| {
            panic!(
                "SALESFLOW_LAMBDA_E2E=1 but LocalStack's S3 at {endpoint} cannot create bucket {name}: {} \
                 (start it with scripts/localstack start)",
                aws_sdk_s3::error::DisplayErrorContext(e)
            )
        });
        Bucket { name: name.into(), store: S3Store::new(client), runtime }
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let listed = self.runtime.block_on(self.store.list(&self.name, prefix)).expect("list");
        listed.into_iter().map(|o| o.key).collect()
    }

    fn get(&self, key: &str) -> Vec<u8> {
        self.runtime.block_on(self.store.get(&self.name, key)).expect("get").to_vec()
    }

    /// The NDJSON lines of one object, decompressed when it is compressed.
    fn ndjson(&self, key: &str) -> Vec<Value> {
        let body = self.get(key);
        let text =
            String::from_utf8(salesflow_store::codec::decompress(&body).expect("zstd, gzip or plain")).expect("UTF-8");
        text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
    }
}

/// The sample S3 notification, `events/s3-put.json`, for one object of `bucket` (keys are URL-encoded in S3
/// events; ours only need `=` encoded).
fn s3_put_event(bucket: &str, key: &str, dir: &Path) -> PathBuf {
    let mut event: Value = serde_json::from_slice(&std::fs::read(event_file("s3-put.json")).unwrap()).unwrap();
    let s3 = &mut event["Records"][0]["s3"];
    s3["bucket"]["name"] = json!(bucket);
    s3["bucket"]["arn"] = json!(format!("arn:aws:s3:::{bucket}"));
    s3["object"]["key"] = json!(key.replace('=', "%3D"));
    let file = dir.join(format!("s3-put-{}.json", key.rsplit('/').next().unwrap_or(key)));
    std::fs::write(&file, serde_json::to_vec(&event).unwrap()).unwrap();
    file
}

fn emf_of<'a>(metrics: &'a [Value], function: &str, stage: &str) -> Vec<&'a Value> {
    metrics.iter().filter(|m| m["Function"] == function && m["Stage"] == stage).collect()
}

/// `events/kinesis-single.json` with its receipt emitted 3 hours ago: an hour inside the manifests' window, and
/// closed, so the schedule compacts it, whatever day the test runs. The event file and the receipt.
fn redated_single(dir: &Path) -> (PathBuf, Value) {
    let mut event: Value = serde_json::from_slice(&std::fs::read(event_file("kinesis-single.json")).unwrap()).unwrap();
    let data = &mut event["Records"][0]["kinesis"]["data"];
    let mut receipt: Value = serde_json::from_slice(&STANDARD.decode(data.as_str().unwrap()).unwrap()).unwrap();
    let emitted = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3);
    receipt["emitted_at"] = json!(emitted.to_string());
    *data = json!(STANDARD.encode(serde_json::to_vec(&receipt).unwrap()));
    let file = dir.join("kinesis-single-redated.json");
    std::fs::write(&file, serde_json::to_vec(&event).unwrap()).unwrap();
    (file, receipt)
}

/// `(receipt_id, line_no)` of every line of these receipts.
fn line_ids<'a>(receipts: impl IntoIterator<Item = &'a Value>) -> BTreeSet<(String, u64)> {
    let lines = receipts.into_iter().flat_map(|r| {
        let n = r["lines"].as_array().expect("lines").len() as u64;
        (0..n).map(|i| (r["receipt_id"].as_str().unwrap().to_string(), i))
    });
    lines.collect()
}

/// `(receipt_id, line_no)` of the lines of these landed objects.
fn landed_ids(bucket: &Bucket, keys: &[String]) -> BTreeSet<(String, u64)> {
    let lines = keys.iter().flat_map(|k| bucket.ndjson(k));
    lines.map(|l| (l["receipt_id"].as_str().unwrap().to_string(), l["line_no"].as_u64().unwrap())).collect()
}

/// `(receipt_id, line_no)` of the rows of these `sales_lines` CSV files (a line may repeat across files until
/// compaction, never inside one).
fn csv_line_ids(bucket: &Bucket, keys: &[String]) -> BTreeSet<(String, u64)> {
    let mut ids = BTreeSet::new();
    for key in keys {
        let body = bucket.get(key);
        let mut reader = csv::Reader::from_reader(&body[..]);
        let headers = reader.headers().unwrap().clone();
        let column = |name: &str| headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("{key}: no {name}"));
        let (receipt, line) = (column("receipt_id"), column("line_no"));
        let mut in_file = BTreeSet::new();
        for row in reader.records().map(Result::unwrap) {
            assert!(in_file.insert((row[receipt].to_string(), row[line].parse().unwrap())), "{key}: a line twice");
        }
        ids.extend(in_file);
    }
    ids
}

/// The ingest: the mixed sample (a training-till receipt, three event hours), the bad records, and the single
/// receipt re-dated to 3 hours ago.
fn ingest_phase(env: &BTreeMap<String, String>, stage: &str, bucket: &Bucket, dir: &Path) {
    let ingest = Watch::start("ingest", "salesflow-ingest", env, dir);
    let mixed = event_file("kinesis-mixed.json");
    assert_eq!(ingest.invoke_ok(&mixed), json!({ "batchItemFailures": [] }));
    let configured = ingest.start_line("ingest configured");
    assert_eq!((&configured["fields"]["stage"], &configured["fields"]["bucket"]), (&json!(stage), &json!(bucket.name)));
    let pipeline = configured["fields"]["pipeline"].as_str().unwrap_or_default();
    assert!(pipeline.ends_with("pipelines/sales.yaml\")"), "SALESFLOW_PIPELINE from the layer, got {configured}");

    let receipts = receipts_of(&mixed);
    let kept: Vec<&Value> = receipts.iter().filter(|r| r["store_id"] != "S00000").collect();
    assert_eq!((receipts.len(), kept.len()), (5, 4), "the sample: 5 receipts, one from the training till S00000");
    let raw = bucket.keys("raw/");
    assert_eq!(raw.len(), 1, "one raw copy of the batch: {raw:?}");
    assert_eq!(bucket.ndjson(&raw[0]).len(), 5, "the raw copy holds every record");
    let landed = bucket.keys("landed/");
    assert_eq!(landed.len(), 3, "one landed object per UTC event hour (07, 08, 09): {landed:?}");
    let mut landed_lines = BTreeSet::new();
    for key in &landed {
        for line in bucket.ndjson(key) {
            assert!(line["city"].is_string() && line["line_total"].is_number(), "{key}: {line}");
            let id = (line["receipt_id"].as_str().unwrap().to_string(), line["line_no"].as_u64().unwrap());
            assert!(landed_lines.insert(id.clone()), "{key}: {id:?} landed twice");
        }
    }
    assert_eq!(landed_lines, line_ids(kept), "every line of every kept receipt lands exactly once");
    assert!(bucket.keys("rejects/").is_empty());
    let batch = ingest.wait_for("batch done", |l| l["fields"]["message"] == "batch done", Duration::from_secs(30));
    assert_eq!(batch["span"]["name"], "ingest", "the log line carries the request's span: {batch}");
    assert!(batch["span"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{batch}");
    let metrics = ingest.metrics();
    let emf = emf_of(&metrics, "ingest", stage);
    assert_eq!(emf.len(), 1, "one EMF line per batch: {metrics:?}");
    assert_eq!(emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"], "salesflow");
    assert_eq!(emf[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Stage", "Function"]]));
    let counts =
        ["RecordsIn", "UserRecords", "Emitted", "Filtered", "Rejected", "ObjectsWritten"].map(|m| emf[0][m].as_u64());
    assert_eq!(counts, [5, 5, 4, 1, 0, 4].map(Some), "(raw + 3 landed objects): {}", emf[0]);

    let bad = event_file("kinesis-bad-records.json");
    assert_eq!(ingest.invoke_ok(&bad), json!({ "batchItemFailures": [] }), "bad records never fail a batch");
    let bad_emf = ingest.wait_for(
        "EMF of the bad batch",
        |l| l.get("_aws").is_some() && l["Rejected"] != 0,
        Duration::from_secs(30),
    );
    let count = |name: &str| bad_emf[name].as_u64().unwrap_or_else(|| panic!("{name} in {bad_emf}"));
    assert_eq!(count("UserRecords"), count("Emitted") + count("Filtered") + count("Rejected"), "{bad_emf}");
    let rejects: Vec<Value> = bucket.keys("rejects/").iter().flat_map(|k| bucket.ndjson(k)).collect();
    assert_eq!(rejects.len() as u64, count("Rejected"), "every reject written, with its reason: {rejects:?}");
    for reject in &rejects {
        assert!(reject["reason"].as_str().is_some_and(|r| !r.is_empty()), "{reject}");
        assert!(reject["step"].is_string() && reject["payload_base64"].is_string(), "{reject}");
    }

    let (recent, receipt) = redated_single(dir);
    assert_eq!(ingest.invoke_ok(&recent), json!({ "batchItemFailures": [] }));
    let landed_now = landed_ids(bucket, &bucket.keys("landed/"));
    assert!(line_ids([&receipt]).is_subset(&landed_now), "the re-dated receipt landed");
}

/// The export: every landed object (the sample S3 notification, pointed at it), an S3 test event, the schedule.
fn export_phase(env: &BTreeMap<String, String>, stage: &str, bucket: &Bucket, dir: &Path) {
    let export = Watch::start("export", "salesflow-export", env, dir);
    let landed = bucket.keys("landed/");
    let expected = &landed_ids(bucket, &landed);
    for key in &landed {
        let summary = export.invoke_ok(&s3_put_event(&bucket.name, key, dir));
        assert_eq!(summary["kind"], "s3", "{summary}");
        let object = &summary["objects"][0];
        assert_eq!(object["source"], json!(format!("s3://{}/{key}", bucket.name)), "{summary}");
        assert_eq!(object["status"], "exported", "{summary}");
        assert_eq!(object["records_read"], json!(bucket.ndjson(key).len()), "{summary}");
        let written: Vec<&str> = object["written"].as_array().unwrap().iter().map(|w| w[0].as_str().unwrap()).collect();
        assert_eq!(written.len(), 2, "one sales_lines and one hourly_sales file: {summary}");
        for csv_key in written {
            assert!(bucket.keys(csv_key).contains(&csv_key.to_string()), "{csv_key} listed in the summary is in S3");
        }
    }
    let configured = export.start_line("export configured");
    assert_eq!((&configured["fields"]["stage"], &configured["fields"]["bucket"]), (&json!(stage), &json!(bucket.name)));
    let pieces = bucket.keys(&format!("{}sales_lines/", env["SALESFLOW_DATASETS_PREFIX"]));
    assert_eq!(&csv_line_ids(bucket, &pieces), expected, "the sales_lines CSVs hold exactly the landed lines");
    let metrics = export.metrics();
    let objects_read: u64 = emf_of(&metrics, "export", stage).iter().filter_map(|m| m["ObjectsRead"].as_u64()).sum();
    assert_eq!(objects_read, landed.len() as u64, "one ObjectsRead per exported object: {metrics:?}");

    let test_event = export.invoke_ok(&event_file("s3-test-event.json"));
    assert_eq!(test_event["kind"], "s3:TestEvent", "{test_event}");

    // The schedule compacts the re-dated receipt's closed hour and lists the merged file in the manifest.
    let scheduled = export.invoke_ok(&event_file("eventbridge-scheduled.json"));
    assert_eq!(scheduled["kind"], "scheduled", "{scheduled}");
    let compacted = scheduled["scheduled"]["hours_compacted"].as_array().cloned().unwrap_or_default();
    assert!(!compacted.is_empty(), "the re-dated hour is compacted: {scheduled}");
    let rolling =
        format!("{}sales_lines/last-{}-days.json", env["SALESFLOW_MANIFESTS_PREFIX"], env["SALESFLOW_WINDOW_DAYS"]);
    let written = &scheduled["scheduled"]["manifests_written"];
    assert!(written.as_array().is_some_and(|w| w.contains(&json!(rolling))), "{rolling} not in {scheduled}");
    let manifest: Value = serde_json::from_slice(&bucket.get(&rolling)).expect("the manifest is JSON");
    assert_eq!(manifest["globalUploadSettings"]["format"], "CSV", "{manifest}");
    let uris = manifest["fileLocations"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["URIs"].as_array().cloned().unwrap_or_default());
    let listed: Vec<String> = uris
        .map(|u| u.as_str().unwrap().strip_prefix(&format!("s3://{}/", bucket.name)).expect("our bucket").to_string())
        .collect();
    // `merged`: the file names of the hour's merged sales_lines parts.
    let merged: Vec<&str> = compacted
        .iter()
        .flat_map(|hour| hour["merged"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    let listed_names: Vec<&str> = listed.iter().filter_map(|k| k.rsplit('/').next()).collect();
    assert!(
        !merged.is_empty() && merged.iter().all(|m| listed_names.contains(m)),
        "{rolling} lists the merged files {merged:?}: {listed:?}"
    );
    let listed_lines = csv_line_ids(bucket, &listed);
    assert!(listed_lines.is_subset(expected) && !listed_lines.is_empty(), "{rolling} lists landed lines only");
}

#[test]
fn sample_events_through_both_functions_on_the_lambda_runtime() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stage = unique_stage();
    let endpoint = endpoint();
    let ingest_env = template_env("IngestFunction", &stage);
    let export_env = template_env("ExportFunction", &stage);
    assert_eq!(ingest_env["SALESFLOW_BUCKET"], export_env["SALESFLOW_BUCKET"], "one bucket for both functions");
    let bucket = Bucket::create(&ingest_env["SALESFLOW_BUCKET"], &endpoint);
    let with_aws = |env: &BTreeMap<String, String>| env.clone().into_iter().chain(aws_env(&endpoint)).collect();
    ingest_phase(&with_aws(&ingest_env), &stage, &bucket, dir.path());
    export_phase(&with_aws(&export_env), &stage, &bucket, dir.path());
}

#[test]
fn a_store_that_cannot_be_reached_is_retried() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stage = unique_stage();
    let closed = format!("http://127.0.0.1:{}", free_port());

    let export_env = template_env("ExportFunction", &stage).into_iter().chain(aws_env(&closed)).collect();
    let export = Watch::start("export-no-s3", "salesflow-export", &export_env, dir.path());
    let error = export.invoke(&event_file("s3-put.json")).expect_err("no S3: the export must fail the invocation");
    assert!(error.contains("Error: Transient"), "errorType Transient, so Lambda retries; got:\n{error}");
    assert!(error.contains("transient store failure: get s3://"), "{error}");

    let ingest_env = template_env("IngestFunction", &stage).into_iter().chain(aws_env(&closed)).collect();
    let ingest = Watch::start("ingest-no-s3", "salesflow-ingest", &ingest_env, dir.path());
    let single = event_file("kinesis-single.json");
    let event: Value = serde_json::from_slice(&std::fs::read(&single).unwrap()).unwrap();
    let first = &event["Records"][0]["kinesis"]["sequenceNumber"];
    assert_eq!(
        ingest.invoke_ok(&single),
        json!({ "batchItemFailures": [{ "itemIdentifier": first }] }),
        "nothing stored: Lambda retries the batch from its first record"
    );
    let stopped = ingest.wait_for("landing stopped", |l| l["fields"]["transient"] == true, Duration::from_secs(30));
    assert_eq!(stopped["fields"]["retry_from"], *first, "{stopped}");
}

#[test]
fn a_bad_variable_stops_the_cold_start_naming_it() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stage = unique_stage();
    for (function, bin, variable, value, message) in [
        ("IngestFunction", "salesflow-ingest", "SALESFLOW_TIME_ZONE", "Mars/Olympus", "not a known IANA time zone"),
        ("ExportFunction", "salesflow-export", "SALESFLOW_WINDOW_DAYS", "0", "expected a number of days from 1 to 366"),
    ] {
        let mut env = template_env(function, &stage);
        assert!(env.contains_key(variable), "template.yaml sets {variable} on {function}");
        env.insert(variable.into(), value.into());
        let watch = Watch::start(
            &format!("{bin}-bad"),
            bin,
            &env.into_iter().chain(aws_env(&endpoint())).collect(),
            dir.path(),
        );
        // The invocation starts the function, which logs why and exits with status 1 (Lambda: Runtime.ExitError).
        let answer = watch.invoke(&event_file("s3-test-event.json"));
        let why = answer.expect_err(&format!("{bin} answered with {variable}={value:?}"));
        assert!(why.contains("the function process ended before it answered"), "{why}");
        let started = Instant::now();
        while !watch.dump().contains("command exited code=1") {
            assert!(started.elapsed() < Duration::from_secs(30), "{bin}: no exit status 1:\n{}", watch.dump());
            std::thread::sleep(Duration::from_millis(100));
        }
        let line = watch.start_line("cold start failed: bad configuration");
        assert_eq!(line["level"], "ERROR", "{line}");
        let error = line["fields"]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(&format!("{variable}={value:?}: {message}")), "{bin}: {line}");
    }
}
