//! Terminal errors, durable callback answers and redrive timing.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use cm_engine::{Resources, Status};
use common::*;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// A Parallel whose branch fails with States.Runtime (a path that does not exist).
fn runtime_failure_caught_by(errors: Value) -> Value {
    json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [{"StartAt": "Bad", "States": {
            "Bad": {"Type": "Pass", "InputPath": "$.missing", "End": true}}}],
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}],
            "Catch": [{"ErrorEquals": errors, "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Pass", "End": true}}})
}

#[tokio::test]
async fn states_all_does_not_take_runtime_errors() {
    let e = engine(Resources::new()).await;
    let done = run(
        &e,
        "all",
        runtime_failure_caught_by(json!(["States.ALL"])),
        json!({}),
    )
    .await;
    assert_eq!(done.status, Status::Failed);
    assert_eq!(done.error.as_deref(), Some("States.Runtime"));
    // Not retried either: the branch's Pass was entered once.
    let entered = history(&e, &done.arn)
        .iter()
        .filter(|ev| ev.kind == "PassStateEntered")
        .count();
    assert_eq!(entered, 1);
    // A catcher that names the error takes it.
    let done = run(
        &e,
        "named",
        runtime_failure_caught_by(json!(["States.Runtime"])),
        json!({}),
    )
    .await;
    assert_eq!(done.status, Status::Succeeded, "{done:?}");
    assert_eq!(done.output.unwrap()["Error"], "States.Runtime");
}

#[tokio::test]
async fn a_callback_answer_is_journaled_before_send_task_success_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (handler, mut calls) = reporting();
    let e = sqlite_engine(
        &dir.path().join("e.db"),
        Resources::new().function("f", handler),
    )
    .await;
    let sm = machine(
        &e,
        "cb",
        single(json!({"Type": "Task", "Resource": INVOKE_CALLBACK,
            "Parameters": {"FunctionName": "f", "Payload": {"token.$": "$$.Task.Token"}},
            "End": true})),
    )
    .await;
    let arn = start(&e, &sm, json!({})).await;
    let call = calls.recv().await.unwrap();
    e.send_task_success(call.task_token.as_deref().unwrap(), json!({"ok": 1}))
        .await
        .unwrap();
    // Already in the store (read through a separate connection), whatever the run does next.
    let succeeded = history(&e, &arn)
        .into_iter()
        .find(|ev| ev.kind == "TaskSucceeded")
        .expect("TaskSucceeded journaled");
    assert_eq!(succeeded.details["output"], json!({"ok": 1}));
    assert_eq!(e.wait(&arn).await.unwrap().output, Some(json!({"ok": 1})));
}

#[tokio::test]
async fn a_redrive_sets_redrive_time_and_reruns_only_the_failed_state() {
    let count = counter();
    let e = engine(Resources::new().function("f", flaky(count.clone(), 1, "Boom"))).await;
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "T"},
        "T": {"Type": "Task", "Resource": INVOKE,
              "Parameters": {"FunctionName": "f", "Payload": {"redriveTime.$": "$$.Execution.RedriveTime"}},
              "ResultSelector": {"redriveTime.$": "$.Payload.redriveTime"}, "ResultPath": "$.t", "End": true}}});
    let done = run(&e, "redrive", def, json!({})).await;
    // First run: no RedriveTime in the context, so the path fails before the call.
    assert_eq!(done.status, Status::Failed);
    assert_eq!(done.error.as_deref(), Some("States.Runtime"));
    assert_eq!(count.load(Ordering::SeqCst), 0);
    e.redrive_execution(&done.arn).await.unwrap();
    let again = e.wait(&done.arn).await.unwrap();
    // The function fails once (Boom), uncaught.
    assert_eq!(again.status, Status::Failed, "{again:?}");
    assert_eq!(again.error.as_deref(), Some("Boom"));
    e.redrive_execution(&done.arn).await.unwrap();
    let third = e.wait(&done.arn).await.unwrap();
    assert_eq!(third.status, Status::Succeeded, "{third:?}");
    let out = third.output.unwrap();
    assert_eq!(out["a"], 1);
    assert!(out["t"]["redriveTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(third.redrive_count, 2);
    // The first state ran once in all.
    let passes = history(&e, &done.arn)
        .iter()
        .filter(|ev| ev.kind == "PassStateEntered")
        .count();
    assert_eq!(passes, 1);
}
