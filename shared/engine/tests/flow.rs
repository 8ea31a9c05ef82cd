//! Control flow run by the engine: Map (MaxConcurrency, tolerated failures, ItemBatcher),
//! Parallel, Wait on the virtual clock, and child executions (`states:startExecution`).

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use cm_asl::AslError;
use cm_engine::time::iso;
use cm_engine::{Engine, FnHandler, Resources, Status, TaskCall};
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Semaphore, mpsc};

/// A Map over `$.items` whose processor invokes function `f` on each item.
fn map_of(f: &str, extra: Value) -> Value {
    let mut m = json!({
        "Type": "Map", "ItemsPath": "$.items", "End": true,
        "ItemProcessor": {"StartAt": "F", "States": {"F": invoke(f)}}
    });
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    single(m)
}

/// A function that tracks how many calls run at once and parks each until released.
struct Gate {
    current: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
    release: Arc<Semaphore>,
    arrived: mpsc::UnboundedReceiver<usize>,
}

fn gate() -> (Gate, impl cm_engine::TaskHandler) {
    let current = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Semaphore::new(0));
    let (tx, arrived) = mpsc::unbounded_channel();
    let (c, m, r) = (current.clone(), max.clone(), release.clone());
    let h = AsyncFn(move |call: TaskCall| {
        let (c, m, r, tx) = (c.clone(), m.clone(), r.clone(), tx.clone());
        async move {
            let now = c.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            let _ = tx.send(now);
            r.acquire().await.unwrap().forget();
            c.fetch_sub(1, Ordering::SeqCst);
            Ok(call.input)
        }
    });
    (
        Gate {
            current,
            max,
            release,
            arrived,
        },
        h,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn map_max_concurrency_is_honoured() {
    let (mut g, h) = gate();
    let e = engine(Resources::new().function("gate", h)).await;
    let sm = machine(&e, "limited", map_of("gate", json!({"MaxConcurrency": 3}))).await;
    let items: Vec<i64> = (0..8).collect();
    let arn = start(&e, &sm, json!({"items": items})).await;
    for _ in 0..3 {
        g.arrived.recv().await.unwrap();
    }
    assert_eq!(g.current.load(Ordering::SeqCst), 3);
    // One released → exactly one more starts.
    for _ in 3..8 {
        g.release.add_permits(1);
        let now = g.arrived.recv().await.unwrap();
        assert!(now <= 3, "{now} running at once");
    }
    g.release.add_permits(3);
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    assert_eq!(rec.output.unwrap(), json!(items));
    assert_eq!(g.max.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn map_without_max_concurrency_runs_every_item_at_once() {
    let (mut g, h) = gate();
    let e = engine(Resources::new().function("gate", h)).await;
    let sm = machine(
        &e,
        "unlimited",
        map_of("gate", json!({"MaxConcurrency": 0})),
    )
    .await;
    let arn = start(&e, &sm, json!({"items": [1, 2, 3, 4, 5]})).await;
    // Nothing is released until all five have started.
    for _ in 0..5 {
        g.arrived.recv().await.unwrap();
    }
    assert_eq!(g.current.load(Ordering::SeqCst), 5);
    g.release.add_permits(5);
    assert_eq!(
        e.wait(&arn).await.unwrap().output.unwrap(),
        json!([1, 2, 3, 4, 5])
    );
}

/// Fails on odd numbers.
fn odd_fails() -> impl cm_engine::TaskHandler {
    FnHandler(|c: &TaskCall| {
        if c.input.as_i64().unwrap() % 2 == 1 {
            Err(AslError::new("Odd", format!("{} is odd", c.input)))
        } else {
            Ok(c.input.clone())
        }
    })
}

#[tokio::test]
async fn map_tolerated_failures() {
    let e = engine(Resources::new().function("f", odd_fails())).await;
    let input = json!({"items": [0, 1, 2, 3, 4]});
    let run_with = |name: &'static str, extra: Value| {
        let e = e.clone();
        let input = input.clone();
        async move { run(&e, name, map_of("f", extra), input).await }
    };

    // Two failures, two tolerated: the failed items are {Error, Cause}.
    let rec = run_with("count-2", json!({"ToleratedFailureCount": 2})).await;
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    let out = rec.output.unwrap();
    assert_eq!(out[0], 0);
    assert_eq!(out[2], 2);
    assert_eq!(out[4], 4);
    for i in [1, 3] {
        assert_eq!(out[i]["Error"], "Odd");
        let cause: Value = serde_json::from_str(out[i]["Cause"].as_str().unwrap()).unwrap();
        assert_eq!(cause["errorMessage"], format!("{i} is odd"));
        assert_eq!(out[i].as_object().unwrap().len(), 2);
    }

    // One tolerated: exceeded.
    let rec = run_with("count-1", json!({"ToleratedFailureCount": 1})).await;
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(
        rec.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );

    // 2 of 5 failed = 40 %: tolerated at 40 %, not at 39 %.
    let rec = run_with("pct-40", json!({"ToleratedFailurePercentage": 40})).await;
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    let rec = run_with("pct-39", json!({"ToleratedFailurePercentage": 39})).await;
    assert_eq!(
        rec.error.as_deref(),
        Some("States.ExceedToleratedFailureThreshold")
    );

    // No tolerance: the item's own error fails the Map.
    let rec = run_with("none", json!({})).await;
    assert_eq!(rec.error.as_deref(), Some("Odd"));

    // Thresholds from the input.
    let rec = run(
        &e,
        "count-path",
        map_of("f", json!({"ToleratedFailureCountPath": "$.tolerate"})),
        json!({"items": [1, 3], "tolerate": 2}),
    )
    .await;
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    let rec = run(
        &e,
        "count-path-bad",
        map_of("f", json!({"ToleratedFailureCountPath": "$.tolerate"})),
        json!({"items": [1, 3], "tolerate": "many"}),
    )
    .await;
    assert_eq!(rec.error.as_deref(), Some("States.Runtime"));
}

#[tokio::test]
async fn map_failure_is_caught_and_items_keep_their_order() {
    let e = engine(Resources::new().function("f", odd_fails())).await;
    let mut m = map_of("f", json!({}))["States"]["S"].clone();
    m.as_object_mut().unwrap().remove("End");
    m["Next"] = json!("Ok");
    m["Catch"] = json!([{"ErrorEquals": ["Odd"], "ResultPath": "$.err", "Next": "Caught"}]);
    let def = json!({"StartAt": "M", "States": {
        "M": m,
        "Ok": {"Type": "Pass", "End": true},
        "Caught": {"Type": "Pass", "End": true}
    }});
    let rec = run(&e, "map-catch", def, json!({"items": [2, 4, 5]})).await;
    assert_eq!(rec.output.unwrap()["err"]["Error"], "Odd");
    let rec = run(
        &e,
        "map-order",
        map_of("f", json!({"MaxConcurrency": 2})),
        json!({"items": [8, 6, 4, 2, 0]}),
    )
    .await;
    assert_eq!(rec.output.unwrap(), json!([8, 6, 4, 2, 0]));
}

#[tokio::test]
async fn map_item_batcher_groups_items_with_batch_input() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let e = engine(Resources::new().function(
        "batch",
        FnHandler(move |c: &TaskCall| {
            s.lock().unwrap().push(c.input.clone());
            Ok(json!(c.input["Items"].as_array().unwrap().len()))
        }),
    ))
    .await;
    let rec = run(
        &e,
        "batcher",
        map_of(
            "batch",
            json!({"ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"job": "j-1"}}}),
        ),
        json!({"items": [1, 2, 3, 4, 5]}),
    )
    .await;
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    assert_eq!(rec.output.unwrap(), json!([2, 2, 1]));
    let mut batches = seen.lock().unwrap().clone();
    batches.sort_by_key(|b| b["Items"][0].as_i64());
    assert_eq!(
        batches,
        vec![
            json!({"Items": [1, 2], "BatchInput": {"job": "j-1"}}),
            json!({"Items": [3, 4], "BatchInput": {"job": "j-1"}}),
            json!({"Items": [5], "BatchInput": {"job": "j-1"}}),
        ]
    );
    // Without BatchInput only Items is there.
    let rec = run(
        &e,
        "batcher-plain",
        single(json!({
            "Type": "Map", "End": true, "ItemBatcher": {"MaxItemsPerBatch": 3},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}
        })),
        json!(["a", "b", "c", "d"]),
    )
    .await;
    assert_eq!(
        rec.output.unwrap(),
        json!([{"Items": ["a", "b", "c"]}, {"Items": ["d"]}])
    );
}

#[tokio::test]
async fn map_item_selector_sees_the_item_context() {
    let e = engine(Resources::new()).await;
    let rec = run(
        &e,
        "selector",
        single(json!({
            "Type": "Map", "ItemsPath": "$.xs", "End": true,
            "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "k.$": "$.k"},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}
        })),
        json!({"xs": ["a", "b"], "k": 9}),
    )
    .await;
    assert_eq!(
        rec.output.unwrap(),
        json!([{"i": 0, "v": "a", "k": 9}, {"i": 1, "v": "b", "k": 9}])
    );
}

#[tokio::test]
async fn parallel_returns_branch_outputs_in_order() {
    let e = engine(Resources::new().function("echo", counting_echo(counter()))).await;
    let rec = run(
        &e,
        "parallel",
        single(json!({
            "Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "a", "End": true}}},
                {"StartAt": "B", "States": {"B": invoke("echo")}},
                {"StartAt": "C", "States": {"C": {"Type": "Wait", "Seconds": 10, "Next": "D"},
                                            "D": {"Type": "Pass", "Result": "c", "End": true}}}
            ]
        })),
        json!({"in": 1}),
    )
    .await;
    assert_eq!(rec.output.unwrap(), json!(["a", {"in": 1}, "c"]));
}

#[tokio::test]
async fn parallel_fails_on_the_first_failing_branch() {
    let (park, mut calls) = reporting();
    let e = engine(Resources::new().function("park", park)).await;
    let def = single(json!({
        "Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "Park", "States": {"Park": {
                "Type": "Task", "Resource": INVOKE_CALLBACK,
                "Parameters": {"FunctionName": "park", "Payload": {}}, "End": true}}},
            {"StartAt": "W", "States": {
                "W": {"Type": "Wait", "Seconds": 1, "Next": "F"},
                "F": {"Type": "Fail", "Error": "Branch.Broke", "Cause": "b2"}}}
        ]
    }));
    let sm = machine(&e, "parallel-fail", def).await;
    let arn = start(&e, &sm, json!({})).await;
    // The first branch is parked; the second fails, and that fails the state at once.
    let token = calls.recv().await.unwrap().task_token.unwrap();
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("Branch.Broke"));
    assert_eq!(rec.cause.as_deref(), Some("b2"));
    let h = history(&e, &arn);
    assert_dense(&h);
    assert!(kinds(&h).contains(&"ParallelStateFailed".to_owned()));
    // The parked branch was stopped with it.
    assert_eq!(
        code(e.send_task_success(&token, json!(1)).await),
        "TaskDoesNotExist"
    );
    assert_eq!(e.running_count(), 0);
}

