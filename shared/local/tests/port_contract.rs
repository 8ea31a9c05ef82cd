//! The node ports' contract suite (`cm_nodes::test_util::contract`) on the SQLite store.
#![allow(clippy::unwrap_used)]

use cm_local::LocalStore;
use cm_nodes::approval::ApprovalRequest;
use cm_nodes::test_util::contract;

fn store() -> (LocalStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("cm.db")).unwrap();
    (store, dir)
}

fn reader(s: &LocalStore) -> impl Fn(String) -> std::future::Ready<Option<ApprovalRequest>> {
    move |id| std::future::ready(s.approval(&id).ok().map(|a| a.request))
}

#[tokio::test]
async fn breaker_state_round_trips() {
    let (s, _dir) = store();
    contract::breaker_state_round_trips(&s).await;
}

#[tokio::test]
async fn breaker_targets_are_independent() {
    let (s, _dir) = store();
    contract::breaker_targets_are_independent(&s).await;
}

#[tokio::test]
async fn approvals_keep_every_field() {
    let (s, _dir) = store();
    contract::approvals_keep_every_field(&s, reader(&s)).await;
}

#[tokio::test]
async fn approvals_are_idempotent() {
    let (s, _dir) = store();
    contract::approvals_are_idempotent(&s, reader(&s)).await;
}

#[tokio::test]
async fn distinct_approvals_coexist() {
    let (s, _dir) = store();
    contract::distinct_approvals_coexist(&s, reader(&s)).await;
}

#[tokio::test]
async fn the_whole_suite_on_one_store() {
    let (s, _dir) = store();
    contract::all(&s, &s, reader(&s)).await;
}
