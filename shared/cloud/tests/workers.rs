//! The workers over the in-memory store and the embedded engine (the real node handlers),
//! with workflows published through the API router as in the cloud.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::event::sqs::SqsEvent;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cm_api::AppState;
use cm_api::auth::{Claims, Role};
use cm_api::runtime::LocalRuntime;
use cm_cloud::run_events::Outcome;
use cm_cloud::{WorkerConfig, state_over};
use cm_engine::{Engine, EngineConfig};
use cm_local::LocalStore;
use cm_nodes::secrets::LocalSecrets;
use cm_nodes::{NodeRunner, Services};
use cm_store::memory::MemoryStore;
use cm_store::{RunStatus, RunStore};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

type State = AppState<MemoryStore, LocalRuntime>;

async fn state() -> State {
    let local = Arc::new(LocalStore::in_memory().unwrap());
    let services =
        Services::new(Arc::new(LocalSecrets::new()), local.clone(), local.clone()).unwrap();
    let resources = cm_local::resources(
        local,
        NodeRunner::builtin(services),
        &cm_local::ResourceOptions::default(),
    );
    let engine = Engine::open(EngineConfig {
        resources,
        ..EngineConfig::default()
    })
    .await
    .unwrap();
    let config = WorkerConfig {
        table: "unused".into(),
        state_machine_arn_prefix: "arn:aws:states:us-east-1:000000000000:stateMachine:".into(),
        endpoint_url: None,
        log_group_arn: None,
    };
    state_over(&config, MemoryStore::new(), LocalRuntime::new(engine))
}

