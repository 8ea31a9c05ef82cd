//! The local store: datasets, queues, approvals, breaker state; persistence across reopen.
#![allow(clippy::unwrap_used)]

use cm_local::{ApprovalStatus, DatasetRecord, LocalError, LocalStore};
use cm_nodes::approval::{ApprovalRequest, Approvals};
use cm_nodes::breaker::{BreakerState, BreakerStore};
use serde_json::json;

fn record(key: &str, n: i64) -> DatasetRecord {
    DatasetRecord {
        dataset: "leads".into(),
        key: key.into(),
        data: json!({"n": n}),
        run_id: "run".into(),
        node_id: "save".into(),
        stored_at: "2026-11-25T00:00:00Z".into(),
    }
}

fn request(id: &str) -> ApprovalRequest {
    ApprovalRequest {
        id: id.into(),
        task_token: format!("token-{id}"),
        execution_id: "arn:exec".into(),
        workflow_id: "wf".into(),
        node_id: "ok".into(),
        title: "Approve?".into(),
        message: String::new(),
        approvers: vec![],
        data: json!({"amount": 5}),
        created_ms: 1,
        expires_ms: None,
    }
}

#[test]
fn records_replace_by_key_page_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    {
        let s = LocalStore::open(&path).unwrap();
        for (k, n) in [("b", 1), ("a", 2), ("c", 3), ("a", 4)] {
            s.put_record(&record(k, n), &json!({})).unwrap();
        }
    }
    let s = LocalStore::open(&path).unwrap();
    let all = s.records("leads", None, 10).unwrap();
    let keys: Vec<&str> = all.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(all[0].data, json!({"n": 4}), "a put replaces");
    let page = s.records("leads", Some("a"), 1).unwrap();
    assert_eq!(page[0].key, "b");
    assert!(s.records("other", None, 10).unwrap().is_empty());
}

#[test]
fn queue_send_receive_delete_and_fifo_dedup() {
    let s = LocalStore::in_memory().unwrap();
    let a = s.send("jobs", "one", None, None, 0).unwrap();
    let b = s.send("jobs", "two", None, None, 0).unwrap();
    s.send("jobs", "later", None, None, 900).unwrap();
    assert_eq!(s.queue_depth("jobs").unwrap(), 3);
    let got = s.receive("jobs", 10, 30).unwrap();
    let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["one", "two"], "delayed messages stay hidden");
    assert_eq!(got[0].receive_count, 1);
    assert!(s.receive("jobs", 10, 30).unwrap().is_empty(), "in flight");
    s.delete_message(&a).unwrap();
    s.delete_message(&b).unwrap();
    assert!(matches!(s.delete_message(&a), Err(LocalError::NotFound(_))));
    assert_eq!(s.queue_depth("jobs").unwrap(), 1);
    // FIFO: the same deduplication id within 5 minutes is one message.
    let x = s.send("f.fifo", "x", Some("g"), Some("d1"), 0).unwrap();
    let y = s.send("f.fifo", "x", Some("g"), Some("d1"), 0).unwrap();
    assert_eq!(x, y);
    assert_eq!(s.queue_depth("f.fifo").unwrap(), 1);
    // A zero visibility timeout makes received messages visible again at once.
    let again = s.receive("f.fifo", 1, 0).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(s.receive("f.fifo", 1, 0).unwrap()[0].receive_count, 2);
}

#[test]
fn sends_wake_subscribers_and_visibility_is_reported() {
    let s = LocalStore::in_memory().unwrap();
    let mut sends = s.subscribe_sends();
    assert!(!sends.has_changed().unwrap());
    assert_eq!(s.next_visible_ms("jobs").unwrap(), None, "empty queue");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let id = s.send("jobs", "one", None, None, 0).unwrap();
    assert!(sends.has_changed().unwrap(), "a send wakes the poller");
    sends.borrow_and_update();
    let visible = s.next_visible_ms("jobs").unwrap().unwrap();
    assert!(visible >= before && visible <= before + 60_000, "{visible}");
    // Received with a 30 s visibility timeout: visible again 30 s later.
    s.receive("jobs", 1, 30).unwrap();
    let hidden = s.next_visible_ms("jobs").unwrap().unwrap();
    assert!(hidden >= before + 30_000, "{hidden}");
    // A FIFO duplicate sends nothing and wakes nobody.
    s.send("f.fifo", "x", Some("g"), Some("d"), 0).unwrap();
    sends.borrow_and_update();
    s.send("f.fifo", "x", Some("g"), Some("d"), 0).unwrap();
    assert!(!sends.has_changed().unwrap());
    s.delete_message(&id).unwrap();
    assert_eq!(s.next_visible_ms("jobs").unwrap(), None);
}

