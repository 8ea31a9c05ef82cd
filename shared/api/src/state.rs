//! The shared state of every request.

use crate::approvals::ApprovalDesk;
use crate::auth::TokenKey;
use crate::live::Hub;
use cm_nodes::secrets::Secrets;
use cm_registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The URL clients reach the API at (form pages, hook URLs, approval links).
    pub public_url: String,
    /// Largest request body (bytes).
    pub max_body_bytes: usize,
    /// Prefix of state machine ARNs (`arn:aws:states:<region>:<account>:stateMachine:`).
    pub state_machine_arn_prefix: String,
    /// Compile options (node-runner function, datasets table, queue URL prefix).
    pub compile: cm_compiler::CompileOptions,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            state_machine_arn_prefix: "arn:aws:states:us-east-1:000000000000:stateMachine:".into(),
            compile: cm_compiler::CompileOptions::default(),
        }
    }
}

/// Request counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses by (route, status).
    pub responses: Mutex<HashMap<(String, u16), u64>>,
    /// Runs started through the API.
    pub runs_started: AtomicU64,
    /// Live events sent to WebSocket clients.
    pub ws_events_sent: AtomicU64,
}

impl Metrics {
    /// Counts a response.
    pub fn count(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.responses.lock() {
            *m.entry((route.to_owned(), status)).or_default() += 1;
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP concertmaster_http_responses_total HTTP responses by route and status.\n# TYPE concertmaster_http_responses_total counter\n",
        );
        if let Ok(m) = self.responses.lock() {
            let mut rows: Vec<_> = m.iter().collect();
            rows.sort();
            for ((route, status), n) in rows {
                out.push_str(&format!(
                    "concertmaster_http_responses_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"
                ));
            }
        }
        out.push_str(&format!(
            "# HELP concertmaster_runs_started_total Runs started through the API.\n# TYPE concertmaster_runs_started_total counter\nconcertmaster_runs_started_total {}\n",
            self.runs_started.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "# HELP concertmaster_ws_events_sent_total Live events sent over WebSockets.\n# TYPE concertmaster_ws_events_sent_total counter\nconcertmaster_ws_events_sent_total {}\n",
            self.ws_events_sent.load(Ordering::Relaxed)
        ));
        out
    }
}

/// Everything a handler needs; cheap to clone.
pub struct AppState<S, R> {
    inner: Arc<Inner<S, R>>,
}

impl<S, R> Clone for AppState<S, R> {
    fn clone(&self) -> Self {
        AppState {
            inner: self.inner.clone(),
        }
    }
}

/// The state's parts.
pub struct Inner<S, R> {
    /// Storage.
    pub store: S,
    /// The runtime running published workflows.
    pub runtime: R,
    /// Node types.
    pub registry: Arc<Registry>,
    /// Verifies (and locally mints) bearer tokens; also keys hook tokens and form ids.
    pub tokens: TokenKey,
    /// Approvals, where the deployment has them.
    pub approvals: Option<Arc<dyn ApprovalDesk>>,
    /// Live events.
    pub hub: Hub,
    /// Secrets (webhook HMAC keys).
    pub secrets: Arc<dyn Secrets>,
    /// Settings.
    pub config: ApiConfig,
    /// Counters.
    pub metrics: Metrics,
    /// State → node maps of compiled versions (live status).
    pub maps: Arc<crate::live::NodeMaps>,
}

impl<S, R> std::ops::Deref for AppState<S, R> {
    type Target = Inner<S, R>;
    fn deref(&self) -> &Inner<S, R> {
        &self.inner
    }
}

impl<S, R> AppState<S, R> {
    /// A state over its parts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: S,
        runtime: R,
        registry: Arc<Registry>,
        tokens: TokenKey,
        approvals: Option<Arc<dyn ApprovalDesk>>,
        hub: Hub,
        secrets: Arc<dyn Secrets>,
        config: ApiConfig,
    ) -> AppState<S, R> {
        AppState {
            inner: Arc::new(Inner {
                store,
                runtime,
                tokens,
                approvals,
                hub,
                secrets,
                maps: Arc::new(crate::live::NodeMaps::new(
                    registry.clone(),
                    config.compile.clone(),
                )),
                registry,
                config,
                metrics: Metrics::default(),
            }),
        }
    }
}
