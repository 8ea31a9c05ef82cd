//! [`Approvals`] (cm-nodes' `flow.approval` requests) and the decisions on them.
//!
//! An approval is one global item `APPROVAL#<id>` (the API and the approval page find it by id
//! alone) holding the request as JSON text, its organisation (parsed from the execution ARN:
//! machines are named `<org>.<workflow>`), its status and, once decided, the decision. It is
//! listed in GSI1 under `ORG#<org>#APPROVALS` (an organisation's approvals) and in GSI2 under
//! `APPROVALS` (every organisation's, for callers that do not know the organisation), both
//! newest first. Creating is idempotent (`attribute_not_exists`); deciding is conditional on
//! the status being `pending`.

use crate::breakers::node_error;
use crate::db::{Expr, Query};
use crate::item::{self, Builder, Item, Reader, s};
use crate::{DynamoStore, GSI1, GSI2, keys};
use cm_nodes::approval::{ApprovalRequest, Approvals};
use cm_nodes::{BoxFuture, NodeError};
use cm_store::{Result, StoreError};
use serde_json::Value;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
}

impl ApprovalStatus {
    /// `pending`, `approved` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<ApprovalStatus> {
        Some(match s {
            "pending" => ApprovalStatus::Pending,
            "approved" => ApprovalStatus::Approved,
            "rejected" => ApprovalStatus::Rejected,
            _ => return None,
        })
    }
}

/// A stored approval: the request, its organisation and status, and the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredApproval {
    /// The request the node recorded.
    pub request: ApprovalRequest,
    /// The organisation whose run waits for it.
    pub org: String,
    /// Its status.
    pub status: ApprovalStatus,
    /// The decision's output (comment, author, time), once decided.
    pub decision: Option<Value>,
}

/// The organisation of an execution ARN of a machine the API registered
/// (`arn:aws:states:<region>:<account>:execution|express:<org>.<workflow>:<run>[:<uuid>]`),
/// as `cm_api::live::parse_execution_arn` reads it.
pub fn org_of_execution(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 8 || !matches!(parts[5], "execution" | "express") {
        return None;
    }
    parts[6].split_once('.').map(|(org, _)| org)
}

fn approval_key(id: &str) -> Item {
    item::key(keys::approval(id), keys::APPROVAL_SK)
}

fn approval_from(item: &Item) -> Result<StoredApproval> {
    let r = Reader::new(item, "approval");
    let request: ApprovalRequest = serde_json::from_value(r.json("request")?)
        .map_err(|e| StoreError::Backend(format!("approval item: bad request: {e}")))?;
    let status = r.s("status")?;
    let status = ApprovalStatus::parse(&status)
        .ok_or_else(|| StoreError::Backend(format!("approval item: bad status `{status}`")))?;
    Ok(StoredApproval {
        request,
        org: r.s("org")?,
        status,
        decision: r.opt_json("decision")?,
    })
}

fn pending() -> Expr {
    Expr::new()
        .name("#st", "status")
        .value(":pending", s(ApprovalStatus::Pending.as_str()))
}

impl DynamoStore {
    /// Records a request (a no-op if its id is recorded already). The organisation comes from
    /// the request's execution ARN; an ARN without one is [`StoreError::Invalid`].
    pub async fn create_approval(&self, request: &ApprovalRequest) -> Result<()> {
        let org = org_of_execution(&request.execution_id).ok_or_else(|| {
            StoreError::Invalid(format!(
                "approval `{}`: execution `{}` names no organisation",
                request.id, request.execution_id
            ))
        })?;
        let text = serde_json::to_string(request)
            .map_err(|e| StoreError::Invalid(format!("approval `{}`: {e}", request.id)))?;
        let sort = keys::time_id(request.created_ms, &request.id);
        let item = Builder::new(keys::approval(&request.id), keys::APPROVAL_SK)
            .s("id", &request.id)
            .s("org", org)
            .s("request", text)
            .s("status", ApprovalStatus::Pending.as_str())
            .n("createdMs", request.created_ms)
            .s("gsi1pk", keys::approvals_of_org(org))
            .s("gsi1sk", sort.clone())
            .s("gsi2pk", keys::ALL_APPROVALS)
            .s("gsi2sk", sort)
            .build("approval")?;
        // `false`: recorded already (a re-invoked Task), which is fine.
        self.put(item, Some(("attribute_not_exists(pk)", Expr::new())))
            .await
            .map(|_| ())
    }

    /// One approval ([`StoreError::NotFound`] if there is none).
    pub async fn approval(&self, id: &str) -> Result<StoredApproval> {
        match self.get(approval_key(id)).await? {
            Some(item) => approval_from(&item),
            None => Err(StoreError::not_found("approval", id)),
        }
    }

    /// Approvals newest first (by request time, then id), only pending ones with
    /// `pending_only`: of organisation `org`, or of every organisation with `None`. One Query
    /// of a GSI (eventually consistent).
    pub async fn approvals(
        &self,
        org: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<StoredApproval>> {
        let mut q = match org {
            Some(org) => Query::index(GSI1, keys::approvals_of_org(org)),
            None => Query::index(GSI2, keys::ALL_APPROVALS.to_owned()),
        }
        .descending();
        if pending_only {
            q.filter = Some("#st = :pending".into());
            q.expr = pending();
        }
        self.query_all(&q)
            .await?
            .iter()
            .map(approval_from)
            .collect()
    }

    /// Marks a pending approval decided with `decision` (the decision payload's output) and
    /// returns it (with its task token). [`StoreError::NotFound`] if there is no such
    /// approval, [`StoreError::Conflict`] if it is decided already.
    pub async fn decide_approval(
        &self,
        id: &str,
        approved: bool,
        decision: &Value,
    ) -> Result<StoredApproval> {
        let status = if approved {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        };
        let expr = pending()
            .name("#d", "decision")
            .value(":status", s(status.as_str()))
            .value(":d", s(item::json_text(decision)));
        let updated = self
            .update(
                approval_key(id),
                "SET #st = :status, #d = :d",
                Some("attribute_exists(pk) AND #st = :pending"),
                expr,
            )
            .await?;
        match updated {
            Some(item) => approval_from(&item),
            None => {
                let current = self.approval(id).await?;
                Err(StoreError::Conflict(format!(
                    "approval `{id}` is already {}",
                    current.status.as_str()
                )))
            }
        }
    }

    /// Returns a decided approval to pending, dropping its decision (the decision could not
    /// be delivered to the run). A missing approval is left missing.
    pub async fn reopen_approval(&self, id: &str) -> Result<()> {
        self.update(
            approval_key(id),
            "SET #st = :pending REMOVE #d",
            Some("attribute_exists(pk)"),
            pending().name("#d", "decision"),
        )
        .await
        .map(|_| ())
    }
}

impl Approvals for DynamoStore {
    fn create<'a>(
        &'a self,
        request: ApprovalRequest,
    ) -> BoxFuture<'a, std::result::Result<(), NodeError>> {
        Box::pin(async move { self.create_approval(&request).await.map_err(node_error) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_comes_from_the_machine_name() {
        let arn = "arn:aws:states:us-east-1:123456789012:execution:acme.orders:run-1";
        assert_eq!(org_of_execution(arn), Some("acme"));
        let express = "arn:aws:states:us-east-1:1:express:acme.wf.x:run:uuid";
        assert_eq!(org_of_execution(express), Some("acme"));
        assert_eq!(
            org_of_execution("arn:aws:states:us-east-1:1:execution:wf:run"),
            None
        );
        assert_eq!(org_of_execution("arn:exec"), None);
    }
}