#[tokio::test]
async fn parallel_failure_can_be_retried_and_caught() {
    let count = counter();
    let e = engine(Resources::new().function("f", flaky(count.clone(), 1, "Flaky"))).await;
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Next": "Done",
              "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 3}],
              "Branches": [{"StartAt": "F", "States": {"F": invoke("f")}}]},
        "Done": {"Type": "Pass", "End": true}
    }});
    let rec = run(&e, "parallel-retry", def, json!({"v": 1})).await;
    assert_eq!(rec.output.unwrap(), json!([{"v": 1}]));
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert_eq!(e.clock().now_ms() - T0, 3_000);

    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Next": "Done",
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done"}],
              "Branches": [{"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "X", "Cause": "y"}}}]},
        "Done": {"Type": "Pass", "End": true}
    }});
    let rec = run(&e, "parallel-catch", def, json!({"v": 1})).await;
    assert_eq!(
        rec.output.unwrap(),
        json!({"v": 1, "error": {"Error": "X", "Cause": "y"}})
    );
}

#[tokio::test]
async fn wait_states_advance_the_virtual_clock() {
    let e = engine(Resources::new()).await;
    let def = json!({"StartAt": "W1", "States": {
        "W1": {"Type": "Wait", "Seconds": 3600, "Next": "W2"},
        "W2": {"Type": "Wait", "Timestamp": iso(T0 + 7_200_000), "Next": "W3"},
        "W3": {"Type": "Wait", "SecondsPath": "$.s", "Next": "W4"},
        "W4": {"Type": "Wait", "TimestampPath": "$.ts", "Next": "Now"},
        "Now": {"Type": "Pass", "Parameters": {"at.$": "$$.State.EnteredTime", "s.$": "$.s"}, "End": true}
    }});
    let rec = run(&e, "waits", def, json!({"s": 60, "ts": iso(T0)})).await;
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    // A timestamp in the past does not wait.
    let at = T0 + 7_200_000 + 60_000;
    assert_eq!(rec.output.unwrap(), json!({"at": iso(at), "s": 60}));
    assert_eq!(e.clock().now_ms(), at);
    let h = history(&e, &rec.arn);
    assert_eq!(h.last().unwrap().timestamp_ms, at);

    let rec = run(
        &e,
        "wait-bad",
        single(json!({"Type": "Wait", "SecondsPath": "$.s", "End": true})),
        json!({"s": -1}),
    )
    .await;
    assert_eq!(rec.error.as_deref(), Some("States.Runtime"));
}

