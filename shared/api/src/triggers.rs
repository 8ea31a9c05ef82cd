//! Triggers that fire without a request, in the embedded deployment: the [`Scheduler`]
//! (`trigger.schedule`) and the [`QueuePoller`] (`trigger.queue` on the local queues), plus
//! `POST /v1/queues/{queue}/messages` to feed those queues. In the cloud EventBridge Scheduler
//! and SQS event source mappings do this work instead (cloud milestone).
//!
//! Both find the published workflows of every organisation through the routes `publish`
//! writes (kind `schedule` / `queue`, key `<org>/<workflow>`; [`RouteIndex`]) and read each
//! one's *published* version's trigger. Neither polls on a fixed period:
//!
//! - the scheduler sleeps until the earliest next fire time (on its [`Clock`]), or until a
//!   workflow is published or deleted ([`TriggerChanges`](crate::state::TriggerChanges));
//! - the poller waits until a message is sent to a local queue
//!   ([`cm_local::LocalStore::subscribe_sends`]), a workflow is published or deleted, or the
//!   earliest received message's visibility timeout ends.
//!
//! Runs start through the same path as `POST /v1/workflows/{id}/runs`, with idempotency keys
//! (`schedule:<scheduled ms>`, `queue:<message id>`), so the same tick or message never starts
//! two runs, whatever restarts, clock steps or redeliveries happen. A start that fails (the
//! runtime or the store) becomes a dead letter ([`crate::dead_letters`]): a tick at once, a
//! message once it was received [`QueuePollerConfig::max_receives`] times.

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::routes::{ApiJson, ApiPath, audit, now_ms, start_run_of, trigger_node};
use crate::runtime::Runtime;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cm_nodes::BoxFuture;
use cm_nodes::trigger::queue::{self, QueueConfig};
use cm_nodes::trigger::schedule::{Schedule, ScheduleTrigger};
use cm_store::{Created, Route, RouteIndex, Store, StoreError, WorkflowQuery, WorkflowSummary};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::watch;
use utoipa::ToSchema;

// ---------------------------------------------------------------- clock

/// Where the scheduler gets the time from and how it waits: the system clock in `dev`
/// ([`SystemClock`]), a clock a test moves by hand ([`ManualClock`]).
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Completes once [`now_ms`](Clock::now_ms) has reached `deadline_ms` (callers re-read the
    /// time afterwards, so completing late is fine).
    fn sleep_until(&self, deadline_ms: i64) -> BoxFuture<'_, ()>;
}

/// The system clock; waits are tokio timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }

    fn sleep_until(&self, deadline_ms: i64) -> BoxFuture<'_, ()> {
        let wait = u64::try_from(deadline_ms.saturating_sub(now_ms())).unwrap_or(0);
        let at = tokio::time::Instant::now() + std::time::Duration::from_millis(wait);
        Box::pin(tokio::time::sleep_until(at))
    }
}

/// A clock that moves only when told to ([`ManualClock::set`], [`ManualClock::advance`]),
/// waking whoever sleeps until a time it reaches: tests run a schedule's ticks without
/// waiting for them.
#[derive(Debug)]
pub struct ManualClock(watch::Sender<i64>);

