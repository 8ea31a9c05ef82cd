//! Dead letters: trigger events that passed their trigger's checks but whose run could not
//! start (the runtime or the store failed), kept in the deployment's [`DeadLetters`] port
//! ([`AppState::dead_letters`](crate::state::Inner::dead_letters); embedded: the local store)
//! so nothing is lost, and the endpoints that list, re-drive and delete them.
//!
//! A webhook call or form submission whose run cannot start is answered with the error as
//! before (a 5xx) *and* recorded ([`record`]); a schedule tick is recorded at once; a queue
//! message after its last allowed receive. Input the trigger refuses (a bad signature, an
//! invalid submission) is answered with a 4xx and is not a dead letter.
//!
//! Letters carry their organisation ([`DeadLetter::org`]): the endpoints show and act on the
//! caller's organisation's letters only; another organisation's are 404s.

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::routes::{ApiPath, ApiQuery, audit, limit, now_ms, start_run_of};
use crate::runtime::Runtime;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cm_nodes::NodeError;
use cm_nodes::trigger::dead_letter::{self, DeadLetter, DeadLetters, Redrive};
use cm_store::{RunRecord, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// The error a dead letter records for a failed start: the API error's message under a stable
/// name — `ConcertMaster.Internal` for a failed dependency (runtime, store), else
/// `ConcertMaster.StartFailed` with the API error code in front of the message
/// (`conflict: workflow … is not published …`).
pub fn start_error(e: &ApiError) -> NodeError {
    match e {
        ApiError::Internal(m) => NodeError::Internal(m.clone()),
        other => NodeError::Plugin {
            name: "ConcertMaster.StartFailed".into(),
            message: format!("{}: {other}", other.status_code().1),
        },
    }
}

/// Records a dead letter for an event of `trigger` (`trigger.webhook`, …) of workflow
/// `workflow_id` of `org` whose run could not start with `payload` as input. Returns the
/// letter, or `None` (logged) when the deployment has no dead-letter queue or storing failed.
pub async fn record<S, R>(
    st: &AppState<S, R>,
    org: &str,
    workflow_id: &str,
    trigger: &str,
    payload: Value,
    error: &ApiError,
) -> Option<DeadLetter> {
    record_node_error(
        st,
        org,
        workflow_id,
        trigger,
        payload,
        &start_error(error),
        1,
    )
    .await
}

/// [`record`] with the failure as a `NodeError` (a queue message `queue::accept` rejected, a
/// failed start as [`start_error`] names it) after `attempts` failed attempts.
pub async fn record_node_error<S, R>(
    st: &AppState<S, R>,
    org: &str,
    workflow_id: &str,
    trigger: &str,
    payload: Value,
    error: &NodeError,
    attempts: u32,
) -> Option<DeadLetter> {
    let event = format!("{trigger} event of workflow {org}/{workflow_id}");
    let Some(dlq) = &st.dead_letters else {
        eprintln!(
            "{event} lost: its run could not start ({}) and this deployment has no dead-letter queue",
            error.cause()
        );
        return None;
    };
    let mut letter = match DeadLetter::new(workflow_id, trigger, payload, error, now_ms()) {
        Ok(l) => l.in_org(org),
        Err(e) => {
            eprintln!("{event} lost: making its dead letter failed: {e}");
            return None;
        }
    };
    letter.attempts = attempts.max(1);
    match dlq.put(letter.clone()).await {
        Ok(()) => {
            eprintln!(
                "{event}: the run could not start ({}: {}); kept as dead letter {}",
                letter.error, letter.message, letter.id
            );
            Some(letter)
        }
        Err(e) => {
            eprintln!(
                "{event} lost: its run could not start ({}) and storing the dead letter failed: {e}",
                error.cause()
            );
            None
        }
    }
}

fn dlq<S, R>(st: &AppState<S, R>) -> ApiResult<&Arc<dyn DeadLetters>> {
    st.dead_letters.as_ref().ok_or_else(|| {
        ApiError::NotFound("dead letters are not available in this deployment".into())
    })
}

fn port_error(e: NodeError) -> ApiError {
    ApiError::Internal(format!("dead letters: {e}"))
}

/// The caller's organisation's letter `id` (another organisation's is a 404).
async fn my_letter(dlq: &dyn DeadLetters, caller: &Caller, id: &str) -> ApiResult<DeadLetter> {
    match dlq.get(id).await.map_err(port_error)? {
        Some(l) if l.org == caller.org => Ok(l),
        _ => Err(ApiError::NotFound(format!(
            "dead letter `{id}` does not exist"
        ))),
    }
}

/// A dead letter as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    /// Id (32 hex digits).
    pub id: String,
    /// The workflow whose run could not start.
    pub workflow_id: String,
    /// The trigger's node type (`trigger.webhook`, `trigger.form`, `trigger.schedule`,
    /// `trigger.queue`).
    pub trigger: String,
    /// The run input the run is started with when re-driven.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// The last failure's stable name (`ConcertMaster.Internal`, `ConcertMaster.StartFailed`,
    /// `ConcertMaster.InvalidInput`, …).
    pub error: String,
    /// The last failure's message.
    pub message: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the first attempt failed (ms).
    pub first_failed_ms: i64,
    /// When the last attempt failed (ms).
    pub last_failed_ms: i64,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(l: DeadLetter) -> Self {
        DeadLetterView {
            id: l.id,
            workflow_id: l.workflow_id,
            trigger: l.trigger,
            payload: l.payload,
            error: l.error,
            message: l.message,
            attempts: l.attempts,
            first_failed_ms: l.first_failed_ms,
            last_failed_ms: l.last_failed_ms,
        }
    }
}

