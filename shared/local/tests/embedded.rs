//! A compiled workflow running on the embedded engine with the real node handlers and the
//! SQLite-backed local store: filter → HTTP call (secret auth, to a real local server) →
//! store → queue → approval → merge.
#![allow(clippy::unwrap_used)]

use cm_engine::{Engine, EngineConfig, MachineType, Status};
use cm_local::{LocalStore, ResourceOptions};
use cm_nodes::http::{HttpClient, NetworkPolicy};
use cm_nodes::secrets::LocalSecrets;
use cm_nodes::{NodeRunner, Services};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "tok-0123456789-very-secret";

/// The local store's approvals, announcing each request recorded (so the test waits on that
/// event instead of polling).
struct Announcing {
    store: Arc<LocalStore>,
    tx: tokio::sync::mpsc::UnboundedSender<String>,
}

impl cm_nodes::approval::Approvals for Announcing {
    fn create<'a>(
        &'a self,
        request: cm_nodes::approval::ApprovalRequest,
    ) -> cm_nodes::BoxFuture<'a, Result<(), cm_nodes::NodeError>> {
        Box::pin(async move {
            let id = request.id.clone();
            self.store.create(request).await?;
            let _ = self.tx.send(id);
            Ok(())
        })
    }
}

/// A one-route HTTP server: answers every request with `body` and records the requests
/// (head and body) it received.
async fn server(body: Value) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            let body = body.to_string();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let len = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= head_end + 4 + len {
                            break;
                        }
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).to_string());
                let resp = format!(
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

fn workflow(url: &str) -> Value {
    json!({
        "id": "intake", "name": "Intake", "version": 1,
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {}},
            {"id": "big", "type": "transform.filter", "config": {
                "items": "{{ $.nodes.start.output.orders }}", "condition": "amount >= 100"}},
            {"id": "post", "type": "action.http", "config": {
                "method": "POST", "url": format!("{url}/orders"),
                "headers": {"X-Run": "{{ $$.Execution.Name }}", "X-Key": "key {{ secrets.API_TOKEN }}"},
                "auth": {"type": "bearer", "secret": "API_TOKEN"},
                "body": {"orders": "{{ $.nodes.big.output.items }}"}}},
            {"id": "save", "type": "action.store", "config": {
                "dataset": "orders", "key": "{{ $$.Execution.Name }}", "record": {"created": "{{ $.nodes.post.output.body }}"}}},
            {"id": "enqueue", "type": "action.queue", "config": {
                "queue": "billing", "message": {"count": "{{ $.nodes.big.output.count }}"}}},
            {"id": "ok", "type": "flow.approval", "config": {"title": "Bill {{ $.nodes.big.output.count }} orders?"}},
            {"id": "done", "type": "transform.merge", "config": {
                "sources": ["{{ $.nodes.post.output.body }}", "{{ $.nodes.ok.output }}"], "deep": true}}
        ],
        "edges": [
            {"from": "start", "to": "big"}, {"from": "big", "to": "post"},
            {"from": "post", "to": "save"}, {"from": "save", "to": "enqueue"},
            {"from": "enqueue", "to": "ok"}, {"from": "ok", "fromPort": "approved", "to": "done"}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_on_real_handlers_and_local_storage() {
    let (url, seen) = server(json!({"id": "o-1", "accepted": 2})).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(&dir.path().join("local.db")).unwrap());
    let (tx, mut asked) = tokio::sync::mpsc::unbounded_channel();
    let mut services = Services::new(
        Arc::new(LocalSecrets::new().insert("API_TOKEN", SECRET)),
        Arc::new(Announcing {
            store: store.clone(),
            tx,
        }),
        store.clone(),
    )
    .unwrap();
    services.http = HttpClient::new(NetworkPolicy {
        allow: vec!["127.0.0.1/32".into()],
    })
    .unwrap();
    let runner = NodeRunner::builtin(services);
    let resources = cm_local::resources(store.clone(), runner, &ResourceOptions::default());
    let engine = Engine::open(EngineConfig {
        resources,
        ..EngineConfig::default()
    })
    .await
    .unwrap();

    let registry = cm_registry::Registry::builtin();
    let wf = cm_model::from_json_str(&workflow(&url).to_string()).unwrap();
    let compiled =
        cm_compiler::compile(&wf, &registry, &cm_compiler::CompileOptions::default()).unwrap();
    let sm = engine
        .create_state_machine("intake", &compiled.definition, MachineType::Standard)
        .await
        .unwrap();
    let started = engine
        .start_execution(
            &sm.arn,
            Some("run-1".into()),
            json!({"orders": [{"id": 1, "amount": 50}, {"id": 2, "amount": 150}, {"id": 3, "amount": 300}]}),
        )
        .await
        .unwrap();
    // Wait until the approval is recorded (the run parks on its task token).
    let asked_id = asked.recv().await.unwrap();
    let pending = store.approvals(true).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].request.id, asked_id);
    assert_eq!(pending[0].request.title, "Bill 2 orders?");
    assert_eq!(pending[0].request.node_id, "ok");

    // The HTTP node called the real server with the secret in the headers.
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert!(req.starts_with("POST /orders "), "{req}");
    assert!(
        req.to_ascii_lowercase()
            .contains(&format!("authorization: bearer {SECRET}")),
        "{req}"
    );
    assert!(req.contains(&format!("key {SECRET}")), "{req}");
    assert!(
        req.contains("\"amount\":150") && !req.contains("\"amount\":50"),
        "{req}"
    );

    // The store and queue nodes wrote to the local store.
    let records = store.records("orders", None, 10).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key, "run-1");
    assert_eq!(
        records[0].data,
        json!({"created": {"id": "o-1", "accepted": 2}})
    );
    assert_eq!(records[0].node_id, "save");
    let msgs = store.receive("billing", 10, 30).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&msgs[0].body).unwrap(),
        json!({"count": 2})
    );

    // Approve: the run resumes on the `approved` port and finishes.
    let decided =
        cm_local::decide_approval(&store, &engine, &pending[0].request.id, true, "go", "boss")
            .await
            .unwrap();
    assert_eq!(decided.status, cm_local::ApprovalStatus::Approved);
    let rec = engine.wait(&started.execution_arn).await.unwrap();
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    let out: Value = rec.output.clone().unwrap();
    assert_eq!(out["nodes"]["done"]["output"]["id"], "o-1");
    assert_eq!(out["nodes"]["done"]["output"]["approved"], true);
    assert_eq!(out["nodes"]["done"]["output"]["comment"], "go");
    assert_eq!(out["nodes"]["ok"]["port"], "approved");

    // Deciding twice is a conflict.
    let e = cm_local::decide_approval(&store, &engine, &pending[0].request.id, false, "", "x")
        .await
        .unwrap_err();
    assert!(matches!(e, cm_local::LocalError::Conflict(_)), "{e}");

    // The secret is nowhere in the run's history or output.
    let history = engine
        .get_execution_history(&started.execution_arn, Default::default())
        .unwrap();
    let text: String = history
        .events
        .iter()
        .map(|e| format!("{} {}\n", e.to_aws_json(), e.details))
        .collect();
    assert!(
        text.contains("{{ secrets.API_TOKEN }}"),
        "the reference is kept"
    );
    assert!(!text.contains(SECRET), "secret leaked into history");
    assert!(!rec.output.unwrap().to_string().contains(SECRET));
    engine.shutdown().await;
}

