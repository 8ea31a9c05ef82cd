//! The run-events follower: what Step Functions says about executions → runs' node
//! executions and ends in the store, which the table's stream carries to WebSocket
//! subscribers (status-pusher).
//!
//! It takes two kinds of events:
//!
//! - **execution logs** (`{"awslogs": {"data": …}}`, a CloudWatch Logs subscription of the
//!   state machines' log group: base64 of gzip of JSON, [`decode_logs`]). Each record is one
//!   history event of an execution ([`cm_runtime_sfn::logs`]). While a run is in flight its
//!   records are fed through the same [`RunTracker`] the embedded server follows its engine
//!   with, so node executions are recorded as the nodes start and end (a visit whose start
//!   came in an earlier batch is continued from its `running` node execution). When a batch
//!   holds an execution's end, the run is recorded from its whole history, as below. This is
//!   the only way Express runs are followed: Step Functions keeps no history of them and sends
//!   no status-change events for them; their history is read back from the log group.
//! - **EventBridge "Step Functions Execution Status Change"** (Standard executions): on a
//!   terminal status the run is recorded from its whole history.
//!
//! Recording a run's end reads its history (`GetExecutionHistory` from the last redrive, or
//! an Express execution's log records) and records every node execution and the end. Where
//! the history cannot be read or is not whole yet (a workflow version that no longer compiles,
//! log records not yet searchable) the end is taken from the event itself.
//!
//! Where the whole history is not readable yet (log records not yet searchable, throttling)
//! the end is recorded from the event and the invocation fails ([`RunEventError::Incomplete`],
//! `ConcertMaster.Retryable`), so that Lambda's retries of the asynchronous invocation record
//! the node executions. An end from before the execution's last redrive is stale and ignored.
//!
//! Events of executions the API did not start (other state machines, child executions) are
//! ignored, as are EventBridge events of Express executions (emulators send them; AWS does
//! not, and the logs are followed instead). Writes only move forward: node executions are
//! keyed by node and step, a visit that has ended is not written `running` again, what is
//! stored already is not rewritten, and a finished run is not finished again — so batches
//! delivered again, late or out of order change nothing that is recorded. What a batch cannot
//! place for sure (the end of a visit whose start it does not have and the store does not
//! know; a task failure among concurrent visits) is left to the end's whole history.

use cm_api::AppState;
use cm_api::live::{RunTracker, node_execution, parse_execution_arn, record};
use cm_api::runtime::{Runtime, RuntimeEvent};
use cm_runtime_sfn::history::{RawEvent, Steps};
use cm_runtime_sfn::logs::{self, LogRecord};
use cm_store::{NodeExecution, RunEnd, RunRecord, RunStatus, Store, StoreError};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;

/// The EventBridge event (the fields used).
#[derive(Debug, Clone, Deserialize)]
pub struct StatusChangeEvent {
    /// `Step Functions Execution Status Change`.
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// `aws.states`.
    pub source: String,
    /// The execution.
    pub detail: StatusChange,
}