// ---- child executions ------------------------------------------------------------------

async fn child_engine() -> (Engine, String, String) {
    let e = engine(Resources::new()).await;
    let ok = machine(
        &e,
        "child",
        single(json!({"Type": "Pass", "Parameters": {"got.$": "$"}, "End": true})),
    )
    .await;
    let bad = machine(
        &e,
        "child-fail",
        single(json!({"Type": "Fail", "Error": "Child.Broke", "Cause": "child cause"})),
    )
    .await;
    (e, ok, bad)
}

fn start_child(resource: &str, child: &str, extra: Value) -> Value {
    let mut params = json!({"StateMachineArn": child, "Input": {"x.$": "$.x"}});
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    single(json!({"Type": "Task", "Resource": resource, "Parameters": params, "End": true}))
}

#[tokio::test]
async fn start_execution_starts_a_child_and_returns_its_arn() {
    let (e, child, _) = child_engine().await;
    let parent = run(
        &e,
        "parent",
        start_child(
            "arn:aws:states:::states:startExecution",
            &child,
            json!({"Name": "kid-1"}),
        ),
        json!({"x": 5}),
    )
    .await;
    assert_eq!(parent.status, Status::Succeeded, "{parent:?}");
    let out = parent.output.unwrap();
    let child_arn = out["ExecutionArn"].as_str().unwrap().to_owned();
    assert!(child_arn.ends_with(":execution:child:kid-1"), "{child_arn}");
    assert!(cm_engine::time::parse_ms(out["StartDate"].as_str().unwrap()).is_some());
    let rec = e.wait(&child_arn).await.unwrap();
    assert_eq!(rec.status, Status::Succeeded);
    assert_eq!(rec.output.clone().unwrap(), json!({"got": {"x": 5}}));
    assert_eq!(rec.parent.as_deref(), Some(parent.arn.as_str()));
    assert_eq!(rec.to_aws_json()["parentExecutionArn"], json!(parent.arn));
}