/// A list of dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterList {
    /// Oldest first.
    pub items: Vec<DeadLetterView>,
}

/// Dead-letter list query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Only this workflow's letters.
    pub workflow_id: Option<String>,
    /// At most this many, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/dead-letters", tag = "dead letters", params(DeadLetterQuery),
    responses((status = 200, description = "Your organisation's dead letters, oldest first", body = DeadLetterList),
              (status = 403, description = "Needs the editor role", body = crate::error::ErrorBody),
              (status = 404, description = "This deployment has no dead-letter queue", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_dead_letters<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DeadLetterQuery>,
) -> ApiResult<Json<DeadLetterList>> {
    caller.require(Role::Editor)?;
    let n = cm_store::check_limit(limit(q.limit))?;
    let dlq = dlq(&st)?;
    // The port lists by workflow across organisations; keep the caller's.
    let items = dlq
        .list(q.workflow_id.as_deref(), usize::MAX)
        .await
        .map_err(port_error)?
        .into_iter()
        .filter(|l| l.org == caller.org)
        .take(n)
        .map(DeadLetterView::from)
        .collect();
    Ok(Json(DeadLetterList { items }))
}

#[utoipa::path(post, path = "/v1/dead-letters/{id}/redrive", tag = "dead letters",
    params(("id" = String, Path, description = "Dead letter id")),
    responses((status = 200, description = "The run started; the letter is removed", body = Object),
              (status = 404, description = "No such dead letter in your organisation", body = crate::error::ErrorBody),
              (status = 409, description = "The run cannot start (the workflow is not published, or was deleted); the letter is kept with the failure recorded", body = crate::error::ErrorBody),
              (status = 500, description = "The runtime or the store failed again; the letter is kept with the failure recorded", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn redrive_dead_letter<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<RunRecord>> {
    caller.require(Role::Editor)?;
    let dlq = dlq(&st)?.clone();
    my_letter(&*dlq, &caller, &id).await?;
    let mut failure: Option<ApiError> = None;
    let outcome = dead_letter::redrive(&*dlq, &id, now_ms(), |letter| {
        let (st, caller, failure) = (&st, &caller, &mut failure);
        async move {
            let started = async {
                let wf = st
                    .store
                    .get_workflow(&caller.org, &letter.workflow_id)
                    .await
                    .map_err(|e| match e {
                        cm_store::StoreError::NotFound { .. } => ApiError::Conflict(format!(
                            "workflow `{}` no longer exists; delete the dead letter",
                            letter.workflow_id
                        )),
                        other => other.into(),
                    })?;
                // Named after the letter: a redrive repeated after a crash finds the run.
                start_run_of(
                    st,
                    &caller.org,
                    &wf,
                    letter.payload.clone(),
                    Some(format!("dead-letter:{}", letter.id)),
                    &caller.subject,
                    None,
                )
                .await
            }
            .await;
            match started {
                Ok(run) => Ok(run.into_inner()),
                Err(e) => {
                    let recorded = start_error(&e);
                    *failure = Some(e);
                    Err(recorded)
                }
            }
        }
    })
    .await
    .map_err(port_error)?;
    match outcome {
        Redrive::Started(run) => {
            audit(
                &st,
                &caller,
                "dead-letter.redrive",
                format!("dead-letter:{id}"),
                json!({"workflowId": run.workflow_id, "runId": run.id}),
            )
            .await?;
            Ok(Json(run))
        }
        Redrive::Failed(letter) => {
            audit(
                &st,
                &caller,
                "dead-letter.redrive",
                format!("dead-letter:{id}"),
                json!({"workflowId": letter.workflow_id, "failed": letter.error, "attempts": letter.attempts}),
            )
            .await?;
            Err(failure.unwrap_or_else(|| ApiError::Internal(letter.message.clone())))
        }
        Redrive::NotFound => Err(ApiError::NotFound(format!(
            "dead letter `{id}` does not exist"
        ))),
    }
}

#[utoipa::path(delete, path = "/v1/dead-letters/{id}", tag = "dead letters",
    params(("id" = String, Path, description = "Dead letter id")),
    responses((status = 204, description = "Deleted"),
              (status = 403, description = "Needs the admin role", body = crate::error::ErrorBody),
              (status = 404, description = "No such dead letter in your organisation", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn delete_dead_letter<S: Store, R: Runtime>(
    State(st): State<AppState<S, R>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    let dlq = dlq(&st)?;
    let letter = my_letter(&**dlq, &caller, &id).await?;
    if !dlq.remove(&id).await.map_err(port_error)? {
        return Err(ApiError::NotFound(format!(
            "dead letter `{id}` does not exist"
        )));
    }
    audit(
        &st,
        &caller,
        "dead-letter.delete",
        format!("dead-letter:{id}"),
        json!({"workflowId": letter.workflow_id, "trigger": letter.trigger}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