impl ManualClock {
    /// A clock at `now_ms`.
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock(watch::Sender::new(now_ms))
    }

    /// Sets the time (it may go back, as a system clock may).
    pub fn set(&self, now_ms: i64) {
        self.0.send_replace(now_ms);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.send_modify(|t| *t += ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        *self.0.borrow()
    }

    fn sleep_until(&self, deadline_ms: i64) -> BoxFuture<'_, ()> {
        let mut rx = self.0.subscribe();
        Box::pin(async move {
            while *rx.borrow_and_update() < deadline_ms {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

// ---------------------------------------------------------------- workers

/// A running background task ([`Scheduler::spawn`], [`QueuePoller::spawn`]). Dropping it
/// leaves the task running.
#[derive(Debug)]
pub struct Worker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn spawn<F>(f: impl FnOnce(watch::Receiver<bool>) -> F) -> Worker
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, rx) = watch::channel(false);
        Worker {
            stop,
            task: tokio::spawn(f(rx)),
        }
    }

    /// Stops the task once it is waiting (a pass in progress finishes first: no run start is
    /// cut in half) and waits for it to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Ends the task at once, wherever it is (as a crash would), and waits for it to end.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Completes when the watched value changes; never, once its sender is gone.
async fn changed<T>(rx: &mut watch::Receiver<T>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The published version's `trigger` node config of the workflow a route leads to, if the
/// workflow still exists, is published, and its published trigger is of type `ty`.
async fn published_trigger<S: Store, R>(
    st: &AppState<S, R>,
    route: &Route,
    ty: &str,
) -> Option<(WorkflowSummary, u32, Value)> {
    let logged = |e: StoreError| {
        if !matches!(e, StoreError::NotFound { .. }) {
            eprintln!(
                "{ty}: reading workflow {}/{}: {e}",
                route.org, route.workflow_id
            );
        }
    };
    let wf = st
        .store
        .get_workflow(&route.org, &route.workflow_id)
        .await
        .map_err(logged)
        .ok()?;
    let version = wf.published_version?;
    let v = st
        .store
        .get_version(&route.org, &wf.id, version)
        .await
        .map_err(logged)
        .ok()?;
    let node = trigger_node(&v.definition)?;
    if node.get("type").and_then(Value::as_str) != Some(ty) {
        return None;
    }
    let config = node.get("config").cloned().unwrap_or(Value::Null);
    Some((wf, version, config))
}

/// The routes of `kind`, or none (logged) when the store fails.
async fn routes<S: RouteIndex>(store: &S, kind: &str) -> Vec<Route> {
    store.list_routes(kind).await.unwrap_or_else(|e| {
        eprintln!("listing {kind} routes: {e}");
        Vec::new()
    })
}

// ---------------------------------------------------------------- scheduler

/// What the [`Scheduler`] has done (for tests and diagnostics; [`Scheduler::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerStatus {
    /// Passes over the published schedules so far.
    pub passes: u64,
    /// Published schedules seen by the last pass.
    pub schedules: usize,
    /// The earliest next fire time after the last pass (ms), if any schedule fires again.
    pub next_fire_ms: Option<i64>,
    /// Ticks that started a new run.
    pub started: u64,
    /// Ticks whose run existed already (started by another scheduler, or before a restart).
    pub existing: u64,
    /// Ticks whose run could not start (kept as dead letters).
    pub dead_lettered: u64,
}

/// Starts the runs of published `trigger.schedule` workflows at their fire times.
///
/// Each pass lists the published schedules, starts the run of each tick that fell due since
/// the previous pass (`ScheduleTrigger::run_input(tick)`, idempotency key
/// `schedule:<tick ms>`), and sleeps until the earliest next fire time or until a workflow is
/// published or deleted. A schedule counts from when the scheduler first saw it (its publish,
/// or the scheduler's start): ticks missed while the server was down are not run afterwards,
/// and when a pass comes late past several ticks of one schedule (the machine slept) it starts
/// one run, for the latest. `rate(...)` counts from the epoch (`rate(5 minutes)` fires at :00,
/// :05, …), not from the publish time as EventBridge does.
pub struct Scheduler<S, R> {
    state: AppState<S, R>,
    clock: Arc<dyn Clock>,
    status: watch::Sender<SchedulerStatus>,
}

/// One published schedule.
struct ScheduleEntry {
    org: String,
    workflow: WorkflowSummary,
    version: u32,
    trigger: ScheduleTrigger,
}

/// The latest fire time in `(since, now]`, if any (looking at most 10,000 ticks ahead).
fn latest_due(schedule: &Schedule, since: i64, now: i64) -> Option<i64> {
    let mut due = schedule.next_after(since).filter(|t| *t <= now)?;
    for _ in 0..10_000 {
        match schedule.next_after(due) {
            Some(t) if t <= now => due = t,
            _ => break,
        }
    }
    Some(due)
}

impl<S: Store + RouteIndex, R: Runtime> Scheduler<S, R> {
    /// A scheduler over the API's state, on `clock`.
    pub fn new(state: AppState<S, R>, clock: Arc<dyn Clock>) -> Scheduler<S, R> {
        Scheduler {
            state,
            clock,
            status: watch::Sender::new(SchedulerStatus::default()),
        }
    }

    /// A receiver of the scheduler's status, updated after each pass and each tick.
    pub fn status(&self) -> watch::Receiver<SchedulerStatus> {
        self.status.subscribe()
    }

    /// Runs the scheduler on the tokio runtime until [`Worker::stop`].
    pub fn spawn(self) -> Worker {
        Worker::spawn(|stop| self.run(stop))
    }

    async fn schedules(&self) -> Vec<ScheduleEntry> {
        let mut out = Vec::new();
        for route in routes(&self.state.store, "schedule").await {
            let Some((workflow, version, config)) =
                published_trigger(&self.state, &route, "trigger.schedule").await
            else {
                continue;
            };
            match ScheduleTrigger::from_config(&config) {
                Ok(trigger) => out.push(ScheduleEntry {
                    org: route.org,
                    workflow,
                    version,
                    trigger,
                }),
                Err(e) => eprintln!(
                    "schedule of workflow {}/{} (version {version}) is not used: {e}",
                    route.org, route.workflow_id
                ),
            }
        }
        out
    }

    async fn fire(&self, e: &ScheduleEntry, tick: i64) {
        let input = e.trigger.run_input(tick);
        let started = start_run_of(
            &self.state,
            &e.org,
            &e.workflow,
            input.clone(),
            Some(format!("schedule:{tick}")),
            "scheduler",
            None,
        )
        .await;
        match started {
            Ok(Created::New(_)) => self.status.send_modify(|s| s.started += 1),
            Ok(Created::Existing(_)) => self.status.send_modify(|s| s.existing += 1),
            Err(err) => {
                crate::dead_letters::record(
                    &self.state,
                    &e.org,
                    &e.workflow.id,
                    "trigger.schedule",
                    input,
                    &err,
                )
                .await;
                self.status.send_modify(|s| s.dead_lettered += 1);
            }
        }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut changes = self.state.trigger_changes.subscribe();
        // (org, workflow, published version) → the time up to which its ticks are handled.
        let mut handled: HashMap<(String, String, u32), i64> = HashMap::new();
        loop {
            if *stop.borrow_and_update() {
                return;
            }
            // Marked seen before reading, so a publish during the pass wakes the next one.
            changes.borrow_and_update();
            let now = self.clock.now_ms();
            let entries = self.schedules().await;
            let mut next: Option<i64> = None;
            let mut live = HashSet::new();
            for e in &entries {
                let key = (e.org.clone(), e.workflow.id.clone(), e.version);
                let since = *handled.entry(key.clone()).or_insert(now);
                if let Some(tick) = latest_due(&e.trigger.schedule, since, now) {
                    self.fire(e, tick).await;
                }
                // Never back: a clock that steps back does not fire a handled tick again.
                let upto = since.max(now);
                handled.insert(key.clone(), upto);
                live.insert(key);
                if let Some(t) = e.trigger.schedule.next_after(upto) {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
            handled.retain(|k, _| live.contains(k));
            self.status.send_modify(|s| {
                s.passes += 1;
                s.schedules = entries.len();
                s.next_fire_ms = next;
            });
            let sleep = async {
                match next {
                    Some(t) => self.clock.sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                () = changed(&mut changes) => {}
                () = changed(&mut stop) => {}
            }
        }
    }
}

// ---------------------------------------------------------------- queue poller

/// Settings of the [`QueuePoller`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePollerConfig {
    /// How long a received message stays hidden (s): a message whose run could not start is
    /// received again after it, as with SQS (default 30).
    pub visibility_timeout_s: u32,
    /// How many receives a message gets before it goes to the dead-letter queue, as SQS's
    /// `maxReceiveCount` (default 5).
    pub max_receives: u32,
}

impl Default for QueuePollerConfig {
    fn default() -> Self {
        QueuePollerConfig {
            visibility_timeout_s: 30,
            max_receives: 5,
        }
    }
}

/// What the [`QueuePoller`] has done (for tests and diagnostics; [`QueuePoller::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuePollerStatus {
    /// Passes over the published queue triggers so far.
    pub passes: u64,
    /// Published queue triggers seen by the last pass.
    pub triggers: usize,
    /// Messages that started a new run (and were deleted).
    pub started: u64,
    /// Messages whose run existed already (a redelivery; deleted).
    pub existing: u64,
    /// Starts that failed and left the message on the queue for another receive.
    pub failed_starts: u64,
    /// Messages moved to the dead-letter queue (and deleted).
    pub dead_lettered: u64,
}

/// Starts a run for each message on the local queue of a published `trigger.queue` workflow.
///
/// Each pass receives, for each published queue trigger, up to `batchSize` messages at a time
/// (hiding them for [`QueuePollerConfig::visibility_timeout_s`]) until the queue has no visible
/// message, turns each batch into run inputs with [`queue::accept`], starts the runs
/// (idempotency key `queue:<message id>`) and deletes the messages whose run started. A message
/// whose run could not start stays and is received again after its visibility timeout; at its
/// [`max_receives`](QueuePollerConfig::max_receives)-th receive it moves to the dead-letter
/// queue instead. Messages `queue::accept` rejects move there at once. Several workflows on one
/// queue share its messages, as consumers of one SQS queue do.
///
/// Between passes it waits for a message to be sent to any local queue, a workflow to be
/// published or deleted, or the earliest hidden message of a watched queue to become visible.
pub struct QueuePoller<S, R> {
    state: AppState<S, R>,
    config: QueuePollerConfig,
    status: watch::Sender<QueuePollerStatus>,
}

/// One published queue trigger.
struct QueueEntry {
    org: String,
    workflow: WorkflowSummary,
    config: Value,
    queue: QueueConfig,
}

/// At most this many batches per queue trigger per pass, so one busy queue does not starve
/// the others (the next pass follows at once).
const BATCHES_PER_PASS: usize = 100;

impl<S: Store + RouteIndex, R: Runtime> QueuePoller<S, R> {
    /// A poller over the API's state; it needs [`AppState::with_local_queue`] (without a local
    /// queue it ends at once).
    pub fn new(state: AppState<S, R>, config: QueuePollerConfig) -> QueuePoller<S, R> {
        QueuePoller {
            state,
            config,
            status: watch::Sender::new(QueuePollerStatus::default()),
        }
    }

    /// A receiver of the poller's status, updated after each pass and each message.
    pub fn status(&self) -> watch::Receiver<QueuePollerStatus> {
        self.status.subscribe()
    }

    /// Runs the poller on the tokio runtime until [`Worker::stop`].
    pub fn spawn(self) -> Worker {
        Worker::spawn(|stop| self.run(stop))
    }

    async fn triggers(&self) -> Vec<QueueEntry> {
        let mut out = Vec::new();
        for route in routes(&self.state.store, "queue").await {
            let Some((workflow, version, config)) =
                published_trigger(&self.state, &route, "trigger.queue").await
            else {
                continue;
            };
            match QueueConfig::parse(&config) {
                Ok(queue) => out.push(QueueEntry {
                    org: route.org,
                    workflow,
                    config,
                    queue,
                }),
                Err(e) => eprintln!(
                    "queue trigger of workflow {}/{} (version {version}) is not used: {e}",
                    route.org, route.workflow_id
                ),
            }
        }
        out
    }

    /// Receives and handles the visible messages of one trigger's queue; false when the local
    /// store failed.
    async fn drain(&self, local: &cm_local::LocalStore, e: &QueueEntry) -> bool {
        let max = usize::try_from(e.queue.batch_size).unwrap_or(1);
        for _ in 0..BATCHES_PER_PASS {
            let messages =
                match local.receive(&e.queue.queue, max, self.config.visibility_timeout_s) {
                    Ok(m) => m,
                    Err(err) => {
                        eprintln!("receiving from local queue {}: {err}", e.queue.queue);
                        return false;
                    }
                };
            if messages.is_empty() {
                break;
            }
            self.handle(local, e, messages).await;
        }
        true
    }

    async fn handle(
        &self,
        local: &cm_local::LocalStore,
        e: &QueueEntry,
        messages: Vec<cm_local::QueueMessage>,
    ) {
        let received: HashMap<String, cm_local::QueueMessage> =
            messages.iter().map(|m| (m.id.clone(), m.clone())).collect();
        // Attributes that stay the same on every receive, so a redelivered message's run
        // input (and so its idempotent start) is the same.
        let incoming = messages
            .into_iter()
            .map(|m| queue::QueueMessage {
                attributes: m
                    .group_id
                    .map(|g| BTreeMap::from([("MessageGroupId".to_owned(), g)]))
                    .unwrap_or_default(),
                ..queue::QueueMessage::new(m.id, m.body)
            })
            .collect();
        let batch = match queue::accept(&e.config, incoming) {
            Ok(b) => b,
            Err(err) => {
                eprintln!(
                    "queue trigger of workflow {}/{}: {err}",
                    e.org, e.workflow.id
                );
                return;
            }
        };
        let delete = |id: &str| {
            if let Err(err) = local.delete_message(id) {
                eprintln!("deleting message {id} from local queue: {err}");
            }
        };
        for (id, why) in batch.rejected {
            let Some(m) = received.get(&id) else { continue };
            let payload = json!({"messageId": id, "queue": e.queue.queue,
                "body": queue::parse_body(&m.body), "attributes": {}});
            if crate::dead_letters::record_node_error(
                &self.state,
                &e.org,
                &e.workflow.id,
                "trigger.queue",
                payload,
                &why,
                m.receive_count,
            )
            .await
            .is_some()
            {
                delete(&id);
                self.status.send_modify(|s| s.dead_lettered += 1);
            }
        }
        for (id, input) in batch.accepted {
            let receives = received.get(&id).map_or(1, |m| m.receive_count);
            let started = start_run_of(
                &self.state,
                &e.org,
                &e.workflow,
                input.clone(),
                Some(format!("queue:{id}")),
                "queue",
                None,
            )
            .await;
            match started {
                Ok(created) => {
                    delete(&id);
                    self.status.send_modify(|s| match created {
                        Created::New(_) => s.started += 1,
                        Created::Existing(_) => s.existing += 1,
                    });
                }
                Err(err) if receives >= self.config.max_receives => {
                    if crate::dead_letters::record_node_error(
                        &self.state,
                        &e.org,
                        &e.workflow.id,
                        "trigger.queue",
                        input,
                        &crate::dead_letters::start_error(&err),
                        receives,
                    )
                    .await
                    .is_some()
                    {
                        delete(&id);
                        self.status.send_modify(|s| s.dead_lettered += 1);
                    }
                }
                Err(err) => {
                    eprintln!(
                        "message {id} of local queue {}: the run of workflow {}/{} could not start (receive {receives} of {}): {err}",
                        e.queue.queue, e.org, e.workflow.id, self.config.max_receives
                    );
                    self.status.send_modify(|s| s.failed_starts += 1);
                }
            }
        }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let Some(local) = self.state.local_queue.clone() else {
            eprintln!("queue poller: this deployment has no local queue");
            return;
        };
        let mut sends = local.subscribe_sends();
        let mut changes = self.state.trigger_changes.subscribe();
        loop {
            if *stop.borrow_and_update() {
                return;
            }
            sends.borrow_and_update();
            changes.borrow_and_update();
            let entries = self.triggers().await;
            let mut healthy = true;
            for e in &entries {
                healthy &= self.drain(&local, e).await;
            }
            // Wake when the earliest hidden message of a watched queue shows again.
            let queues: BTreeSet<&str> = entries.iter().map(|e| e.queue.queue.as_str()).collect();
            let mut wake: Option<i64> = None;
            for q in queues {
                match local.next_visible_ms(q) {
                    Ok(Some(t)) => wake = Some(wake.map_or(t, |w| w.min(t))),
                    Ok(None) => {}
                    Err(err) => {
                        eprintln!("reading local queue {q}: {err}");
                        healthy = false;
                    }
                }
            }
            if !healthy {
                // The local store failed: try again in a second rather than at once.
                wake = Some(now_ms() + 1000);
            }
            self.status.send_modify(|s| {
                s.passes += 1;
                s.triggers = entries.len();
            });
            let sleep = async {
                match wake {
                    Some(t) => SystemClock.sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                () = changed(&mut sends) => {}
                () = changed(&mut changes) => {}
                () = changed(&mut stop) => {}
            }
        }
    }
}

// ---------------------------------------------------------------- API: send to a local queue

/// The largest message body (bytes): SQS's 256 KiB.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// What sending did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentMessage {
    /// The message id (the run input's `messageId`).
    pub message_id: String,
    /// The queue.
    pub queue: String,
    /// Your organisation's published workflows that read the queue.
    pub workflows: Vec<String>,
}

/// The caller's organisation's published workflows whose trigger reads local queue `queue`.
async fn queue_readers<S: Store, R>(
    st: &AppState<S, R>,
    org: &str,
    queue: &str,
) -> ApiResult<Vec<String>> {
    let mut readers = Vec::new();
    let mut cursor = None;
    loop {
        let page = st
            .store
            .list_workflows(
                org,
                WorkflowQuery {
                    cursor,
                    limit: cm_store::MAX_PAGE,
                    ..WorkflowQuery::default()
                },
            )
            .await?;
        for wf in page.items {
            let Some(version) = wf.published_version else {
                continue;
            };
            let v = st.store.get_version(org, &wf.id, version).await?;
            let reads = trigger_node(&v.definition).is_some_and(|n| {
                n.get("type").and_then(Value::as_str) == Some("trigger.queue")
                    && n.pointer("/config/queue").and_then(Value::as_str) == Some(queue)
            });
            if reads {
                readers.push(wf.id);
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(readers),
        }
    }
}

#[utoipa::path(post, path = "/v1/queues/{queue}/messages", tag = "queues",
    params(("queue" = String, Path, description = "Queue name (1-80 of A-Z a-z 0-9 _ -)")),
    request_body(content = Object, description = "The message body: any JSON value, sent as its JSON text (the run input's `body` is this value)"),
    responses((status = 201, description = "Sent; the queue poller starts the runs", body = SentMessage),
              (status = 400, description = "Not a queue name", body = crate::error::ErrorBody),
              (status = 403, description = "Needs the editor role", body = crate::error::ErrorBody),
              (status = 404, description = "This deployment has no local queues, or no published workflow of your organisation reads the queue", body = crate::error::ErrorBody),
              (status = 413, description = "The message exceeds 256 KiB", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn send_message<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(queue): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<SentMessage>)> {
    caller.require(Role::Editor)?;
    let name_ok = !queue.is_empty()
        && queue.len() <= 80
        && queue
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !name_ok {
        return Err(ApiError::BadRequest(format!(
            "`{queue}` is not a queue name (1-80 of A-Z a-z 0-9 _ -)"
        )));
    }
    let local = st.local_queue.clone().ok_or_else(|| {
        ApiError::NotFound(
            "local queues are not available in this deployment (send to the SQS queue)".into(),
        )
    })?;
    let workflows = queue_readers(&st, &caller.org, &queue).await?;
    if workflows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no published workflow of your organisation reads queue `{queue}`: publish one whose trigger.queue has config.queue `{queue}`"
        )));
    }
    let text = body.to_string();
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the message is {} bytes; a queue message is at most {MAX_MESSAGE_BYTES}",
            text.len()
        )));
    }
    let message_id = local
        .send(&queue, &text, None, None, 0)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    audit(
        &st,
        &caller,
        "queue.send",
        format!("queue:{queue}"),
        json!({"messageId": message_id}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(SentMessage {
            message_id,
            queue,
            workflows,
        }),
    ))
}

