//! The handler over the JSON fixtures in `tests/data/status-pusher/*.json` (repository root):
//!
//! ```json
//! {"description": "…",
//!  "setup": {…},                            // cm_live_cloud::test_util::Setup
//!  "event": {"Records": [<DynamoDB stream record>, …]},
//!  "expect": {"batchItemFailures": [],
//!             "frames": {"<connection>": [<frame>, …]},   // every frame posted (subset match each)
//!             "maxFrameBytes": 131072,                   // optional: every frame at most this
//!             "subscribers": {"<org>": {"<topic>": ["<connection>", …]}},
//!             "report": {"events", "frames", "failed", "gone"}}}   // subset
//! ```
//!
//! Over a `MemoryStore` and the fake poster. `{"$repeat": [text, n]}` in a fixture stands for
//! a long string.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::dynamodb::Event;
use cm_live_cloud::test_util::{
    FakePoster, Setup, check_frames, check_subscribers, fixtures, json_matches,
};
use cm_store::memory::MemoryStore;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use std::path::Path;

async fn run(fixture: &Value) -> Result<(), String> {
    let (store, poster) = (MemoryStore::new(), FakePoster::new());
    let setup: Setup =
        serde_json::from_value(fixture["setup"].clone()).map_err(|e| format!("setup: {e}"))?;
    setup.apply(&store, &poster).await?;
    let event: Event =
        serde_json::from_value(fixture["event"].clone()).map_err(|e| format!("event: {e}"))?;
    let (report, response) = status_pusher::handle(&store, &poster, &event).await;
    let expect = &fixture["expect"];
    let failures = serde_json::to_value(&response).unwrap()["batchItemFailures"].clone();
    json_matches(&expect["batchItemFailures"], &failures)
        .map_err(|e| format!("batchItemFailures{e}"))?;
    check_frames(&poster, &expect["frames"])?;
    if let Some(max) = expect["maxFrameBytes"].as_u64() {
        for (c, bytes) in poster.sent() {
            if bytes.len() as u64 > max {
                return Err(format!("a frame to {c} is {} bytes", bytes.len()));
            }
        }
    }
    check_subscribers(&store, &expect["subscribers"]).await?;
    let report = json!({"events": report.events, "frames": report.frames, "failed": report.failed, "gone": report.gone});
    json_matches(&expect["report"], &report).map_err(|e| format!("report{e}"))
}

#[tokio::test]
async fn every_fixture_gets_its_expected_frames() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/status-pusher");
    let all = fixtures(&dir);
    assert!(all.len() >= 3, "{} fixtures", all.len());
    let mut failures = Vec::new();
    for (name, fixture) in &all {
        if let Err(e) = run(fixture).await {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The Lambda handler answers a store failure as a batch item failure naming the record to
/// retry from (a store whose subscriber reads fail).
#[tokio::test]
async fn a_store_failure_is_a_batch_item_failure_from_its_record() {
    use cm_store::{
        Connection, ConnectionStore, Created, NodeExecution, Page, Result, RunEnd, RunQuery,
        RunRecord, RunStore, StoreError,
    };
    struct Broken;
    impl ConnectionStore for Broken {
        async fn put_connection(&self, _: Connection) -> Result<()> {
            Ok(())
        }
        async fn delete_connection(&self, _: &str) -> Result<()> {
            Ok(())
        }
        async fn get_connection(&self, _: &str) -> Result<Option<Connection>> {
            Ok(None)
        }
        async fn subscribe(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        async fn unsubscribe(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        async fn subscribers(&self, _: &str, _: &str) -> Result<Vec<Connection>> {
            Err(StoreError::Backend("throttled".into()))
        }
    }
    impl RunStore for Broken {
        async fn create_run(&self, _: &str, r: RunRecord) -> Result<Created<RunRecord>> {
            Ok(Created::New(r))
        }
        async fn get_run(&self, _: &str, id: &str) -> Result<RunRecord> {
            Err(StoreError::not_found("run", id))
        }
        async fn list_runs(&self, _: &str, _: RunQuery) -> Result<Page<RunRecord>> {
            Err(StoreError::Backend("x".into()))
        }
        async fn finish_run(&self, _: &str, id: &str, _: RunEnd) -> Result<RunRecord> {
            Err(StoreError::not_found("run", id))
        }
        async fn reopen_run(&self, _: &str, id: &str) -> Result<RunRecord> {
            Err(StoreError::not_found("run", id))
        }
        async fn put_node_execution(&self, _: &str, _: &str, _: NodeExecution) -> Result<()> {
            Ok(())
        }
        async fn list_node_executions(&self, _: &str, _: &str) -> Result<Vec<NodeExecution>> {
            Ok(Vec::new())
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/status-pusher");
    let (_, fixture) = fixtures(&dir)
        .into_iter()
        .find(|(n, _)| n == "node-execution-and-run-finish.json")
        .unwrap();
    let event: Event = serde_json::from_value(fixture["event"].clone()).unwrap();
    let poster = FakePoster::new();
    let response = status_pusher::handler(
        &Broken,
        &poster,
        LambdaEvent::new(event.clone(), Context::default()),
    )
    .await
    .unwrap();
    // Record 0 (a counter bump) gives no event; record 1 (the node) needs subscribers.
    let seq = event.records[1].change.sequence_number.clone();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, seq);
    assert!(poster.sent().is_empty());
}
