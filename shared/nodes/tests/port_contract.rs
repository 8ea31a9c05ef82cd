//! The port contract suite (`cm_nodes::test_util::contract`) on the in-memory fakes.
#![allow(clippy::unwrap_used)]

use cm_nodes::approval::ApprovalRequest;
use cm_nodes::test_util::contract;
use cm_nodes::test_util::{MemoryApprovals, MemoryBreakerStore};

fn reader(a: &MemoryApprovals) -> impl Fn(String) -> std::future::Ready<Option<ApprovalRequest>> {
    move |id| {
        let found = a
            .requests
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.id == id)
            .cloned();
        std::future::ready(found)
    }
}

#[tokio::test]
async fn breaker_state_round_trips() {
    contract::breaker_state_round_trips(&MemoryBreakerStore::default()).await;
}

#[tokio::test]
async fn breaker_targets_are_independent() {
    contract::breaker_targets_are_independent(&MemoryBreakerStore::default()).await;
}

#[tokio::test]
async fn approvals_keep_every_field() {
    let a = MemoryApprovals::default();
    contract::approvals_keep_every_field(&a, reader(&a)).await;
}

#[tokio::test]
async fn approvals_are_idempotent() {
    let a = MemoryApprovals::default();
    contract::approvals_are_idempotent(&a, reader(&a)).await;
}

#[tokio::test]
async fn distinct_approvals_coexist() {
    let a = MemoryApprovals::default();
    contract::distinct_approvals_coexist(&a, reader(&a)).await;
}

#[tokio::test]
async fn the_whole_suite_on_one_store() {
    let (b, a) = (MemoryBreakerStore::default(), MemoryApprovals::default());
    contract::all(&b, &a, reader(&a)).await;
}