#[tokio::test]
async fn node_errors_reach_retry_and_catch_by_name() {
    let store = Arc::new(LocalStore::in_memory().unwrap());
    let services =
        Services::new(Arc::new(LocalSecrets::new()), store.clone(), store.clone()).unwrap();
    let resources = cm_local::resources(
        store,
        NodeRunner::builtin(services),
        &ResourceOptions::default(),
    );
    let engine = Engine::open(EngineConfig {
        resources,
        ..EngineConfig::default()
    })
    .await
    .unwrap();
    // The default policy refuses loopback: the HTTP node fails with a named error, which the
    // node's error route catches.
    let wf = json!({
        "id": "blocked", "name": "b", "version": 1,
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {}},
            {"id": "call", "type": "action.http", "config": {"url": "http://127.0.0.1:9/x"},
             "onError": {"action": "route", "errors": ["ConcertMaster.Http.BlockedAddress"]}},
            {"id": "after", "type": "transform.set", "config": {"fields": {"ok": true}}},
            {"id": "handled", "type": "transform.set", "config": {"fields": {"error": "{{ $.nodes.call.error.Error }}"}}}
        ],
        "edges": [
            {"from": "start", "to": "call"}, {"from": "call", "to": "after"},
            {"from": "call", "fromPort": "error", "to": "handled"}
        ]
    });
    let registry = cm_registry::Registry::builtin();
    let wf = cm_model::from_json_str(&wf.to_string()).unwrap();
    let compiled = cm_compiler::compile(&wf, &registry, &Default::default()).unwrap();
    let sm = engine
        .create_state_machine("b", &compiled.definition, MachineType::Standard)
        .await
        .unwrap();
    let started = engine
        .start_execution(&sm.arn, None, json!({}))
        .await
        .unwrap();
    let rec = engine.wait(&started.execution_arn).await.unwrap();
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    let out: Value = rec.output.clone().unwrap();
    assert_eq!(
        out["nodes"]["handled"]["output"]["error"],
        "ConcertMaster.Http.BlockedAddress"
    );
    assert!(out["nodes"].get("after").is_none(), "{out}");
    engine.shutdown().await;
}

