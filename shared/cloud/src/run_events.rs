//! The run-events follower: EventBridge "Step Functions Execution Status Change" events →
//! the run's end and its node executions in the store.
//!
//! The api function records a run when it starts it; without this function a run's end is
//! only recorded when someone reads the run (the API asks Step Functions), and node
//! executions are never recorded. On an execution's terminal status this function reads its
//! history (`GetExecutionHistory`, from the last redrive) and feeds it through the same
//! [`RunTracker`] the embedded server follows its engine with, so the store gets the same node
//! executions and run end — and the table's stream carries them to WebSocket subscribers
//! (status-pusher). Where the history cannot be read (an Express execution: Step Functions
//! keeps none and sends no such events for them; a workflow version that no longer compiles)
//! the run's end is taken from the event itself.
//!
//! Events of executions the API did not start (other state machines, child executions) and
//! `RUNNING` events are ignored. Writes are idempotent (node executions are keyed by node and
//! step; a finished run is not finished again), so EventBridge's redeliveries are harmless.

use cm_api::AppState;
use cm_api::live::{RunTracker, parse_execution_arn, record};
use cm_api::runtime::Runtime;
use cm_store::{RunEnd, RunStatus, Store, StoreError};
use serde::Deserialize;
use serde_json::Value;

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
}

/// Why an event could not be recorded (the invocation fails; EventBridge retries it).
#[derive(Debug, thiserror::Error)]
pub enum RunEventError {
    /// The input is not a Step Functions status change event.
    #[error("not a Step Functions execution status change: {0}")]
    Invalid(String),
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
            RunEventError::Invalid(_) => "ConcertMaster.InvalidInput",
            RunEventError::Store { .. } => "ConcertMaster.Retryable",
        }
    }
}

/// Records what `event` says about a run.
pub async fn handle<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    event: Value,
) -> Result<Outcome, RunEventError> {
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
    let Some((org, workflow, run_id)) = parse_execution_arn(&d.execution_arn) else {
        return Ok(Outcome::Ignored(
            "not an execution of a ConcertMaster state machine",
        ));
    };
    let store_err = |error| RunEventError::Store {
        run: run_id.clone(),
        error,
    };
    let run = match st.store.get_run(&org, &run_id).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Ok(Outcome::Ignored("no such run")),
        Err(e) => return Err(store_err(e)),
    };
    if run.execution_arn != d.execution_arn {
        return Ok(Outcome::Ignored("another execution of the run's name"));
    }
    if let Some(nodes) = st
        .maps
        .get(&st.store, &org, &workflow, run.workflow_version)
        .await
        && let Ok(events) = st.runtime.history(&d.execution_arn, 0, usize::MAX).await
    {
        // From the last redrive: what ended before it was recorded by the event of that end.
        let from = events
            .iter()
            .filter(|e| e.kind == "ExecutionRedriven")
            .map(|e| e.id)
            .max()
            .unwrap_or(0);
        let mut tracker = RunTracker::new(&run_id, &workflow, nodes);
        let mut n = 0;
        let mut finished = false;
        for e in events.iter().filter(|e| e.id >= from) {
            for live in tracker.feed(e) {
                finished |= live.kind == "run.finished";
                record(&st.store, &org, &live, e).await;
                n += 1;
            }
        }
        if finished {
            return Ok(Outcome::FromHistory(n));
        }
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
    match st.store.finish_run(&org, &run_id, end).await {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(Outcome::FromEvent),
        Err(e) => Err(store_err(e)),
    }
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
