//! The handler over the JSON fixtures in `tests/data/ws-disconnect/*.json` (repository root):
//! `{"description", "setup" (cm_live_cloud::test_util::Setup), "event": <$disconnect event>,
//! "expect": {"statusCode", "subscribers": {org: {topic: [ids]}}, "notRecorded": {"id", "org"}}}`,
//! over a `MemoryStore`.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use cm_live_cloud::test_util::{
    FakePoster, Setup, check_subscribers, fixtures, recorded_connection,
};
use cm_store::memory::MemoryStore;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use std::path::Path;

async fn run(fixture: &Value) -> Result<(), String> {
    let store = MemoryStore::new();
    let setup: Setup =
        serde_json::from_value(fixture["setup"].clone()).map_err(|e| format!("setup: {e}"))?;
    setup.apply(&store, &FakePoster::new()).await?;
    let request: ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(fixture["event"].clone()).map_err(|e| format!("event: {e}"))?;
    let response = ws_disconnect::handler(&store, LambdaEvent::new(request, Context::default()))
        .await
        .map_err(|d| d.error_message)?;
    let expect = &fixture["expect"];
    if Some(response.status_code) != expect["statusCode"].as_i64() {
        return Err(format!("status {}", response.status_code));
    }
    check_subscribers(&store, &expect["subscribers"]).await?;
    if let Some(not) = expect.get("notRecorded") {
        let (id, org) = (not["id"].as_str().unwrap(), not["org"].as_str().unwrap());
        if recorded_connection(&store, id, org).await.is_some() {
            return Err(format!("connection {id} is still recorded"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_fixture_gets_its_expected_answer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/ws-disconnect");
    let all = fixtures(&dir);
    assert!(all.len() >= 2, "{} fixtures", all.len());
    let mut failures = Vec::new();
    for (name, fixture) in &all {
        if let Err(e) = run(fixture).await {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
