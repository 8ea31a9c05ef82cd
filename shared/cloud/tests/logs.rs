//! run-events following execution log records (CloudWatch Logs subscription batches): node
//! statuses while a run is in flight, the end from the whole history, and what batches
//! delivered again, late, out of order or before the records are searchable do.
//!
//! The histories are real ones (a workflow run on the embedded engine, its events in Step
//! Functions' JSON) or written here event by event; the runtime serves them as Step
//! Functions would (`GetExecutionHistory`, or an Express execution's searchable log records),
//! with the step keys synthesised for Step Functions events.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::Request;
use cm_api::AppState;
use cm_api::auth::{Claims, Role};
use cm_api::error::ApiResult;
use cm_api::runtime::{ExecutionView, LocalRuntime, Runtime, RuntimeEvent};
use cm_cloud::run_events::Outcome;

use cm_runtime_sfn::history::{RawEvent, Steps};
use cm_store::memory::MemoryStore;
use cm_store::{RunStatus, RunStore};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// Execution ARN → its readable events (AWS JSON, time ms).
type Histories = Arc<Mutex<HashMap<String, Vec<(Value, i64)>>>>;

/// The embedded engine (it runs the workflow whose history the tests replay), plus the
/// histories Step Functions would answer for executions the tests write themselves.
#[derive(Clone)]
struct Readable {
    inner: LocalRuntime,
    histories: Histories,
}

impl Readable {
    /// Makes `records` (log records) of execution `arn` readable, as once searchable.
    fn readable(&self, arn: &str, records: &[Value]) {
        let events = records
            .iter()
            .map(|r| {
                let rec = cm_runtime_sfn::logs::parse_record(&r.to_string(), 0).unwrap();
                (rec.event.aws, rec.event.timestamp_ms)
            })
            .collect();
        self.histories
            .lock()
            .unwrap()
            .insert(arn.to_owned(), events);
    }
}

impl Runtime for Readable {
    async fn register(&self, name: &str, definition: &Value, express: bool) -> ApiResult<String> {
        self.inner.register(name, definition, express).await
    }

    async fn start(&self, state_machine: &str, name: &str, input: Value) -> ApiResult<String> {
        self.inner.start(state_machine, name, input).await
    }

    async fn stop(&self, execution: &str, cause: &str) -> ApiResult<()> {
        self.inner.stop(execution, cause).await
    }

    async fn describe(&self, execution: &str) -> ApiResult<ExecutionView> {
        self.inner.describe(execution).await
    }

    async fn history(
        &self,
        execution: &str,
        after: u64,
        limit: usize,
    ) -> ApiResult<Vec<RuntimeEvent>> {
        let Some(events) = self.histories.lock().unwrap().get(execution).cloned() else {
            return self.inner.history(execution, after, limit).await;
        };
        let mut steps = Steps::new();
        Ok(events
            .into_iter()
            .map(|(aws, ms)| steps.event(RawEvent::from_aws_json(aws, ms)))
            .filter(|e| e.id > after)
            .take(limit)
            .collect())
    }

    async fn redrive(&self, execution: &str) -> ApiResult<()> {
        self.inner.redrive(execution).await
    }

    async fn send_task_success(&self, token: &str, output: Value) -> ApiResult<()> {
        self.inner.send_task_success(token, output).await
    }
}

type State = AppState<MemoryStore, Readable>;

async fn state() -> State {
    support::worker_state(Readable {
        inner: support::engine_runtime().await,
        histories: Arc::default(),
    })
}

async fn publish(st: &State, definition: Value) {
    let now = cm_api::auth::now_s();
    let token = st.tokens.mint(&Claims {
        sub: "ada@test".into(),
        org: "acme".into(),
        role: Role::Admin,
        exp: now + 600,
        iat: now,
        nbf: None,
    });
    let id = definition["id"].as_str().unwrap().to_owned();
    for (path, body) in [
        (
            "/v1/workflows".to_owned(),
            Some(json!({"definition": definition})),
        ),
        (format!("/v1/workflows/{id}/publish"), None),
    ] {
        let mut req = Request::builder()
            .method("POST")
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
        assert!(res.status().is_success(), "{}", res.status());
    }
}

/// A running run record of execution `arn` (the API records one when it starts a run).
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

