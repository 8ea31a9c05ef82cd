//! An API over the in-memory store and an in-memory engine running the real node handlers.
#![allow(clippy::unwrap_used, dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cm_api::auth::{Claims, Role, TokenKey};
use cm_api::error::{ApiError, ApiResult};
use cm_api::runtime::{ExecutionView, LocalRuntime, Runtime, RuntimeEvent};
use cm_api::{ApiConfig, AppState};
use cm_engine::{Engine, EngineConfig};
use cm_local::LocalStore;
use cm_nodes::secrets::LocalSecrets;
use cm_nodes::{NodeRunner, Services};
use cm_store::memory::MemoryStore;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tower::ServiceExt;

/// The embedded runtime, whose starts can be made to fail (a runtime outage).
#[derive(Clone)]
pub struct TestRuntime {
    pub inner: LocalRuntime,
    pub fail_starts: Arc<AtomicBool>,
}

impl Runtime for TestRuntime {
    async fn register(&self, name: &str, definition: &Value, express: bool) -> ApiResult<String> {
        self.inner.register(name, definition, express).await
    }

    async fn start(&self, state_machine: &str, name: &str, input: Value) -> ApiResult<String> {
        if self.fail_starts.load(Ordering::SeqCst) {
            return Err(ApiError::Internal(
                "test runtime: StartExecution is failing".into(),
            ));
        }
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
        self.inner.history(execution, after, limit).await
    }

    async fn redrive(&self, execution: &str) -> ApiResult<()> {
        self.inner.redrive(execution).await
    }

    async fn send_task_success(&self, token: &str, output: Value) -> ApiResult<()> {
        self.inner.send_task_success(token, output).await
    }
}

pub struct Api {
    pub app: Router,
    pub key: TokenKey,
    pub engine: Engine,
    pub state: AppState<MemoryStore, TestRuntime>,
    /// The local store: queues, dead letters, approvals.
    pub local: Arc<LocalStore>,
    fail_starts: Arc<AtomicBool>,
}

pub const HOOK_SECRET: &str = "hook-signing-secret";

impl Api {
    /// The embedded deployment: with local queues and a dead-letter queue.
    pub async fn new() -> Api {
        Api::build(true).await
    }

    /// With or without the local queues and dead-letter queue of the embedded deployment.
    pub async fn build(embedded: bool) -> Api {
        let local = Arc::new(LocalStore::in_memory().unwrap());
        let secrets = Arc::new(LocalSecrets::new().insert("hook_key", HOOK_SECRET));
        let services = Services::new(secrets.clone(), local.clone(), local.clone()).unwrap();
        let resources = cm_local::resources(
            local.clone(),
            NodeRunner::builtin(services),
            &cm_local::ResourceOptions::default(),
        );
        let engine = Engine::open(EngineConfig {
            resources,
            ..EngineConfig::default()
        })
        .await
        .unwrap();
        let key = TokenKey::generate().unwrap();
        let fail_starts = Arc::new(AtomicBool::new(false));
        let runtime = TestRuntime {
            inner: LocalRuntime::new(engine.clone()),
            fail_starts: fail_starts.clone(),
        };
        let mut state = AppState::new(
            MemoryStore::new(),
            runtime,
            Arc::new(cm_registry::Registry::builtin()),
            key.clone(),
            Some(Arc::new(cm_api::approvals::LocalApprovals {
                store: local.clone(),
                engine: engine.clone(),
            })),
            cm_api::live::Hub::new(),
            secrets,
            ApiConfig {
                public_url: "http://api.test".into(),
                max_body_bytes: 64 * 1024,
                ..ApiConfig::default()
            },
        );
        if embedded {
            state = state
                .with_dead_letters(local.clone())
                .with_local_queue(local.clone())
                .with_datasets(local.clone());
        }
        tokio::spawn(cm_api::live::follow_engine(engine.clone(), state.clone()));
        Api {
            app: cm_api::router(state.clone()),
            key,
            engine,
            state,
            local,
            fail_starts,
        }
    }