#[tokio::test]
async fn start_execution_sync_returns_output_as_json_text() {
    let (e, child, _) = child_engine().await;
    let parent = run(
        &e,
        "parent-sync",
        start_child(
            "arn:aws:states:::states:startExecution.sync",
            &child,
            json!({}),
        ),
        json!({"x": 1}),
    )
    .await;
    assert_eq!(parent.status, Status::Succeeded, "{parent:?}");
    let out = parent.output.unwrap();
    assert_eq!(out["Status"], "SUCCEEDED");
    assert_eq!(out["StateMachineArn"], json!(child));
    let text = out["Output"].as_str().expect("Output is JSON text");
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        json!({"got": {"x": 1}})
    );
    assert!(out["Input"].is_string());
    assert!(out["StartDate"].is_string() && out["StopDate"].is_string());
    let child_rec = e
        .describe_execution(out["ExecutionArn"].as_str().unwrap())
        .unwrap();
    assert_eq!(child_rec.parent.as_deref(), Some(parent.arn.as_str()));
    // Without a Name, the child's name is derived from the parent's task.
    assert!(child_rec.name.starts_with("child-"), "{}", child_rec.name);
}

#[tokio::test]
async fn start_execution_sync2_returns_output_as_json() {
    let (e, child, _) = child_engine().await;
    let parent = run(
        &e,
        "parent-sync2",
        start_child(
            "arn:aws:states:::states:startExecution.sync:2",
            &child,
            json!({}),
        ),
        json!({"x": 2}),
    )
    .await;
    let out = parent.output.unwrap();
    assert_eq!(out["Output"], json!({"got": {"x": 2}}));
    assert_eq!(out["Input"], json!({"x": 2}));
    assert_eq!(out["Status"], "SUCCEEDED");
}

