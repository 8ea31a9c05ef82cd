//! Live run status: execution events turned into run and node events ([`LiveEvent`]), fanned
//! out to WebSocket subscribers ([`Hub`]) and written to the run store (node executions, run
//! ends).
//!
//! Event ids are the execution's history event ids (dense from 1 per run), so a client that
//! reconnects with the last id it saw is replayed everything after it from the history, then
//! continues live, with no gap and no duplicate ([`crate::ws`]).

use crate::runtime::RuntimeEvent;
use cm_store::{NodeExecution, RunEnd, RunStatus, Store};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// Largest output preview in an event (bytes of JSON text).
pub const PREVIEW_BYTES: usize = 2048;

/// One live event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveEvent {
    /// `run.started`, `node.started`, `node.succeeded`, `node.failed`, `run.finished`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The run.
    pub run_id: String,
    /// The workflow.
    pub workflow_id: String,
    /// The execution's history event id this comes from (resume after it).
    pub event_id: u64,
    /// When (ms).
    pub at_ms: i64,
    /// The node (node events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// How long the node (or run) took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// The node's output (or the run's), as JSON text cut at [`PREVIEW_BYTES`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_preview: Option<String>,
    /// Error name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Error cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The run's final status (`run.finished`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A live event with its organisation (never sent to clients).
#[derive(Debug, Clone)]
pub struct Scoped {
    /// The organisation.
    pub org: String,
    /// The event.
    pub event: LiveEvent,
}

