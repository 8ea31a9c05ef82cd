//! The Lambda handler over the JSON fixtures in `tests/data/node-runner/*.json` (repository
//! root). Each fixture is
//!
//! ```json
//! {"description": "…",
//!  "secrets": {"NAME": "value"},                      // optional
//!  "event": <the Lambda payload>,
//!  "expect": {"ok": {"output": …, "port": "…"}}       // the exact answer
//!         or {"error": {"errorType": "…", "messageContains": "…"}}}
//! ```
//!
//! The runner is the production wiring ([`node_runner::services`]: no approval store,
//! per-container breakers) with the fixture's secrets. Every fixture runs; the test then
//! reports all that failed.
#![allow(clippy::unwrap_used)]

use cm_nodes::NodeRunner;
use cm_nodes::secrets::LocalSecrets;
use lambda_runtime::{Context, LambdaEvent};
use node_runner::{Config, handler, services};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/node-runner")
}

fn runner(secrets: &Value) -> NodeRunner {
    let mut local = LocalSecrets::new();
    for (k, v) in secrets.as_object().into_iter().flatten() {
        local = local.insert(k, v.as_str().unwrap());
    }
    NodeRunner::builtin(services(&Config::default(), Arc::new(local)).unwrap())
}

/// Why the answer does not meet the expectation, if it does not.
fn check(expect: &Value, got: &Result<Value, lambda_runtime::Diagnostic>) -> Option<String> {
    match (expect.get("ok"), expect.get("error"), got) {
        (Some(want), _, Ok(answer)) => {
            (want != answer).then(|| format!("answer differs\n  want: {want}\n  got:  {answer}"))
        }
        (Some(_), _, Err(d)) => Some(format!(
            "expected an answer, got error {}: {}",
            d.error_type, d.error_message
        )),
        (None, Some(want), Err(d)) => {
            let ty = want["errorType"].as_str().unwrap();
            let contains = want["messageContains"].as_str().unwrap_or("");
            (d.error_type != ty || !d.error_message.contains(contains)).then(|| {
                format!(
                    "error differs\n  want: {ty} containing {contains:?}\n  got:  {}: {}",
                    d.error_type, d.error_message
                )
            })
        }
        (None, Some(_), Ok(answer)) => Some(format!("expected an error, got answer {answer}")),
        (None, None, _) => Some("`expect` has neither `ok` nor `error`".into()),
    }
}

#[tokio::test]
async fn every_fixture_gets_its_expected_answer() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let fixture: Value = serde_json::from_slice(&std::fs::read(file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            fixture["description"].is_string(),
            "{name}: every fixture says what it covers"
        );
        let runner = runner(&fixture["secrets"]);
        let event = LambdaEvent::new(fixture["event"].clone(), Context::default());
        let got = handler(&runner, event).await;
        if let Some(why) = check(&fixture["expect"], &got) {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_deadline_stops_a_node_with_a_timeout() {
    // A deadline already inside the margin leaves no time: the node is stopped at once.
    let mut context = Context::default();
    context.deadline = 1;
    let event = LambdaEvent::new(
        json!({"node": {"id": "m", "type": "transform.merge"}, "config": {"sources": [{}]}}),
        context,
    );
    let e = handler(&runner(&Value::Null), event).await.unwrap_err();
    assert_eq!(e.error_type, "ConcertMaster.Timeout");
    assert!(e.error_message.contains("node `m`"), "{}", e.error_message);
}
