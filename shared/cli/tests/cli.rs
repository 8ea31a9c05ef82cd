//! The `concertmaster` binary, run as a user would.

#![allow(clippy::unwrap_used, missing_docs)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_concertmaster"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).current_dir(repo()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_tmp(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

#[test]
fn validate_accepts_an_example() {
    let out = run(&["validate", "examples/lead-intake.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("valid (0 error(s), 0 warning(s))"));
}

#[test]
fn validate_reports_every_problem_and_exits_1() {
    let (_d, path) = write_tmp(
        "bad.json",
        r#"{"id":"wf","name":"n","nodes":[{"id":"start","type":"trigger.manual"},{"id":"call","type":"action.http","config":{}}],
            "edges":[{"from":"start","to":"call"},{"from":"call","to":"ghost"}]}"#,
    );
    let out = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(":1:114: error[node.invalid_config] node `call` at /nodes/1/config"),
        "{err}"
    );
    assert!(
        err.contains(":2:71: error[edge.unknown_target] edge #1 at /edges/1/to"),
        "{err}"
    );
    let out = run(&["validate", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["errors"], 2);
    assert_eq!(doc["findings"][1]["code"], "edge.unknown_target");
    assert_eq!(
        (
            doc["findings"][1]["line"].as_u64(),
            doc["findings"][1]["column"].as_u64()
        ),
        (Some(2), Some(71))
    );
}

#[test]
fn malformed_json_gives_line_and_column() {
    let (_d, path) = write_tmp("broken.json", "{\n  \"id\": \"wf\",\n  \"nodes\": [,]\n}");
    let out = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid JSON at line 3, column 13"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["validate", path.to_str().unwrap(), "--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["findings"][0]["code"], "parse.syntax");
    assert_eq!(
        (
            doc["findings"][0]["line"].as_u64(),
            doc["findings"][0]["column"].as_u64()
        ),
        (Some(3), Some(13))
    );
}