/// The event's `detail` (the fields used).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    /// The execution.
    pub execution_arn: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`, `PENDING_REDRIVE`.
    pub status: String,
    /// The output (JSON text), when succeeded.
    #[serde(default)]
    pub output: Option<String>,
    /// The error name, when failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The cause, when failed.
    #[serde(default)]
    pub cause: Option<String>,
    /// When it stopped (ms).
    #[serde(default)]
    pub stop_date: Option<i64>,
}

/// What one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a terminal status of a run the API started: nothing to do.
    Ignored(&'static str),
    /// Recorded from the history: this many live events (node executions and the end).
    FromHistory(usize),
    /// Recorded the end from the event alone.
    FromEvent,
    /// Execution logs: this many runs followed, this many live events recorded.
    FromLogs {
        /// Runs of the API whose records were in the batch.
        runs: usize,
        /// Live events recorded (node starts and ends, run ends).
        events: usize,
    },
}

/// Why an event could not be recorded (the invocation fails; EventBridge retries it).
#[derive(Debug, thiserror::Error)]
pub enum RunEventError {
    /// The input is neither a Step Functions status change event nor a CloudWatch Logs
    /// subscription payload.
    #[error("not a Step Functions execution status change: {0}")]
    Invalid(String),
    /// A CloudWatch Logs subscription payload that does not decode (base64, gzip, JSON).
    #[error("CloudWatch Logs payload: {0}")]
    InvalidLogs(String),
    /// The run's end was recorded from the event, but its whole history (for its node
    /// executions) could not be read yet: the invocation fails so that it is retried.
    #[error("run {run}: its end is recorded, its node executions are not yet: {why}")]
    Incomplete {
        /// The run.
        run: String,
        /// Why the history is not at hand.
        why: String,
    },
    /// The store failed.
    #[error("run {run}: {error}")]
    Store {
        /// The run.
        run: String,
        /// The error.
        error: StoreError,
    },
}

impl RunEventError {
    /// The Lambda error type (`errorType`).
    pub fn error_type(&self) -> &'static str {
        match self {
            RunEventError::Invalid(_) | RunEventError::InvalidLogs(_) => {
                "ConcertMaster.InvalidInput"
            }
            RunEventError::Store { .. } | RunEventError::Incomplete { .. } => {
                "ConcertMaster.Retryable"
            }
        }
    }
}

/// Records what `event` (a status change event or a CloudWatch Logs payload) says about runs.
pub async fn handle<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    event: Value,
) -> Result<Outcome, RunEventError> {
    if let Some(data) = event.pointer("/awslogs/data") {
        let data = data
            .as_str()
            .ok_or_else(|| RunEventError::InvalidLogs("`awslogs.data` is not a string".into()))?;
        return handle_logs(st, decode_logs(data)?).await;
    }
    let event: StatusChangeEvent =
        serde_json::from_value(event).map_err(|e| RunEventError::Invalid(e.to_string()))?;
    if event.source != "aws.states" || event.detail_type != "Step Functions Execution Status Change"
    {
        return Err(RunEventError::Invalid(format!(
            "source `{}`, detail-type `{}`",
            event.source, event.detail_type
        )));
    }
    let d = event.detail;
    let Some(status) = RunStatus::parse(&d.status).filter(|s| *s != RunStatus::Running) else {
        return Ok(Outcome::Ignored("not a terminal status"));
    };
    if d.execution_arn.split(':').nth(5) == Some("express") {
        return Ok(Outcome::Ignored(
            "an Express execution: followed through its execution logs",
        ));
    }
    let Some((org, workflow, run_id)) = parse_execution_arn(&d.execution_arn) else {
        return Ok(Outcome::Ignored(
            "not an execution of a ConcertMaster state machine",
        ));
    };
    let run = match st.store.get_run(&org, &run_id).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Ok(Outcome::Ignored("no such run")),
        Err(error) => return Err(RunEventError::Store { run: run_id, error }),
    };
    if run.execution_arn != d.execution_arn {
        return Ok(Outcome::Ignored("another execution of the run's name"));
    }
    let end = RunEnd {
        status,
        output: d
            .output
            .as_deref()
            .map(|t| serde_json::from_str(t).unwrap_or(Value::String(t.to_owned()))),
        error: d.error,
        cause: d.cause,
        at_ms: d.stop_date.unwrap_or_else(cm_api::routes::now_ms),
    };
    record_end(st, &org, &workflow, &run, end, None, &[]).await
}

/// A run's whole history: the runtime's (`GetExecutionHistory`, or an Express execution's
/// log records) merged with `batch` (records just delivered, maybe not yet searchable), or
/// `batch` alone when it is a whole execution. Ids must run 1…n without a gap.
async fn whole_history<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    run: &RunRecord,
    batch: &[RawEvent],
) -> Result<Vec<RuntimeEvent>, String> {
    let from_batch = |raw: Vec<RawEvent>| {
        let mut steps = Steps::new();
        raw.into_iter().map(|e| steps.event(e)).collect()
    };
    if batch.first().is_some_and(|e| e.id == 1) && logs::is_complete(batch) {
        return Ok(from_batch(batch.to_vec()));
    }
    let history = st
        .runtime
        .history_of_run(&run.execution_arn, run.started_at_ms, 0, usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    let dense =
        |ids: &mut dyn Iterator<Item = u64>| ids.enumerate().all(|(i, id)| id == i as u64 + 1);
    let known: std::collections::HashSet<u64> = history.iter().map(|e| e.id).collect();
    if dense(&mut history.iter().map(|e| e.id)) && batch.iter().all(|e| known.contains(&e.id)) {
        return Ok(history);
    }
    let mut raw: BTreeMap<u64, RawEvent> = history
        .into_iter()
        .map(|e| (e.id, RawEvent::from_aws_json(e.aws, e.timestamp_ms)))
        .collect();
    for e in batch {
        raw.entry(e.id).or_insert_with(|| e.clone());
    }
    if !dense(&mut raw.keys().copied()) {
        let have = raw.len();
        let last = raw.keys().next_back().copied().unwrap_or(0);
        return Err(format!(
            "{have} of its {last} events are readable (log records not yet searchable?)"
        ));
    }
    Ok(from_batch(raw.into_values().collect()))
}

/// Records a run's end: from its whole history (node executions and the end) when it can be
/// read; else `end` alone, then [`RunEventError::Incomplete`] (retried). `end_id`: the id of
/// the end event when it came from the execution's records (an end from before the
/// execution's last redrive is stale and ignored); `batch`: the records just delivered.
async fn record_end<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    org: &str,
    workflow: &str,
    run: &RunRecord,
    end: RunEnd,
    end_id: Option<u64>,
    batch: &[RawEvent],
) -> Result<Outcome, RunEventError> {
    let store_err = |error| RunEventError::Store {
        run: run.id.clone(),
        error,
    };
    let finish_from_event = |end: RunEnd| async move {
        match cm_api::live::finish_run(&st.store, org, &run.id, end).await {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(Outcome::FromEvent),
            Err(error) => Err(store_err(error)),
        }
    };
    // A version that no longer compiles has no state → node map: the end is all there is.
    let Some(nodes) = st
        .maps
        .get(&st.store, org, workflow, run.workflow_version)
        .await
    else {
        return finish_from_event(end).await;
    };
    let events = match whole_history(st, run, batch).await {
        Ok(events) => events,
        Err(why) => {
            finish_from_event(end).await?;
            return Err(RunEventError::Incomplete {
                run: run.id.clone(),
                why,
            });
        }
    };
    // From the last redrive: what ended before it was recorded by the event of that end.
    let from = events
        .iter()
        .filter(|e| e.kind == "ExecutionRedriven")
        .map(|e| e.id)
        .max()
        .unwrap_or(0);
    if end_id.is_some_and(|id| id < from) {
        return Ok(Outcome::Ignored(
            "an end from before the execution's last redrive",
        ));
    }
    // Each node execution's final state, written only where the store (the execution logs,
    // followed while the run was in flight) does not have it already: rewriting a visit as
    // running, then ended, would flap its status and send its frames again.
    let mut tracker = RunTracker::new(&run.id, workflow, nodes);
    let mut finals: Vec<NodeExecution> = Vec::new();
    let mut finished = None;
    for e in events.iter().filter(|e| e.id >= from) {
        for live in tracker.feed(e) {
            if let Some(node) = node_execution(&live, e) {
                match finals
                    .iter_mut()
                    .find(|n| n.node_id == node.node_id && n.step == node.step)
                {
                    Some(n) => *n = node,
                    None => finals.push(node),
                }
            } else if live.kind == "run.finished" {
                finished = Some((live, e));
            }
        }
    }
    let Some((live, e)) = finished else {
        finish_from_event(end).await?;
        return Err(RunEventError::Incomplete {
            run: run.id.clone(),
            why: "its history has no end yet".into(),
        });
    };
    let recorded = st
        .store
        .list_node_executions(org, &run.id)
        .await
        .map_err(store_err)?;
    let mut n = 0;
    for node in finals {
        if recorded.contains(&node) {
            continue;
        }
        match st.store.put_node_execution(org, &run.id, node).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => n += 1,
            Err(error) => return Err(store_err(error)),
        }
    }
    record(&st.store, org, &live, e).await.map_err(store_err)?;
    Ok(Outcome::FromHistory(n + 1))
}

/// A CloudWatch Logs subscription message (the fields used).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsMessage {
    /// `DATA_MESSAGE`, or `CONTROL_MESSAGE` (CloudWatch Logs checking the destination).
    pub message_type: String,
    /// The log group.
    #[serde(default)]
    pub log_group: String,
    /// The records.
    #[serde(default)]
    pub log_events: Vec<LogsEvent>,
}

/// One record of a [`LogsMessage`].
#[derive(Debug, Clone, Deserialize)]
pub struct LogsEvent {
    /// When it was logged (ms).
    #[serde(default)]
    pub timestamp: i64,
    /// The record (a Step Functions execution log record: JSON text).
    pub message: String,
}

/// Largest decompressed payload accepted (a subscription batch is at most 1 MB of records).
const MAX_LOGS_PAYLOAD: u64 = 16 << 20;

/// Decodes `awslogs.data`: base64 of gzip of a [`LogsMessage`].
pub fn decode_logs(data: &str) -> Result<LogsMessage, RunEventError> {
    use base64::Engine;
    let gz = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| RunEventError::InvalidLogs(format!("not base64: {e}")))?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .take(MAX_LOGS_PAYLOAD + 1)
        .read_to_end(&mut json)
        .map_err(|e| RunEventError::InvalidLogs(format!("not gzip: {e}")))?;
    if json.len() as u64 > MAX_LOGS_PAYLOAD {
        return Err(RunEventError::InvalidLogs(format!(
            "more than {MAX_LOGS_PAYLOAD} bytes decompressed"
        )));
    }
    serde_json::from_slice(&json)
        .map_err(|e| RunEventError::InvalidLogs(format!("not a subscription message: {e}")))
}

/// Follows the execution log records of one subscription batch.
pub async fn handle_logs<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    message: LogsMessage,
) -> Result<Outcome, RunEventError> {
    if message.message_type != "DATA_MESSAGE" {
        return Ok(Outcome::Ignored("not a data message"));
    }
    let mut by_execution: BTreeMap<String, Vec<LogRecord>> = BTreeMap::new();
    let mut malformed = 0;
    for e in &message.log_events {
        match logs::parse_record(&e.message, e.timestamp) {
            Ok(r) => by_execution
                .entry(r.execution_arn.clone())
                .or_default()
                .push(r),
            Err(_) => malformed += 1,
        }
    }
    if malformed > 0 {
        tracing::warn!(
            malformed,
            log_group = %message.log_group,
            "records that are not Step Functions execution log records were skipped"
        );
    }
    let (mut runs, mut events) = (0, 0);
    // Every execution of the batch is followed; the first failure fails the invocation
    // afterwards, so that it is retried (what was recorded is recorded again, unchanged).
    let mut failure = None;
    for (arn, records) in by_execution {
        match follow_execution(st, &arn, records).await {
            Ok(Some(n)) => {
                runs += 1;
                events += n;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, execution = %arn, "execution records not recorded");
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(Outcome::FromLogs { runs, events }),
    }
}

/// Follows one execution's records of a batch; `None` when it is no run of the API's.
async fn follow_execution<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    arn: &str,
    records: Vec<LogRecord>,
) -> Result<Option<usize>, RunEventError> {
    let Some((org, workflow, run_id)) = parse_execution_arn(arn) else {
        return Ok(None);
    };
    let run = match st.store.get_run(&org, &run_id).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(RunEventError::Store { run: run_id, error }),
    };
    if run.execution_arn != arn {
        return Ok(None);
    }
    let batch = logs::execution_events(records, arn);
    let running = run.status == RunStatus::Running;
    let Some(end) = batch.iter().find(|e| logs::is_terminal(&e.kind)) else {
        return if running {
            Ok(Some(
                follow(st, &org, &workflow, &run, batch.clone()).await?,
            ))
        } else {
            Ok(Some(0))
        };
    };
    let (end_id, end) = (end.id, run_end(end));
    // The batch first, while the run is in flight: nodes it shows are recorded even if the
    // history is not readable yet.
    let mut n = 0;
    if running {
        n += follow(st, &org, &workflow, &run, batch.clone()).await?;
    }
    n += match record_end(st, &org, &workflow, &run, end, Some(end_id), &batch).await? {
        Outcome::FromHistory(k) => k,
        Outcome::Ignored(_) => 0,
        _ => 1,
    };
    Ok(Some(n))
}

/// A run's end from an execution's terminal event.
fn run_end(e: &RawEvent) -> RunEnd {
    let end = logs::execution_end(e);
    RunEnd {
        status: end.status,
        output: end.output,
        error: end.error,
        cause: end.cause,
        at_ms: e.timestamp_ms,
    }
}

/// Records the node starts and ends of a piece of a run's events (in id order); returns how
/// many. The run's end is left to [`record_end`].
async fn follow<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    org: &str,
    workflow: &str,
    run: &RunRecord,
    batch: Vec<RawEvent>,
) -> Result<usize, RunEventError> {
    let Some(nodes) = st
        .maps
        .get(&st.store, org, workflow, run.workflow_version)
        .await
    else {
        return Ok(0);
    };
    let mut steps = Steps::new();
    let mut events: Vec<RuntimeEvent> = batch.into_iter().map(|e| steps.event(e)).collect();
    let mut tracker = RunTracker::new(&run.id, workflow, nodes.clone());
    // Events of a visit whose entry came in an earlier batch: the walk back from them finds no
    // entry. An exit then got its own id as step key; a task event (`TaskFailed`, …) none.
    // They belong to a visit recorded `running` by an earlier batch: an exit to the latest
    // one of its node before it, a task event to the only one open before it. Where that is
    // not known (batches delivered out of order; a failure among concurrent visits), the
    // exit is not reported: the run's end records it from the whole history, rather than a
    // guess now.
    let orphan_exit =
        |e: &RuntimeEvent| e.kind.ends_with("StateExited") && e.step == e.id.to_string();
    let orphan_task = |e: &RuntimeEvent| e.kind.starts_with("Task") && e.step.is_empty();
    let store_err = |error| RunEventError::Store {
        run: run.id.clone(),
        error,
    };
    let recorded = st
        .store
        .list_node_executions(org, &run.id)
        .await
        .map_err(store_err)?;
    if events.iter().any(|e| orphan_exit(e) || orphan_task(e)) {
        let open: Vec<(u64, &NodeExecution)> = recorded
            .iter()
            .filter(|x| x.status == "running")
            .filter_map(|x| Some((x.step.parse::<u64>().ok()?, x)))
            .collect();
        let mut uncertain = false;
        for e in events.iter_mut() {
            let visit = if orphan_exit(e) {
                let node = e
                    .details
                    .get("name")
                    .and_then(Value::as_str)
                    .and_then(|n| nodes.get(n));
                open.iter()
                    .filter(|(step, x)| Some(&x.node_id) == node && *step < e.id)
                    .max_by_key(|(step, _)| *step)
            } else if orphan_task(e) {
                let before: Vec<&(u64, &NodeExecution)> =
                    open.iter().filter(|(step, _)| *step < e.id).collect();
                match before.as_slice() {
                    [one] => Some(*one),
                    _ => None,
                }
            } else {
                continue;
            };
            match visit {
                Some((step, x)) => {
                    e.step = step.to_string();
                    tracker.resume_visit(&e.step, &x.node_id, x.started_at_ms, x.error.as_deref());
                }
                None => {
                    // Only a failure (or a retry's success after one) changes how a visit
                    // ends; other task events (scheduled, started, …) are harmless.
                    uncertain |= match e.kind.as_str() {
                        "TaskFailed" | "TaskTimedOut" => true,
                        "TaskSucceeded" => open.iter().any(|(_, x)| x.error.is_some()),
                        _ => false,
                    };
                    e.step.clear();
                }
            }
        }
        // Exits of unknown visits are not reported; nor, when a task event could not be
        // placed (it may be the failure of one of them), exits of visits from earlier batches.
        let resumed = tracker.open_steps();
        events.retain(|e| {
            !(e.kind.ends_with("StateExited")
                && (e.step.is_empty() || (uncertain && resumed.contains(&e.step))))
        });
    }
    // Writes only move a visit forward: a batch delivered again, late or out of order
    // neither writes `running` over a visit that has ended nor writes what is there already.
    let ended = |node: &NodeExecution| {
        recorded.iter().any(|x| {
            x.node_id == node.node_id && x.step == node.step && (x == node || x.status != "running")
        })
    };
    let mut n = 0;
    for e in &events {
        for live in tracker.feed(e) {
            // The end is recorded from the whole history (`record_end`).
            let Some(node) = node_execution(&live, e) else {
                continue;
            };
            if ended(&node) {
                continue;
            }
            match st.store.put_node_execution(org, &run.id, node).await {
                Ok(()) | Err(StoreError::NotFound { .. }) => n += 1,
                Err(error) => return Err(store_err(error)),
            }
        }
    }
    // A visit that failed (its task did) and has not ended yet: keep the error with it, so
    // the batch that ends it reports it failed.
    for (step, node, started_ms, error) in tracker.open_failures() {
        let pending = NodeExecution {
            node_id: node,
            step,
            status: "running".into(),
            started_at_ms: started_ms,
            ended_at_ms: None,
            output_preview: None,
            error: Some(error),
        };
        if ended(&pending) {
            continue;
        }
        match st.store.put_node_execution(org, &run.id, pending).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => {}
            Err(error) => return Err(store_err(error)),
        }
    }
    Ok(n)
}

/// The run-events function's handler: [`handle`], answered with what it did.
pub async fn lambda_handler<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Diagnostic> {
    // Boxed: the future is deep enough to overflow layout computation in the binary.
    match Box::pin(handle(st, event.payload)).await {
        Ok(outcome) => {
            tracing::info!(?outcome, "run event");
            Ok(serde_json::json!({"outcome": format!("{outcome:?}")}))
        }
        Err(e) => {
            tracing::warn!(error = %e, "run event not recorded");
            Err(crate::diagnostic(e.error_type(), e))
        }
    }
}