/// Runs a one-Task machine on the local resources and returns (status, error, cause).
async fn one_task(resource: &str, parameters: Value) -> (Status, Value) {
    let store = Arc::new(LocalStore::in_memory().unwrap());
    let services =
        Services::new(Arc::new(LocalSecrets::new()), store.clone(), store.clone()).unwrap();
    let resources = cm_local::resources(
        store,
        NodeRunner::builtin(services),
        &ResourceOptions::default(),
    );
    let engine = Engine::open(EngineConfig {
        resources,
        ..EngineConfig::default()
    })
    .await
    .unwrap();
    let def = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": resource, "Parameters": parameters, "End": true}}});
    let sm = engine
        .create_state_machine("t", &def, MachineType::Standard)
        .await
        .unwrap();
    let started = engine
        .start_execution(&sm.arn, None, json!({}))
        .await
        .unwrap();
    let rec = engine.wait(&started.execution_arn).await.unwrap();
    engine.shutdown().await;
    let outcome = cm_engine::outcome_json(&rec);
    (rec.status, outcome)
}

#[tokio::test]
async fn service_integrations_fail_like_aws_on_bad_parameters() {
    let (status, o) = one_task(
        "arn:aws:states:::dynamodb:putItem",
        json!({"TableName": "other", "Item": {"pk": {"S": "a"}, "sk": {"S": "b"}}}),
    )
    .await;
    assert_eq!(status, Status::Failed);
    assert_eq!(o["error"], "DynamoDB.ResourceNotFoundException", "{o}");
    let (_, o) = one_task(
        "arn:aws:states:::dynamodb:putItem",
        json!({"TableName": "concertmaster-datasets", "Item": {"pk": {"S": "a"}}}),
    )
    .await;
    assert_eq!(o["error"], "DynamoDB.ValidationException", "{o}");
    let (_, o) = one_task(
        "arn:aws:states:::dynamodb:putItem",
        json!({"TableName": "concertmaster-datasets", "Item": {"pk": {"X": "a"}}}),
    )
    .await;
    assert_eq!(o["error"], "DynamoDB.ValidationException", "{o}");
    let (status, o) = one_task(
        "arn:aws:states:::dynamodb:putItem",
        json!({"TableName": "concertmaster-datasets", "Item": {
            "pk": {"S": "a"}, "sk": {"S": "b"}, "n": {"N": "1.5"}, "m": {"M": {"l": {"L": [{"BOOL": true}, {"NULL": true}]}}}}}),
    )
    .await;
    assert_eq!(status, Status::Succeeded, "{o}");

    let (_, o) = one_task(
        "arn:aws:states:::sqs:sendMessage",
        json!({"QueueUrl": "https://sqs/1/q.fifo", "MessageBody": "x"}),
    )
    .await;
    assert_eq!(o["error"], "SQS.MissingParameterException", "{o}");
    let (_, o) = one_task(
        "arn:aws:states:::sqs:sendMessage",
        json!({"QueueUrl": "https://sqs/1/q"}),
    )
    .await;
    assert_eq!(o["error"], "SQS.MissingParameterException", "{o}");
    let (status, o) = one_task(
        "arn:aws:states:::sqs:sendMessage",
        json!({"QueueUrl": "https://sqs/1/q", "MessageBody": {"a": 1}}),
    )
    .await;
    assert_eq!(status, Status::Succeeded, "{o}");

    // A malformed node-runner event is a named error, not a crash.
    let (_, o) = one_task(
        "arn:aws:states:::lambda:invoke",
        json!({"FunctionName": "concertmaster-node-runner", "Payload": {"node": 1}}),
    )
    .await;
    assert_eq!(o["error"], "ConcertMaster.InvalidInput", "{o}");
}
