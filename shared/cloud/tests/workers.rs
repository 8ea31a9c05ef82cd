//! The workers over the in-memory store and the embedded engine (the real node handlers),
//! with workflows published through the API router as in the cloud.
#![allow(clippy::unwrap_used)]

mod support;

use aws_lambda_events::event::sqs::SqsEvent;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cm_api::AppState;
use cm_api::auth::{Claims, Role};
use cm_api::runtime::LocalRuntime;
use cm_cloud::run_events::Outcome;
use cm_cloud::{WorkerConfig, state_over};
use cm_store::memory::MemoryStore;
use cm_store::{RunStatus, RunStore};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

type State = AppState<MemoryStore, LocalRuntime>;

async fn state() -> State {
    support::worker_state(support::engine_runtime().await)
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
    // comes from the event, and the invocation fails so that it is retried for the nodes.
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
    .unwrap_err();
    assert_eq!(out.error_type(), "ConcertMaster.Retryable");
    assert!(out.to_string().contains("its end is recorded"), "{out}");
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
