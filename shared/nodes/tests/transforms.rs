//! Transform and approval handlers through the runner: success and every error path.
#![allow(clippy::unwrap_used)]

use cm_nodes::secrets::LocalSecrets;
use cm_nodes::test_util::{self, MemoryApprovals};
use cm_nodes::{NodeError, NodeEvent, NodeOutput, NodeRunner};
use serde_json::{Value, json};
use std::sync::Arc;

fn runner() -> NodeRunner {
    NodeRunner::builtin(test_util::services(
        LocalSecrets::new().insert("TOKEN", "s3cr3t-value"),
    ))
}

fn event(ty: &str, config: Value) -> NodeEvent {
    serde_json::from_value(json!({
        "node": {"id": "n1", "type": ty, "typeVersion": 1},
        "config": config,
        "input": {"from": "upstream"},
        "context": {"executionId": "arn:exec:1", "workflowId": "wf", "attempt": 0}
    }))
    .unwrap()
}

async fn run(ty: &str, config: Value) -> Result<NodeOutput, NodeError> {
    runner().run(event(ty, config)).await
}

#[tokio::test]
async fn filter_keeps_truthy_items() {
    let out = run(
        "transform.filter",
        json!({"items": [{"n": 1}, {"n": 5}, {"n": 9}, {}], "condition": "n > 2"}),
    )
    .await
    .unwrap();
    assert_eq!(out.port, "out");
    assert_eq!(
        out.output,
        json!({"items": [{"n": 5}, {"n": 9}], "count": 2, "dropped": 2})
    );
}

