//! The shared state of every request.

use crate::approvals::ApprovalDesk;
use crate::auth::TokenKey;
use crate::live::Hub;
use cm_nodes::secrets::Secrets;
use cm_nodes::trigger::dead_letter::DeadLetters;
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
    /// The built web builder (`frontend/dist`) to serve at every path the API does not take;
    /// `None`: unknown paths are 404s (the cloud serves the builder from S3/CloudFront).
    pub builder_dir: Option<std::path::PathBuf>,
    /// Where users open the builder (its `/forms/<id>` page is a form trigger's public page);
    /// `None`: no builder is deployed and publishing returns no form page URL.
    pub builder_url: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            state_machine_arn_prefix: "arn:aws:states:us-east-1:000000000000:stateMachine:".into(),
            compile: cm_compiler::CompileOptions::default(),
            builder_dir: None,
            builder_url: None,
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
    /// Where trigger events whose run could not start are kept, where the deployment has a
    /// dead-letter queue ([`AppState::with_dead_letters`]; embedded: the local store).
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
    /// The local queues `trigger.queue` workflows read and `action.queue` nodes send to, in
    /// the embedded deployment ([`AppState::with_local_queue`]); `None` in the cloud (SQS).
    pub local_queue: Option<Arc<cm_local::LocalStore>>,
    /// Announces changes of published triggers (publish, delete) to the embedded scheduler and
    /// queue poller.
    pub trigger_changes: TriggerChanges,
    /// The cloud's schedules of published schedule triggers ([`AppState::with_schedules`]);
    /// `None` embedded, where the scheduler reads the published routes.
    pub schedules: Option<Arc<dyn crate::schedules::Schedules>>,
    /// Where store nodes' records are read from ([`AppState::with_datasets`]); `None`:
    /// `/v1/datasets/…` answers 404.
    pub datasets: Option<Arc<dyn crate::datasets::DatasetReader>>,
}

/// Announces that published triggers may have changed (a workflow was published or deleted),
/// so the embedded scheduler and queue poller ([`crate::triggers`]) look again instead of
/// polling. Every subscriber sees every change (a [`tokio::sync::watch`] counter), whenever it
/// subscribed.
#[derive(Debug)]
pub struct TriggerChanges(tokio::sync::watch::Sender<u64>);

impl Default for TriggerChanges {
    fn default() -> Self {
        TriggerChanges(tokio::sync::watch::Sender::new(0))
    }
}

impl TriggerChanges {
    /// Announces a change.
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver whose `changed()` completes after the next announcement.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
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
                dead_letters: None,
                local_queue: None,
                trigger_changes: TriggerChanges::default(),
                schedules: None,
                datasets: None,
            }),
        }
    }

    fn parts_mut(&mut self) -> &mut Inner<S, R> {
        Arc::get_mut(&mut self.inner)
            .expect("configure the AppState before cloning it (it is shared once cloned)")
    }

    /// With a dead-letter queue: trigger events (webhook calls, form submissions, schedule
    /// ticks, queue messages) whose run could not start are kept there, and
    /// `/v1/dead-letters` lists and re-drives them.
    ///
    /// # Panics
    ///
    /// If the state was cloned already.
    pub fn with_dead_letters(mut self, dead_letters: Arc<dyn DeadLetters>) -> AppState<S, R> {
        self.parts_mut().dead_letters = Some(dead_letters);
        self
    }

    /// With local queues (the embedded deployment): the queue poller reads them and
    /// `POST /v1/queues/{queue}/messages` sends to them.
    ///
    /// # Panics
    ///
    /// If the state was cloned already.
    pub fn with_local_queue(mut self, queue: Arc<cm_local::LocalStore>) -> AppState<S, R> {
        self.parts_mut().local_queue = Some(queue);
        self
    }

    /// With a dataset store: `GET /v1/datasets/{name}/records` reads it.
    ///
    /// # Panics
    ///
    /// If the state was cloned already.
    pub fn with_datasets(
        mut self,
        datasets: Arc<dyn crate::datasets::DatasetReader>,
    ) -> AppState<S, R> {
        self.parts_mut().datasets = Some(datasets);
        self
    }

    /// With schedules (the cloud): publishing a schedule-trigger workflow puts its schedule,
    /// publishing another trigger over it or deleting the workflow deletes it.
    ///
    /// # Panics
    ///
    /// If the state was cloned already.
    pub fn with_schedules(
        mut self,
        schedules: Arc<dyn crate::schedules::Schedules>,
    ) -> AppState<S, R> {
        self.parts_mut().schedules = Some(schedules);
        self
    }
}
