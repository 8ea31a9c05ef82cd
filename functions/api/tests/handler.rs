//! The api Lambda's router over API Gateway HTTP API (payload 2.0) events: the fixtures in
//! `tests/data/api/*.json` (repository root) are parsed as `lambda_http` parses the events
//! API Gateway sends, and served by [`api::router`] over the in-memory store and a fake
//! runtime — no AWS.
#![allow(clippy::unwrap_used)]

use api::Config;
use axum::http::StatusCode;
use cm_api::auth::{Claims, Role};
use cm_api::error::ApiResult;
use cm_api::runtime::{ExecutionView, Runtime, RuntimeEvent};
use cm_store::RunStatus;
use cm_store::memory::MemoryStore;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use tower::ServiceExt;

/// A runtime that remembers what it was asked: every execution succeeds at once with
/// `{"echo": input}`.
#[derive(Default)]
struct FakeRuntime {
    machines: Mutex<HashMap<String, Value>>,
    executions: Mutex<HashMap<String, Value>>,
}

const PREFIX: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:";

impl Runtime for FakeRuntime {
    async fn register(&self, name: &str, definition: &Value, _express: bool) -> ApiResult<String> {
        self.machines
            .lock()
            .unwrap()
            .insert(name.to_owned(), definition.clone());
        Ok(format!("{PREFIX}{name}"))
    }

    async fn start(&self, state_machine: &str, name: &str, input: Value) -> ApiResult<String> {
        let machine = state_machine.rsplit(':').next().unwrap();
        let arn = format!("arn:aws:states:eu-west-1:123456789012:execution:{machine}:{name}");
        self.executions.lock().unwrap().insert(arn.clone(), input);
        Ok(arn)
    }

    async fn stop(&self, _execution: &str, _cause: &str) -> ApiResult<()> {
        Ok(())
    }

    async fn describe(&self, execution: &str) -> ApiResult<ExecutionView> {
        let input = self.executions.lock().unwrap().get(execution).cloned();
        let input = input.ok_or_else(|| cm_api::error::ApiError::NotFound(execution.into()))?;
        Ok(ExecutionView {
            status: RunStatus::Succeeded,
            output: Some(json!({"echo": input})),
            error: None,
            cause: None,
            stop_ms: Some(1),
        })
    }

    async fn history(&self, _e: &str, _after: u64, _limit: usize) -> ApiResult<Vec<RuntimeEvent>> {
        Ok(Vec::new())
    }

    async fn redrive(&self, _execution: &str) -> ApiResult<()> {
        Ok(())
    }

    async fn send_task_success(&self, _token: &str, _output: Value) -> ApiResult<()> {
        Ok(())
    }
}

fn config() -> Config {
    let env: HashMap<&str, &str> = [
        ("CONCERTMASTER_TABLE", "unused"),
        (
            "CONCERTMASTER_STATE_MACHINE_ROLE_ARN",
            "arn:aws:iam::123456789012:role/states",
        ),
        ("CONCERTMASTER_STATE_MACHINE_ARN_PREFIX", PREFIX),
        ("CONCERTMASTER_PUBLIC_URL", "https://api.example.com"),
        (
            "CONCERTMASTER_SIGNING_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
    ]
    .into_iter()
    .collect();
    Config::from_lookup(|k| env.get(k).map(|v| (*v).to_owned())).unwrap()
}

struct Lambda {
    app: axum::Router,
    config: Config,
}

impl Lambda {
    fn new() -> Lambda {
        let config = config();
        let state = api::state(&config, MemoryStore::new(), FakeRuntime::default());
        Lambda {
            app: api::router(state),
            config,
        }
    }

    /// The request `lambda_http` makes of fixture `name`.
    fn request(name: &str) -> lambda_http::Request {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/api")
            .join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    async fn send(&self, req: lambda_http::Request) -> (StatusCode, Value) {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
        (status, body)
    }

    async fn call(&self, fixture: &str) -> (StatusCode, Value) {
        self.send(Lambda::request(fixture)).await
    }
}

#[tokio::test]
async fn health_answers_without_auth() {
    let l = Lambda::new();
    let (s, b) = l.call("healthz.json").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b, json!({"status": "ok"}));
}

#[tokio::test]
async fn authorizer_claims_are_the_caller() {
    let l = Lambda::new();
    let (s, b) = l.call("create-workflow-claims.json").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["workflow"]["id"], "greet");
    assert_eq!(b["workflow"]["createdBy"], "ada@acme.test", "{b}");
    // `org` / `role` claims (no `custom:` prefix) work too.
    let (s, b) = l.call("list-workflows-claims.json").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ids: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["greet"]);
}

#[tokio::test]
async fn no_claims_and_no_token_is_401() {
    let l = Lambda::new();
    let (s, b) = l.call("list-workflows-no-auth.json").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(b["code"], "unauthorized");
    assert!(b["message"].as_str().unwrap().contains("bearer"), "{b}");
}

#[tokio::test]
async fn claims_that_make_no_caller_are_401() {
    let l = Lambda::new();
    let (s, b) = l.call("claims-without-org.json").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert!(b["message"].as_str().unwrap().contains("custom:org"), "{b}");
}

#[tokio::test]
async fn another_organisations_claims_see_nothing() {
    let l = Lambda::new();
    let (s, _) = l.call("create-workflow-claims.json").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = l.call("get-workflow-other-org-claims.json").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert_eq!(b["code"], "not_found");
}

#[tokio::test]
async fn without_an_authorizer_the_hs256_token_is_checked() {
    let l = Lambda::new();
    let (s, _) = l.call("create-workflow-claims.json").await;
    assert_eq!(s, StatusCode::CREATED);
    let now = cm_api::auth::now_s();
    let token = l.config.signing_key.mint(&Claims {
        sub: "cli@acme.test".into(),
        org: "acme".into(),
        role: Role::Viewer,
        exp: now + 600,
        iat: now,
        nbf: None,
    });
    let mut req = Lambda::request("list-workflows-no-auth.json");
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (s, b) = l.send(req).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["items"][0]["id"], "greet");
    // A token signed with another key is refused.
    let other = cm_api::auth::TokenKey::generate().unwrap().mint(&Claims {
        sub: "x".into(),
        org: "acme".into(),
        role: Role::Admin,
        exp: now + 600,
        iat: now,
        nbf: None,
    });
    let mut req = Lambda::request("list-workflows-no-auth.json");
    req.headers_mut()
        .insert("authorization", format!("Bearer {other}").parse().unwrap());
    let (s, _) = l.send(req).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn publish_and_run_through_the_runtime_port() {
    let l = Lambda::new();
    l.call("create-workflow-claims.json").await;
    let (s, b) = l.call("publish-workflow-claims.json").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["stateMachine"], format!("{PREFIX}acme.greet"));
    assert_eq!(b["executionType"], "STANDARD");
    let (s, run) = l.call("start-run-claims.json").await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    assert_eq!(run["status"], "RUNNING");
    assert_eq!(run["startedBy"], "ada@acme.test");
    // Without a role claim the caller is a viewer, who may not start runs.
    let (s, b) = l.call("viewer-start-run-claims.json").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
}
