//! The api Lambda's real wiring — [`api::services`] (DynamoDB store and Step Functions runtime
//! from one SDK configuration), [`api::state`], [`api::router`] — against moto: a workflow of
//! native states is created, published (a state machine on moto), run, read, listed and its
//! history fetched, all through the router with API Gateway authorizer claims.
//!
//! Ignored by default: it needs moto. `scripts/test` starts moto and runs it with
//! `cargo test --workspace --test moto -- --ignored` and `CM_MOTO_ENDPOINT` set to the
//! emulator's URL (dummy credentials, region `us-east-1`). The test itself switches on
//! moto's execution of state machines (`POST /moto-api/config`
//! `{"stepfunctions": {"execute_state_machine": true}}`), which runs JSONPath machines.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use cm_api::runtime::Runtime;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

/// moto's default account.
const ACCOUNT: &str = "123456789012";

fn endpoint() -> String {
    let e = std::env::var("CM_MOTO_ENDPOINT").unwrap_or_default();
    assert!(
        !e.is_empty(),
        "CM_MOTO_ENDPOINT is not set: this test needs moto (run it through scripts/test)"
    );
    e.trim_end_matches('/').to_owned()
}

/// `POST <endpoint><path>` with a JSON body over plain HTTP/1.1; the status line.
async fn post_json(endpoint: &str, path: &str, body: &Value) -> String {
    let host = endpoint.strip_prefix("http://").unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.lines().next().unwrap_or_default().to_owned()
}

/// A name unique to this run (moto keeps state machines for the server's life).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}{:08x}",
        (nanos as u64 ^ u64::from(std::process::id())) & 0xffff_ffff
    )
}

/// An API Gateway HTTP API (payload 2.0) event with JWT authorizer claims, as `lambda_http`
/// parses it.
fn request(method: &str, path: &str, org: &str, body: Option<Value>) -> lambda_http::Request {
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut headers = json!({"host": "api.example.com", "x-forwarded-proto": "https"});
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "ANY /v1/{proxy+}",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": "moto", "domainName": "api.example.com",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "r", "routeKey": "ANY /v1/{proxy+}", "stage": "$default",
            "time": "26/Nov/2026:01:20:00 +0000", "timeEpoch": 1795656000000i64,
            "authorizer": {"jwt": {"claims": {"sub": "ada@example.test", "custom:org": org, "custom:role": "admin"}}}
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

struct Api {
    app: axum::Router,
    org: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = request(method, path, &self.org, body);
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
        (status, body)
    }
}