#[tokio::test]
async fn filter_errors_name_the_field() {
    let e = run(
        "transform.filter",
        json!({"items": {"a": 1}, "condition": "true"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidInput");
    assert!(
        e.to_string()
            .contains("config.items must evaluate to an array, got an object"),
        "{e}"
    );
    assert!(e.to_string().starts_with("node `n1`"), "{e}");

    let e = run("transform.filter", json!({"items": [], "condition": "n >"}))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.ExpressionFailed");
    assert!(e.to_string().contains("config.condition"), "{e}");

    let e = run(
        "transform.filter",
        json!({"items": [1], "condition": "$x()"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.ExpressionFailed");
    assert!(e.to_string().contains("item 0"), "{e}");

    let e = run("transform.filter", json!({"items": [1]}))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidConfig");
    assert!(e.to_string().contains("condition"), "{e}");

    let e = run(
        "transform.filter",
        json!({"items": [1], "condition": "1", "x": 1}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidConfig");
    assert!(e.to_string().contains("`x`"), "{e}");
}

#[tokio::test]
async fn expression_evaluation_is_bounded() {
    // Unbounded recursion hits the depth limit instead of the stack.
    let e = run(
        "transform.filter",
        json!({"items": [1], "condition": "($f := function($n) { $f($n + 1) }; $f(0))"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.ExpressionFailed");
    // An enormous range is refused, not materialised.
    let e = run(
        "transform.filter",
        json!({"items": [1], "condition": "$count([1..100000000]) > 0"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.ExpressionFailed");
}

fn orders() -> Value {
    json!([
        {"region": "eu", "amount": 10, "id": "a"},
        {"region": "us", "amount": 5.5, "id": "b"},
        {"region": "eu", "amount": 20, "id": "c"},
        {"region": "eu", "id": "d"}
    ])
}

#[tokio::test]
async fn aggregate_groups_and_computes() {
    let out = run(
        "transform.aggregate",
        json!({"items": orders(), "groupBy": "region", "operations": [
            {"op": "count", "as": "n"},
            {"op": "count", "field": "amount", "as": "priced"},
            {"op": "sum", "field": "amount", "as": "total"},
            {"op": "avg", "field": "amount", "as": "mean"},
            {"op": "min", "field": "amount", "as": "lo"},
            {"op": "max", "field": "amount", "as": "hi"},
            {"op": "collect", "field": "id", "as": "ids"}
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(
        out.output,
        json!({"groups": [
            {"key": "eu", "n": 3, "priced": 2, "total": 30, "mean": 15, "lo": 10, "hi": 20, "ids": ["a", "c", "d"]},
            {"key": "us", "n": 1, "priced": 1, "total": 5.5, "mean": 5.5, "lo": 5.5, "hi": 5.5, "ids": ["b"]}
        ], "count": 2})
    );
}

#[tokio::test]
async fn aggregate_without_groups_and_on_empty_input() {
    let out = run(
        "transform.aggregate",
        json!({"items": orders(), "operations": [{"op": "sum", "field": "amount", "as": "total"}, {"op": "count", "as": "n"}]}),
    )
    .await
    .unwrap();
    assert_eq!(out.output, json!({"total": 35.5, "n": 4}));
    let out = run(
        "transform.aggregate",
        json!({"items": [], "operations": [{"op": "avg", "field": "x", "as": "mean"}, {"op": "count", "as": "n"}]}),
    )
    .await
    .unwrap();
    assert_eq!(out.output, json!({"mean": null, "n": 0}));
}

#[tokio::test]
async fn aggregate_errors() {
    let e = run(
        "transform.aggregate",
        json!({"items": [{"a": "x"}], "operations": [{"op": "sum", "field": "a", "as": "s"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidInput");
    assert!(e.to_string().contains("item 0 gives a string"), "{e}");
    let e = run(
        "transform.aggregate",
        json!({"items": [], "operations": [{"op": "sum", "as": "s"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidConfig");
    assert!(
        e.to_string()
            .contains("operations[0]: `sum` needs a `field`"),
        "{e}"
    );
    let e = run(
        "transform.aggregate",
        json!({"items": [], "operations": [{"op": "median", "as": "s"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidConfig");
    assert!(e.to_string().contains("operations[0].op"), "{e}");
}

fn person_schema() -> Value {
    json!({"type": "object", "required": ["email"], "properties": {
        "email": {"type": "string", "format": "email", "pattern": "@"},
        "age": {"type": "integer", "minimum": 0}
    }})
}

#[tokio::test]
async fn validate_passes_fails_and_routes() {
    let ok = run(
        "transform.validate",
        json!({"data": {"email": "a@b.c"}, "schema": person_schema()}),
    )
    .await
    .unwrap();
    assert_eq!(ok, NodeOutput::out(json!({"email": "a@b.c"})));

    let e = run(
        "transform.validate",
        json!({"data": {"age": -1}, "schema": person_schema()}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.ValidationFailed");
    let cause: Value = serde_json::from_str(&e.cause()).unwrap();
    let paths: Vec<&str> = cause["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"") && paths.contains(&"/age"), "{cause}");

    let routed = run(
        "transform.validate",
        json!({"data": {"age": 3}, "schema": person_schema(), "onInvalid": "route"}),
    )
    .await
    .unwrap();
    assert_eq!(routed.port, "invalid");
    assert_eq!(routed.output["data"], json!({"age": 3}));
    let valid = run(
        "transform.validate",
        json!({"data": {"email": "x@y"}, "schema": person_schema(), "onInvalid": "route"}),
    )
    .await
    .unwrap();
    assert_eq!(valid.port, "valid");

    let e = run(
        "transform.validate",
        json!({"data": 1, "schema": {"type": "nonsense"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidConfig");
    assert!(e.to_string().contains("config.schema"), "{e}");
}

#[tokio::test]
async fn merge_objects_deep_and_arrays() {
    let shallow = run(
        "transform.merge",
        json!({"sources": [{"a": {"x": 1}, "b": 1}, null, {"a": {"y": 2}}]}),
    )
    .await
    .unwrap();
    assert_eq!(shallow.output, json!({"a": {"y": 2}, "b": 1}));
    let deep = run(
        "transform.merge",
        json!({"sources": [{"a": {"x": 1}, "b": 1}, {"a": {"y": 2}}], "deep": true}),
    )
    .await
    .unwrap();
    assert_eq!(deep.output, json!({"a": {"x": 1, "y": 2}, "b": 1}));
    let arrays = run(
        "transform.merge",
        json!({"sources": [[1, 2], 3, null, [4]], "mode": "array"}),
    )
    .await
    .unwrap();
    assert_eq!(arrays.output, json!([1, 2, 3, 4]));
    let e = run("transform.merge", json!({"sources": [{"a": 1}, [1]]}))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidInput");
    assert!(
        e.to_string().contains("config.sources[1] is an array"),
        "{e}"
    );
}

#[tokio::test]
async fn unknown_type_and_missing_secret() {
    let e = run("acme.nothing", json!({})).await.unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.UnknownNodeType");
    assert!(e.to_string().contains("acme.nothing"), "{e}");
    let e = run(
        "transform.merge",
        json!({"sources": [{"a": "{{ secrets.MISSING }}"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.SecretNotFound");
    assert!(
        e.to_string().contains("`MISSING`") && e.to_string().contains("config/sources/0/a"),
        "{e}"
    );
}

#[tokio::test]
async fn secrets_resolve_and_never_leave_the_node() {
    // A secret flowing into the output is redacted.
    let out = run(
        "transform.merge",
        json!({"sources": [{"auth": "Bearer {{ secrets.TOKEN }}", "other": "{{ $.not.a.secret }}"}]}),
    )
    .await
    .unwrap();
    assert_eq!(
        out.output,
        json!({"auth": "Bearer ***", "other": "{{ $.not.a.secret }}"})
    );
    // ... and from error messages.
    let e = run(
        "transform.validate",
        json!({"data": "{{ secrets.TOKEN }}", "schema": {"type": "string", "maxLength": 2}}),
    )
    .await
    .unwrap_err();
    assert!(!e.cause().contains("s3cr3t-value"), "{}", e.cause());
}

#[tokio::test]
async fn approval_records_a_request_and_returns_its_link() {
    let approvals = Arc::new(MemoryApprovals::default());
    let mut services = test_util::services(LocalSecrets::new());
    services.approvals = approvals.clone();
    services.approval_base_url = "https://cm.example.com/".into();
    let runner = NodeRunner::builtin(services);
    let mut ev = event(
        "flow.approval",
        json!({"title": "Approve expense", "approvers": ["boss@example.com"], "timeoutSeconds": 3600}),
    );
    ev.context.task_token = Some("token-123".into());
    let out = runner.run(ev.clone()).await.unwrap();
    let id = cm_nodes::approval::approval_id("token-123");
    assert_eq!(
        out.output["url"],
        json!(format!("https://cm.example.com/approvals/{id}"))
    );
    // At-least-once: the same task token records one request.
    runner.run(ev.clone()).await.unwrap();
    let reqs = approvals.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].title, "Approve expense");
    assert_eq!(reqs[0].data, json!({"from": "upstream"}));
    assert_eq!(reqs[0].execution_id, "arn:exec:1");
    assert!(reqs[0].expires_ms.unwrap() > reqs[0].created_ms);

    ev.context.task_token = None;
    let e = runner.run(ev).await.unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidInput");
    let e = runner
        .run(event("flow.approval", json!({"message": "no title"})))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidConfig");

    let d = cm_nodes::approval::decision_payload(false, "too much", "boss", 0);
    assert_eq!(d["port"], "rejected");
    assert_eq!(d["output"]["decidedAt"], "1970-01-01T00:00:00.000Z");
}
