//! One contract for every [`Store`]: the same checks run against the memory store and the
//! SQLite store, so the engine can rely on either behaving the same.

#![allow(clippy::unwrap_used)]

use super::memory::MemoryStore;
use super::sqlite::{Durability, SqliteStore};
use super::*;
use serde_json::json;

fn event(id: u64, kind: &str) -> HistoryEvent {
    HistoryEvent {
        id,
        previous_event_id: id - 1,
        timestamp_ms: 1_000 + id as i64,
        kind: kind.into(),
        step: format!("{id}"),
        details: json!({"n": id}),
    }
}

fn machine(name: &str, revision: u64) -> StateMachineRecord {
    StateMachineRecord {
        arn: format!("arn:sm:{name}"),
        name: name.into(),
        machine_type: MachineType::Standard,
        definition: format!("{{\"rev\":{revision}}}"),
        revision,
        created_ms: 5,
    }
}

fn execution(seq: u64, sm: &str, name: &str) -> ExecutionRecord {
    ExecutionRecord {
        seq,
        arn: format!("arn:ex:{sm}:{name}"),
        name: name.into(),
        state_machine_arn: format!("arn:sm:{sm}"),
        revision: 1,
        machine_type: MachineType::Standard,
        status: Status::Running,
        input: json!({"seq": seq}),
        output: None,
        error: None,
        cause: None,
        start_ms: 10,
        stop_ms: None,
        redrive_count: 0,
        parent: None,
    }
}

async fn contract(store: &dyn Store) {
    // State machines and revisions.
    assert_eq!(store.max_seq().unwrap(), 0);
    store
        .put_state_machine(machine("a", 1))
        .wait()
        .await
        .unwrap();
    store
        .put_state_machine(machine("a", 2))
        .wait()
        .await
        .unwrap();
    store
        .put_state_machine(machine("b", 1))
        .wait()
        .await
        .unwrap();
    assert_eq!(
        store.state_machine("arn:sm:a").unwrap().unwrap().revision,
        2
    );
    assert_eq!(
        store.definition("arn:sm:a", 1).unwrap().as_deref(),
        Some("{\"rev\":1}")
    );
    assert_eq!(store.definition("arn:sm:a", 9).unwrap(), None);
    assert_eq!(store.state_machine("arn:sm:zzz").unwrap(), None);
    let names: Vec<String> = store
        .state_machines()
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["a", "b"]);

    // Executions: creation is idempotent by (state machine, name).
    for seq in 1..=5 {
        let sm = if seq % 2 == 0 { "b" } else { "a" };
        let created = store
            .create_execution(
                execution(seq, sm, &format!("e{seq}")),
                vec![event(1, "ExecutionStarted")],
            )
            .wait()
            .await
            .unwrap();
        assert_eq!(created, Created::New);
    }
    let again = store
        .create_execution(execution(99, "a", "e1"), vec![event(1, "ExecutionStarted")])
        .wait()
        .await
        .unwrap();
    match again {
        Created::Existing(e) => assert_eq!((e.seq, e.input), (1, json!({"seq": 1}))),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.max_seq().unwrap(), 5);
    assert!(store.execution("arn:ex:a:e99").unwrap().is_none());

    // Appending events, and closing in the same write.
    store
        .append(
            1,
            vec![event(2, "PassStateEntered"), event(3, "PassStateExited")],
            None,
        )
        .wait()
        .await
        .unwrap();
    store
        .append(
            1,
            vec![event(4, "ExecutionSucceeded")],
            Some(Close {
                status: Status::Succeeded,
                output: Some(json!({"done": true})),
                error: None,
                cause: None,
                stop_ms: 20,
            }),
        )
        .wait()
        .await
        .unwrap();
    let e1 = store.execution("arn:ex:a:e1").unwrap().unwrap();
    assert_eq!(e1.status, Status::Succeeded);
    assert_eq!(e1.output, Some(json!({"done": true})));
    assert_eq!(e1.stop_ms, Some(20));

    // History paging, forwards and backwards.
    let ids = |v: Vec<HistoryEvent>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(store.events(1, 0, 2, false).unwrap()), [1, 2]);
    assert_eq!(ids(store.events(1, 2, 10, false).unwrap()), [3, 4]);
    assert_eq!(ids(store.events(1, 0, 3, true).unwrap()), [4, 3, 2]);
    assert_eq!(ids(store.events(1, 2, 10, true).unwrap()), [1]);
    let first = store.events(1, 0, 1, false).unwrap().remove(0);
    assert_eq!(first, event(1, "ExecutionStarted"));
    assert!(store.events(42, 0, 10, false).unwrap().is_empty());

    // Listing: newest first, filters, cursor.
    let seqs = |q: ListQuery| {
        store
            .list_executions(&q)
            .unwrap()
            .into_iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seqs(ListQuery {
            limit: 10,
            ..Default::default()
        }),
        [5, 4, 3, 2, 1]
    );
    assert_eq!(
        seqs(ListQuery {
            limit: 2,
            before_seq: Some(4),
            ..Default::default()
        }),
        [3, 2]
    );
    assert_eq!(
        seqs(ListQuery {
            state_machine_arn: Some("arn:sm:a".into()),
            limit: 10,
            ..Default::default()
        }),
        [5, 3, 1]
    );
    assert_eq!(
        seqs(ListQuery {
            status: Some(Status::Succeeded),
            limit: 10,
            ..Default::default()
        }),
        [1]
    );
    let running: Vec<u64> = store
        .running()
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(running, [2, 3, 4, 5]);

    // A failed execution reopened for a redrive.
    store
        .append(
            2,
            vec![event(2, "ExecutionFailed")],
            Some(Close {
                status: Status::Failed,
                output: None,
                error: Some("E".into()),
                cause: Some("c".into()),
                stop_ms: 30,
            }),
        )
        .wait()
        .await
        .unwrap();
    store
        .reopen(2, 1, vec![event(3, "ExecutionRedriven")])
        .wait()
        .await
        .unwrap();
    let e2 = store.execution("arn:ex:b:e2").unwrap().unwrap();
    assert_eq!(
        (e2.status, e2.redrive_count, e2.error, e2.stop_ms),
        (Status::Running, 1, None, None)
    );
    assert_eq!(store.events(2, 0, 10, false).unwrap().len(), 3);
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn sqlite_store_keeps_the_contract_and_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/engine.db");
    {
        let store = SqliteStore::open(&path, Durability::Full).unwrap();
        contract(&store).await;
        store.close();
    }
    // Everything is still there after reopening the file.
    let store = SqliteStore::open(&path, Durability::Normal).unwrap();
    assert_eq!(store.max_seq().unwrap(), 5);
    assert_eq!(store.events(1, 0, 10, false).unwrap().len(), 4);
    assert_eq!(
        store.execution("arn:ex:a:e1").unwrap().unwrap().status,
        Status::Succeeded
    );
    // Writes after close are refused, not lost silently.
    store.close();
    let refused = store.append(1, vec![event(5, "X")], None).wait().await;
    assert_eq!(refused, Err(StoreError::Closed));
}