// ---------------------------------------------------------------- deliveries from the cloud

/// Why a trigger event delivered by the cloud's workers (the SQS trigger consumer, the
/// EventBridge Scheduler target) started no run. Every variant leaves the event with its
/// sender: SQS redelivers the message and moves it to the dead-letter queue after its last
/// receive; EventBridge Scheduler retries the target and then uses its own dead-letter queue.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// No published workflow of the organisation has this trigger (a queue nobody reads, a
    /// schedule of a workflow deleted or re-published with another trigger).
    #[error("no published workflow of organisation `{org}` {what}")]
    NoWorkflow {
        /// The organisation.
        org: String,
        /// What was looked for ("reads queue `q`", "`wf` has a schedule trigger").
        what: String,
    },
    /// The event does not fit the workflow's trigger (e.g. a message body its schema refuses).
    #[error("workflow `{workflow}`: {error}")]
    Rejected {
        /// The workflow.
        workflow: String,
        /// The trigger's error.
        error: cm_nodes::NodeError,
    },
    /// The run could not start, or the store could not be read (worth retrying).
    #[error("workflow `{workflow}`: {error}")]
    Failed {
        /// The workflow (empty when the routes could not be listed).
        workflow: String,
        /// The error.
        error: ApiError,
    },
}

/// Starts the runs of one message of SQS queue `queue` sent for organisation `org`: one per
/// published workflow of `org` whose `trigger.queue` reads `queue` (as the embedded poller
/// does for a local queue), each idempotent by `queue:<message id>`, so a redelivered message
/// finds the runs it started. Any failure is an error, even after some runs started: the
/// consumer reports the message failed and the redelivery starts only what is missing.
pub async fn deliver_queue_message<S: Store + RouteIndex, R: Runtime>(
    st: &AppState<S, R>,
    org: &str,
    queue_name: &str,
    message: queue::QueueMessage,
) -> Result<Vec<Created<cm_store::RunRecord>>, DeliveryError> {
    let routes = st
        .store
        .list_routes("queue")
        .await
        .map_err(|e| DeliveryError::Failed {
            workflow: String::new(),
            error: e.into(),
        })?;
    let mut started = Vec::new();
    let mut found = false;
    for route in routes.iter().filter(|r| r.org == org) {
        let Some((workflow, _, config)) = published_trigger(st, route, "trigger.queue").await
        else {
            continue;
        };
        if !matches!(QueueConfig::parse(&config), Ok(q) if q.queue == queue_name) {
            continue;
        }
        found = true;
        let rejected = |error| DeliveryError::Rejected {
            workflow: workflow.id.clone(),
            error,
        };
        let batch = queue::accept(&config, vec![message.clone()]).map_err(rejected)?;
        if let Some((_, why)) = batch.rejected.into_iter().next() {
            return Err(rejected(why));
        }
        for (id, input) in batch.accepted {
            let run = start_run_of(
                st,
                org,
                &workflow,
                input,
                Some(format!("queue:{id}")),
                "queue",
                None,
            )
            .await
            .map_err(|error| DeliveryError::Failed {
                workflow: workflow.id.clone(),
                error,
            })?;
            started.push(run);
        }
    }
    if !found {
        return Err(DeliveryError::NoWorkflow {
            org: org.to_owned(),
            what: format!("reads queue `{queue_name}`"),
        });
    }
    Ok(started)
}

