//! cm-nodes' port contract suite (`cm_nodes::test_util::contract`: breaker state, approvals)
//! against [`DynamoStore`] on moto, and the approval decisions the API makes on top.
//!
//! Ignored by default (they need moto): `scripts/test` runs them with
//! `cargo test --workspace --test ports_moto -- --ignored` and `CM_DYNAMODB_ENDPOINT` set to
//! the emulator's URL (dummy credentials, region `us-east-1`), like `contract_moto`.
#![allow(clippy::unwrap_used)]

use cm_nodes::approval::{ApprovalRequest, Approvals};
use cm_nodes::test_util::contract::{self, request, request_in, unique};
use cm_store::StoreError;
use cm_store_dynamodb::{ApprovalStatus, DynamoStore, client_from_env};
use serde_json::json;
use std::sync::OnceLock;

/// One table per test process: every check makes ids of its own.
fn table() -> &'static str {
    static TABLE: OnceLock<String> = OnceLock::new();
    TABLE.get_or_init(|| unique(&format!("cm-ports-{}", std::process::id())))
}

async fn store() -> DynamoStore {
    let endpoint = std::env::var("CM_DYNAMODB_ENDPOINT").unwrap_or_default();
    assert!(
        !endpoint.is_empty(),
        "CM_DYNAMODB_ENDPOINT is not set: these tests need moto (run them through scripts/test)"
    );
    let store = DynamoStore::new(client_from_env(Some(&endpoint)).await, table());
    store.create_table().await.expect("create the table");
    store
}

fn reader(
    s: &DynamoStore,
) -> impl Fn(String) -> std::pin::Pin<Box<dyn Future<Output = Option<ApprovalRequest>> + Send>> {
    let s = s.clone();
    move |id| {
        let s = s.clone();
        Box::pin(async move {
            match s.approval(&id).await {
                Ok(a) => Some(a.request),
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => panic!("reading approval {id}: {e}"),
            }
        })
    }
}

// ---------------------------------------------------------------- the contract suite

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn breaker_state_round_trips() {
    contract::breaker_state_round_trips(&store().await).await;
}

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn breaker_targets_are_independent() {
    contract::breaker_targets_are_independent(&store().await).await;
}

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn approvals_keep_every_field() {
    let s = store().await;
    contract::approvals_keep_every_field(&s, reader(&s)).await;
}

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn approvals_are_idempotent() {
    let s = store().await;
    contract::approvals_are_idempotent(&s, reader(&s)).await;
}

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn distinct_approvals_coexist() {
    let s = store().await;
    contract::distinct_approvals_coexist(&s, reader(&s)).await;
}

// ---------------------------------------------------------------- this adapter's approvals

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn approvals_are_filed_by_organisation() {
    let s = store().await;
    let (org, other) = (unique("org"), unique("org"));
    let (a, b, c) = (unique("a"), unique("b"), unique("c"));
    s.create(request_in(&org, &a, 100)).await.unwrap();
    s.create(request_in(&org, &b, 200)).await.unwrap();
    s.create(request_in(&other, &c, 300)).await.unwrap();
    let ids = |v: Vec<cm_store_dynamodb::StoredApproval>| {
        v.into_iter().map(|a| a.request.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(s.approvals(Some(&org), false).await.unwrap()),
        [b.clone(), a.clone()]
    );
    assert_eq!(
        ids(s.approvals(Some(&other), true).await.unwrap()),
        [c.as_str()]
    );
    let stored = s.approval(&a).await.unwrap();
    assert_eq!(stored.org, org);
    assert_eq!(stored.status, ApprovalStatus::Pending);
    // Every organisation's, newest first.
    let all = ids(s.approvals(None, false).await.unwrap());
    let pos = |id: &str| all.iter().position(|x| x == id).unwrap();
    assert!(pos(&c) < pos(&b) && pos(&b) < pos(&a), "{all:?}");
    // Only pending ones.
    s.decide_approval(&b, true, &json!({"approved": true}))
        .await
        .unwrap();
    assert_eq!(
        ids(s.approvals(Some(&org), true).await.unwrap()),
        [a.as_str()]
    );
    assert_eq!(ids(s.approvals(Some(&org), false).await.unwrap()), [b, a]);
}

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn deciding_is_once_and_reopen_undoes_it() {
    let s = store().await;
    let id = unique("a");
    let req = request(&id, 1);
    s.create(req.clone()).await.unwrap();
    let decision = json!({"approved": false, "comment": "no", "decidedBy": "alice"});
    let decided = s.decide_approval(&id, false, &decision).await.unwrap();
    assert_eq!(decided.status, ApprovalStatus::Rejected);
    assert_eq!(decided.decision, Some(decision.clone()));
    assert_eq!(decided.request, req);
    let again = s.decide_approval(&id, true, &json!({})).await.unwrap_err();
    assert!(
        matches!(&again, StoreError::Conflict(m) if m.contains("already rejected")),
        "{again:?}"
    );
    // Re-recording a decided approval (a re-invoked Task) leaves it decided.
    s.create(req.clone()).await.unwrap();
    assert_eq!(
        s.approval(&id).await.unwrap().status,
        ApprovalStatus::Rejected
    );
    s.reopen_approval(&id).await.unwrap();
    let reopened = s.approval(&id).await.unwrap();
    assert_eq!(reopened.status, ApprovalStatus::Pending);
    assert_eq!(reopened.decision, None);
    let approved = s
        .decide_approval(&id, true, &json!({"ok": 1}))
        .await
        .unwrap();
    assert_eq!(approved.status, ApprovalStatus::Approved);
}

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn unknown_approvals_are_not_found() {
    let s = store().await;
    let id = unique("missing");
    assert!(matches!(
        s.approval(&id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.decide_approval(&id, true, &json!({})).await,
        Err(StoreError::NotFound { .. })
    ));
    s.reopen_approval(&id).await.unwrap();
    assert!(matches!(
        s.approval(&id).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
#[ignore = "needs moto: run through scripts/test"]
async fn requests_without_an_organisation_are_refused() {
    let s = store().await;
    let req = ApprovalRequest {
        execution_id: "arn:aws:states:us-east-1:1:execution:no-org:run".into(),
        ..request(&unique("a"), 1)
    };
    let err = s.create(req).await.unwrap_err();
    assert_eq!(err.name(), "ConcertMaster.Internal", "{err}");
}
