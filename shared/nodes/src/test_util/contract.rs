//! A contract suite for the node ports every deployment implements itself: [`BreakerStore`]
//! and [`Approvals`]. Each check is an async fn generic over the port, run by each adapter's
//! tests (the in-memory fakes here, `cm_local::LocalStore` on SQLite, `DynamoStore` on moto).
//!
//! The checks make ids and targets of their own ([`unique`]), so they can share one store.
//! [`Approvals`] only records requests, so the approval checks also take `read`: how the
//! adapter finds a request by id (`None`: no such request).
//!
//! Requests' `execution_id` is an execution ARN of a machine named `<org>.<workflow>` (as the
//! API registers them), so adapters that file approvals by organisation can parse it.

#![allow(clippy::unwrap_used, clippy::panic)]

use crate::approval::{ApprovalRequest, Approvals};
use crate::breaker::{BreakerState, BreakerStore};
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

/// The organisation of the requests the checks record (see [`request`]).
pub const ORG: &str = "contract-org";

/// A string no other call (in this process, nor — by the clock — in an earlier one) returns:
/// `<prefix>-<nanos>-<n>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A pending request with id `id` in organisation `org`'s workflow `wf`, every field set.
pub fn request_in(org: &str, id: &str, created_ms: i64) -> ApprovalRequest {
    ApprovalRequest {
        id: id.into(),
        task_token: format!("token-{id}"),
        execution_id: format!("arn:aws:states:us-east-1:123456789012:execution:{org}.wf:run-{id}"),
        workflow_id: "wf".into(),
        node_id: "approve".into(),
        title: "Approve the order?".into(),
        message: "Ünïcode — and \"quotes\"".into(),
        approvers: vec!["alice".into(), "bob".into()],
        data: json!({"amount": 12.5, "items": [1, null, {"k": "v"}], "big": 12345678901234567i64}),
        created_ms,
        expires_ms: Some(created_ms + 3_600_000),
    }
}

/// [`request_in`] in [`ORG`].
pub fn request(id: &str, created_ms: i64) -> ApprovalRequest {
    request_in(ORG, id, created_ms)
}

/// An unknown target has no state; a saved state loads back exactly and a later save replaces
/// it (every field, the optional ones set and unset).
pub async fn breaker_state_round_trips<B: BreakerStore + ?Sized>(store: &B) {
    let target = format!("https://{}.example:443", unique("t"));
    assert_eq!(store.load(&target).await.unwrap(), None);
    let open = BreakerState {
        failures: 5,
        window_start_ms: 1_700_000_000_000,
        open_until_ms: Some(1_700_000_030_000),
        probe_until_ms: Some(1_700_000_090_000),
    };
    store.save(&target, open.clone()).await.unwrap();
    assert_eq!(store.load(&target).await.unwrap(), Some(open));
    let closed = BreakerState {
        failures: 1,
        window_start_ms: -1,
        open_until_ms: None,
        probe_until_ms: None,
    };
    store.save(&target, closed.clone()).await.unwrap();
    assert_eq!(store.load(&target).await.unwrap(), Some(closed));
    store.save(&target, BreakerState::default()).await.unwrap();
    assert_eq!(
        store.load(&target).await.unwrap(),
        Some(BreakerState::default())
    );
}

/// Targets do not share state, even ones that differ only by port, scheme or case, or that
/// contain key separators.
pub async fn breaker_targets_are_independent<B: BreakerStore + ?Sized>(store: &B) {
    let host = unique("h");
    let targets = [
        format!("https://{host}:443"),
        format!("https://{host}:8443"),
        format!("http://{host}:443"),
        format!("https://{}:443", host.to_uppercase()),
        format!("https://{host}#x%23:443"),
    ];
    for (i, t) in targets.iter().enumerate() {
        let state = BreakerState {
            failures: i as u32 + 1,
            window_start_ms: i as i64,
            open_until_ms: None,
            probe_until_ms: None,
        };
        store.save(t, state).await.unwrap();
    }
    for (i, t) in targets.iter().enumerate() {
        let state = store.load(t).await.unwrap().unwrap();
        assert_eq!(state.failures, i as u32 + 1, "target {t}");
        assert_eq!(state.window_start_ms, i as i64, "target {t}");
    }
}

/// A recorded request reads back with every field as it was given (and a request that was
/// never recorded reads as `None`).
pub async fn approvals_keep_every_field<A, R, F>(port: &A, read: R)
where
    A: Approvals + ?Sized,
    R: Fn(String) -> F,
    F: Future<Output = Option<ApprovalRequest>>,
{
    let id = unique("a");
    assert_eq!(read(id.clone()).await, None);
    let full = request(&id, 1_700_000_000_000);
    port.create(full.clone()).await.unwrap();
    assert_eq!(read(id).await, Some(full));
    let bare = ApprovalRequest {
        message: String::new(),
        approvers: vec![],
        data: json!(null),
        expires_ms: None,
        ..request(&unique("a"), 0)
    };
    port.create(bare.clone()).await.unwrap();
    assert_eq!(read(bare.id.clone()).await, Some(bare));
}

/// Recording the same id again (an at-least-once Task re-invoked) is a no-op: the first
/// request stays, whatever the second carries, and it is not an error.
pub async fn approvals_are_idempotent<A, R, F>(port: &A, read: R)
where
    A: Approvals + ?Sized,
    R: Fn(String) -> F,
    F: Future<Output = Option<ApprovalRequest>>,
{
    let id = unique("a");
    let first = request(&id, 1_000);
    port.create(first.clone()).await.unwrap();
    port.create(first.clone()).await.unwrap();
    let changed = ApprovalRequest {
        title: "Something else".into(),
        created_ms: 2_000,
        ..first.clone()
    };
    port.create(changed).await.unwrap();
    assert_eq!(read(id).await, Some(first));
}

/// Requests with different ids are kept apart, also across organisations.
pub async fn distinct_approvals_coexist<A, R, F>(port: &A, read: R)
where
    A: Approvals + ?Sized,
    R: Fn(String) -> F,
    F: Future<Output = Option<ApprovalRequest>>,
{
    let (a, b) = (unique("a"), unique("b"));
    let ra = request(&a, 10);
    let rb = request_in("other-org", &b, 20);
    port.create(ra.clone()).await.unwrap();
    port.create(rb.clone()).await.unwrap();
    assert_eq!(read(a).await, Some(ra));
    assert_eq!(read(b).await, Some(rb));
}

/// Every check of the suite, one after another (for adapters that run them in one test).
pub async fn all<B, A, R, F>(breakers: &B, approvals: &A, read: R)
where
    B: BreakerStore + ?Sized,
    A: Approvals + ?Sized,
    R: Fn(String) -> F,
    F: Future<Output = Option<ApprovalRequest>>,
{
    breaker_state_round_trips(breakers).await;
    breaker_targets_are_independent(breakers).await;
    approvals_keep_every_field(approvals, &read).await;
    approvals_are_idempotent(approvals, &read).await;
    distinct_approvals_coexist(approvals, &read).await;
}
