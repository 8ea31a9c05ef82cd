//! Approvals as the API sees them: list, get, decide. The embedded implementation reads the
//! local store's approvals and resumes runs on the engine; the cloud's comes with its adapters.

use crate::error::{ApiError, ApiResult};
use cm_nodes::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// An approval request with its status.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalView {
    /// Approval id.
    pub id: String,
    /// The run (execution name) waiting for it.
    pub run_id: String,
    /// The execution ARN.
    pub execution_arn: String,
    /// The workflow.
    pub workflow_id: String,
    /// The approval node.
    pub node_id: String,
    /// Title.
    pub title: String,
    /// Message.
    pub message: String,
    /// Who may decide.
    pub approvers: Vec<String>,
    /// The data to decide on.
    #[schema(value_type = Object)]
    pub data: Value,
    /// `pending`, `approved`, `rejected`.
    pub status: String,
    /// The decision, once decided.
    #[schema(value_type = Option<Object>)]
    pub decision: Option<Value>,
    /// Requested (ms).
    pub created_at_ms: i64,
    /// Expires (ms).
    pub expires_at_ms: Option<i64>,
}

/// A list of approvals (`GET /v1/approvals`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ApprovalList {
    /// Newest first.
    pub items: Vec<ApprovalView>,
}

/// Approvals port.
pub trait ApprovalDesk: Send + Sync + 'static {
    /// The approvals of organisation `org`'s runs (pending only with `pending`), newest first.
    fn list<'a>(
        &'a self,
        org: &'a str,
        pending: bool,
    ) -> BoxFuture<'a, ApiResult<Vec<ApprovalView>>>;
    /// One approval.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ApiResult<ApprovalView>>;
    /// Decides and resumes the run.
    fn decide<'a>(
        &'a self,
        id: &'a str,
        approve: bool,
        comment: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, ApiResult<ApprovalView>>;
}

/// The run id (execution name) of an execution ARN.
pub fn execution_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

fn view(a: cm_local::Approval) -> ApprovalView {
    let status = match a.status {
        cm_local::ApprovalStatus::Pending => "pending",
        cm_local::ApprovalStatus::Approved => "approved",
        cm_local::ApprovalStatus::Rejected => "rejected",
    };
    ApprovalView {
        id: a.request.id.clone(),
        run_id: execution_name(&a.request.execution_id).to_owned(),
        execution_arn: a.request.execution_id.clone(),
        workflow_id: a.request.workflow_id.clone(),
        node_id: a.request.node_id.clone(),
        title: a.request.title.clone(),
        message: a.request.message.clone(),
        approvers: a.request.approvers.clone(),
        data: a.request.data.clone(),
        status: status.into(),
        decision: a.decision,
        created_at_ms: a.request.created_ms,
        expires_at_ms: a.request.expires_ms,
    }
}

fn local_error(e: cm_local::LocalError) -> ApiError {
    match e {
        cm_local::LocalError::NotFound(m) => ApiError::NotFound(m),
        cm_local::LocalError::Conflict(m) => ApiError::Conflict(m),
        cm_local::LocalError::Engine(e) => e.into(),
        other => ApiError::Internal(other.to_string()),
    }
}

/// The embedded approvals: the local store + the engine.
pub struct LocalApprovals {
    /// The local store holding the requests.
    pub store: Arc<cm_local::LocalStore>,
    /// The engine running the waiting executions.
    pub engine: cm_engine::Engine,
}

impl ApprovalDesk for LocalApprovals {
    fn list<'a>(
        &'a self,
        org: &'a str,
        pending: bool,
    ) -> BoxFuture<'a, ApiResult<Vec<ApprovalView>>> {
        // The local store keeps every organisation's approvals; the organisation is in the
        // execution ARN (`…:<org>.<workflow>:<run>`).
        let r = self
            .store
            .approvals(pending)
            .map(|v| {
                v.into_iter()
                    .filter(|a| {
                        crate::live::parse_execution_arn(&a.request.execution_id)
                            .is_some_and(|(o, _, _)| o == org)
                    })
                    .map(view)
                    .collect()
            })
            .map_err(local_error);
        Box::pin(async move { r })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ApiResult<ApprovalView>> {
        let r = self.store.approval(id).map(view).map_err(local_error);
        Box::pin(async move { r })
    }

    fn decide<'a>(
        &'a self,
        id: &'a str,
        approve: bool,
        comment: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, ApiResult<ApprovalView>> {
        Box::pin(async move {
            cm_local::decide_approval(&self.store, &self.engine, id, approve, comment, by)
                .await
                .map(view)
                .map_err(local_error)
        })
    }
}