    /// Creates and publishes a workflow; returns what publish answered.
    pub async fn publish(&self, token: &str, def: Value) -> Value {
        let id = def["id"].as_str().unwrap().to_owned();
        let (s, b) = self
            .call(
                "POST",
                "/v1/workflows",
                Some(token),
                Some(json!({"definition": def})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let (s, b) = self
            .call(
                "POST",
                &format!("/v1/workflows/{id}/publish"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    /// A workflow's runs (newest first).
    pub async fn runs(&self, token: &str, workflow: &str) -> Vec<Value> {
        let (s, b) = self
            .call(
                "GET",
                &format!("/v1/runs?workflowId={workflow}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["items"].as_array().unwrap().clone()
    }

    /// Makes the runtime's starts fail (true) or work again (false).
    pub fn fail_starts(&self, fail: bool) {
        self.fail_starts.store(fail, Ordering::SeqCst);
    }

    pub fn token(&self, org: &str, role: Role) -> String {
        let now = cm_api::auth::now_s();
        self.key.mint(&Claims {
            sub: format!("{}@{org}", role.as_str()),
            org: org.into(),
            role,
            exp: now + 3600,
            iat: now,
            nbf: None,
        })
    }

    /// One request; the body is JSON (or nothing); returns the status and the JSON body (or
    /// the text as a JSON string).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        self.raw(req).await
    }

    /// One request; a successful JSON response must match its schema in the OpenAPI document.
    pub async fn raw(&self, req: Request<Body>) -> (StatusCode, Value) {
        let (method, path) = (
            req.method().as_str().to_lowercase(),
            req.uri().path().to_owned(),
        );
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let json = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"));
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
        if json && status.is_success() {
            conforms(&method, &path, status, &v);
        }
        (status, v)
    }

    /// Waits until the live tracker has recorded the run's end (so its node executions are
    /// recorded too) and returns the API's view.
    pub async fn finished(&self, token: &str, run_id: &str) -> Value {
        use cm_store::RunStore;
        let mut recorded = self.state.hub.subscribe_recorded();
        let claims = self.key.verify(token, cm_api::auth::now_s()).unwrap();
        loop {
            let run = self.state.store.get_run(&claims.org, run_id).await.unwrap();
            if run.status != cm_store::RunStatus::Running {
                break;
            }
            let done = recorded.recv().await.unwrap();
            if done.1 == run_id {
                break;
            }
        }
        let (_, run) = self
            .call("GET", &format!("/v1/runs/{run_id}"), Some(token), None)
            .await;
        run
    }
}

/// A manual workflow: start → set (greeting) with an input schema.
pub fn hello(id: &str) -> Value {
    json!({
        "id": id, "name": "Hello", "version": 1,
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {"inputSchema": {
                "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}},
            {"id": "greet", "type": "transform.set", "config": {"fields": {"text": "Hello {{ $.nodes.start.output.name }}"}}}
        ],
        "edges": [{"from": "start", "to": "greet"}]
    })
}

/// Panics unless `body`, a successful JSON response of `method` `path`, matches the response
/// schema the OpenAPI document gives for its status (what schemathesis checks against the
/// running server). Paths the document does not describe (the builder's files) are skipped.
pub fn conforms(method: &str, path: &str, status: StatusCode, body: &Value) {
    type Validators = HashMap<String, Arc<jsonschema::Validator>>;
    static DOC: OnceLock<Value> = OnceLock::new();
    static VALIDATORS: OnceLock<Mutex<Validators>> = OnceLock::new();
    let doc = DOC.get_or_init(cm_api::openapi::document);
    let segments: Vec<&str> = path.split('/').collect();
    // The matching template with the fewest parameters (`/v1/workflows/from-template` before
    // `/v1/workflows/{id}`).
    let Some((template, op)) = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(t, item)| {
            let ts: Vec<&str> = t.split('/').collect();
            item.get(method).is_some()
                && ts.len() == segments.len()
                && ts
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
        })
        .min_by_key(|(t, _)| t.matches('{').count())
        .map(|(t, item)| (t, &item[method]))
    else {
        return;
    };
    let key = format!("{method} {template} {}", status.as_str());
    let response = op["responses"]
        .get(status.as_str())
        .unwrap_or_else(|| panic!("{key}: the status is not documented"));
    let validator = VALIDATORS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(key.clone())
        .or_insert_with(|| {
            let schema = &response["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{key}: no JSON schema documented");
            // The document as the root, so `#/components/schemas/…` resolves.
            let root = json!({"components": doc["components"], "allOf": [schema]});
            Arc::new(jsonschema::draft202012::new(&root).unwrap())
        })
        .clone();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{key}: the body does not match the document:\n{}\n{body:#}",
        errors.join("\n")
    );
}
