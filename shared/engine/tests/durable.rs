//! Durability with SQLite: executions left RUNNING resume when the engine reopens, task tokens
//! stay valid, completed steps are not run again, and a task in flight at shutdown runs again
//! with the same invocation id (at-least-once).

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use cm_engine::{Engine, HistoryQuery, Resources, Status, TaskCall};
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// First (counted) → Approve (callback on `park`) → Last (counted).
fn approval_machine() -> Value {
    let mut first = invoke("first");
    first.as_object_mut().unwrap().remove("End");
    first["Next"] = json!("Approve");
    json!({"StartAt": "First", "States": {
        "First": first,
        "Approve": {"Type": "Task", "Resource": INVOKE_CALLBACK,
                    "Parameters": {"FunctionName": "park", "Payload": {"token.$": "$$.Task.Token"}},
                    "ResultPath": "$.approval", "Next": "Last"},
        "Last": {"Type": "Task", "Resource": INVOKE,
                 "Parameters": {"FunctionName": "last", "Payload.$": "$"},
                 "OutputPath": "$.Payload", "End": true}
    }})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parked_callback_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let (first, last) = (counter(), counter());
    let (park, mut calls) = reporting();
    let resources = Resources::new()
        .function("first", counting_echo(first.clone()))
        .function("last", counting_echo(last.clone()))
        .function("park", park);

    let a = sqlite_engine(&db, resources.clone()).await;
    let sm = machine(&a, "approval", approval_machine()).await;
    let started = a
        .start_execution(&sm, Some("order-7".into()), json!({"order": 7}))
        .await
        .unwrap();
    let arn = started.execution_arn;
    let call = calls.recv().await.unwrap();
    let token = call.task_token.clone().unwrap();
    a.shutdown().await;
    assert_eq!(a.running_count(), 0);
    drop(a);

    let b = sqlite_engine(&db, resources).await;
    let rec = b.describe_execution(&arn).unwrap();
    assert_eq!(rec.status, Status::Running);
    // The token is in the journal.
    let h = history(&b, &arn);
    let scheduled: Vec<_> = h.iter().filter(|e| e.kind == "TaskScheduled").collect();
    assert_eq!(scheduled.len(), 2, "{:?}", kinds(&h));
    assert_eq!(scheduled[1].details["taskToken"], json!(token));
    // The callback task is invoked again (its result was not journaled), with the same token
    // and invocation id.
    let again = calls.recv().await.unwrap();
    assert_eq!(again.task_token.as_deref(), Some(token.as_str()));
    assert_eq!(again.invocation_id, call.invocation_id);
    assert_eq!(b.running_count(), 1);
    // The idempotent start still finds it.
    let same = b
        .start_execution(&sm, Some("order-7".into()), json!({"order": 7}))
        .await
        .unwrap();
    assert!(same.existing);
    assert_eq!(same.execution_arn, arn);

    b.send_task_success(&token, json!("approved"))
        .await
        .unwrap();
    let done = b.wait(&arn).await.unwrap();
    assert_eq!(done.status, Status::Succeeded, "{done:?}");
    assert_eq!(
        done.output.unwrap(),
        json!({"order": 7, "approval": "approved"})
    );
    assert_eq!(first.load(Ordering::SeqCst), 1);
    assert_eq!(last.load(Ordering::SeqCst), 1);
    let h = history(&b, &arn);
    assert_dense(&h);
    // Nothing before the restart was recorded twice.
    for kind in ["ExecutionStarted", "TaskStateEntered", "TaskScheduled"] {
        let n = h.iter().filter(|e| e.kind == kind).count();
        assert_eq!(n, if kind == "ExecutionStarted" { 1 } else { 3 }, "{kind}");
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_in_flight_at_shutdown_runs_again_with_the_same_invocation_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let first = counter();
    let attempts = Arc::new(AtomicUsize::new(0));
    let (tx, mut invoked) = mpsc::unbounded_channel::<TaskCall>();
    let n = attempts.clone();
    let slow = AsyncFn(move |call: TaskCall| {
        let n = n.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(call.clone());
        async move {
            if n == 0 {
                // The first invocation never finishes: the engine shuts down meanwhile.
                std::future::pending::<()>().await;
            }
            Ok(json!({"done": call.input}))
        }
    });
    let resources = Resources::new()
        .function("first", counting_echo(first.clone()))
        .function("slow", slow);
    let mut head = invoke("first");
    head.as_object_mut().unwrap().remove("End");
    head["Next"] = json!("Slow");
    let def = json!({"StartAt": "First", "States": {"First": head, "Slow": invoke("slow")}});

    let a = sqlite_engine(&db, resources.clone()).await;
    let sm = machine(&a, "slow", def).await;
    let arn = start(&a, &sm, json!({"k": 1})).await;
    let call = invoked.recv().await.unwrap();
    a.shutdown().await;
    drop(a);

    let b = sqlite_engine(&db, resources).await;
    let again = invoked.recv().await.unwrap();
    assert_eq!(again.invocation_id, call.invocation_id);
    assert_eq!(again.attempt, call.attempt);
    assert_eq!(again.input, call.input);
    let done = b.wait(&arn).await.unwrap();
    assert_eq!(done.status, Status::Succeeded, "{done:?}");
    assert_eq!(done.output.unwrap(), json!({"done": {"k": 1}}));
    assert_eq!(first.load(Ordering::SeqCst), 1);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_dense(&history(&b, &arn));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_executions_histories_and_machines_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let a = sqlite_engine(&db, Resources::new()).await;
    let def = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Y"}],
              "Default": "N"},
        "Y": {"Type": "Pass", "Result": "yes", "End": true},
        "N": {"Type": "Fail", "Error": "No", "Cause": "said no"}
    }});
    let sm = machine(&a, "persist", def.clone()).await;
    let mut v2 = def.clone();
    v2["States"]["Y"]["Result"] = json!("yes, v2");
    machine(&a, "persist", v2).await;
    let ok = a
        .start_execution(&sm, Some("ok".into()), json!({"ok": true}))
        .await
        .unwrap()
        .execution_arn;
    let no = a
        .start_execution(&sm, Some("no".into()), json!({"ok": false}))
        .await
        .unwrap()
        .execution_arn;
    let ok_rec = a.wait(&ok).await.unwrap();
    let no_rec = a.wait(&no).await.unwrap();
    let ok_history = history(&a, &ok);
    let listed: Vec<String> = a
        .list_executions(None, None, 10, None)
        .unwrap()
        .executions
        .into_iter()
        .map(|r| r.arn)
        .collect();
    a.shutdown().await;
    drop(a);

    let b = sqlite_engine(&db, Resources::new()).await;
    assert_eq!(b.running_count(), 0);
    assert_eq!(b.describe_execution(&ok).unwrap(), ok_rec);
    assert_eq!(b.describe_execution(&no).unwrap(), no_rec);
    assert_eq!(ok_rec.output.clone().unwrap(), json!("yes, v2"));
    assert_eq!(no_rec.error.as_deref(), Some("No"));
    assert_eq!(history(&b, &ok), ok_history);
    let reversed = b
        .get_execution_history(
            &ok,
            HistoryQuery {
                max_results: 2,
                next_token: None,
                reverse: true,
            },
        )
        .unwrap();
    assert_eq!(reversed.events[0], *ok_history.last().unwrap());
    assert_eq!(
        b.list_executions(None, None, 10, None)
            .unwrap()
            .executions
            .into_iter()
            .map(|r| r.arn)
            .collect::<Vec<_>>(),
        listed
    );
    let machine_rec = b.describe_state_machine(&sm).unwrap();
    assert_eq!(machine_rec.revision, 2);
    // Names stay taken; new executions are numbered after the old ones.
    assert_eq!(
        code(
            b.start_execution(&sm, Some("ok".into()), json!({"ok": true}))
                .await
        ),
        "ExecutionAlreadyExists"
    );
    let newer = start(&b, &sm, json!({"ok": true})).await;
    b.wait(&newer).await.unwrap();
    let page = b.list_executions(None, None, 10, None).unwrap();
    assert_eq!(page.executions[0].arn, newer);
    assert!(page.executions[0].seq > ok_rec.seq.max(no_rec.seq));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_execution_is_redriven_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let (one, two) = (counter(), counter());
    let resources = Resources::new()
        .function("one", counting_echo(one.clone()))
        .function("two", flaky(two.clone(), 1, "Boom"));
    let mut first = invoke("one");
    first.as_object_mut().unwrap().remove("End");
    first["Next"] = json!("Two");
    let def = json!({"StartAt": "One", "States": {"One": first, "Two": invoke("two")}});

    let a = sqlite_engine(&db, resources.clone()).await;
    let rec = run(&a, "redrive-later", def, json!({"v": 3})).await;
    assert_eq!(rec.status, Status::Failed);
    a.shutdown().await;
    drop(a);

    let b = sqlite_engine(&db, resources).await;
    assert_eq!(b.running_count(), 0);
    b.redrive_execution(&rec.arn).await.unwrap();
    let done = b.wait(&rec.arn).await.unwrap();
    assert_eq!(done.status, Status::Succeeded, "{done:?}");
    assert_eq!(done.output.unwrap(), json!({"v": 3}));
    assert_eq!(done.redrive_count, 1);
    assert_eq!(one.load(Ordering::SeqCst), 1);
    assert_eq!(two.load(Ordering::SeqCst), 2);
    b.shutdown().await;
    let c = sqlite_engine(&db, Resources::new()).await;
    assert_eq!(c.describe_execution(&rec.arn).unwrap().redrive_count, 1);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_waiting_on_a_parked_child_resumes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let (park, mut calls) = reporting();
    let resources = Resources::new().function("park", park);
    let a = sqlite_engine(&db, resources.clone()).await;
    let child = machine(
        &a,
        "child",
        single(json!({"Type": "Task", "Resource": INVOKE_CALLBACK,
            "Parameters": {"FunctionName": "park", "Payload": {}}, "End": true})),
    )
    .await;
    let parent_sm = machine(
        &a,
        "parent",
        single(
            json!({"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {"StateMachineArn": child, "Input": {"n": 1}},
            "OutputPath": "$.Output", "End": true}),
        ),
    )
    .await;
    let parent = start(&a, &parent_sm, json!({})).await;
    let first_call = calls.recv().await.unwrap();
    let token = first_call.task_token.unwrap();
    a.shutdown().await;
    drop(a);

    let b = sqlite_engine(&db, resources).await;
    // Both are running again; the child re-invokes its callback task.
    let again = calls.recv().await.unwrap();
    assert_eq!(again.task_token.as_deref(), Some(token.as_str()));
    assert_eq!(again.execution_arn, first_call.execution_arn);
    b.send_task_success(&token, json!({"child": "done"}))
        .await
        .unwrap();
    let done = b.wait(&parent).await.unwrap();
    assert_eq!(done.status, Status::Succeeded, "{done:?}");
    assert_eq!(done.output.unwrap(), json!({"child": "done"}));
    // Only one child was ever started.
    assert_eq!(
        b.list_executions(Some(&child), None, 10, None)
            .unwrap()
            .executions
            .len(),
        1
    );
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_execution_can_be_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    let (park, mut calls) = reporting();
    let resources = Resources::new().function("park", park);
    let a = sqlite_engine(&db, resources.clone()).await;
    let sm = machine(
        &a,
        "stoppable",
        single(json!({"Type": "Task", "Resource": INVOKE_CALLBACK,
            "Parameters": {"FunctionName": "park", "Payload": {}}, "End": true})),
    )
    .await;
    let arn = start(&a, &sm, json!({})).await;
    calls.recv().await.unwrap();
    a.shutdown().await;
    drop(a);
    let b = sqlite_engine(&db, resources.clone()).await;
    calls.recv().await.unwrap();
    let stopped = b
        .stop_execution(&arn, Some("Stop".into()), None)
        .await
        .unwrap();
    assert_eq!(stopped.status, Status::Aborted);
    b.shutdown().await;
    drop(b);
    let c: Engine = sqlite_engine(&db, resources).await;
    assert_eq!(c.running_count(), 0);
    let rec = c.describe_execution(&arn).unwrap();
    assert_eq!(rec.status, Status::Aborted);
    assert_eq!(rec.error.as_deref(), Some("Stop"));
    assert_eq!(history(&c, &arn).last().unwrap().kind, "ExecutionAborted");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_never_returns_a_running_execution() {
    let dir = tempfile::tempdir().unwrap();
    let e = sqlite_engine(&dir.path().join("engine.db"), Resources::new()).await;
    let sm = machine(
        &e,
        "quick",
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": true}}}),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..100 {
        let arn = start(&e, &sm, json!({})).await;
        // Racing the run to its end: wait() must see it closed either way.
        while e.running_count() > 0 {
            tokio::task::yield_now().await;
        }
        let rec = e.wait(&arn).await.unwrap();
        seen.push(rec.status);
    }
    assert!(
        seen.iter().all(|s| *s == Status::Succeeded),
        "{} of 100 were not SUCCEEDED after wait()",
        seen.iter().filter(|s| **s != Status::Succeeded).count()
    );
    e.shutdown().await;
}