/// Starts the run of the tick at `scheduled_ms` of workflow `workflow_id`'s published
/// schedule (what the EventBridge Scheduler target does), idempotent by
/// `schedule:<scheduled_ms>` like the embedded scheduler's ticks.
pub async fn fire_schedule<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    org: &str,
    workflow_id: &str,
    scheduled_ms: i64,
) -> Result<Created<cm_store::RunRecord>, DeliveryError> {
    let route = Route {
        kind: "schedule".into(),
        key: format!("{org}/{workflow_id}"),
        org: org.to_owned(),
        workflow_id: workflow_id.to_owned(),
    };
    let Some((workflow, _, config)) = published_trigger(st, &route, "trigger.schedule").await
    else {
        return Err(DeliveryError::NoWorkflow {
            org: org.to_owned(),
            what: format!("`{workflow_id}` has a schedule trigger"),
        });
    };
    let trigger =
        ScheduleTrigger::from_config(&config).map_err(|error| DeliveryError::Rejected {
            workflow: workflow_id.to_owned(),
            error,
        })?;
    start_run_of(
        st,
        org,
        &workflow,
        trigger.run_input(scheduled_ms),
        Some(format!("schedule:{scheduled_ms}")),
        "scheduler",
        None,
    )
    .await
    .map_err(|error| DeliveryError::Failed {
        workflow: workflow_id.to_owned(),
        error,
    })
}
