//! `flow.approval`: parks the run on a task token until a person decides.
//!
//! The node's Task is `lambda:invoke.waitForTaskToken`: the handler records an
//! [`ApprovalRequest`] (with the token) through the [`Approvals`] port and returns at once; the
//! run stays parked until the approval page (or API) calls `SendTaskSuccess` with
//! [`decision_payload`], which takes the `approved` or `rejected` port.

use crate::event::NodeOutput;
use crate::runner::{NodeContext, NodeHandler, parse_config};
use crate::{BoxFuture, NodeError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest;
use std::sync::Arc;

/// A pending approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    /// Stable id derived from the task token (a re-invoked Task records the same request).
    pub id: String,
    /// The task token that resumes the run.
    pub task_token: String,
    /// The run (execution ARN).
    pub execution_id: String,
    /// The workflow id.
    pub workflow_id: String,
    /// The approval node's id.
    pub node_id: String,
    /// Title shown to the approver.
    pub title: String,
    /// Message shown to the approver.
    pub message: String,
    /// Who may decide (empty: anyone with the link).
    pub approvers: Vec<String>,
    /// The data the approval is about (the node's input).
    pub data: Value,
    /// When it was requested (ms since epoch).
    pub created_ms: i64,
    /// When the Task times out (ms since epoch), if it has a timeout.
    pub expires_ms: Option<i64>,
}

/// Where pending approvals are recorded (SQLite embedded, DynamoDB in the cloud).
pub trait Approvals: Send + Sync {
    /// Records a request; recording the same id again is a no-op (at-least-once Tasks).
    fn create<'a>(&'a self, request: ApprovalRequest) -> BoxFuture<'a, Result<(), NodeError>>;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    title: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    approvers: Vec<String>,
    #[serde(default)]
    timeout_seconds: Option<u64>,
}

/// The approval id of a task token: the first 16 bytes of its SHA-256, hex.
pub fn approval_id(task_token: &str) -> String {
    let digest = sha2::Sha256::digest(task_token.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// What `SendTaskSuccess` carries for a decision: the node's `{output, port}`.
pub fn decision_payload(approved: bool, comment: &str, decided_by: &str, at_ms: i64) -> Value {
    json!({
        "output": {
            "approved": approved,
            "comment": comment,
            "decidedBy": decided_by,
            "decidedAt": crate::trigger::rfc3339_ms(at_ms),
        },
        "port": if approved { "approved" } else { "rejected" },
    })
}

struct Approval;

impl NodeHandler for Approval {
    fn run<'a>(
        &'a self,
        config: Value,
        input: Value,
        ctx: &'a NodeContext,
    ) -> BoxFuture<'a, Result<NodeOutput, NodeError>> {
        Box::pin(async move {
            let cfg: Config = parse_config(config)?;
            let token = ctx.execution.task_token.clone().ok_or_else(|| {
                NodeError::InvalidInput(
                    "an approval runs as a callback Task (lambda:invoke.waitForTaskToken); the event has no context.taskToken".into(),
                )
            })?;
            let now = ctx.now_ms();
            let id = approval_id(&token);
            let request = ApprovalRequest {
                id: id.clone(),
                task_token: token,
                execution_id: ctx.execution.execution_id.clone(),
                workflow_id: ctx.execution.workflow_id.clone(),
                node_id: ctx.node_id().to_owned(),
                title: cfg.title,
                message: cfg.message,
                approvers: cfg.approvers,
                data: input,
                created_ms: now,
                expires_ms: cfg
                    .timeout_seconds
                    .map(|s| now.saturating_add((s as i64).saturating_mul(1000))),
            };
            ctx.services.approvals.create(request).await?;
            let url = format!(
                "{}/approvals/{id}",
                ctx.services.approval_base_url.trim_end_matches('/')
            );
            Ok(NodeOutput::on(
                "pending",
                json!({"approvalId": id, "url": url}),
            ))
        })
    }
}

/// The approval handler.
pub fn handlers() -> Vec<(&'static str, Arc<dyn NodeHandler>)> {
    vec![("flow.approval", Arc::new(Approval))]
}
