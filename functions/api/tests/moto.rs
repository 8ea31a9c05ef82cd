//! The api Lambda's real wiring — [`api::services`] (DynamoDB store and Step Functions runtime
//! from one SDK configuration), [`api::state`], [`api::router`] — against moto: a workflow of
//! native states is created, published (a state machine on moto), run, read, listed and its
//! history fetched, all through the router with API Gateway authorizer claims. And approvals
//! recorded in the table (cm-nodes' `Approvals` port on the DynamoStore) are listed, read and
//! decided through the router with the DynamoDB-backed desk ([`api::approvals`]), hidden from
//! other organisations.
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
        ("CONCERTMASTER_START_ON_ALIAS", "false".into()),
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

    // Publish registers the state machine (created), and again (updated): each publishes a
    // version and points alias `live` at it; runs start on the alias.
    let machine = format!("{prefix}{org}.native");
    let alias = format!("{machine}:live");
    for published in 1..=2 {
        let (s, b) = api.call("POST", "/v1/workflows/native/publish", None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        // moto 5.2.5's StartExecution refuses alias ARNs (StateMachineDoesNotExist), so the
        // runs here start on the machine (CONCERTMASTER_START_ON_ALIAS=false).
        assert_eq!(b["stateMachine"], json!(machine), "{b}");
        assert_eq!(b["executionType"], "STANDARD");
        let routed = runtime
            .client()
            .describe_state_machine_alias()
            .state_machine_alias_arn(&alias)
            .send()
            .await
            .unwrap();
        let to: Vec<&str> = routed
            .routing_configuration()
            .iter()
            .map(|r| r.state_machine_version_arn())
            .collect();
        assert_eq!(to, [format!("{machine}:{published}")]);
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
    let patched = runtime
        .client()
        .update_state_machine()
        .state_machine_arn(&machine)
        .definition(definition.to_string())
        .publish(true)
        .send()
        .await
        .unwrap();
    runtime
        .client()
        .update_state_machine_alias()
        .state_machine_alias_arn(&alias)
        .routing_configuration(
            aws_sdk_sfn::types::RoutingConfigurationListItem::builder()
                .state_machine_version_arn(patched.state_machine_version_arn().unwrap())
                .weight(100)
                .build()
                .unwrap(),
        )
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

/// A runtime for the approval desk that records `SendTaskSuccess` and fails it while told to;
/// the rest is never called.
#[derive(Default)]
struct TaskTokens {
    sent: std::sync::Mutex<Vec<(String, Value)>>,
    fail: std::sync::atomic::AtomicBool,
}

/// The desk's handle on the shared [`TaskTokens`].
struct Tokens(Arc<TaskTokens>);

impl Runtime for Tokens {
    async fn register(&self, _: &str, _: &Value, _: bool) -> cm_api::error::ApiResult<String> {
        unreachable!()
    }
    async fn start(&self, _: &str, _: &str, _: Value) -> cm_api::error::ApiResult<String> {
        unreachable!()
    }
    async fn stop(&self, _: &str, _: &str) -> cm_api::error::ApiResult<()> {
        unreachable!()
    }
    async fn describe(&self, _: &str) -> cm_api::error::ApiResult<cm_api::runtime::ExecutionView> {
        unreachable!()
    }
    async fn history(
        &self,
        _: &str,
        _: u64,
        _: usize,
    ) -> cm_api::error::ApiResult<Vec<cm_api::runtime::RuntimeEvent>> {
        unreachable!()
    }
    async fn redrive(&self, _: &str) -> cm_api::error::ApiResult<()> {
        unreachable!()
    }
    async fn send_task_success(&self, token: &str, output: Value) -> cm_api::error::ApiResult<()> {
        if self.0.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(cm_api::error::ApiError::NotFound(format!(
                "TaskDoesNotExist: {token}"
            )));
        }
        self.0.sent.lock().unwrap().push((token.to_owned(), output));
        Ok(())
    }
}

/// An approval the node-runner recorded in the table (through cm-nodes' `Approvals` port on
/// the DynamoStore) is listed, read and decided through the router with the DynamoDB-backed
/// desk; another organisation sees none of it (404); an undeliverable decision reopens it.
#[tokio::test]
#[ignore = "needs moto: scripts/test runs it"]
async fn approvals_in_the_table_are_listed_and_decided_through_the_router() {
    use cm_nodes::approval::{ApprovalRequest, Approvals};
    use cm_store::{RunRecord, RunStatus, RunStore};

    let endpoint = endpoint();
    let prefix = format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:");
    let env: HashMap<&str, String> = [
        ("CONCERTMASTER_TABLE", unique("cm-api-approvals-")),
        (
            "CONCERTMASTER_STATE_MACHINE_ROLE_ARN",
            format!("arn:aws:iam::{ACCOUNT}:role/concertmaster-states"),
        ),
        ("CONCERTMASTER_STATE_MACHINE_ARN_PREFIX", prefix),
        ("CONCERTMASTER_PUBLIC_URL", "https://api.example.com".into()),
        (
            "CONCERTMASTER_SIGNING_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        ),
        ("CONCERTMASTER_ENDPOINT_URL", endpoint),
        ("CONCERTMASTER_START_ON_ALIAS", "false".into()),
    ]
    .into_iter()
    .collect();
    let config = api::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let (store, runtime) = api::services(&config).await;
    store.create_table().await.unwrap();
    let tokens = Arc::new(TaskTokens::default());
    let desk = api::approvals::DynamoApprovals::new(store.clone(), Tokens(tokens.clone()));
    let app = api::router(api::state_with_approvals(
        &config,
        store.clone(),
        runtime,
        Some(Arc::new(desk)),
    ));
    let (org, other) = (unique("a"), unique("b"));
    let mine = Api {
        app: app.clone(),
        org: org.clone(),
    };
    let theirs = Api { app, org: other };

    // The run waiting, and the request its `flow.approval` node recorded.
    let execution = format!("arn:aws:states:us-east-1:{ACCOUNT}:execution:{org}.wf:run-1");
    store
        .create_run(
            &org,
            RunRecord {
                id: "run-1".into(),
                workflow_id: "wf".into(),
                workflow_version: 1,
                execution_arn: execution.clone(),
                status: RunStatus::Running,
                trigger: "trigger.manual".into(),
                input: json!({}),
                output: None,
                error: None,
                cause: None,
                idempotency_key: None,
                started_by: "ada@example.test".into(),
                started_at_ms: 1,
                ended_at_ms: None,
                retry_of: None,
            },
        )
        .await
        .unwrap();
    let token = "task-token-1";
    let id = cm_nodes::approval::approval_id(token);
    let request = ApprovalRequest {
        id: id.clone(),
        task_token: token.into(),
        execution_id: execution,
        workflow_id: "wf".into(),
        node_id: "ok".into(),
        title: "Ship it?".into(),
        message: String::new(),
        approvers: vec![],
        data: json!({"amount": 5}),
        created_ms: 10,
        expires_ms: None,
    };
    store.create(request.clone()).await.unwrap();
    store.create(request).await.unwrap(); // a re-invoked Task: still one

    let (s, b) = mine.call("GET", "/v1/approvals", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{b}");
    assert_eq!(items[0]["id"], json!(id));
    assert_eq!(items[0]["runId"], "run-1");
    assert_eq!(items[0]["status"], "pending");
    let (s, b) = mine.call("GET", &format!("/v1/approvals/{id}"), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["title"], "Ship it?");

    // Another organisation: not listed, not found, cannot decide.
    let (s, b) = theirs.call("GET", "/v1/approvals", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["items"], json!([]), "{b}");
    let (s, b) = theirs
        .call("GET", &format!("/v1/approvals/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let decision = json!({"approve": true, "comment": "go"});
    let (s, b) = theirs
        .call(
            "POST",
            &format!("/v1/approvals/{id}/decision"),
            Some(decision.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert!(tokens.sent.lock().unwrap().is_empty());

    // The run cannot be resumed: the error, and the approval is pending again.
    tokens.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let (s, b) = mine
        .call(
            "POST",
            &format!("/v1/approvals/{id}/decision"),
            Some(decision.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (_, b) = mine.call("GET", &format!("/v1/approvals/{id}"), None).await;
    assert_eq!(b["status"], "pending", "{b}");
    tokens
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);

    // Decided: the run is resumed with the decision payload, once.
    let (s, b) = mine
        .call(
            "POST",
            &format!("/v1/approvals/{id}/decision"),
            Some(decision.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "approved");
    assert_eq!(b["decision"]["comment"], "go");
    assert_eq!(b["decision"]["decidedBy"], "ada@example.test");
    {
        let sent = tokens.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, token);
        assert_eq!(sent[0].1["port"], "approved");
        assert_eq!(sent[0].1["output"]["approved"], true);
    }
    let (s, b) = mine
        .call(
            "POST",
            &format!("/v1/approvals/{id}/decision"),
            Some(decision),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (_, b) = mine.call("GET", "/v1/approvals", None).await;
    assert_eq!(b["items"], json!([]), "only pending by default: {b}");
    let (_, b) = mine.call("GET", "/v1/approvals?pending=false", None).await;
    assert_eq!(b["items"][0]["status"], "approved", "{b}");
    assert_eq!(tokens.sent.lock().unwrap().len(), 1);
}

/// `api::app` with EventBridge Scheduler configured: publishing a schedule-trigger workflow
/// creates its schedule (target: the scheduler function, input naming org and workflow, the
/// expression and time zone of the trigger), publishing again updates it, publishing another
/// trigger over it or deleting the workflow deletes it.
#[tokio::test]
#[ignore = "needs moto: scripts/test runs it"]
async fn schedules_follow_publishing() {
    let endpoint = endpoint();
    let prefix = format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:");
    let target = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:cm-scheduler");
    let group = unique("cm-");
    let env: HashMap<&str, String> = [
        ("CONCERTMASTER_TABLE", unique("cm-api-sched-")),
        (
            "CONCERTMASTER_STATE_MACHINE_ROLE_ARN",
            format!("arn:aws:iam::{ACCOUNT}:role/concertmaster-states"),
        ),
        ("CONCERTMASTER_STATE_MACHINE_ARN_PREFIX", prefix),
        ("CONCERTMASTER_PUBLIC_URL", "https://api.example.com".into()),
        (
            "CONCERTMASTER_SIGNING_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        ),
        ("CONCERTMASTER_ENDPOINT_URL", endpoint.clone()),
        ("CONCERTMASTER_START_ON_ALIAS", "false".into()),
        ("CONCERTMASTER_SCHEDULER_TARGET_ARN", target.clone()),
        (
            "CONCERTMASTER_SCHEDULER_ROLE_ARN",
            format!("arn:aws:iam::{ACCOUNT}:role/concertmaster-scheduler"),
        ),
        ("CONCERTMASTER_SCHEDULE_GROUP", group.clone()),
    ]
    .into_iter()
    .collect();
    let config = api::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let aws = cm_runtime_sfn::sdk_config(Some(&endpoint)).await;
    let (store, _) = api::services(&config).await;
    store.create_table().await.unwrap();
    let scheduler = aws_sdk_scheduler::Client::new(&aws);
    scheduler
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let org = unique("s");
    let api = Api {
        app: api::app(&config).await,
        org: org.clone(),
    };
    let wf = |trigger: Value| {
        json!({"id": "nightly", "name": "Nightly", "nodes": [
            trigger,
            {"id": "keep", "type": "transform.set", "config": {"fields": {"x": 1}}}],
            "edges": [{"from": trigger["id"], "to": "keep"}]})
    };
    let schedule = |expression: &str| {
        json!({"id": "every", "type": "trigger.schedule",
            "config": {"expression": expression, "timezone": "Europe/Paris"}})
    };
    let (s, b) = api
        .call(
            "POST",
            "/v1/workflows",
            Some(json!({"definition": wf(schedule("cron(0 2 * * ? *)"))})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let name = format!("{org}.nightly");
    let get = || async {
        scheduler
            .get_schedule()
            .name(&name)
            .group_name(&group)
            .send()
            .await
    };
    for (version, expression) in [(1, "cron(0 2 * * ? *)"), (2, "rate(6 hours)")] {
        if version == 2 {
            let (s, b) = api
                .call(
                    "PUT",
                    "/v1/workflows/nightly",
                    Some(json!({"definition": wf(schedule(expression))})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
        }
        let (s, b) = api
            .call("POST", "/v1/workflows/nightly/publish", None)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let got = get().await.unwrap();
        assert_eq!(got.schedule_expression(), Some(expression));
        assert_eq!(got.schedule_expression_timezone(), Some("Europe/Paris"));
        let t = got.target().unwrap();
        assert_eq!(t.arn(), target);
        let input: Value = serde_json::from_str(t.input().unwrap()).unwrap();
        assert_eq!(
            input,
            json!({"org": org, "workflowId": "nightly", "scheduledTime": "<aws.scheduler.scheduled-time>"})
        );
    }
    // A manual trigger published over it: the schedule is gone.
    let (s, b) = api
        .call(
            "PUT",
            "/v1/workflows/nightly",
            Some(json!({"definition": wf(json!({"id": "go", "type": "trigger.manual"}))})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = api
        .call("POST", "/v1/workflows/nightly/publish", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let e = get().await.unwrap_err();
    assert_eq!(
        aws_sdk_scheduler::error::ProvideErrorMetadata::code(&e),
        Some("ResourceNotFoundException")
    );
    // Back to the schedule, then the workflow deleted.
    let (s, b) = api
        .call(
            "POST",
            "/v1/workflows/nightly/publish",
            Some(json!({"version": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(get().await.is_ok());
    let (s, b) = api.call("DELETE", "/v1/workflows/nightly", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert!(get().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: scripts/test runs it"]
async fn express_executions_are_read_from_the_execution_log_group() {
    // Publishing configures logging to the group; an Express execution's status and history
    // are its log records (written here as Step Functions writes them: moto runs no Express
    // logging of its own).
    let endpoint = endpoint();
    let prefix = format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:");
    let group = format!("/aws/vendedlogs/states/{}", unique("cm-exec-"));
    let group_arn = format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}:*");
    let env: HashMap<&str, String> = [
        ("CONCERTMASTER_TABLE", unique("cm-api-logs-")),
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
        ("CONCERTMASTER_START_ON_ALIAS", "false".into()),
        (
            "CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN",
            group_arn.clone(),
        ),
    ]
    .into_iter()
    .collect();
    let config = api::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let aws = cm_runtime_sfn::sdk_config(Some(&endpoint)).await;
    let (_, runtime) = api::services(&config).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws);
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("states/x")
        .send()
        .await
        .unwrap();

    // Registering sets the logging configuration (level ALL, with execution data).
    let name = unique("l.");
    let definition = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    runtime.register(&name, &definition, true).await.unwrap();
    let d = runtime
        .client()
        .describe_state_machine()
        .state_machine_arn(format!("{prefix}{name}"))
        .send()
        .await
        .unwrap();
    let logging = d.logging_configuration().expect("a logging configuration");
    assert_eq!(logging.level(), Some(&aws_sdk_sfn::types::LogLevel::All));
    assert!(logging.include_execution_data());
    let dest = logging.destinations()[0]
        .cloud_watch_logs_log_group()
        .and_then(|g| g.log_group_arn());
    assert_eq!(dest, Some(group_arn.as_str()));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Runs that started eight minutes ago: over, whatever their records say (a run of the
    // last seven minutes is still followed by run-events, not searched for on every read).
    let start = now - 8 * 60_000;
    let arn = format!("arn:aws:states:us-east-1:{ACCOUNT}:express:{name}:r1:0b1c");
    let other = format!("arn:aws:states:us-east-1:{ACCOUNT}:express:{name}:r2:77aa");
    let lost = format!("arn:aws:states:us-east-1:{ACCOUNT}:express:{name}:r3:5e5e");
    let record = |id: u64, kind: &str, details: Value, arn: &str| {
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
            .timestamp(start + id as i64)
            .message(
                json!({"id": id.to_string(), "previous_event_id": (id - 1).to_string(),
                    "event_timestamp": (start + id as i64).to_string(), "type": kind,
                    "execution_arn": arn, "details": details})
                .to_string(),
            )
            .build()
            .unwrap()
    };
    let put = |events: Vec<aws_sdk_cloudwatchlogs::types::InputLogEvent>| {
        logs.put_log_events()
            .log_group_name(&group)
            .log_stream_name("states/x")
            .set_log_events(Some(events))
            .send()
    };
    put(vec![
        record(1, "ExecutionStarted", json!({"input": "{\"a\":1}"}), &arn),
        record(1, "ExecutionStarted", json!({"input": "{}"}), &other),
        record(1, "ExecutionStarted", json!({"input": "{}"}), &lost),
        record(
            2,
            "PassStateEntered",
            json!({"name": "P", "input": "{\"a\":1}"}),
            &arn,
        ),
        record(
            3,
            "PassStateExited",
            json!({"name": "P", "output": "{\"a\":1}"}),
            &arn,
        ),
        record(
            4,
            "ExecutionSucceeded",
            json!({"output": "{\"a\":1}"}),
            &arn,
        ),
    ])
    .await
    .unwrap();
    // Still within its five minutes: running, without a search.
    let view = runtime.describe_run(&arn, now).await.unwrap();
    assert_eq!(view.status, cm_store::RunStatus::Running);
    let view = runtime.describe_run(&arn, start).await.unwrap();
    assert_eq!(view.status, cm_store::RunStatus::Succeeded);
    assert_eq!(view.output, Some(json!({"a": 1})));
    assert_eq!(view.stop_ms, Some(start + 4));
    let history = runtime.history_of_run(&arn, start, 0, 100).await.unwrap();
    let kinds: Vec<(u64, &str, &str)> = history
        .iter()
        .map(|e| (e.id, e.kind.as_str(), e.step.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, "ExecutionStarted", ""),
            (2, "PassStateEntered", "2"),
            (3, "PassStateExited", "2"),
            (4, "ExecutionSucceeded", "")
        ]
    );
    assert_eq!(history[0].details["input"], json!({"a": 1}));
    assert_eq!(
        runtime.history_of_run(&arn, start, 2, 1).await.unwrap()[0].id,
        3
    );
    // An execution whose end never arrived is over all the same.
    let view = runtime.describe_run(&lost, start).await.unwrap();
    assert_eq!(
        (view.status, view.error.as_deref()),
        (
            cm_store::RunStatus::Failed,
            Some(cm_runtime_sfn::END_NOT_RECORDED)
        )
    );
    // Records outside an execution's window are not searched.
    let view = runtime.describe_run(&arn, start - 3_600_000).await.unwrap();
    assert_eq!(view.status, cm_store::RunStatus::Failed);
    // A missing log group is the service's error, named.
    let (_, lost) = api::services(
        &api::Config::from_lookup(|k| {
            if k == "CONCERTMASTER_STATE_MACHINE_LOG_GROUP_ARN" {
                Some(format!(
                    "arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/no/such/group:*"
                ))
            } else {
                env.get(k).cloned()
            }
        })
        .unwrap(),
    )
    .await;
    let e = lost.history_of_run(&arn, start, 0, 10).await.unwrap_err();
    assert!(e.to_string().contains("FilterLogEvents"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: scripts/test runs it"]
async fn the_signing_key_is_read_from_secrets_manager_at_start() {
    let endpoint = endpoint();
    let aws = cm_runtime_sfn::sdk_config(Some(&endpoint)).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let key_text = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let create = |name: String, text: &str| {
        secrets
            .create_secret()
            .name(name)
            .secret_string(text)
            .send()
    };
    let good = create(unique("cm-key-"), key_text).await.unwrap();
    let bad = create(unique("cm-key-"), "short").await.unwrap();
    let env = |secret: Option<String>| {
        let vars: HashMap<&str, String> = [
            ("CONCERTMASTER_TABLE", "t".to_owned()),
            (
                "CONCERTMASTER_STATE_MACHINE_ROLE_ARN",
                format!("arn:aws:iam::{ACCOUNT}:role/concertmaster-states"),
            ),
            (
                "CONCERTMASTER_STATE_MACHINE_ARN_PREFIX",
                format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:"),
            ),
            ("CONCERTMASTER_PUBLIC_URL", "https://api.example.com".into()),
            ("CONCERTMASTER_ENDPOINT_URL", endpoint.clone()),
        ]
        .into_iter()
        .chain(secret.map(|s| ("CONCERTMASTER_SIGNING_KEY_SECRET_ARN", s)))
        .collect();
        move |k: &str| vars.get(k).cloned()
    };
    let (config, _) = api::Config::load_from(env(good.arn().map(str::to_owned)))
        .await
        .unwrap();
    assert_eq!(config.signing_key.bytes(), (0u8..32).collect::<Vec<_>>());
    // What it is not: a missing secret, text that is no key, neither variable.
    let missing = format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:no-such-key-AbCdEf");
    let e = api::Config::load_from(env(Some(missing.clone())))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("CONCERTMASTER_SIGNING_KEY_SECRET_ARN")
            && e.contains(&missing)
            && e.contains("ResourceNotFound"),
        "{e}"
    );
    let e = api::Config::load_from(env(bad.arn().map(str::to_owned)))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not a signing key"), "{e}");
    let e = api::Config::load_from(env(None))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("CONCERTMASTER_SIGNING_KEY_SECRET_ARN"), "{e}");
}
