//! The handler over the JSON fixtures in `tests/data/ws-message/*.json` (repository root):
//!
//! ```json
//! {"description": "…",
//!  "setup": {…},                        // cm_live_cloud::test_util::Setup
//!  "event": <a MESSAGE event of API Gateway>,
//!  "expect": {"statusCode": 200,
//!             "endpointHint": "https://…/prod",          // what the poster was told
//!             "frames": {"<connection>": [<frame>, …]},   // every frame posted, each a subset match
//!             "subscribers": {"<org>": {"<topic>": ["<connection>", …]}}}}
//! ```
//!
//! Over a `MemoryStore`, and the fake poster.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use cm_live_cloud::test_util::{FakePoster, Setup, check_frames, check_subscribers, fixtures};
use cm_store::memory::MemoryStore;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use std::path::Path;

async fn run(fixture: &Value) -> Result<(), String> {
    let (store, poster) = (MemoryStore::new(), FakePoster::new());
    let setup: Setup =
        serde_json::from_value(fixture["setup"].clone()).map_err(|e| format!("setup: {e}"))?;
    setup.apply(&store, &poster).await?;
    let request: ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(fixture["event"].clone()).map_err(|e| format!("event: {e}"))?;
    let response = ws_message::handler(
        &store,
        &poster,
        LambdaEvent::new(request, Context::default()),
    )
    .await
    .map_err(|d| d.error_message)?;
    let expect = &fixture["expect"];
    if response.status_code != expect["statusCode"].as_i64().unwrap_or(200)
        || response.body.is_some()
    {
        return Err(format!(
            "response {} {:?}",
            response.status_code, response.body
        ));
    }
    if let Some(hint) = expect["endpointHint"].as_str()
        && poster.hints() != [hint]
    {
        return Err(format!("endpoint hints {:?}", poster.hints()));
    }
    check_frames(&poster, &expect["frames"])?;
    check_subscribers(&store, &expect["subscribers"]).await
}

#[tokio::test]
async fn every_fixture_gets_its_expected_answer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/ws-message");
    let all = fixtures(&dir);
    assert!(all.len() >= 13, "{} fixtures", all.len());
    let mut failures = Vec::new();
    for (name, fixture) in &all {
        if let Err(e) = run(fixture).await {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