#[test]
fn missing_files_exit_2() {
    let out = run(&["validate", "does/not/exist.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("reading does/not/exist.json"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn compile_prints_or_writes_the_definition() {
    let out = run(&["compile", "examples/lead-intake.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let asl: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(asl["StartAt"], "contact_form");
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "compile",
        "examples/lead-intake.json",
        "--out",
        dir.path().to_str().unwrap(),
        "--node-runner-function",
        "arn:aws:lambda:eu-west-1:1:function:runner",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let asl = std::fs::read_to_string(dir.path().join("lead-intake.asl.json")).unwrap();
    assert!(asl.contains("arn:aws:lambda:eu-west-1:1:function:runner"));
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("lead-intake.compile.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["stateMap"]["enrich"]["nodeId"], "enrich");
    assert!(meta["executionTypeReason"].as_str().unwrap().len() > 10);
}

#[test]
fn compile_refuses_invalid_workflows() {
    let (_d, path) = write_tmp("empty.json", r#"{"id":"wf","name":"n","nodes":[]}"#);
    let out = run(&["compile", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("graph.no_trigger"));
    assert!(out.stdout.is_empty());
}

#[test]
fn node_types_filter_and_json() {
    let out = run(&["node-types", "--category", "trigger"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    assert_eq!(listing.lines().count(), 5, "{listing}");
    assert!(listing.contains("trigger.webhook"));
    let out = run(&["node-types", "--search", "approv", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["type"], "flow.approval");
    assert!(list[0]["configSchema"]["properties"]["title"].is_object());
    let out = run(&["node-types", "--category", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plugins_folder_adds_types() {
    let (dir, _path) = write_tmp(
        "crm.yaml",
        "type: acme.crm_lookup\nversion: 1\ncategory: action\ntitle: CRM lookup\ndescription: Look up a contact\nconfigSchema: {type: object}\nexecution: {kind: plugin, executor: {httpUrl: 'http://127.0.0.1:9000/run'}}\n",
    );
    let out = run(&[
        "node-types",
        "--search",
        "crm",
        "--plugins",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        text(&out.stdout).contains("acme.crm_lookup"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn schema_and_help() {
    let out = run(&["schema"]);
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "ConcertMaster workflow");
    for sub in ["validate", "compile", "node-types", "schema"] {
        let out = run(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}");
        assert!(text(&out.stdout).contains("Usage: concertmaster"), "{sub}");
    }
}

#[test]
fn unreadable_plugin_folder_is_a_usage_error() {
    let out = run(&["node-types", "--plugins", "no/such/folder"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read plugin folder"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_plugin_files_are_reported_but_do_not_stop_the_rest() {
    let (dir, _path) = write_tmp("broken.yaml", "type: [unclosed\n");
    let out = run(&[
        "node-types",
        "--category",
        "trigger",
        "--plugins",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("broken.yaml"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout).lines().count(), 5);
}

#[test]
fn compile_warnings_are_located() {
    let (_d, path) = write_tmp(
        "warn.json",
        r#"{"id":"wf","name":"n","nodes":[{"id":"start","type":"trigger.manual"},
 {"id":"call","type":"action.http","config":{"url":"x"}},
 {"id":"shape","type":"transform.set","config":{"fields":{}},"retry":[]}],
 "edges":[{"from":"start","to":"call"},{"from":"call","to":"shape"}]}"#,
    );
    let out = run(&["compile", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains(":3:2: warning[node.setting_ignored]"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn validate_takes_several_files() {
    let (_d, bad) = write_tmp("bad.json", r#"{"id":"wf","name":"n","nodes":[]}"#);
    let out = run(&[
        "validate",
        "examples/lead-intake.json",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one invalid file makes the run fail"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("lead-intake.json: valid") && err.contains("graph.no_trigger"),
        "{err}"
    );
    let out = run(&[
        "validate",
        "examples/lead-intake.json",
        "examples/webhook-orders.json",
        "--format",
        "json",
    ]);
    assert!(out.status.success());
    let docs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(docs.as_array().map(Vec::len), Some(2));
    assert_eq!(docs[1]["file"], "examples/webhook-orders.json");
    assert_eq!(docs[1]["valid"], true);
}

#[test]
fn node_types_markdown_is_the_shipped_reference() {
    let out = run(&["node-types", "--markdown"]);
    assert!(out.status.success());
    let shipped = std::fs::read_to_string(repo().join("docs/node-types.md")).unwrap();
    assert_eq!(text(&out.stdout), shipped);
}

#[test]
fn asl_run_executes_a_definition() {
    let (dir, def) = write_tmp(
        "sm.json",
        r#"{"StartAt": "Check", "States": {
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}], "Default": "Small"},
            "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "End": true},
            "Small": {"Type": "Fail", "Error": "TooSmall", "Cause": "n <= 1"}}}"#,
    );
    let input = dir.path().join("in.json");
    std::fs::write(&input, r#"{"n": 5}"#).unwrap();
    let out = run(&[
        "asl",
        "run",
        "--definition",
        def.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"status": "SUCCEEDED", "output": {"n": 5, "size": "big"}})
    );
    std::fs::write(&input, r#"{"n": 0}"#).unwrap();
    let out = run(&[
        "asl",
        "run",
        "--definition",
        def.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--type",
        "EXPRESS",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"status": "FAILED", "error": "TooSmall", "cause": "n <= 1"})
    );
}

#[test]
fn asl_run_refuses_invalid_definitions_naming_the_field() {
    let (_d, def) = write_tmp(
        "bad.json",
        r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}"#,
    );
    let out = run(&["asl", "run", "--definition", def.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("InvalidDefinition"), "{err}");
    assert!(err.contains("/States/A/Next"), "{err}");
}

#[test]
fn asl_run_with_a_database_is_idempotent_by_name() {
    let (dir, def) = write_tmp(
        "sm.json",
        r#"{"StartAt": "Add", "States": {
            "Add": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "End": true}}}"#,
    );
    let input = dir.path().join("in.json");
    std::fs::write(&input, r#"{"n": 41}"#).unwrap();
    let db = dir.path().join("runs.db");
    let args = [
        "asl",
        "run",
        "--definition",
        def.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--name",
        "answer",
    ];
    for _ in 0..2 {
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"status": "SUCCEEDED", "output": {"n": 42}})
        );
    }
    // Nothing left to resume.
    let out = run(&["asl", "resume", "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let out = run(&[
        "asl",
        "resume",
        "--db",
        dir.path().join("nope.db").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("does not exist"));
}

/// A local HTTP sink on a thread: answers every request `200 {"ok": true}` and sends each
/// request's text to the returned channel.
fn sink() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = conn.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let t = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = t.find("\r\n\r\n") {
                    let len: usize = t[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let body = r#"{"ok": true}"#;
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tx.send(String::from_utf8_lossy(&buf).to_string());
        }
    });
    (url, rx)
}

#[test]
fn run_executes_a_workflow_with_pinned_node_answers() {
    // The Slack notification runs for real: its webhook URL is a secret pointing at a local
    // sink, which loopback must be allowed to reach.
    let (url, requests) = sink();
    let out = bin()
        .args([
            "run",
            "examples/lead-intake.json",
            "--pin",
            "tests/data/runs/lead-intake.json#hot lead",
            "--allow-network",
            "127.0.0.1/32",
        ])
        .env(
            "CONCERTMASTER_SECRET_sales_slack_webhook",
            format!("{url}/hook"),
        )
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let posted = requests.recv().unwrap();
    assert!(posted.starts_with("POST /hook "), "{posted}");
    assert!(posted.contains(r#""text":"#), "{posted}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "SUCCEEDED");
    assert_eq!(
        doc["output"]["nodes"]["enrich"]["output"]["body"]["score"],
        92
    );
    let progress = text(&out.stderr);
    assert!(
        progress.contains("▶ enrich (action.http) running"),
        "{progress}"
    );
    assert!(progress.contains("✔ alert_sales succeeded"), "{progress}");
    assert!(progress.contains("park_invalid=skipped"), "{progress}");
    // A pinned failure takes the node's error route.
    let out = bin()
        .args([
            "run",
            "examples/webhook-orders.json",
            "--pin",
            "tests/data/runs/webhook-orders.json#payment failure takes the catch path",
            "--allow-network",
            "127.0.0.1/32",
        ])
        .env(
            "CONCERTMASTER_SECRET_ops_slack_webhook",
            format!("{url}/ops"),
        )
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let progress = text(&out.stderr);
    assert!(
        progress.contains("✖ charge_payment failed with ConcertMaster.Http.4xx"),
        "{progress}"
    );
    assert!(progress.contains("store_failed=succeeded"), "{progress}");
}

#[test]
fn run_reports_failed_runs_and_bad_input() {
    // An HTTP node aimed at loopback is refused by the default network policy: the run fails
    // with the node's error name, exit 1.
    let (_d, wf) = write_tmp(
        "blocked.json",
        r#"{"id": "blocked", "name": "b", "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "call", "type": "action.http", "config": {"url": "http://127.0.0.1:9/x"}}],
          "edges": [{"from": "start", "to": "call"}]}"#,
    );
    let out = run(&[
        "run",
        wf.to_str().unwrap(),
        "--input",
        r#"{"email":"a@b.c"}"#,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "FAILED");
    assert_eq!(doc["error"], "ConcertMaster.Http.BlockedAddress");
    assert!(
        text(&out.stderr).contains("--allow-network"),
        "{}",
        text(&out.stderr)
    );
    // A missing secret names the secret.
    let (_d2, wf) = write_tmp(
        "secret.json",
        r#"{"id": "s", "name": "s", "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "tell", "type": "action.notify", "config": {"secret": "nope", "text": "hi"}}],
          "edges": [{"from": "start", "to": "tell"}]}"#,
    );
    let out = run(&["run", wf.to_str().unwrap(), "-q"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"], "ConcertMaster.SecretNotFound", "{doc}");
    // Bad option values are usage errors.
    let out = run(&["run", wf.to_str().unwrap(), "--decide", "tell"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("NODE=approve"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&[
        "run",
        wf.to_str().unwrap(),
        "--allow-network",
        "10.0.0.0/99",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("10.0.0.0/99"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&[
        "run",
        wf.to_str().unwrap(),
        "--secrets",
        "/nonexistent/s.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("secrets file"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["run", "examples/lead-intake.json", "--input", "{not json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--input must be JSON"));
    let out = run(&[
        "run",
        "examples/lead-intake.json",
        "--pin",
        "tests/data/runs/lead-intake.json#no such scenario",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no scenario named"));
    let (_d, path) = write_tmp("empty.json", r#"{"id":"wf","name":"n","nodes":[]}"#);
    let out = run(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("does not compile"));
}

#[test]
fn run_decides_approvals_from_the_command_line() {
    let (_d, wf) = write_tmp(
        "approve.json",
        r#"{"id": "a", "name": "a", "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "ok", "type": "flow.approval", "config": {"title": "Pay {{ $.nodes.start.output.amount }}?"}},
            {"id": "paid", "type": "transform.set", "config": {"fields": {"paid": true}}},
            {"id": "refused", "type": "transform.set", "config": {"fields": {"paid": false}}}],
          "edges": [{"from": "start", "to": "ok"},
                    {"from": "ok", "fromPort": "approved", "to": "paid"},
                    {"from": "ok", "fromPort": "rejected", "to": "refused"}]}"#,
    );
    for (decision, port, node) in [
        ("approve", "approved", "paid"),
        ("reject", "rejected", "refused"),
    ] {
        let out = run(&[
            "run",
            wf.to_str().unwrap(),
            "--input",
            r#"{"amount": 5}"#,
            "--decide",
            &format!("ok={decision}"),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["output"]["nodes"]["ok"]["port"], port, "{doc}");
        assert_eq!(
            doc["output"]["nodes"]["ok"]["output"]["approved"],
            decision == "approve"
        );
        assert!(
            doc["output"]["nodes"][node]["output"]["paid"].is_boolean(),
            "{doc}"
        );
        let progress = text(&out.stderr);
        assert!(progress.contains("⏸ ok waits for approval"), "{progress}");
        assert!(progress.contains("\"Pay 5?\""), "{progress}");
    }
}

#[test]
fn run_calls_plugin_executors_over_http() {
    use std::io::{BufRead, BufReader};
    // The example plugin as a local HTTP executor on a free port.
    let mut child = std::process::Command::new("python3")
        .args([
            "examples/plugins/text-stats/text_stats.py",
            "--port",
            "0",
            "--quiet",
        ])
        .current_dir(repo())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    // Its descriptor, pointed at that port.
    let dir = tempfile::tempdir().unwrap();
    let descriptor =
        std::fs::read_to_string(repo().join("examples/plugins/text-stats/text-stats.yaml"))
            .unwrap()
            .replace("http://127.0.0.1:9100/run", &url);
    std::fs::write(dir.path().join("text-stats.yaml"), descriptor).unwrap();
    let out = run(&[
        "run",
        "examples/plugins/text-stats/workflow/feedback-stats.json",
        "--plugins",
        dir.path().to_str().unwrap(),
        "--input",
        r#"{"comment": "so good so fast"}"#,
        "-q",
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["output"]["nodes"]["stats"]["output"]["words"], 4,
        "{doc}"
    );
    assert_eq!(
        doc["output"]["nodes"]["keep"]["output"]["stored"], true,
        "{doc}"
    );
}