async fn call(
    st: &State,
    org: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let now = cm_api::auth::now_s();
    let token = st.tokens.mint(&Claims {
        sub: "ada@test".into(),
        org: org.into(),
        role: Role::Admin,
        exp: now + 600,
        iat: now,
        nbf: None,
    });
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let res = cm_api::router(st.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn publish(st: &State, org: &str, definition: Value) {
    let id = definition["id"].as_str().unwrap().to_owned();
    let (s, b) = call(
        st,
        org,
        "POST",
        "/v1/workflows",
        Some(json!({"definition": definition})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = call(
        st,
        org,
        "POST",
        &format!("/v1/workflows/{id}/publish"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

fn queued(id: &str, queue: &str) -> Value {
    json!({"id": id, "name": "Orders", "nodes": [
        {"id": "msg", "type": "trigger.queue", "config": {"queue": queue, "batchSize": 10}},
        {"id": "keep", "type": "transform.set", "config": {"fields": {"order": "{{ $.nodes.msg.output.body.orderId }}"}}}],
        "edges": [{"from": "msg", "to": "keep"}]})
}

fn ticking(id: &str) -> Value {
    json!({"id": id, "name": "Tick", "nodes": [
        {"id": "every", "type": "trigger.schedule", "config": {"expression": "rate(1 minute)", "input": {"n": 1}}},
        {"id": "keep", "type": "transform.set", "config": {"fields": {"at": "{{ $.nodes.every.output.scheduledTime }}"}}}],
        "edges": [{"from": "every", "to": "keep"}]})
}

fn record(id: &str, body: &str, attrs: &[(&str, &str)]) -> Value {
    let attrs: serde_json::Map<String, Value> = attrs
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                json!({"stringValue": v, "dataType": "String"}),
            )
        })
        .collect();
    json!({"messageId": id, "receiptHandle": "rh", "body": body, "attributes": {},
        "messageAttributes": attrs, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:concertmaster-triggers", "awsRegion": "us-east-1"})
}

async fn runs(st: &State, org: &str, workflow: &str) -> Vec<cm_store::RunRecord> {
    st.store
        .list_runs(
            org,
            cm_store::RunQuery {
                workflow_id: Some(workflow.into()),
                status: None,
                cursor: None,
                limit: 100,
            },
        )
        .await
        .unwrap()
        .items
}

async fn finished(st: &State, org: &str, run: &str) -> cm_store::RunRecord {
    let engine_arn = st.store.get_run(org, run).await.unwrap().execution_arn;
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let v = cm_api::runtime::Runtime::describe(&st.runtime, &engine_arn)
                .await
                .unwrap();
            if v.status != RunStatus::Running {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the run did not end in 30 s");
    st.store.get_run(org, run).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_messages_start_runs_once_and_failures_stay_on_the_queue() {
    let st = state().await;
    publish(&st, "acme", queued("orders", "orders-q")).await;
    publish(&st, "acme", queued("audit", "orders-q")).await;
    publish(&st, "acme", queued("other", "another-q")).await;
    publish(&st, "beta", queued("orders", "orders-q")).await;

    // Larger than a run's input may be: refused by the trigger.
    let big = format!(r#"{{"orderId": "{}"}}"#, "x".repeat(300_000));
    let batch: SqsEvent = serde_json::from_value(json!({"Records": [
        record("m1", r#"{"orderId": 7}"#, &[("org", "acme"), ("queue", "orders-q")]),
        record("m2", &big, &[("org", "acme"), ("queue", "orders-q")]),
        record("m3", r#"{"orderId": 8}"#, &[("org", "acme")]),
        record("m4", r#"{"orderId": 9}"#, &[("org", "acme"), ("queue", "nobody-reads")]),
    ]}))
    .unwrap();
    let out = cm_cloud::sqs::handle(&st, batch.clone()).await;
    // m1 fans out to both workflows of acme reading orders-q (not to beta's, nor to `other`).
    assert_eq!((out.started, out.existing), (2, 0));
    let failed: Vec<&str> = out.failed.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(failed, ["m2", "m3", "m4"]);
    let why: Vec<String> = out.failed.iter().map(|(_, e)| e.to_string()).collect();
    assert!(why[0].contains("message `m2`"), "{}", &why[0][..200]);
    assert!(why[1].contains("`queue`"), "{}", why[1]);
    assert!(why[2].contains("reads queue `nobody-reads`"), "{}", why[2]);
    let response = serde_json::to_value(out.response()).unwrap();
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}, {"itemIdentifier": "m4"}]})
    );
    for wf in ["orders", "audit"] {
        let r = runs(&st, "acme", wf).await;
        assert_eq!(r.len(), 1, "{wf}");
        assert_eq!(r[0].trigger, "trigger.queue");
        let done = finished(&st, "acme", &r[0].id).await;
        let view = cm_api::runtime::Runtime::describe(&st.runtime, &done.execution_arn)
            .await
            .unwrap();
        assert_eq!(
            view.output.unwrap()["nodes"]["keep"]["output"]["order"],
            7,
            "{wf}"
        );
    }
    assert!(runs(&st, "beta", "orders").await.is_empty());
    assert!(runs(&st, "acme", "other").await.is_empty());

    // The redelivered batch starts nothing new.
    let again = cm_cloud::sqs::handle(&st, batch).await;
    assert_eq!((again.started, again.existing), (0, 2));
    assert_eq!(runs(&st, "acme", "orders").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_ticks_start_one_run_each() {
    let st = state().await;
    publish(&st, "acme", ticking("tick")).await;
    let tick =
        json!({"org": "acme", "workflowId": "tick", "scheduledTime": "2026-11-26T10:00:00Z"});
    let first = cm_cloud::schedule::handle(&st, tick.clone()).await.unwrap();
    assert_eq!(first["created"], true);
    let again = cm_cloud::schedule::handle(&st, tick).await.unwrap();
    assert_eq!(
        (again["created"].clone(), again["runId"].clone()),
        (json!(false), first["runId"].clone())
    );
    let run = st
        .store
        .get_run("acme", first["runId"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(run.input["scheduledTime"], "2026-11-26T10:00:00.000Z");
    assert_eq!(run.input["input"], json!({"n": 1}));

    let cases = [
        (
            json!({"org": "acme", "workflowId": "tick"}),
            "ConcertMaster.InvalidInput",
            "scheduledTime",
        ),
        (
            json!({"org": "acme", "workflowId": "tick", "scheduledTime": "yesterday"}),
            "ConcertMaster.InvalidInput",
            "RFC 3339",
        ),
        (
            json!({"org": "acme", "workflowId": "gone", "scheduledTime": "2026-11-26T10:00:00Z"}),
            "ConcertMaster.NotPublished",
            "`gone`",
        ),
        (
            json!({"org": "beta", "workflowId": "tick", "scheduledTime": "2026-11-26T10:00:00Z"}),
            "ConcertMaster.NotPublished",
            "beta",
        ),
    ];
    for (input, ty, says) in cases {
        let e = cm_cloud::schedule::handle(&st, input.clone())
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), ty, "{input}");
        assert!(e.to_string().contains(says), "{input}: {e}");
    }
}

fn status_change(arn: &str, status: &str, extra: Value) -> Value {
    let mut detail = json!({"executionArn": arn, "status": status,
        "stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:x", "startDate": 1, "stopDate": 2});
    detail
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({"version": "0", "id": "e1", "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states", "account": "000000000000", "time": "2026-11-26T10:00:00Z",
        "region": "us-east-1", "resources": [arn], "detail": detail})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_events_record_node_executions_and_the_end_from_the_history() {
    let st = state().await;
    publish(&st, "acme", ticking("tick")).await;
    let started = cm_cloud::schedule::handle(
        &st,
        json!({"org": "acme", "workflowId": "tick", "scheduledTime": "2026-11-26T10:00:00Z"}),
    )
    .await
    .unwrap();
    let run_id = started["runId"].as_str().unwrap();
    let run = st.store.get_run("acme", run_id).await.unwrap();
    // Wait for the engine, not for the store: no follower records anything in this state.
    let arn = run.execution_arn.clone();
    tokio::time::timeout(Duration::from_secs(30), async {
        while cm_api::runtime::Runtime::describe(&st.runtime, &arn)
            .await
            .unwrap()
            .status
            == RunStatus::Running
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert_eq!(
        st.store.get_run("acme", run_id).await.unwrap().status,
        RunStatus::Running
    );

    let running = cm_cloud::run_events::handle(&st, status_change(&arn, "RUNNING", json!({})))
        .await
        .unwrap();
    assert_eq!(running, Outcome::Ignored("not a terminal status"));
    let out = cm_cloud::run_events::handle(
        &st,
        status_change(&arn, "SUCCEEDED", json!({"output": "{}"})),
    )
    .await
    .unwrap();
    assert!(matches!(out, Outcome::FromHistory(n) if n >= 3), "{out:?}");
    let run = st.store.get_run("acme", run_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(
        run.output.clone().unwrap()["nodes"]["keep"]["output"]["at"],
        "2026-11-26T10:00:00.000Z"
    );
    let nodes = st.store.list_node_executions("acme", run_id).await.unwrap();
    let done: Vec<(&str, &str)> = nodes
        .iter()
        .map(|n| (n.node_id.as_str(), n.status.as_str()))
        .collect();
    assert!(done.contains(&("keep", "succeeded")), "{done:?}");
    // A redelivered event changes nothing.
    cm_cloud::run_events::handle(&st, status_change(&arn, "SUCCEEDED", json!({})))
        .await
        .unwrap();
    assert_eq!(
        st.store.list_node_executions("acme", run_id).await.unwrap(),
        nodes
    );

    // Not ours, not a run, not an event.
    let other = "arn:aws:states:us-east-1:000000000000:execution:plain-machine:abc";
    assert_eq!(
        cm_cloud::run_events::handle(&st, status_change(other, "FAILED", json!({})))
            .await
            .unwrap(),
        Outcome::Ignored("not an execution of a ConcertMaster state machine")
    );
    let unknown = "arn:aws:states:us-east-1:000000000000:execution:acme.tick:no-such-run";
    assert_eq!(
        cm_cloud::run_events::handle(&st, status_change(unknown, "FAILED", json!({})))
            .await
            .unwrap(),
        Outcome::Ignored("no such run")
    );
    let e = cm_cloud::run_events::handle(&st, json!({"detail-type": "x", "source": "aws.s3", "detail": {"executionArn": "a", "status": "FAILED"}}))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "ConcertMaster.InvalidInput");
    assert!(e.to_string().contains("aws.s3"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_events_take_the_end_from_the_event_without_a_history() {
    // A run whose execution the runtime does not know (its history cannot be read): the end
    // comes from the event.
    let st = state().await;
    publish(&st, "acme", ticking("tick")).await;
    let arn = "arn:aws:states:us-east-1:000000000000:execution:acme.tick:r-1";
    st.store
        .create_run(
            "acme",
            cm_store::RunRecord {
                id: "r-1".into(),
                workflow_id: "tick".into(),
                workflow_version: 1,
                execution_arn: arn.into(),
                status: RunStatus::Running,
                trigger: "trigger.schedule".into(),
                input: json!({}),
                output: None,
                error: None,
                cause: None,
                idempotency_key: None,
                started_by: "t".into(),
                started_at_ms: 1,
                ended_at_ms: None,
                retry_of: None,
            },
        )
        .await
        .unwrap();
    let out = cm_cloud::run_events::handle(
        &st,
        status_change(
            arn,
            "FAILED",
            json!({"error": "ConcertMaster.Http.5xx", "cause": "503", "stopDate": 99}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out, Outcome::FromEvent);
    let run = st.store.get_run("acme", "r-1").await.unwrap();
    assert_eq!(
        (
            run.status,
            run.error.as_deref(),
            run.cause.as_deref(),
            run.ended_at_ms
        ),
        (
            RunStatus::Failed,
            Some("ConcertMaster.Http.5xx"),
            Some("503"),
            Some(99)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_keeps_the_cloud_schedule_in_step() {
    use cm_api::schedules::test_util::MemorySchedules;
    let schedules = Arc::new(MemorySchedules::default());
    let st = {
        let base = state().await;
        // A fresh state with the schedules (the port is set before the state is shared).
        let config = WorkerConfig {
            table: "unused".into(),
            state_machine_arn_prefix: base.config.state_machine_arn_prefix.clone(),
            endpoint_url: None,
            log_group_arn: None,
        };
        state_over(&config, MemoryStore::new(), base.runtime.clone())
            .with_schedules(schedules.clone())
    };
    let key = ("acme".to_owned(), "tick".to_owned());
    let put = || schedules.0.lock().unwrap().get(&key).cloned();
    publish(&st, "acme", ticking("tick")).await;
    assert_eq!(put(), Some(("rate(1 minute)".into(), "UTC".into())));

    // Another trigger published over it: no schedule.
    let manual = json!({"id": "tick", "name": "Tick", "nodes": [
        {"id": "go", "type": "trigger.manual"},
        {"id": "keep", "type": "transform.set", "config": {"fields": {"x": 1}}}],
        "edges": [{"from": "go", "to": "keep"}]});
    let (s, b) = call(
        &st,
        "acme",
        "PUT",
        "/v1/workflows/tick",
        Some(json!({"definition": manual})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(&st, "acme", "POST", "/v1/workflows/tick/publish", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(put(), None);

    // Version 1 again, then the workflow deleted.
    let (s, b) = call(
        &st,
        "acme",
        "POST",
        "/v1/workflows/tick/publish",
        Some(json!({"version": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(put().is_some());
    let (s, _) = call(&st, "acme", "DELETE", "/v1/workflows/nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(put().is_some(), "a 404 touches no schedule");
    let (s, b) = call(&st, "acme", "DELETE", "/v1/workflows/tick", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(put(), None);
}

/// A run record of `arn` (an execution the runtime may not know).
async fn recorded_run(st: &State, id: &str, arn: &str) {
    st.store
        .create_run(
            "acme",
            cm_store::RunRecord {
                id: id.into(),
                workflow_id: "chain".into(),
                workflow_version: 1,
                execution_arn: arn.into(),
                status: RunStatus::Running,
                trigger: "trigger.schedule".into(),
                input: json!({}),
                output: None,
                error: None,
                cause: None,
                idempotency_key: None,
                started_by: "t".into(),
                started_at_ms: 1,
                ended_at_ms: None,
                retry_of: None,
            },
        )
        .await
        .unwrap();
}

fn chain() -> Value {
    json!({"id": "chain", "name": "Chain", "nodes": [
        {"id": "every", "type": "trigger.schedule", "config": {"expression": "rate(1 minute)"}},
        {"id": "a", "type": "transform.set", "config": {"fields": {"x": 1}}},
        {"id": "b", "type": "transform.set", "config": {"fields": {"y": "{{ $.nodes.a.output.x }}"}}}],
        "edges": [{"from": "every", "to": "a"}, {"from": "a", "to": "b"}]})
}

/// Step Functions execution log records (what a state machine with logging level ALL writes)
/// of `events` (AWS JSON history events), as execution `arn`.
fn log_records(events: &[Value], arn: &str) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let details = e
                .as_object()
                .unwrap()
                .iter()
                .find(|(k, _)| k.ends_with("EventDetails"))
                .map(|(_, v)| v.clone());
            let mut r = json!({"id": e["id"].to_string(), "previous_event_id": e["previousEventId"].to_string(),
                "event_timestamp": "1764151200000", "type": e["type"], "execution_arn": arn, "redrive_count": "0"});
            if let Some(d) = details {
                r["details"] = d;
            }
            r
        })
        .collect()
}

/// A CloudWatch Logs subscription invocation carrying `records`.
fn subscription(records: &[Value]) -> Value {
    use base64::Engine;
    use std::io::Write;
    let message = json!({"messageType": "DATA_MESSAGE", "owner": "000000000000",
        "logGroup": "/aws/vendedlogs/states/cm", "logStream": "states/x", "subscriptionFilters": ["run-events"],
        "logEvents": records.iter().enumerate().map(|(i, r)| json!({"id": i.to_string(), "timestamp": 1_764_151_200_000_i64, "message": r.to_string()})).collect::<Vec<_>>()});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(message.to_string().as_bytes()).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    json!({"awslogs": {"data": data}})
}

/// Runs `chain` on the engine to its end; its AWS history events and execution ARN.
async fn chain_history(st: &State) -> (Vec<Value>, String) {
    let started = cm_cloud::schedule::handle(
        st,
        json!({"org": "acme", "workflowId": "chain", "scheduledTime": "2026-11-26T10:00:00Z"}),
    )
    .await
    .unwrap();
    let run = finished(st, "acme", started["runId"].as_str().unwrap()).await;
    let events = cm_api::runtime::Runtime::history(&st.runtime, &run.execution_arn, 0, 1000)
        .await
        .unwrap();
    (
        events.into_iter().map(|e| e.aws).collect(),
        run.execution_arn,
    )
}

fn statuses(nodes: &[cm_store::NodeExecution]) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = nodes
        .iter()
        .map(|n| (n.node_id.clone(), n.step.clone(), n.status.clone()))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_logs_report_nodes_as_they_run() {
    let st = state().await;
    publish(&st, "acme", chain()).await;
    let (events, _) = chain_history(&st).await;
    // A Standard execution the runtime does not know: what is recorded comes from the logs.
    // (The engine's own history has the engine's step keys, not those synthesised for Step
    // Functions events, so it cannot stand in for the execution's history here.)
    let arn = "arn:aws:states:us-east-1:000000000000:execution:acme.chain:r-l";
    recorded_run(&st, "r-l", arn).await;
    let records = log_records(&events, arn);
    let run_id = "r-l".to_owned();
    let entered = |node: &str| {
        records
            .iter()
            .position(|r| {
                r["type"].as_str().unwrap().ends_with("StateEntered")
                    && r["details"]["name"]
                        .as_str()
                        .is_some_and(|n| n.contains(node))
            })
            .unwrap_or_else(|| panic!("no entry of {node} in {records:#?}"))
    };
    // Batches cut inside node `b`'s visit: its start in one, its end in the next.
    let cut = entered("b") + 1;
    let end = records.len() - 1;
    let out = cm_cloud::run_events::handle(&st, subscription(&records[..cut]))
        .await
        .unwrap();
    assert!(
        matches!(out, Outcome::FromLogs { runs: 1, events } if events >= 3),
        "{out:?}"
    );
    let first = statuses(
        &st.store
            .list_node_executions("acme", &run_id)
            .await
            .unwrap(),
    );
    assert!(
        first.iter().any(|(n, _, s)| n == "a" && s == "succeeded"),
        "{first:?}"
    );
    assert!(
        first.iter().any(|(n, _, s)| n == "b" && s == "running"),
        "{first:?}"
    );
    assert_eq!(
        st.store.get_run("acme", &run_id).await.unwrap().status,
        RunStatus::Running
    );

    // The end of `b` without its start: it ends the recorded visit (one execution of b).
    cm_cloud::run_events::handle(&st, subscription(&records[cut..end]))
        .await
        .unwrap();
    let second = statuses(
        &st.store
            .list_node_executions("acme", &run_id)
            .await
            .unwrap(),
    );
    let b: Vec<_> = second.iter().filter(|(n, _, _)| n == "b").collect();
    assert_eq!(b.len(), 1, "{second:?}");
    assert_eq!(b[0].2, "succeeded");
    let b_step = b[0].1.clone();
    let started = st
        .store
        .list_node_executions("acme", &run_id)
        .await
        .unwrap();
    let b_exec = started.iter().find(|n| n.node_id == "b").unwrap();
    assert!(b_exec.ended_at_ms.is_some());

    // The end (from the event: no history to read).
    let out = cm_cloud::run_events::handle(&st, subscription(&records[end..]))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::FromLogs { runs: 1, .. }), "{out:?}");
    let run = st.store.get_run("acme", &run_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output.unwrap()["nodes"]["b"]["output"]["y"], 1);
    let last = statuses(
        &st.store
            .list_node_executions("acme", &run_id)
            .await
            .unwrap(),
    );
    assert_eq!(last, second);
    assert!(last.iter().any(|(n, s, _)| n == "b" && *s == b_step));
    assert!(last.iter().all(|(_, _, s)| s == "succeeded"), "{last:?}");

    // Out of order (the second batch first): `b`'s end without a recorded start is left to
    // the run's end, not recorded as a visit of its own.
    let arn = "arn:aws:states:us-east-1:000000000000:execution:acme.chain:r-o";
    recorded_run(&st, "r-o", arn).await;
    let records = log_records(&events, arn);
    cm_cloud::run_events::handle(&st, subscription(&records[cut..end]))
        .await
        .unwrap();
    cm_cloud::run_events::handle(&st, subscription(&records[..cut]))
        .await
        .unwrap();
    let reordered = statuses(&st.store.list_node_executions("acme", "r-o").await.unwrap());
    let b: Vec<_> = reordered.iter().filter(|(n, _, _)| n == "b").collect();
    assert_eq!(b.len(), 1, "{reordered:?}");
    assert_eq!(
        (b[0].1.as_str(), b[0].2.as_str()),
        (b_step.as_str(), "running")
    );
    let records = log_records(
        &events,
        "arn:aws:states:us-east-1:000000000000:execution:acme.chain:r-l",
    );

    // Redelivered batches change nothing; a batch of an ended run is not followed.
    cm_cloud::run_events::handle(&st, subscription(&records[..cut]))
        .await
        .unwrap();
    cm_cloud::run_events::handle(&st, subscription(&records))
        .await
        .unwrap();
    assert_eq!(
        statuses(
            &st.store
                .list_node_executions("acme", &run_id)
                .await
                .unwrap()
        ),
        last
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_runs_are_followed_through_their_logs_alone() {
    let st = state().await;
    publish(&st, "acme", chain()).await;
    let (events, _) = chain_history(&st).await;
    // An Express execution: the runtime has no history of it and no status events come.
    let arn = "arn:aws:states:us-east-1:000000000000:express:acme.chain:r-x:6f0c";
    recorded_run(&st, "r-x", arn).await;
    let ignored = cm_cloud::run_events::handle(&st, status_change(arn, "SUCCEEDED", json!({})))
        .await
        .unwrap();
    assert_eq!(
        ignored,
        Outcome::Ignored("an Express execution: followed through its execution logs")
    );
    let records = log_records(&events, arn);
    // Other executions' and malformed records in the same batch are skipped.
    let mut batch = records.clone();
    batch.extend(log_records(
        &events[..2],
        "arn:aws:states:us-east-1:000000000000:express:acme.chain:other:1",
    ));
    batch.push(json!("not a record"));
    let out = cm_cloud::run_events::handle(&st, subscription(&batch))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::FromLogs { runs: 1, .. }), "{out:?}");
    let run = st.store.get_run("acme", "r-x").await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output.unwrap()["nodes"]["b"]["output"]["y"], 1);
    assert_eq!(run.ended_at_ms, Some(1_764_151_200_000));
    let nodes = statuses(&st.store.list_node_executions("acme", "r-x").await.unwrap());
    let ids: Vec<&str> = nodes.iter().map(|(n, _, _)| n.as_str()).collect();
    assert!(ids.contains(&"a") && ids.contains(&"b"), "{nodes:?}");
    assert!(nodes.iter().all(|(_, _, s)| s == "succeeded"), "{nodes:?}");
}

#[tokio::test]
async fn malformed_subscription_payloads_are_invalid_input() {
    let st = state().await;
    for (payload, says) in [
        (json!({"awslogs": {"data": 7}}), "not a string"),
        (json!({"awslogs": {"data": "%%%"}}), "not base64"),
        (json!({"awslogs": {"data": "aGVsbG8="}}), "not gzip"),
    ] {
        let e = cm_cloud::run_events::handle(&st, payload)
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "ConcertMaster.InvalidInput");
        assert!(e.to_string().contains(says), "{e}");
    }
    let mut control = subscription(&[]);
    let not_json = {
        use base64::Engine;
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{]").unwrap();
        base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
    };
    let e = cm_cloud::run_events::handle(&st, json!({"awslogs": {"data": not_json}}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not a subscription message"), "{e}");
    // CloudWatch Logs' check of a new destination.
    let data = {
        use base64::Engine;
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(
            json!({"messageType": "CONTROL_MESSAGE", "logEvents": []})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
    };
    control["awslogs"]["data"] = json!(data);
    assert_eq!(
        cm_cloud::run_events::handle(&st, control).await.unwrap(),
        Outcome::Ignored("not a data message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_failure_is_kept_until_its_state_exits_in_a_later_batch() {
    let st = state().await;
    publish(&st, "acme", chain()).await;
    let (events, _) = chain_history(&st).await;
    let name = |node: &str| {
        events
            .iter()
            .filter_map(|e| e["stateEnteredEventDetails"]["name"].as_str())
            .find(|n| n.contains(node))
            .unwrap()
            .to_owned()
    };
    let (a, b) = (name("a"), name("b"));
    let arn = "arn:aws:states:us-east-1:000000000000:execution:acme.chain:r-f";
    recorded_run(&st, "r-f", arn).await;
    let rec = |id: u64, prev: u64, kind: &str, details: Value| {
        json!({"id": id.to_string(), "previous_event_id": prev.to_string(),
               "event_timestamp": (1_764_151_200_000_i64 + id as i64 * 10).to_string(),
               "type": kind, "execution_arn": arn, "details": details})
    };
    let r = [
        rec(1, 0, "ExecutionStarted", json!({"input": "{}"})),
        rec(2, 1, "TaskStateEntered", json!({"name": b, "input": "{}"})),
        rec(
            3,
            2,
            "TaskScheduled",
            json!({"resourceType": "lambda", "resource": "invoke"}),
        ),
        rec(
            4,
            3,
            "TaskFailed",
            json!({"error": "ConcertMaster.Http.5xx", "cause": "503"}),
        ),
        rec(5, 4, "TaskStateExited", json!({"name": b, "output": "{}"})),
    ];
    for batch in [&r[..3], &r[3..4]] {
        cm_cloud::run_events::handle(&st, subscription(batch))
            .await
            .unwrap();
    }
    let nodes = st.store.list_node_executions("acme", "r-f").await.unwrap();
    let bx = nodes.iter().find(|n| n.node_id == "b").unwrap();
    assert_eq!(
        (bx.status.as_str(), bx.error.as_deref()),
        ("running", Some("ConcertMaster.Http.5xx"))
    );
    cm_cloud::run_events::handle(&st, subscription(&r[4..]))
        .await
        .unwrap();
    let nodes = st.store.list_node_executions("acme", "r-f").await.unwrap();
    let bx = nodes.iter().find(|n| n.node_id == "b").unwrap();
    assert_eq!(
        (bx.status.as_str(), bx.error.as_deref(), bx.step.as_str()),
        ("failed", Some("ConcertMaster.Http.5xx"), "2")
    );
    assert_eq!(nodes.len(), 1, "{nodes:?}");

    // Two visits open (concurrent branches): a task failure cannot be placed, so an exit of
    // either is left to the run's end rather than reported succeeded.
    let arn = "arn:aws:states:us-east-1:000000000000:execution:acme.chain:r-g";
    recorded_run(&st, "r-g", arn).await;
    let rec = |id: u64, prev: u64, kind: &str, details: Value| {
        json!({"id": id.to_string(), "previous_event_id": prev.to_string(),
               "event_timestamp": (1_764_151_200_000_i64 + id as i64 * 10).to_string(),
               "type": kind, "execution_arn": arn, "details": details})
    };
    let r = [
        rec(1, 0, "ExecutionStarted", json!({"input": "{}"})),
        rec(2, 1, "TaskStateEntered", json!({"name": a, "input": "{}"})),
        rec(3, 1, "TaskStateEntered", json!({"name": b, "input": "{}"})),
        rec(
            4,
            3,
            "TaskFailed",
            json!({"error": "ConcertMaster.Http.5xx", "cause": "503"}),
        ),
        rec(5, 4, "TaskStateExited", json!({"name": b, "output": "{}"})),
    ];
    cm_cloud::run_events::handle(&st, subscription(&r[..3]))
        .await
        .unwrap();
    cm_cloud::run_events::handle(&st, subscription(&r[3..]))
        .await
        .unwrap();
    let nodes = statuses(&st.store.list_node_executions("acme", "r-g").await.unwrap());
    assert_eq!(
        nodes,
        vec![
            ("a".into(), "2".into(), "running".into()),
            ("b".into(), "3".into(), "running".into())
        ]
    );
}