#[tokio::test]
async fn a_failed_child_fails_the_sync_task_with_states_task_failed() {
    let (e, _, bad) = child_engine().await;
    let parent = run(
        &e,
        "parent-fail",
        start_child(
            "arn:aws:states:::states:startExecution.sync:2",
            &bad,
            json!({}),
        ),
        json!({"x": 3}),
    )
    .await;
    assert_eq!(parent.status, Status::Failed);
    assert_eq!(parent.error.as_deref(), Some("States.TaskFailed"));
    let cause: Value = serde_json::from_str(parent.cause.as_deref().unwrap()).unwrap();
    assert_eq!(cause["Status"], "FAILED");
    assert_eq!(cause["Error"], "Child.Broke");
    assert_eq!(cause["Cause"], "child cause");
    let child = e
        .describe_execution(cause["ExecutionArn"].as_str().unwrap())
        .unwrap();
    assert_eq!(child.status, Status::Failed);
    assert_eq!(child.parent.as_deref(), Some(parent.arn.as_str()));

    // Caught like any task failure.
    let mut def = start_child(
        "arn:aws:states:::states:startExecution.sync",
        &bad,
        json!({}),
    );
    def["States"]["S"]["Catch"] =
        json!([{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.err", "Next": "Caught"}]);
    def["States"]["Caught"] = json!({"Type": "Pass", "End": true});
    let parent = run(&e, "parent-catch", def, json!({"x": 4})).await;
    assert_eq!(parent.status, Status::Succeeded, "{parent:?}");
    assert_eq!(parent.output.unwrap()["err"]["Error"], "States.TaskFailed");
}

#[tokio::test]
async fn start_execution_errors_are_named_like_the_api() {
    let (e, child, _) = child_engine().await;
    let ghost = Engine::state_machine_arn("ghost");
    let rec = run(
        &e,
        "parent-ghost",
        start_child("arn:aws:states:::states:startExecution", &ghost, json!({})),
        json!({"x": 0}),
    )
    .await;
    assert_eq!(
        rec.error.as_deref(),
        Some("StepFunctions.StateMachineDoesNotExist")
    );
    let rec = run(
        &e,
        "parent-badname",
        start_child(
            "arn:aws:states:::states:startExecution",
            &child,
            json!({"Name": "bad name"}),
        ),
        json!({"x": 0}),
    )
    .await;
    assert_eq!(rec.error.as_deref(), Some("StepFunctions.InvalidName"));
    let rec = run(
        &e,
        "parent-noarn",
        single(
            json!({"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
                      "Parameters": {}, "End": true}),
        ),
        json!({}),
    )
    .await;
    assert_eq!(rec.error.as_deref(), Some("States.Runtime"));
}

#[tokio::test]
async fn a_named_child_of_another_parent_is_not_adopted() {
    let (e, child, _) = child_engine().await;
    let def = start_child(
        "arn:aws:states:::states:startExecution.sync:2",
        &child,
        json!({"Name": "only-one"}),
    );
    let sm = machine(&e, "parent-named", def).await;
    let first = start(&e, &sm, json!({"x": 1})).await;
    let first = e.wait(&first).await.unwrap();
    assert_eq!(first.status, Status::Succeeded, "{first:?}");
    // A second parent starting a child of the same name: StartExecution says the name is
    // taken, as on AWS; the first parent's child is not reused.
    let second = start(&e, &sm, json!({"x": 2})).await;
    let second = e.wait(&second).await.unwrap();
    assert_eq!(second.status, Status::Failed, "{second:?}");
    assert_eq!(
        second.error.as_deref(),
        Some("StepFunctions.ExecutionAlreadyExists")
    );
}

#[tokio::test]
async fn start_execution_wait_for_task_token_waits_for_the_callback() {
    let (e, child, _) = child_engine().await;
    let mut rx = e.subscribe();
    let parent = run_parent_with_token(&e, &child).await;
    // The child runs to its end; its output carries the parent's token.
    let child_arn = loop {
        let ev = rx.recv().await.unwrap();
        if ev.event.kind == "ExecutionSucceeded" && *ev.execution_arn != *parent {
            break ev.execution_arn.to_string();
        }
    };
    let out = e.describe_execution(&child_arn).unwrap().output.unwrap();
    let token = out["got"]["token"].as_str().unwrap().to_owned();
    assert_eq!(
        e.describe_execution(&parent).unwrap().status,
        Status::Running
    );
    e.send_task_success(&token, json!({"from": "child"}))
        .await
        .unwrap();
    let done = e.wait(&parent).await.unwrap();
    assert_eq!(done.output.unwrap(), json!({"from": "child"}));
}

async fn run_parent_with_token(e: &Engine, child: &str) -> String {
    let sm = machine(
        e,
        "parent-token",
        single(json!({
            "Type": "Task", "Resource": "arn:aws:states:::states:startExecution.waitForTaskToken",
            "Parameters": {"StateMachineArn": child, "Input": {"token.$": "$$.Task.Token"}},
            "End": true
        })),
    )
    .await;
    start(e, &sm, json!({})).await
}