/// Runs `chain` on the engine to its end: its history events (AWS JSON).
async fn chain_history(st: &State) -> Vec<Value> {
    let started = cm_cloud::schedule::handle(
        st,
        json!({"org": "acme", "workflowId": "chain", "scheduledTime": "2026-11-26T10:00:00Z"}),
    )
    .await
    .unwrap();
    let run = st
        .store
        .get_run("acme", started["runId"].as_str().unwrap())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while st
            .runtime
            .describe(&run.execution_arn)
            .await
            .unwrap()
            .status
            == RunStatus::Running
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the run did not end in 30 s");
    st.runtime
        .history(&run.execution_arn, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.aws)
        .collect()
}

/// The execution log records of `events` (AWS JSON history events) as execution `arn`, ten
/// milliseconds apart.
fn log_records(events: &[Value], arn: &str) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let id = e["id"].as_u64().unwrap();
            let mut r = json!({"id": id.to_string(), "previous_event_id": e["previousEventId"].to_string(),
                "event_timestamp": (1_764_151_200_000 + id * 10).to_string(), "type": e["type"],
                "execution_arn": arn, "redrive_count": "0"});
            if let Some((_, d)) = e
                .as_object()
                .unwrap()
                .iter()
                .find(|(k, _)| k.ends_with("EventDetails"))
            {
                r["details"] = d.clone();
            }
            r
        })
        .collect()
}

/// One log record written by hand.
fn rec(arn: &str, id: u64, prev: u64, kind: &str, details: Value) -> Value {
    json!({"id": id.to_string(), "previous_event_id": prev.to_string(),
           "event_timestamp": (1_764_151_200_000 + id * 10).to_string(),
           "type": kind, "execution_arn": arn, "details": details})
}

/// A CloudWatch Logs subscription invocation carrying `records`.
fn subscription(records: &[Value]) -> Value {
    let message = json!({"messageType": "DATA_MESSAGE", "owner": "000000000000",
        "logGroup": "/aws/vendedlogs/states/cm", "logStream": "states/x", "subscriptionFilters": ["run-events"],
        "logEvents": records.iter().enumerate().map(|(i, r)| json!({"id": i.to_string(), "timestamp": 1_764_151_200_000_i64, "message": r.to_string()})).collect::<Vec<_>>()});
    json!({"awslogs": {"data": gzip_base64(message.to_string().as_bytes())}})
}

fn gzip_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
}

/// (node, step, status, error) of a run's node executions, sorted.
async fn nodes(st: &State, run: &str) -> Vec<(String, String, String, Option<String>)> {
    let mut v: Vec<_> = st
        .store
        .list_node_executions("acme", run)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.node_id, n.step, n.status, n.error))
        .collect();
    v.sort();
    v
}

fn entered(records: &[Value], node: &str) -> usize {
    records
        .iter()
        .position(|r| {
            r["type"].as_str().unwrap().ends_with("StateEntered")
                && r["details"]["name"]
                    .as_str()
                    .is_some_and(|n| n.contains(node))
        })
        .unwrap_or_else(|| panic!("no entry of {node} in {records:#?}"))
}