#[tokio::test]
#[ignore = "needs moto: scripts/test runs it"]
async fn a_native_workflow_runs_on_step_functions_through_the_router() {
    let endpoint = endpoint();
    let status = post_json(
        &endpoint,
        "/moto-api/config",
        &json!({"stepfunctions": {"execute_state_machine": true}}),
    )
    .await;
    assert!(
        status.split(' ').nth(1).is_some_and(|c| c.starts_with('2')),
        "moto config: {status}"
    );

    let prefix = format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:");
    let table = unique("cm-api-moto-");
    let env: HashMap<&str, String> = [
        ("CONCERTMASTER_TABLE", table.clone()),
        (
            "CONCERTMASTER_STATE_MACHINE_ROLE_ARN",
            format!("arn:aws:iam::{ACCOUNT}:role/concertmaster-states"),
        ),
        ("CONCERTMASTER_STATE_MACHINE_ARN_PREFIX", prefix.clone()),
        ("CONCERTMASTER_PUBLIC_URL", "https://api.example.com".into()),
        (
            "CONCERTMASTER_SIGNING_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        ),
        ("CONCERTMASTER_ENDPOINT_URL", endpoint.clone()),
    ]
    .into_iter()
    .collect();
    let config = api::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let (store, runtime) = api::services(&config).await;
    store.create_table().await.unwrap();
    let org = unique("m");
    let api = Api {
        app: api::router(api::state(&config, store, runtime.clone())),
        org: org.clone(),
    };

    let wf = json!({"id": "native", "name": "Native", "nodes": [
        {"id": "start", "type": "trigger.manual"},
        {"id": "shape", "type": "transform.set", "config": {"fields": {
            "who": "{{ $.nodes.start.output.name }}", "n": "{{ $.nodes.start.output.n }}"}}},
        {"id": "big", "type": "condition.if", "config": {"rules": [
            {"field": "$.nodes.shape.output.n", "op": "gte", "value": 10}]}},
        {"id": "yes", "type": "transform.set", "config": {"fields": {
            "size": "big", "who": "{{ $.nodes.shape.output.who }}"}}}],
        "edges": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "big"},
                  {"from": "big", "fromPort": "true", "to": "yes"}]});
    let (s, b) = api
        .call("POST", "/v1/workflows", Some(json!({"definition": wf})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // Publish registers the state machine (created), and again (updated).
    let machine = format!("{prefix}{org}.native");
    for _ in 0..2 {
        let (s, b) = api.call("POST", "/v1/workflows/native/publish", None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["stateMachine"], json!(machine), "{b}");
        assert_eq!(b["executionType"], "STANDARD");
    }
    let described = runtime
        .client()
        .describe_state_machine()
        .state_machine_arn(&machine)
        .send()
        .await
        .unwrap();
    assert_eq!(described.role_arn(), config.state_machine_role_arn);
    let mut definition: Value = serde_json::from_str(described.definition()).unwrap();
    assert_eq!(definition["StartAt"], "start");
    // moto 5.2.5 gives `$$.Execution.StartTime` to the machine as a Python datetime (AWS: ISO
    // text), and its DescribeExecution then fails to serialise an output that contains it
    // (500, "Object of type datetime is not JSON serializable"). So that the run can be read,
    // the trigger state's `run.startedAt` is dropped from the machine on moto — the one change
    // to the published definition.
    let run_fields = definition
        .pointer_mut("/States/start/Parameters/run")
        .and_then(Value::as_object_mut)
        .unwrap();
    assert!(run_fields.remove("startedAt.$").is_some(), "{definition}");
    runtime
        .client()
        .update_state_machine()
        .state_machine_arn(&machine)
        .definition(definition.to_string())
        .send()
        .await
        .unwrap();

    let (s, run) = api
        .call(
            "POST",
            "/v1/workflows/native/runs",
            Some(json!({"input": {"name": "Ada", "n": 12}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();
    let execution = run["executionArn"].as_str().unwrap().to_owned();
    assert_eq!(
        execution,
        format!("arn:aws:states:us-east-1:{ACCOUNT}:execution:{org}.native:{run_id}")
    );

    // moto runs executions on a thread of its own and has no event stream: poll, bounded.
    let mut done = Value::Null;
    for _ in 0..100 {
        let (s, b) = api.call("GET", &format!("/v1/runs/{run_id}"), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        if b["status"] != "RUNNING" {
            done = b;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        done["output"]["nodes"]["yes"]["output"],
        json!({"size": "big", "who": "Ada"}),
        "{done}"
    );
    assert_eq!(done["output"]["nodes"]["big"]["port"], "true", "{done}");
    assert_eq!(done["output"]["run"]["executionName"], json!(run_id));

    let (s, b) = api
        .call("GET", "/v1/runs?workflowId=native&status=SUCCEEDED", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["items"][0]["id"], json!(run_id), "{b}");

    let (s, b) = api
        .call("POST", &format!("/v1/runs/{run_id}/cancel"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");

    let (s, b) = api
        .call("GET", &format!("/v1/runs/{run_id}/events"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let items = b["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{b}");
    assert_eq!(items[0]["type"], "ExecutionStarted", "{b}");
    assert_eq!(items.last().unwrap()["type"], "ExecutionSucceeded", "{b}");
    let entered = items
        .iter()
        .find(|e| e["type"] == "PassStateEntered")
        .unwrap();
    assert_eq!(entered["stateEnteredEventDetails"]["name"], "start", "{b}");
    let (_, later) = api
        .call(
            "GET",
            &format!("/v1/runs/{run_id}/events?after=2&limit=3"),
            None,
        )
        .await;
    let ids: Vec<u64> = later["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [3, 4, 5], "{later}");

    // The synthesised step keys pair each state's entry and exit: the live tracker turns
    // moto's history into a start and a success for every node on the path.
    let events = runtime.history(&execution, 0, 1000).await.unwrap();
    let nodes: HashMap<String, String> = ["start", "shape", "big", "yes"]
        .iter()
        .map(|n| ((*n).to_owned(), (*n).to_owned()))
        .collect();
    let mut tracker = cm_api::live::RunTracker::new(&run_id, "native", Arc::new(nodes));
    let live: Vec<(String, Option<String>)> = events
        .iter()
        .flat_map(|e| tracker.feed(e))
        .map(|l| (l.kind, l.node_id))
        .collect();
    let mut want = vec![("run.started".to_owned(), None)];
    for n in ["start", "shape", "big", "yes"] {
        want.push(("node.started".into(), Some(n.to_owned())));
        want.push(("node.succeeded".into(), Some(n.to_owned())));
    }
    want.push(("run.finished".into(), None));
    assert_eq!(live, want, "{events:#?}");
}
