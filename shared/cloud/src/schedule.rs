//! The EventBridge Scheduler target: one invocation per tick of a published schedule trigger.
//!
//! Publishing a `trigger.schedule` workflow in the cloud makes a schedule (group
//! `concertmaster`, named after the state machine) whose target is this function, with the
//! input template
//!
//! ```json
//! {"org": "<org>", "workflowId": "<workflow>", "scheduledTime": "<aws.scheduler.scheduled-time>"}
//! ```
//!
//! The run starts with the input the embedded scheduler gives a tick
//! (`{"scheduledTime", "input"}`) and idempotency key `schedule:<scheduled ms>`, so a retried
//! invocation finds the run it started. A failure is the invocation's error: Scheduler retries
//! it (its retry policy) and then sends the event to the schedule's dead-letter queue.

use cm_api::AppState;
use cm_api::runtime::Runtime;
use cm_api::triggers::{DeliveryError, fire_schedule};
use cm_store::{Created, Store};
use serde::Deserialize;
use serde_json::{Value, json};

/// The target's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tick {
    /// The organisation.
    pub org: String,
    /// The workflow.
    pub workflow_id: String,
    /// When the tick was scheduled (RFC 3339, as Scheduler's `<aws.scheduler.scheduled-time>`).
    pub scheduled_time: String,
}

/// Why a tick started no run.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The input is not a tick (the message names the problem).
    #[error("not a schedule tick: {0}")]
    Invalid(String),
    /// The delivery failed.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

impl TickError {
    /// The Lambda error type (`errorType`): stable names for alarms and log queries.
    pub fn error_type(&self) -> &'static str {
        match self {
            TickError::Invalid(_) => "ConcertMaster.InvalidInput",
            TickError::Delivery(DeliveryError::NoWorkflow { .. }) => "ConcertMaster.NotPublished",
            TickError::Delivery(DeliveryError::Rejected { .. }) => "ConcertMaster.InvalidConfig",
            TickError::Delivery(DeliveryError::Failed { .. }) => "ConcertMaster.Retryable",
        }
    }
}

/// Starts the tick's run; answers `{"runId", "created"}`.
pub async fn handle<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    event: Value,
) -> Result<Value, TickError> {
    let tick: Tick =
        serde_json::from_value(event).map_err(|e| TickError::Invalid(e.to_string()))?;
    let at = chrono::DateTime::parse_from_rfc3339(&tick.scheduled_time)
        .map_err(|e| {
            TickError::Invalid(format!(
                "scheduledTime `{}` is not an RFC 3339 time: {e}",
                tick.scheduled_time
            ))
        })?
        .timestamp_millis();
    let run = fire_schedule(st, &tick.org, &tick.workflow_id, at).await?;
    let (run, created) = match run {
        Created::New(r) => (r, true),
        Created::Existing(r) => (r, false),
    };
    tracing::info!(org = %tick.org, workflow = %tick.workflow_id, run = %run.id, created, "schedule tick");
    Ok(json!({"runId": run.id, "created": created}))
}

/// The scheduler function's handler: [`handle`], a failure as its [`TickError::error_type`].
pub async fn lambda_handler<S: Store, R: Runtime>(
    st: &AppState<S, R>,
    event: lambda_runtime::LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Diagnostic> {
    // Boxed: the future is deep enough to overflow layout computation in the binary.
    Box::pin(handle(st, event.payload)).await.map_err(|e| {
        tracing::warn!(error = %e, "schedule tick started no run");
        crate::diagnostic(e.error_type(), e)
    })
}