/// Fans live events out to every WebSocket connection of this process.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Scoped>>,
    recorded: broadcast::Sender<Arc<(String, String)>>,
    created: broadcast::Sender<Arc<String>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    /// A hub buffering 4,096 events per slow subscriber.
    pub fn new() -> Hub {
        Hub {
            tx: broadcast::channel(4096).0,
            recorded: broadcast::channel(1024).0,
            created: broadcast::channel(4096).0,
        }
    }

    /// Announces that the run of execution `arn` is now in the store.
    pub fn run_created(&self, arn: &str) {
        let _ = self.created.send(Arc::new(arn.to_owned()));
    }

    /// A receiver of [`Hub::run_created`] announcements.
    pub fn subscribe_created(&self) -> broadcast::Receiver<Arc<String>> {
        self.created.subscribe()
    }

    /// Announces that a run's end is in the store (organisation, run id).
    pub fn recorded(&self, org: &str, run_id: &str) {
        let _ = self
            .recorded
            .send(Arc::new((org.to_owned(), run_id.to_owned())));
    }

    /// A receiver of "run end recorded" announcements (for callers that read the store after
    /// a run ends, e.g. tests).
    pub fn subscribe_recorded(&self) -> broadcast::Receiver<Arc<(String, String)>> {
        self.recorded.subscribe()
    }

    /// Publishes an event.
    pub fn publish(&self, org: &str, event: LiveEvent) {
        let _ = self.tx.send(Arc::new(Scoped {
            org: org.to_owned(),
            event,
        }));
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Scoped>> {
        self.tx.subscribe()
    }
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub fn preview(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Turns one run's execution events into live events. Feed every event in order.
#[derive(Debug, Clone)]
pub struct RunTracker {
    run_id: String,
    workflow_id: String,
    /// ASL state name → node id.
    nodes: Arc<HashMap<String, String>>,
    /// Step key of an open node visit → (node id, start ms).
    open: HashMap<String, (String, i64)>,
    /// Last task error per open visit (by step key), until its state exits: per visit, not
    /// per node, as concurrent Map iterations visit one node at once.
    failed: HashMap<String, (String, String)>,
    started_ms: Option<i64>,
    /// The newest event fed (events at or below it are ignored: a catch-up from the history
    /// and the live stream may both deliver one).
    last: u64,
}

impl RunTracker {
    /// A tracker for a run whose states map to nodes as `nodes` says.
    pub fn new(run_id: &str, workflow_id: &str, nodes: Arc<HashMap<String, String>>) -> Self {
        RunTracker {
            run_id: run_id.to_owned(),
            workflow_id: workflow_id.to_owned(),
            nodes,
            open: HashMap::new(),
            failed: HashMap::new(),
            started_ms: None,
            last: 0,
        }
    }

    /// Continues a node visit recorded earlier (a node execution still `running`, with its
    /// step key): its `…StateExited` then ends it, with the duration from `started_ms`. For
    /// followers that see a run's events in pieces (the cloud's execution logs).
    /// `error`: the visit's task already failed with it (see [`RunTracker::open_failures`]).
    pub fn resume_visit(&mut self, step: &str, node: &str, started_ms: i64, error: Option<&str>) {
        self.open
            .insert(step.to_owned(), (node.to_owned(), started_ms));
        if let Some(error) = error {
            self.failed
                .insert(step.to_owned(), (error.to_owned(), String::new()));
        }
    }

    /// The step keys of the visits open now.
    pub fn open_steps(&self) -> Vec<String> {
        self.open.keys().cloned().collect()
    }

    /// Visits open now whose task failed (step, node, start ms, error): a follower that sees
    /// the events in pieces keeps the error with the visit until its exit arrives.
    pub fn open_failures(&self) -> Vec<(String, String, i64, String)> {
        let mut out: Vec<(String, String, i64, String)> = self
            .open
            .iter()
            .filter_map(|(step, (node, started))| {
                let (error, _) = self.failed.get(step)?;
                Some((step.clone(), node.clone(), *started, error.clone()))
            })
            .collect();
        out.sort();
        out
    }

    fn event(&self, kind: &str, e: &RuntimeEvent) -> LiveEvent {
        LiveEvent {
            kind: kind.to_owned(),
            run_id: self.run_id.clone(),
            workflow_id: self.workflow_id.clone(),
            event_id: e.id,
            at_ms: e.timestamp_ms,
            node_id: None,
            duration_ms: None,
            output_preview: None,
            error: None,
            cause: None,
            status: None,
        }
    }

    /// The live events of one execution event, in order. When the run ends, nodes still open
    /// are reported failed (with the task's error, else the run's) before `run.finished`.
    pub fn feed(&mut self, e: &RuntimeEvent) -> Vec<LiveEvent> {
        let mut out = Vec::new();
        if e.id <= self.last {
            return out;
        }
        self.last = e.id;
        if matches!(
            e.kind.as_str(),
            "ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted"
        ) {
            let mut open: Vec<(String, (String, i64))> = self.open.drain().collect();
            open.sort_by_key(|(_, (_, t))| *t);
            for (step, (node, started)) in open {
                let mut ev = self.event("node.failed", e);
                let (error, cause) = self.failed.remove(&step).unwrap_or_else(|| {
                    (
                        e.details
                            .get("error")
                            .and_then(Value::as_str)
                            .unwrap_or(&e.kind)
                            .to_owned(),
                        e.details
                            .get("cause")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    )
                });
                ev.error = Some(error);
                ev.cause = Some(cause);
                ev.duration_ms = Some(e.timestamp_ms - started);
                ev.node_id = Some(node);
                out.push(ev);
            }
        }
        out.extend(self.feed_one(e));
        out
    }

    fn feed_one(&mut self, e: &RuntimeEvent) -> Option<LiveEvent> {
        let d = &e.details;
        let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
        match e.kind.as_str() {
            "ExecutionStarted" => {
                self.started_ms = Some(e.timestamp_ms);
                return Some(self.event("run.started", e));
            }
            "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted" => {
                let mut ev = self.event("run.finished", e);
                ev.status = Some(
                    match e.kind.as_str() {
                        "ExecutionSucceeded" => "SUCCEEDED",
                        "ExecutionFailed" => "FAILED",
                        "ExecutionTimedOut" => "TIMED_OUT",
                        _ => "ABORTED",
                    }
                    .into(),
                );
                ev.duration_ms = self.started_ms.map(|s| e.timestamp_ms - s);
                ev.error = text("error");
                ev.cause = text("cause");
                ev.output_preview = d.get("output").map(|o| preview(o, PREVIEW_BYTES));
                return Some(ev);
            }
            _ => {}
        }
        if e.kind == "TaskFailed" || e.kind == "TaskTimedOut" {
            let step = e.step.split_once('#').map_or(e.step.as_str(), |(s, _)| s);
            if self.open.contains_key(step) {
                self.failed.insert(
                    step.to_owned(),
                    (
                        text("error").unwrap_or_default(),
                        text("cause").unwrap_or_default(),
                    ),
                );
            }
            return None;
        }
        if e.kind == "TaskSucceeded" {
            let step = e.step.split_once('#').map_or(e.step.as_str(), |(s, _)| s);
            self.failed.remove(step);
            return None;
        }
        let state = text("name")?;
        let node = self.nodes.get(&state)?.clone();
        if e.kind.ends_with("StateEntered") {
            self.open
                .insert(e.step.clone(), (node.clone(), e.timestamp_ms));
            self.failed.remove(&e.step);
            let mut ev = self.event("node.started", e);
            ev.node_id = Some(node);
            return Some(ev);
        }
        if e.kind.ends_with("StateExited") {
            let started = self.open.remove(&e.step).map(|(_, t)| t);
            let mut ev = match self.failed.remove(&e.step) {
                Some((error, cause)) => {
                    let mut ev = self.event("node.failed", e);
                    ev.error = Some(error);
                    ev.cause = Some(cause);
                    ev
                }
                None => {
                    let mut ev = self.event("node.succeeded", e);
                    ev.output_preview = d
                        .get("output")
                        .and_then(|o| o.pointer(&format!("/nodes/{node}/output")))
                        .map(|o| preview(o, PREVIEW_BYTES));
                    ev
                }
            };
            ev.duration_ms = started.map(|s| e.timestamp_ms - s);
            ev.node_id = Some(node);
            return Some(ev);
        }
        None
    }
}

/// The node execution a `node.*` live event (from execution event `source`) records; `None`
/// for other events.
pub fn node_execution(ev: &LiveEvent, source: &RuntimeEvent) -> Option<NodeExecution> {
    let status = match ev.kind.as_str() {
        "node.started" => "running",
        "node.succeeded" => "succeeded",
        "node.failed" => "failed",
        _ => return None,
    };
    Some(NodeExecution {
        node_id: ev.node_id.clone()?,
        step: source.step.clone(),
        status: status.into(),
        started_at_ms: ev.at_ms - ev.duration_ms.unwrap_or(0),
        ended_at_ms: (status != "running").then_some(ev.at_ms),
        output_preview: ev.output_preview.clone(),
        error: ev.error.clone(),
    })
}

/// Writes what a live event means to the run store: node executions and the run's end.
/// A run that another writer already finished, or that no longer exists, is left as it is;
/// other store errors are returned.
pub async fn record<S: Store>(
    store: &S,
    org: &str,
    ev: &LiveEvent,
    source: &RuntimeEvent,
) -> Result<(), cm_store::StoreError> {
    let result = match ev.kind.as_str() {
        "node.started" | "node.succeeded" | "node.failed" => {
            let Some(node) = node_execution(ev, source) else {
                return Ok(());
            };
            store.put_node_execution(org, &ev.run_id, node).await
        }
        "run.finished" => {
            let status = ev
                .status
                .as_deref()
                .and_then(RunStatus::parse)
                .unwrap_or(RunStatus::Failed);
            let truncated = output_truncated(&source.aws);
            finish_run(
                store,
                org,
                &ev.run_id,
                RunEnd {
                    status,
                    output: source.details.get("output").cloned().filter(|_| !truncated),
                    error: ev.error.clone(),
                    cause: ev.cause.clone(),
                    at_ms: ev.at_ms,
                },
            )
            .await
        }
        _ => Ok(()),
    };
    match result {
        Ok(())
        | Err(cm_store::StoreError::Conflict(_))
        | Err(cm_store::StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether the output of an event (AWS JSON) was cut short by Step Functions
/// (`outputDetails.truncated`): such a payload is not the output.
pub fn output_truncated(aws: &Value) -> bool {
    aws.as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.ends_with("EventDetails")))
        .and_then(|(_, d)| d.pointer("/outputDetails/truncated"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Finishes a run; an output the store refuses as too large is left out (the run still
/// ends, its history keeps the output) rather than leaving the run running.
pub async fn finish_run<S: Store>(
    store: &S,
    org: &str,
    run_id: &str,
    end: RunEnd,
) -> Result<(), cm_store::StoreError> {
    let retry = RunEnd {
        output: None,
        ..end.clone()
    };
    let had_output = end.output.is_some();
    match store.finish_run(org, run_id, end).await {
        Err(cm_store::StoreError::Invalid(why)) if had_output => {
            eprintln!("run {run_id}: its output was not stored: {why}");
            store.finish_run(org, run_id, retry).await.map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

/// Splits a state machine name `<org>.<workflow>` (how the API names them).
pub fn split_machine_name(name: &str) -> Option<(&str, &str)> {
    name.split_once('.')
}

/// `(org, workflow id, run id)` of an execution ARN of a machine the API registered
/// (`arn:aws:states:<region>:<account>:execution|express:<org>.<workflow>:<run>[:<uuid>]`).
pub fn parse_execution_arn(arn: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 8 || !matches!(parts[5], "execution" | "express") {
        return None;
    }
    let (org, wf) = split_machine_name(parts[6])?;
    Some((org.to_owned(), wf.to_owned(), parts[7].to_owned()))
}

/// Follows the embedded engine: every execution event of a run the API started becomes live
/// events (published on `hub`) and run-store writes. Runs until the engine shuts down.
pub async fn follow_engine<S: Store, R: crate::runtime::Runtime>(
    engine: cm_engine::Engine,
    state: crate::state::AppState<S, R>,
) {
    let mut rx = engine.subscribe();
    let mut created = state.hub.subscribe_created();
    // Live events go out at once; the store writes they imply are made in order by a writer
    // task, so a slow disk never delays what WebSocket clients see.
    let (writes, mut queue) =
        tokio::sync::mpsc::unbounded_channel::<(String, LiveEvent, RuntimeEvent)>();
    {
        let state = state.clone();
        tokio::spawn(async move {
            while let Some((org, live, rt)) = queue.recv().await {
                if let Err(e) = record(&state.store, &org, &live, &rt).await {
                    eprintln!("recording {} of run {}: {e}", live.kind, live.run_id);
                }
                if live.kind == "run.finished" {
                    state.hub.recorded(&org, &live.run_id);
                }
            }
        });
    }
    let mut follower = Follower {
        engine: &engine,
        state: &state,
        writes,
        trackers: HashMap::new(),
    };
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => follower.engine_event(&ev).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("live status lagged {n} engine events; run pages stay correct (they read the history)");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            c = created.recv() => match c {
                // A run the API just recorded: catch up on events seen before it existed
                // (a short run may even have finished already).
                Ok(arn) => {
                    let arn: Arc<str> = Arc::from(arn.as_str());
                    if !matches!(follower.trackers.get(&arn), Some(Some(_))) {
                        follower.track(&arn, u64::MAX).await;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// The state of [`follow_engine`].
struct Follower<'a, S, R> {
    engine: &'a cm_engine::Engine,
    state: &'a crate::state::AppState<S, R>,
    writes: tokio::sync::mpsc::UnboundedSender<(String, LiveEvent, RuntimeEvent)>,
    /// Execution ARN → (organisation, tracker); `None` for executions of machines the API
    /// did not register (children of other machines).
    trackers: HashMap<Arc<str>, Option<(String, RunTracker)>>,
}

impl<S: Store, R: crate::runtime::Runtime> Follower<'_, S, R> {
    fn emit(&self, org: &str, tracker: &mut RunTracker, rt: &RuntimeEvent) -> bool {
        let mut finished = false;
        for live in tracker.feed(rt) {
            finished |= live.kind == "run.finished";
            self.state.hub.publish(org, live.clone());
            let _ = self.writes.send((org.to_owned(), live, rt.clone()));
        }
        finished
    }

    /// Starts following `arn` if the API knows its run: feeds the history up to event `upto`
    /// (from the last redrive, if any: what ended before it is already recorded).
    async fn track(&mut self, arn: &Arc<str>, upto: u64) {
        let st = self.state;
        let Some((org, wf, run)) = parse_execution_arn(arn) else {
            self.trackers.insert(arn.clone(), None);
            return;
        };
        let Ok(r) = st.store.get_run(&org, &run).await else {
            // Not recorded yet: the API records a run just after starting it and then says so.
            return;
        };
        let Some(m) = st.maps.get(&st.store, &org, &wf, r.workflow_version).await else {
            self.trackers.insert(arn.clone(), None);
            return;
        };
        let mut tracker = RunTracker::new(&run, &wf, m);
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let Ok(page) = self.engine.get_execution_history(
                arn,
                cm_engine::HistoryQuery {
                    max_results: 1000,
                    next_token: token.as_deref(),
                    reverse: false,
                },
            ) else {
                break;
            };
            events.extend(page.events.into_iter().filter(|e| e.id <= upto));
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let from = events
            .iter()
            .filter(|e| e.kind == "ExecutionRedriven")
            .map(|e| e.id)
            .max()
            .unwrap_or(0);
        let mut finished = false;
        for e in events.iter().filter(|e| e.id >= from) {
            finished |= self.emit(&org, &mut tracker, &crate::runtime::runtime_event(e));
        }
        if finished {
            self.trackers.remove(arn);
        } else {
            self.trackers.insert(arn.clone(), Some((org, tracker)));
        }
    }

    async fn engine_event(&mut self, ev: &cm_engine::ExecutionEvent) {
        let arn = &ev.execution_arn;
        if !self.trackers.contains_key(arn) {
            self.track(arn, ev.event.id.saturating_sub(1)).await;
        }
        let Some(Some((org, tracker))) = self.trackers.get_mut(arn) else {
            return;
        };
        let org = org.clone();
        let mut tracker = std::mem::replace(tracker, RunTracker::new("", "", Arc::default()));
        let finished = self.emit(
            &org,
            &mut tracker,
            &crate::runtime::runtime_event(&ev.event),
        );
        if finished {
            self.trackers.remove(arn);
        } else {
            self.trackers.insert(arn.clone(), Some((org, tracker)));
        }
    }
}

/// (organisation, workflow, version).
type VersionKey = (String, String, u32);
/// ASL state name → node id.
type NodeMap = Arc<HashMap<String, String>>;

/// State name → node id maps of compiled workflow versions, cached.
#[derive(Default)]
pub struct NodeMaps {
    registry: Arc<cm_registry::Registry>,
    compile: cm_compiler::CompileOptions,
    cache: tokio::sync::Mutex<HashMap<VersionKey, NodeMap>>,
}

impl NodeMaps {
    /// Maps compiled with these node types and options.
    pub fn new(registry: Arc<cm_registry::Registry>, compile: cm_compiler::CompileOptions) -> Self {
        NodeMaps {
            registry,
            compile,
            cache: Default::default(),
        }
    }

    /// The map of a workflow version (None if it is gone or no longer compiles).
    pub async fn get<S: Store>(
        &self,
        store: &S,
        org: &str,
        workflow: &str,
        version: u32,
    ) -> Option<Arc<HashMap<String, String>>> {
        let key = (org.to_owned(), workflow.to_owned(), version);
        if let Some(m) = self.cache.lock().await.get(&key) {
            return Some(m.clone());
        }
        let v = store.get_version(org, workflow, version).await.ok()?;
        let wf: cm_model::Workflow = serde_json::from_value(v.definition).ok()?;
        let compiled = cm_compiler::compile(&wf, &self.registry, &self.compile).ok()?;
        let map: HashMap<String, String> = compiled
            .state_map
            .into_iter()
            .filter(|(_, r)| r.role == cm_compiler::StateRole::Node)
            .filter_map(|(s, r)| r.node_id.map(|n| (s, n)))
            .collect();
        let map = Arc::new(map);
        self.cache.lock().await.insert(key, map.clone());
        Some(map)
    }
}
