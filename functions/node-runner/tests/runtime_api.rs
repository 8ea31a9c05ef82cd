//! The real `node-runner` binary against a fake Lambda Runtime API: it polls for invocations,
//! posts answers to `/response` and node errors to `/error` as `{errorType, errorMessage}`,
//! reads secrets from `CONCERTMASTER_SECRET_*` and logs JSON lines.
#![allow(clippy::unwrap_used)]

#[path = "support/fake_runtime.rs"]
#[allow(dead_code)]
mod fake_runtime;

use fake_runtime::FakeRuntime;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_binary_serves_invocations_through_the_runtime_api() {
    let mut api = FakeRuntime::start().await.unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_node-runner"))
        .env_clear()
        .envs(api.lambda_env())
        .env("RUST_LOG", "info")
        .env("CONCERTMASTER_SECRET_CRM_KEY", "crm-key-7d1e42")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // A node that runs: the answer is {output, port}, with the secret redacted.
    api.invoke(
        "req-1",
        json!({
            "node": {"id": "adults", "type": "transform.filter", "typeVersion": 1},
            "config": {"items": [{"age": 40, "key": "{{ secrets.CRM_KEY }}"}, {"age": 12}], "condition": "age >= 18"},
            "input": null,
            "context": {"executionId": "run-1", "workflowId": "wf", "stateName": "adults", "attempt": 0}
        }),
    );
    let ok = api.outcome(WAIT).await.expect("no answer to req-1");
    assert_eq!(ok.request_id, "req-1");
    assert!(ok.ok, "{ok:?}");
    assert_eq!(
        ok.body,
        json!({"output": {"items": [{"age": 40, "key": "***"}], "count": 1, "dropped": 1}, "port": "out"})
    );

    // A node error: posted to /error with the stable name as errorType.
    api.invoke(
        "req-2",
        json!({"node": {"id": "mystery", "type": "acme.nothing"}, "config": {}}),
    );
    let err = api.outcome(WAIT).await.expect("no answer to req-2");
    assert_eq!(err.request_id, "req-2");
    assert!(!err.ok, "{err:?}");
    assert_eq!(err.body["errorType"], "ConcertMaster.UnknownNodeType");
    assert!(
        err.body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("no handler for node type `acme.nothing`"),
        "{}",
        err.body
    );

    // A malformed event: InvalidInput naming the path, and the loop goes on.
    api.invoke("req-3", json!({"node": {"id": 7, "type": "x"}}));
    let bad = api.outcome(WAIT).await.expect("no answer to req-3");
    assert!(!bad.ok);
    assert_eq!(bad.body["errorType"], "ConcertMaster.InvalidInput");
    assert!(
        bad.body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("at `node.id`"),
        "{}",
        bad.body
    );

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .await
        .unwrap();
    // Logs are JSON lines; the node outcomes are there, the secret is not.
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "node ran" && l["node"] == "adults"),
        "{stdout}"
    );
    assert!(
        lines.iter().any(|l| l["message"] == "node failed"
            && l["error"] == "ConcertMaster.UnknownNodeType"),
        "{stdout}"
    );
    assert!(!stdout.contains("crm-key-7d1e42"), "{stdout}");
}

#[tokio::test]
async fn a_bad_setting_stops_the_function_before_it_polls() {
    let api = FakeRuntime::start().await.unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_node-runner"))
        .env_clear()
        .envs(api.lambda_env())
        .env("CONCERTMASTER_ALLOW_NETWORKS", "10.0.0.0/99")
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(WAIT, out).await.unwrap().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ConcertMaster.InvalidConfig") && stderr.contains("10.0.0.0/99"),
        "{stderr}"
    );
}
