//! The cloud's approval desk: [`DynamoApprovals`] implements the API's [`ApprovalDesk`] over
//! the approvals the node-runner records in the DynamoDB table ([`DynamoStore`]) and the
//! runtime's `SendTaskSuccess` (Step Functions in production), as `cm_local::decide_approval`
//! does over SQLite and the embedded engine: mark the approval decided (conditional on it
//! being pending), then resume the run with `cm_nodes::approval::decision_payload`; if the
//! run cannot be resumed, the approval is reopened and the runtime's error returned.
//!
//! The desk's `list` knows no organisation (the routes filter by run), so it lists every
//! organisation's approvals (one Query of GSI2's `APPROVALS` partition, see
//! `docs/dynamodb.md`).

use cm_api::approvals::{ApprovalDesk, ApprovalView, execution_name};
use cm_api::error::{ApiError, ApiResult};
use cm_api::runtime::Runtime;
use cm_nodes::BoxFuture;
use cm_store_dynamodb::{DynamoStore, StoredApproval};

/// Approvals over the DynamoDB table and a runtime (Step Functions: `SfnRuntime`).
#[derive(Debug, Clone)]
pub struct DynamoApprovals<R> {
    /// The table holding the approvals (written by the node-runner's `flow.approval`).
    pub store: DynamoStore,
    /// The runtime whose waiting executions the decisions resume.
    pub runtime: R,
}

impl<R> DynamoApprovals<R> {
    /// A desk over `store` and `runtime`.
    pub fn new(store: DynamoStore, runtime: R) -> DynamoApprovals<R> {
        DynamoApprovals { store, runtime }
    }
}

/// The API's view of a stored approval.
pub fn view(a: StoredApproval) -> ApprovalView {
    let r = a.request;
    ApprovalView {
        run_id: execution_name(&r.execution_id).to_owned(),
        id: r.id,
        execution_arn: r.execution_id,
        workflow_id: r.workflow_id,
        node_id: r.node_id,
        title: r.title,
        message: r.message,
        approvers: r.approvers,
        data: r.data,
        status: a.status.as_str().to_owned(),
        decision: a.decision,
        created_at_ms: r.created_ms,
        expires_at_ms: r.expires_ms,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl<R: Runtime> ApprovalDesk for DynamoApprovals<R> {
    fn list<'a>(
        &'a self,
        org: &'a str,
        pending: bool,
    ) -> BoxFuture<'a, ApiResult<Vec<ApprovalView>>> {
        Box::pin(async move {
            let all = self.store.approvals(Some(org), pending).await?;
            Ok(all.into_iter().map(view).collect())
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ApiResult<ApprovalView>> {
        Box::pin(async move { Ok(view(self.store.approval(id).await?)) })
    }

    fn decide<'a>(
        &'a self,
        id: &'a str,
        approve: bool,
        comment: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, ApiResult<ApprovalView>> {
        Box::pin(async move {
            let payload = cm_nodes::approval::decision_payload(approve, comment, by, now_ms());
            let decided = self
                .store
                .decide_approval(id, approve, &payload["output"])
                .await?;
            if let Err(e) = self
                .runtime
                .send_task_success(&decided.request.task_token, payload)
                .await
            {
                if let Err(reopen) = self.store.reopen_approval(id).await {
                    return Err(ApiError::Internal(format!(
                        "{e}; and approval `{id}` could not be reopened: {reopen}"
                    )));
                }
                return Err(e);
            }
            Ok(view(decided))
        })
    }
}