#[tokio::test]
async fn approvals_record_once_and_decide_once() {
    let s = LocalStore::in_memory().unwrap();
    s.create(request("a1")).await.unwrap();
    s.create(request("a1")).await.unwrap();
    s.create(request("a2")).await.unwrap();
    assert_eq!(s.approvals(true).unwrap().len(), 2);
    let d = s.decide("a1", true, &json!({"comment": "ok"})).unwrap();
    assert_eq!(d.status, ApprovalStatus::Approved);
    assert_eq!(d.request.task_token, "token-a1");
    assert_eq!(s.approvals(true).unwrap().len(), 1);
    assert_eq!(s.approvals(false).unwrap().len(), 2);
    let e = s.decide("a1", false, &json!({})).unwrap_err();
    assert!(e.to_string().contains("already approved"), "{e}");
    assert!(matches!(
        s.decide("nope", true, &json!({})),
        Err(LocalError::NotFound(_))
    ));
    s.reopen("a1").unwrap();
    assert_eq!(s.approval("a1").unwrap().status, ApprovalStatus::Pending);
}

#[tokio::test]
async fn breaker_state_round_trips() {
    let s = LocalStore::in_memory().unwrap();
    assert_eq!(s.load("https://x:443").await.unwrap(), None);
    let state = BreakerState {
        failures: 3,
        window_start_ms: 10,
        open_until_ms: Some(99),
        ..Default::default()
    };
    s.save("https://x:443", state.clone()).await.unwrap();
    assert_eq!(s.load("https://x:443").await.unwrap(), Some(state));
}

#[test]
fn an_unwritable_path_is_a_clear_error() {
    let e = LocalStore::open(std::path::Path::new("/nonexistent-dir/x/local.db")).unwrap_err();
    assert!(e.to_string().starts_with("local store:"), "{e}");
}

#[tokio::test]
async fn dead_letters_persist_list_and_redrive() {
    use cm_nodes::NodeError;
    use cm_nodes::trigger::dead_letter::{self, DeadLetter, DeadLetters, Redrive};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let err = NodeError::InvalidInput("body is not JSON".into());
    let first = DeadLetter::new("orders", "trigger.queue", json!({"n": 1}), &err, 10).unwrap();
    let second = DeadLetter::new("leads", "trigger.webhook", json!({"n": 2}), &err, 20).unwrap();
    {
        let s = LocalStore::open(&path).unwrap();
        s.put(first.clone()).await.unwrap();
        s.put(second.clone()).await.unwrap();
    }
    let s = LocalStore::open(&path).unwrap();
    assert_eq!(
        s.list(None, 10).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(
        s.list(Some("leads"), 10).await.unwrap(),
        vec![second.clone()]
    );
    assert_eq!(s.get(&first.id).await.unwrap(), Some(first.clone()));
    // A failing re-drive keeps the letter with the attempt counted.
    let r: Redrive<()> = dead_letter::redrive(&s, &first.id, 30, |_| async {
        Err(NodeError::Retryable("engine busy".into()))
    })
    .await
    .unwrap();
    let Redrive::Failed(again) = r else {
        panic!("{r:?}")
    };
    assert_eq!(again.attempts, 2);
    assert_eq!(s.get(&first.id).await.unwrap().unwrap().attempts, 2);
    // A successful one removes it.
    let r = dead_letter::redrive(&s, &first.id, 40, |l| async move { Ok(l.payload) })
        .await
        .unwrap();
    assert_eq!(r, Redrive::Started(json!({"n": 1})));
    assert_eq!(s.get(&first.id).await.unwrap(), None);
    assert!(!s.remove(&first.id).await.unwrap());
    assert!(s.remove(&second.id).await.unwrap());
}

/// The `cm_store::DatasetStore` contract on the local SQLite store (on disk).
#[tokio::test]
async fn dataset_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::open(&dir.path().join("local.db")).unwrap();
    cm_store::contract::datasets(&s).await;
}