fn state_name(events: &[Value], node: &str) -> String {
    events
        .iter()
        .filter_map(|e| e["stateEnteredEventDetails"]["name"].as_str())
        .find(|n| n.contains(node))
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_reported_as_they_run_and_the_end_agrees() {
    let st = state().await;
    publish(&st, chain()).await;
    let events = chain_history(&st).await;
    let arn = "arn:aws:states:us-east-1:000000000000:execution:acme.chain:r-l";
    recorded_run(&st, "r-l", arn).await;
    let records = log_records(&events, arn);
    // Batches cut inside node `b`'s visit: its start in one, its end in the next.
    let cut = entered(&records, "b") + 1;
    let end = records.len() - 1;

    let out = cm_cloud::run_events::handle(&st, subscription(&records[..cut]))
        .await
        .unwrap();
    assert!(
        matches!(out, Outcome::FromLogs { runs: 1, events } if events >= 3),
        "{out:?}"
    );
    let first = nodes(&st, "r-l").await;
    assert!(
        first
            .iter()
            .any(|(n, _, s, _)| n == "a" && s == "succeeded"),
        "{first:?}"
    );
    assert!(
        first.iter().any(|(n, _, s, _)| n == "b" && s == "running"),
        "{first:?}"
    );
    assert_eq!(
        st.store.get_run("acme", "r-l").await.unwrap().status,
        RunStatus::Running
    );

    // The end of `b` without its start: it ends the recorded visit (one execution of b).
    cm_cloud::run_events::handle(&st, subscription(&records[cut..end]))
        .await
        .unwrap();
    let second = nodes(&st, "r-l").await;
    let b: Vec<_> = second.iter().filter(|(n, ..)| n == "b").collect();
    assert_eq!(b.len(), 1, "{second:?}");
    assert_eq!(b[0].2, "succeeded");
    let b_exec = st
        .store
        .list_node_executions("acme", "r-l")
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.node_id == "b")
        .unwrap();
    assert!(
        b_exec.ended_at_ms.unwrap() > b_exec.started_at_ms,
        "{b_exec:?}"
    );

    // The end: recorded from the whole history, which agrees with what the batches said.
    st.runtime.readable(arn, &records);
    let out = cm_cloud::run_events::handle(&st, subscription(&records[end..]))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::FromLogs { runs: 1, .. }), "{out:?}");
    let run = st.store.get_run("acme", "r-l").await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output.unwrap()["nodes"]["b"]["output"]["y"], 1);
    assert_eq!(
        nodes(&st, "r-l").await,
        second,
        "the history agrees with the batches"
    );

    // Delivered again (a partial batch, the whole run): nothing moves back.
    for batch in [&records[..cut], &records[..]] {
        cm_cloud::run_events::handle(&st, subscription(batch))
            .await
            .unwrap();
        assert_eq!(nodes(&st, "r-l").await, second);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_batches_are_put_right_by_the_end() {
    let st = state().await;
    publish(&st, chain()).await;
    let events = chain_history(&st).await;
    let arn = "arn:aws:states:us-east-1:000000000000:execution:acme.chain:r-o";
    recorded_run(&st, "r-o", arn).await;
    let records = log_records(&events, arn);
    let cut = entered(&records, "b") + 1;
    let end = records.len() - 1;
    // The second batch first: `b`'s end without a recorded start is not reported (no visit
    // of its own); the first batch then records its start.
    cm_cloud::run_events::handle(&st, subscription(&records[cut..end]))
        .await
        .unwrap();
    cm_cloud::run_events::handle(&st, subscription(&records[..cut]))
        .await
        .unwrap();
    let middle = nodes(&st, "r-o").await;
    let b: Vec<_> = middle.iter().filter(|(n, ..)| n == "b").collect();
    assert_eq!(b.len(), 1, "{middle:?}");
    assert_eq!(b[0].2, "running");
    // The end puts it right.
    st.runtime.readable(arn, &records);
    cm_cloud::run_events::handle(&st, subscription(&records[end..]))
        .await
        .unwrap();
    let last = nodes(&st, "r-o").await;
    assert_eq!(last.len(), 3, "{last:?}");
    assert!(
        last.iter()
            .all(|(.., s, e)| s == "succeeded" && e.is_none()),
        "{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_before_the_history_is_searchable_is_retried() {
    let st = state().await;
    publish(&st, chain()).await;
    let events = chain_history(&st).await;
    // An Express execution: its log records are its only history.
    let arn = "arn:aws:states:us-east-1:000000000000:express:acme.chain:r-s:6f0c";
    recorded_run(&st, "r-s", arn).await;
    let records = log_records(&events, arn);
    let end = records.len() - 1;
    cm_cloud::run_events::handle(&st, subscription(&records[..2]))
        .await
        .unwrap();
    // The end arrives; the records between are not searchable yet.
    st.runtime.readable(arn, &records[..2]);
    let e = cm_cloud::run_events::handle(&st, subscription(&records[end..]))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "ConcertMaster.Retryable");
    assert!(e.to_string().contains("not yet"), "{e}");
    // The run has ended all the same (from the event).
    let run = st.store.get_run("acme", "r-s").await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(
        run.ended_at_ms,
        Some(1_764_151_200_000 + records.len() as i64 * 10)
    );
    // The retry, once they are: every node is recorded.
    st.runtime.readable(arn, &records);
    let out = cm_cloud::run_events::handle(&st, subscription(&records[end..]))
        .await
        .unwrap();
    assert!(
        matches!(out, Outcome::FromLogs { runs: 1, events } if events >= 3),
        "{out:?}"
    );
    let all = nodes(&st, "r-s").await;
    let ids: Vec<&str> = all.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(ids, ["a", "b", "every"], "{all:?}");
    assert!(all.iter().all(|(.., s, _)| s == "succeeded"), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_runs_are_followed_through_their_logs_alone() {
    let st = state().await;
    publish(&st, chain()).await;
    let events = chain_history(&st).await;
    // An Express execution: no history the runtime could read, no status events.
    let arn = "arn:aws:states:us-east-1:000000000000:express:acme.chain:r-x:6f0c";
    recorded_run(&st, "r-x", arn).await;
    let status = json!({"version": "0", "id": "e", "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states", "account": "000000000000", "time": "2026-11-26T10:00:00Z",
        "region": "us-east-1", "resources": [arn], "detail": {"executionArn": arn, "status": "SUCCEEDED"}});
    assert_eq!(
        cm_cloud::run_events::handle(&st, status).await.unwrap(),
        Outcome::Ignored("an Express execution: followed through its execution logs")
    );
    // One batch holding the whole execution, other executions' records and a stray line.
    let mut batch = log_records(&events, arn);
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
    let all = nodes(&st, "r-x").await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.iter().all(|(.., s, _)| s == "succeeded"), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_failure_is_kept_until_its_state_exits_in_a_later_batch() {
    let st = state().await;
    publish(&st, chain()).await;
    let events = chain_history(&st).await;
    let (a, b) = (state_name(&events, "a"), state_name(&events, "b"));
    let arn = "arn:aws:states:us-east-1:000000000000:execution:acme.chain:r-f";
    recorded_run(&st, "r-f", arn).await;
    let r = [
        rec(arn, 1, 0, "ExecutionStarted", json!({"input": "{}"})),
        rec(
            arn,
            2,
            1,
            "TaskStateEntered",
            json!({"name": b, "input": "{}"}),
        ),
        rec(
            arn,
            3,
            2,
            "TaskScheduled",
            json!({"resourceType": "lambda", "resource": "invoke"}),
        ),
        rec(
            arn,
            4,
            3,
            "TaskFailed",
            json!({"error": "ConcertMaster.Http.5xx", "cause": "503"}),
        ),
        rec(
            arn,
            5,
            4,
            "TaskStateExited",
            json!({"name": b, "output": "{}"}),
        ),
    ];
    for batch in [&r[..3], &r[3..4]] {
        cm_cloud::run_events::handle(&st, subscription(batch))
            .await
            .unwrap();
    }
    let failing = Some("ConcertMaster.Http.5xx".to_owned());
    assert_eq!(
        nodes(&st, "r-f").await,
        [("b".into(), "2".into(), "running".into(), failing.clone())]
    );
    cm_cloud::run_events::handle(&st, subscription(&r[4..]))
        .await
        .unwrap();
    assert_eq!(
        nodes(&st, "r-f").await,
        [("b".into(), "2".into(), "failed".into(), failing)]
    );

    // Two visits open (concurrent branches): a task failure cannot be placed, so an exit of
    // either is left to the run's end rather than reported succeeded.
    let arn = "arn:aws:states:us-east-1:000000000000:execution:acme.chain:r-g";
    recorded_run(&st, "r-g", arn).await;
    let r = [
        rec(arn, 1, 0, "ExecutionStarted", json!({"input": "{}"})),
        rec(
            arn,
            2,
            1,
            "TaskStateEntered",
            json!({"name": a, "input": "{}"}),
        ),
        rec(
            arn,
            3,
            1,
            "TaskStateEntered",
            json!({"name": b, "input": "{}"}),
        ),
        rec(
            arn,
            4,
            3,
            "TaskFailed",
            json!({"error": "ConcertMaster.Http.5xx", "cause": "503"}),
        ),
        rec(
            arn,
            5,
            4,
            "TaskStateExited",
            json!({"name": b, "output": "{}"}),
        ),
    ];
    cm_cloud::run_events::handle(&st, subscription(&r[..3]))
        .await
        .unwrap();
    cm_cloud::run_events::handle(&st, subscription(&r[3..]))
        .await
        .unwrap();
    assert_eq!(
        nodes(&st, "r-g").await,
        [
            ("a".into(), "2".into(), "running".into(), None),
            ("b".into(), "3".into(), "running".into(), None)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_from_before_a_redrive_is_stale() {
    let st = state().await;
    publish(&st, chain()).await;
    let events = chain_history(&st).await;
    let b = state_name(&events, "b");
    let arn = "arn:aws:states:us-east-1:000000000000:execution:acme.chain:r-r";
    recorded_run(&st, "r-r", arn).await;
    let r = [
        rec(arn, 1, 0, "ExecutionStarted", json!({"input": "{}"})),
        rec(
            arn,
            2,
            1,
            "TaskStateEntered",
            json!({"name": b, "input": "{}"}),
        ),
        rec(
            arn,
            3,
            2,
            "TaskFailed",
            json!({"error": "ConcertMaster.Http.5xx", "cause": "503"}),
        ),
        rec(
            arn,
            4,
            3,
            "ExecutionFailed",
            json!({"error": "ConcertMaster.Http.5xx", "cause": "503"}),
        ),
        rec(arn, 5, 4, "ExecutionRedriven", json!({"redriveCount": 1})),
        rec(
            arn,
            6,
            5,
            "TaskStateEntered",
            json!({"name": b, "input": "{}"}),
        ),
        rec(
            arn,
            7,
            6,
            "TaskStateExited",
            json!({"name": b, "output": "{\"nodes\":{\"b\":{\"output\":{\"y\":1}}}}"}),
        ),
        rec(
            arn,
            8,
            7,
            "ExecutionSucceeded",
            json!({"output": "{\"ok\":true}"}),
        ),
    ];
    // The execution was redriven (the API reopened the run); the old end comes again late.
    st.runtime.readable(arn, &r[..6]);
    let out = cm_cloud::run_events::handle(&st, subscription(&r[3..4]))
        .await
        .unwrap();
    assert!(
        matches!(out, Outcome::FromLogs { runs: 1, events: 0 }),
        "{out:?}"
    );
    assert_eq!(
        st.store.get_run("acme", "r-r").await.unwrap().status,
        RunStatus::Running
    );
    // The real end.
    st.runtime.readable(arn, &r);
    cm_cloud::run_events::handle(&st, subscription(&r[6..]))
        .await
        .unwrap();
    let run = st.store.get_run("acme", "r-r").await.unwrap();
    assert_eq!(
        (run.status, run.output),
        (RunStatus::Succeeded, Some(json!({"ok": true})))
    );
    assert!(
        nodes(&st, "r-r")
            .await
            .contains(&("b".into(), "6".into(), "succeeded".into(), None))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_output_is_not_stored_as_the_output() {
    let st = state().await;
    publish(&st, chain()).await;
    let arn = "arn:aws:states:us-east-1:000000000000:express:acme.chain:r-t:1";
    recorded_run(&st, "r-t", arn).await;
    let r = [
        rec(arn, 1, 0, "ExecutionStarted", json!({"input": "{}"})),
        rec(
            arn,
            2,
            1,
            "ExecutionSucceeded",
            json!({"output": "{\"cut", "outputDetails": {"truncated": true}}),
        ),
    ];
    cm_cloud::run_events::handle(&st, subscription(&r))
        .await
        .unwrap();
    let run = st.store.get_run("acme", "r-t").await.unwrap();
    assert_eq!((run.status, run.output), (RunStatus::Succeeded, None));
}

#[tokio::test]
async fn malformed_subscription_payloads_are_invalid_input() {
    let st = state().await;
    for (payload, says) in [
        (json!({"awslogs": {"data": 7}}), "not a string"),
        (json!({"awslogs": {"data": "%%%"}}), "not base64"),
        (json!({"awslogs": {"data": "aGVsbG8="}}), "not gzip"),
        (
            json!({"awslogs": {"data": gzip_base64(b"{]")}}),
            "not a subscription message",
        ),
    ] {
        let e = cm_cloud::run_events::handle(&st, payload)
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "ConcertMaster.InvalidInput");
        assert!(e.to_string().contains(says), "{e}");
    }
    // CloudWatch Logs' check of a new destination.
    let control = json!({"messageType": "CONTROL_MESSAGE", "logEvents": []});
    assert_eq!(
        cm_cloud::run_events::handle(
            &st,
            json!({"awslogs": {"data": gzip_base64(control.to_string().as_bytes())}})
        )
        .await
        .unwrap(),
        Outcome::Ignored("not a data message")
    );
}
