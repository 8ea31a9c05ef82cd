//! The handler over the JSON fixtures in `tests/data/ws-connect/*.json` (repository root):
//!
//! ```json
//! {"description": "…",
//!  "token": {"org", "sub", "role", "expiresInS", "key": "other"},  // optional: minted, replaces "$TOKEN" in the event
//!  "event": <the $connect event of API Gateway>,
//!  "expect": {"statusCode": 200,
//!             "body": {…},                                         // subset of the error body
//!             "connection": {"id", "org", "subject", …},            // recorded so
//!             "notRecorded": {"id", "org"}}}
//! ```
//!
//! Tokens are minted with a fixed test key at a fixed "now"; the store is a `MemoryStore`.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use cm_api::auth::{Claims, Role, TokenKey};
use cm_live_cloud::test_util::{fixtures, json_matches, recorded_connection};
use cm_store::memory::MemoryStore;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use std::path::Path;

const NOW_MS: i64 = 1_800_000_000_500;

fn key(name: &str) -> TokenKey {
    let byte = if name == "other" { b'o' } else { b'k' };
    TokenKey::new(vec![byte; 32]).unwrap()
}

/// The event with `$TOKEN` replaced by the fixture's minted token.
fn event(fixture: &Value) -> Value {
    let spec = &fixture["token"];
    let mut text = fixture["event"].to_string();
    if spec.is_object() {
        let claims = Claims {
            sub: spec["sub"].as_str().unwrap().into(),
            org: spec["org"].as_str().unwrap().into(),
            role: Role::parse(spec["role"].as_str().unwrap_or("viewer")).unwrap(),
            exp: NOW_MS / 1000 + spec["expiresInS"].as_i64().unwrap_or(3600),
            iat: NOW_MS / 1000,
            nbf: None,
        };
        let token = key(spec["key"].as_str().unwrap_or("test")).mint(&claims);
        text = text.replace("$TOKEN", &token);
    }
    serde_json::from_str(&text).unwrap()
}

async fn run(fixture: &Value) -> Result<(), String> {
    let store = MemoryStore::new();
    let request: ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(event(fixture)).map_err(|e| format!("event: {e}"))?;
    let response = ws_connect::handle(&store, &key("test"), &request, NOW_MS).await;
    // Through the Lambda handler too: it reads the clock, so only fixtures without a minted
    // token (whose validity depends on "now") must get the same status from it.
    let lambda = ws_connect::handler(
        &MemoryStore::new(),
        &key("test"),
        LambdaEvent::new(request.clone(), Context::default()),
    )
    .await
    .map_err(|d| format!("handler error {}", d.error_message))?;
    let expect = &fixture["expect"];
    let want_status = expect["statusCode"].as_i64().unwrap();
    if response.status_code != want_status {
        return Err(format!(
            "status {} (body {:?}), expected {want_status}",
            response.status_code, response.body
        ));
    }
    if !fixture["token"].is_object() && lambda.status_code != response.status_code {
        return Err(format!(
            "the Lambda handler answered {}",
            lambda.status_code
        ));
    }
    if let Some(want) = expect.get("body") {
        let body = match &response.body {
            Some(aws_lambda_events::encodings::Body::Text(t)) => serde_json::from_str(t).unwrap(),
            other => return Err(format!("body {other:?}")),
        };
        json_matches(want, &body).map_err(|e| format!("body{e}"))?;
        let ct = response
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap());
        if ct != Some("application/json") {
            return Err(format!("content-type {ct:?}"));
        }
    }
    if let Some(want) = expect.get("connection") {
        let id = want["id"].as_str().unwrap();
        let org = want["org"].as_str().unwrap();
        let got = recorded_connection(&store, id, org)
            .await
            .ok_or_else(|| format!("connection {id} is not recorded in {org}"))?;
        json_matches(want, &serde_json::to_value(&got).unwrap())
            .map_err(|e| format!("connection{e}"))?;
    }
    if let Some(not) = expect.get("notRecorded") {
        let (id, org) = (not["id"].as_str().unwrap(), not["org"].as_str().unwrap());
        if recorded_connection(&store, id, org).await.is_some() {
            return Err(format!("connection {id} was recorded"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_fixture_gets_its_expected_answer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/ws-connect");
    let all = fixtures(&dir);
    assert!(all.len() >= 9, "{} fixtures", all.len());
    let mut failures = Vec::new();
    for (name, fixture) in &all {
        if let Err(e) = run(fixture).await {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
