//! The execution API: state machines, StartExecution (idempotency, names, input limits),
//! Describe, Stop, execution timeouts, GetExecutionHistory, ListExecutions, the live event
//! stream, and the transition guard.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use cm_engine::history::is_terminal;
use cm_engine::{
    Engine, EngineConfig, EngineError, HistoryQuery, MachineType, Resources, Status, check_name,
};
use common::*;
use serde_json::{Value, json};
use std::collections::HashSet;

fn pass_machine() -> Value {
    json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"done": true}, "End": true}}})
}

/// A machine that parks on a callback task of function `park`.
fn parked_machine() -> Value {
    single(json!({
        "Type": "Task", "Resource": INVOKE_CALLBACK,
        "Parameters": {"FunctionName": "park", "Payload": {}},
        "End": true
    }))
}

async fn parking_engine() -> (
    Engine,
    tokio::sync::mpsc::UnboundedReceiver<cm_engine::TaskCall>,
) {
    let (park, calls) = reporting();
    (engine(Resources::new().function("park", park)).await, calls)
}

#[tokio::test]
async fn start_is_idempotent_by_name_while_running() {
    let (e, mut calls) = parking_engine().await;
    let sm = machine(&e, "idem", parked_machine()).await;
    let first = e
        .start_execution(&sm, Some("order-1".into()), json!({"n": 1}))
        .await
        .unwrap();
    assert!(!first.existing);
    assert_eq!(
        first.execution_arn,
        "arn:aws:states:us-east-1:000000000000:execution:idem:order-1"
    );
    let token = calls.recv().await.unwrap().task_token.unwrap();

    let again = e
        .start_execution(&sm, Some("order-1".into()), json!({"n": 1}))
        .await
        .unwrap();
    assert!(again.existing);
    assert_eq!(again.execution_arn, first.execution_arn);
    assert_eq!(again.start_ms, first.start_ms);
    assert_eq!(e.running_count(), 1);

    let different = e
        .start_execution(&sm, Some("order-1".into()), json!({"n": 2}))
        .await
        .unwrap_err();
    match &different {
        EngineError::ExecutionAlreadyExists { arn, .. } => assert_eq!(arn, &first.execution_arn),
        other => panic!("{other:?}"),
    }
    assert_eq!(different.code(), "ExecutionAlreadyExists");

    e.send_task_success(&token, json!(1)).await.unwrap();
    assert_eq!(
        e.wait(&first.execution_arn).await.unwrap().status,
        Status::Succeeded
    );
    // Closed: the name cannot be reused, even with the same input.
    assert_eq!(
        code(
            e.start_execution(&sm, Some("order-1".into()), json!({"n": 1}))
                .await
        ),
        "ExecutionAlreadyExists"
    );
    // Only one execution was ever created.
    assert_eq!(
        e.list_executions(Some(&sm), None, 100, None)
            .unwrap()
            .executions
            .len(),
        1
    );
}

#[tokio::test]
async fn names_are_generated_and_checked() {
    let e = engine(Resources::new()).await;
    let sm = machine(&e, "names", pass_machine()).await;
    let uuid = regex::Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        .unwrap();
    let mut names = HashSet::new();
    for _ in 0..5 {
        let arn = start(&e, &sm, json!({})).await;
        let rec = e.wait(&arn).await.unwrap();
        assert!(uuid.is_match(&rec.name), "{}", rec.name);
        assert!(arn.ends_with(&format!(":{}", rec.name)));
        names.insert(rec.name);
    }
    assert_eq!(names.len(), 5);

    let long_ok = "a".repeat(80);
    check_name(&long_ok).unwrap();
    e.start_execution(&sm, Some(long_ok), json!({}))
        .await
        .unwrap();
    for bad in [
        "",
        &"a".repeat(81),
        "has space",
        "slash/name",
        "colon:name",
        "star*",
        "tab\tname",
        "quote\"",
        "brace{",
    ] {
        let err = e
            .start_execution(&sm, Some(bad.to_owned()), json!({}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, EngineError::InvalidName { .. }),
            "{bad:?}: {err:?}"
        );
        assert_eq!(err.code(), "InvalidName");
        assert_eq!(
            code(
                e.create_state_machine(bad, &pass_machine(), MachineType::Standard)
                    .await
            ),
            "InvalidName",
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn input_over_256_kib_is_invalid() {
    let e = engine(Resources::new()).await;
    let sm = machine(&e, "big", pass_machine()).await;
    // {"big":"…"} is 10 bytes plus the string.
    let at_limit = json!({"big": "x".repeat(262_144 - 10)});
    let arn = start(&e, &sm, at_limit).await;
    assert_eq!(e.wait(&arn).await.unwrap().status, Status::Succeeded);
    let over = json!({"big": "x".repeat(262_144 - 9)});
    let err = e.start_execution(&sm, None, over).await.unwrap_err();
    assert!(matches!(err, EngineError::InvalidInput(_)), "{err:?}");
    assert_eq!(err.code(), "InvalidExecutionInput");
}

#[tokio::test]
async fn unknown_state_machines_and_executions() {
    let e = engine(Resources::new()).await;
    let ghost = Engine::state_machine_arn("ghost");
    assert_eq!(
        code(e.start_execution(&ghost, None, json!({})).await),
        "StateMachineDoesNotExist"
    );
    assert_eq!(
        code(e.describe_state_machine(&ghost)),
        "StateMachineDoesNotExist"
    );
    assert_eq!(
        code(e.list_executions(Some(&ghost), None, 10, None)),
        "StateMachineDoesNotExist"
    );
    let nope = "arn:aws:states:us-east-1:000000000000:execution:ghost:nope";
    assert_eq!(code(e.describe_execution(nope)), "ExecutionDoesNotExist");
    assert_eq!(code(e.wait(nope).await), "ExecutionDoesNotExist");
    assert_eq!(
        code(e.stop_execution(nope, None, None).await),
        "ExecutionDoesNotExist"
    );
    assert_eq!(
        code(e.get_execution_history(nope, HistoryQuery::default())),
        "ExecutionDoesNotExist"
    );
    assert_eq!(
        code(e.redrive_execution(nope).await),
        "ExecutionDoesNotExist"
    );
}

#[tokio::test]
async fn invalid_definitions_are_refused_with_a_json_pointer() {
    let e = engine(Resources::new()).await;
    let cases = [
        (json!({"States": {}}), "/States"),
        (
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}),
            "/States/A/Next",
        ),
        (
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true,
                "Retry": [{"ErrorEquals": ["E"]}]}}}),
            "/States/A/Retry",
        ),
        (
            json!({"StartAt": "A", "States": {"A/b": {"Type": "Succeed"}, "A": {"Type": "Bogus"}}}),
            "/States/A/Type",
        ),
        (
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
                "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "M"}}}}}}),
            "/States/M/ItemProcessor/States/X/Next",
        ),
        (
            json!({"StartAt": "A", "TimeoutSeconds": 0, "States": {"A": {"Type": "Succeed"}}}),
            "/TimeoutSeconds",
        ),
    ];
    for (def, want) in cases {
        match e
            .create_state_machine("bad", &def, MachineType::Standard)
            .await
        {
            Err(EngineError::InvalidDefinition { path, message }) => {
                assert_eq!(path, want, "{message}");
                assert!(!message.is_empty());
            }
            other => panic!("{def}: {other:?}"),
        }
    }
    assert_eq!(
        code(e.describe_state_machine(&Engine::state_machine_arn("bad"))),
        "StateMachineDoesNotExist"
    );
}

#[tokio::test]
async fn updating_a_machine_makes_a_revision_and_running_executions_keep_theirs() {
    let (e, mut calls) = parking_engine().await;
    let v1 = json!({"StartAt": "Park", "States": {
        "Park": {"Type": "Task", "Resource": INVOKE_CALLBACK,
                 "Parameters": {"FunctionName": "park", "Payload": {}}, "Next": "Tag"},
        "Tag": {"Type": "Pass", "Result": "v1", "End": true}
    }});
    let mut v2 = v1.clone();
    v2["States"]["Tag"]["Result"] = json!("v2");
    let rec1 = e
        .create_state_machine("rev", &v1, MachineType::Standard)
        .await
        .unwrap();
    assert_eq!(rec1.revision, 1);
    let old = start(&e, &rec1.arn, json!({})).await;
    let old_token = calls.recv().await.unwrap().task_token.unwrap();

    let rec2 = e
        .create_state_machine("rev", &v2, MachineType::Standard)
        .await
        .unwrap();
    assert_eq!(rec2.arn, rec1.arn);
    assert_eq!(rec2.revision, 2);
    assert_eq!(rec2.created_ms, rec1.created_ms);
    // The same definition again is not a new revision.
    let same = e
        .create_state_machine("rev", &v2, MachineType::Standard)
        .await
        .unwrap();
    assert_eq!(same.revision, 2);
    assert_eq!(e.describe_state_machine(&rec1.arn).unwrap().revision, 2);

    let new = start(&e, &rec1.arn, json!({})).await;
    let new_token = calls.recv().await.unwrap().task_token.unwrap();
    assert_eq!(e.describe_execution(&old).unwrap().revision, 1);
    assert_eq!(e.describe_execution(&new).unwrap().revision, 2);
    e.send_task_success(&old_token, json!({})).await.unwrap();
    e.send_task_success(&new_token, json!({})).await.unwrap();
    assert_eq!(e.wait(&old).await.unwrap().output.unwrap(), json!("v1"));
    assert_eq!(e.wait(&new).await.unwrap().output.unwrap(), json!("v2"));
    assert_eq!(e.list_state_machines().unwrap().len(), 1);
}

#[tokio::test]
async fn stop_execution_aborts_with_error_and_cause() {
    let (e, mut calls) = parking_engine().await;
    let sm = machine(&e, "stop", parked_machine()).await;
    let arn = start(&e, &sm, json!({})).await;
    let token = calls.recv().await.unwrap().task_token.unwrap();
    let rec = e
        .stop_execution(
            &arn,
            Some("Operator.Stop".into()),
            Some("not needed".into()),
        )
        .await
        .unwrap();
    assert_eq!(rec.status, Status::Aborted);
    assert_eq!(rec.error.as_deref(), Some("Operator.Stop"));
    assert_eq!(rec.cause.as_deref(), Some("not needed"));
    assert!(rec.stop_ms.is_some());
    assert_eq!(e.running_count(), 0);
    assert_eq!(e.wait(&arn).await.unwrap().status, Status::Aborted);

    let h = history(&e, &arn);
    assert_dense(&h);
    let last = h.last().unwrap();
    assert_eq!(last.kind, "ExecutionAborted");
    let aws = last.to_aws_json();
    assert_eq!(
        aws["executionAbortedEventDetails"],
        json!({"error": "Operator.Stop", "cause": "not needed"})
    );
    let described = rec.to_aws_json();
    assert_eq!(described["status"], "ABORTED");
    assert_eq!(described["redriveStatus"], "REDRIVABLE");

    // The task is gone; stopping again changes nothing.
    assert_eq!(
        code(e.send_task_success(&token, json!(1)).await),
        "TaskDoesNotExist"
    );
    let again = e.stop_execution(&arn, None, None).await.unwrap();
    assert_eq!(again, rec);
    assert_eq!(history(&e, &arn).len(), h.len());
}

#[tokio::test]
async fn stop_without_error_or_cause() {
    let (e, mut calls) = parking_engine().await;
    let sm = machine(&e, "stop-bare", parked_machine()).await;
    let arn = start(&e, &sm, json!({})).await;
    calls.recv().await.unwrap();
    let rec = e.stop_execution(&arn, None, None).await.unwrap();
    assert_eq!(rec.status, Status::Aborted);
    assert_eq!(rec.error, None);
    let last = history(&e, &arn).pop().unwrap();
    assert_eq!(last.kind, "ExecutionAborted");
    assert!(
        last.to_aws_json()
            .get("executionAbortedEventDetails")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn execution_timeout_seconds_times_the_execution_out() {
    let (park, mut calls) = reporting();
    let e = system_engine(Resources::new().function("park", park)).await;
    let mut def = parked_machine();
    def["TimeoutSeconds"] = json!(1);
    let sm = machine(&e, "exec-timeout", def).await;
    let arn = start(&e, &sm, json!({})).await;
    let token = calls.recv().await.unwrap().task_token.unwrap();
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(rec.status, Status::TimedOut);
    assert_eq!(rec.error.as_deref(), Some("States.Timeout"));
    assert!(rec.stop_ms.unwrap() - rec.start_ms >= 1_000);
    let h = history(&e, &arn);
    assert_eq!(h.last().unwrap().kind, "ExecutionTimedOut");
    assert_dense(&h);
    assert_eq!(rec.to_aws_json()["status"], "TIMED_OUT");
    assert_eq!(
        code(e.send_task_success(&token, json!(1)).await),
        "TaskDoesNotExist"
    );
}

#[tokio::test]
async fn history_events_have_aws_shapes() {
    let e = engine(Resources::new().function("echo", counting_echo(counter()))).await;
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Result": {"a": 1}, "Next": "T"},
        "T": {"Type": "Task", "Resource": INVOKE,
              "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
              "OutputPath": "$.Payload", "Next": "Done"},
        "Done": {"Type": "Succeed"}
    }});
    let rec = run(&e, "shapes", def, json!({"in": true})).await;
    assert_eq!(rec.output.clone().unwrap(), json!({"a": 1}));
    let h = history(&e, &rec.arn);
    assert_dense(&h);
    assert_eq!(
        kinds(&h),
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ]
    );
    let aws: Vec<Value> = h.iter().map(|ev| ev.to_aws_json()).collect();
    for (i, a) in aws.iter().enumerate() {
        assert_eq!(a["id"], json!(i + 1));
        assert_eq!(a["previousEventId"], json!(i));
        assert_eq!(a["timestamp"], "2026-01-01T00:00:00.000Z");
        assert_eq!(a["type"], json!(h[i].kind));
    }
    let started = &aws[0]["executionStartedEventDetails"];
    assert_eq!(started["input"], "{\"in\":true}");
    assert_eq!(started["inputDetails"], json!({"truncated": false}));
    assert_eq!(started["stateMachineArn"], json!(rec.state_machine_arn));
    assert!(
        started["roleArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:iam::")
    );
    assert_eq!(
        aws[1]["stateEnteredEventDetails"],
        json!({"name": "P", "input": "{\"in\":true}", "inputDetails": {"truncated": false}})
    );
    // Replay-internal fields (the next state) are not part of AWS's shape.
    assert_eq!(h[2].details["next"], "T");
    assert_eq!(
        aws[2]["stateExitedEventDetails"],
        json!({"name": "P", "output": "{\"a\":1}", "outputDetails": {"truncated": false}})
    );
    let scheduled = &aws[4]["taskScheduledEventDetails"];
    assert_eq!(scheduled["resourceType"], "lambda");
    assert_eq!(scheduled["resource"], "invoke");
    assert_eq!(scheduled["region"], "us-east-1");
    assert_eq!(
        serde_json::from_str::<Value>(scheduled["parameters"].as_str().unwrap()).unwrap(),
        json!({"FunctionName": "echo", "Payload": {"a": 1}})
    );
    assert_eq!(
        aws[5]["taskStartedEventDetails"],
        json!({"resourceType": "lambda", "resource": "invoke"})
    );
    let succeeded = &aws[6]["taskSucceededEventDetails"];
    assert_eq!(
        serde_json::from_str::<Value>(succeeded["output"].as_str().unwrap()).unwrap()["Payload"],
        json!({"a": 1})
    );
    assert_eq!(
        aws[10]["executionSucceededEventDetails"],
        json!({"output": "{\"a\":1}", "outputDetails": {"truncated": false}})
    );

    // DescribeExecution's shape.
    let d = rec.to_aws_json();
    assert_eq!(d["executionArn"], json!(rec.arn));
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(d["input"], "{\"in\":true}");
    assert_eq!(d["output"], "{\"a\":1}");
    assert_eq!(d["startDate"], "2026-01-01T00:00:00.000Z");
    assert_eq!(d["stopDate"], "2026-01-01T00:00:00.000Z");
    assert_eq!(d["redriveCount"], 0);
    assert_eq!(d["redriveStatus"], "NOT_REDRIVABLE");
    assert!(d.get("error").is_none() && d.get("parentExecutionArn").is_none());
}

#[tokio::test]
async fn history_pages_forward_and_in_reverse() {
    let e = engine(Resources::new()).await;
    let mut states = serde_json::Map::new();
    for i in 0..4 {
        let next = if i == 3 {
            json!({"Type": "Pass", "End": true})
        } else {
            json!({"Type": "Pass", "Next": format!("S{}", i + 1)})
        };
        states.insert(format!("S{i}"), next);
    }
    let rec = run(
        &e,
        "paging",
        json!({"StartAt": "S0", "States": states}),
        json!({}),
    )
    .await;
    let all = history(&e, &rec.arn);
    assert_eq!(all.len(), 10);

    let read = |reverse: bool, size: usize| {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = e
                .get_execution_history(
                    &rec.arn,
                    HistoryQuery {
                        max_results: size,
                        next_token: token.as_deref(),
                        reverse,
                    },
                )
                .unwrap();
            pages.push(page.events.iter().map(|ev| ev.id).collect::<Vec<_>>());
            match page.next_token {
                Some(t) => token = Some(t),
                None => return pages,
            }
        }
    };
    assert_eq!(
        read(false, 4),
        vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9, 10]]
    );
    assert_eq!(
        read(true, 4),
        vec![vec![10, 9, 8, 7], vec![6, 5, 4, 3], vec![2, 1]]
    );
    // An exact fit has no further page.
    assert_eq!(
        read(false, 5),
        vec![vec![1, 2, 3, 4, 5], vec![6, 7, 8, 9, 10]]
    );
    assert_eq!(read(false, 10), vec![(1..=10).collect::<Vec<u64>>()]);
    // max_results is clamped to at least 1.
    assert_eq!(read(false, 0).len(), 10);

    for bad in ["", "garbage", "h", "hx", "e3"] {
        let err = e
            .get_execution_history(
                &rec.arn,
                HistoryQuery {
                    max_results: 4,
                    next_token: Some(bad),
                    reverse: false,
                },
            )
            .unwrap_err();
        assert!(
            matches!(err, EngineError::InvalidToken(_)),
            "{bad:?}: {err:?}"
        );
        assert_eq!(err.code(), "InvalidToken");
    }
}

/// Runs the listing scenario on an engine (memory or SQLite).
async fn listing(e: &Engine, mut calls: tokio::sync::mpsc::UnboundedReceiver<cm_engine::TaskCall>) {
    let a = machine(
        e,
        "list-a",
        json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [
                {"Variable": "$.mode", "StringEquals": "fail", "Next": "F"},
                {"Variable": "$.mode", "StringEquals": "park", "Next": "Park"}
            ], "Default": "Ok"},
            "F": {"Type": "Fail", "Error": "E"},
            "Park": {"Type": "Task", "Resource": INVOKE_CALLBACK,
                     "Parameters": {"FunctionName": "park", "Payload": {}}, "End": true},
            "Ok": {"Type": "Succeed"}
        }}),
    )
    .await;
    let b = machine(e, "list-b", pass_machine()).await;
    let inputs = [
        (&a, json!({"mode": "ok"})),
        (&a, json!({"mode": "fail"})),
        (&b, json!({})),
        (&a, json!({"mode": "ok"})),
        (&a, json!({"mode": "fail"})),
        (&b, json!({})),
        (&a, json!({"mode": "ok"})),
        (&a, json!({"mode": "park"})),
    ];
    let mut arns = Vec::new();
    for (sm, input) in inputs {
        let parks = input["mode"] == "park";
        let arn = start(e, sm, input).await;
        if parks {
            calls.recv().await.unwrap();
        } else {
            e.wait(&arn).await.unwrap();
        }
        arns.push(arn);
    }
    let newest_first: Vec<String> = arns.iter().rev().cloned().collect();
    let list = |sm: Option<&str>, status: Option<Status>| -> Vec<String> {
        e.list_executions(sm, status, 100, None)
            .unwrap()
            .executions
            .into_iter()
            .map(|r| r.arn)
            .collect()
    };
    assert_eq!(list(None, None), newest_first);
    assert_eq!(list(Some(&a), None).len(), 6);
    assert_eq!(list(Some(&b), None), vec![arns[5].clone(), arns[2].clone()]);
    assert_eq!(
        list(Some(&a), Some(Status::Succeeded)),
        vec![arns[6].clone(), arns[3].clone(), arns[0].clone()]
    );
    assert_eq!(
        list(None, Some(Status::Failed)),
        vec![arns[4].clone(), arns[1].clone()]
    );
    assert_eq!(list(None, Some(Status::Running)), vec![arns[7].clone()]);
    assert!(list(Some(&b), Some(Status::Running)).is_empty());
    assert!(list(None, Some(Status::Aborted)).is_empty());

    // Pages of 3: 3 + 3 + 2, newest first, nothing repeated or lost.
    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    let mut sizes = Vec::new();
    loop {
        let page = e.list_executions(None, None, 3, token.as_deref()).unwrap();
        sizes.push(page.executions.len());
        paged.extend(page.executions.into_iter().map(|r| r.arn));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(sizes, vec![3, 3, 2]);
    assert_eq!(paged, newest_first);
    // Paging with a filter.
    let first = e
        .list_executions(Some(&a), Some(Status::Succeeded), 2, None)
        .unwrap();
    assert_eq!(first.executions.len(), 2);
    let rest = e
        .list_executions(
            Some(&a),
            Some(Status::Succeeded),
            2,
            first.next_token.as_deref(),
        )
        .unwrap();
    assert_eq!(rest.executions.len(), 1);
    assert_eq!(rest.executions[0].arn, arns[0]);
    assert!(rest.next_token.is_none());

    for bad in ["x", "e", "ezz", "h3"] {
        assert_eq!(
            code(e.list_executions(None, None, 3, Some(bad))),
            "InvalidToken",
            "{bad}"
        );
    }
}

#[tokio::test]
async fn list_executions_pages_and_filters_in_memory() {
    let (e, calls) = parking_engine().await;
    listing(&e, calls).await;
}

#[tokio::test]
async fn list_executions_pages_and_filters_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (park, calls) = reporting();
    let e = sqlite_engine(
        &dir.path().join("list.db"),
        Resources::new().function("park", park),
    )
    .await;
    listing(&e, calls).await;
    e.shutdown().await;
}

#[tokio::test]
async fn subscribe_streams_an_executions_events_in_order() {
    let e = engine(Resources::new().function("echo", counting_echo(counter()))).await;
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Next": "T", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A2"}, "A2": {"Type": "Pass", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}
        ]},
        "T": {"Type": "Task", "Resource": INVOKE,
              "Parameters": {"FunctionName": "echo", "Payload.$": "$"}, "End": true}
    }});
    let sm = machine(&e, "stream", def).await;
    let mut rx = e.subscribe();
    let arn = start(&e, &sm, json!({"x": 1})).await;
    let mut got = Vec::new();
    loop {
        let ev = rx.recv().await.unwrap();
        if &*ev.execution_arn != arn.as_str() {
            continue;
        }
        let done = is_terminal(&ev.event.kind);
        got.push(ev.event.clone());
        if done {
            break;
        }
    }
    assert_eq!(got.last().unwrap().kind, "ExecutionSucceeded");
    assert_dense(&got);
    assert_eq!(got, history(&e, &arn));
}

#[tokio::test]
async fn subscribe_streams_sqlite_executions_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let e = sqlite_engine(&dir.path().join("stream.db"), Resources::new()).await;
    let branch = |n: usize| {
        let mut states = serde_json::Map::new();
        for i in 0..n {
            let s = if i + 1 == n {
                json!({"Type": "Pass", "End": true})
            } else {
                json!({"Type": "Pass", "Next": format!("S{}", i + 1)})
            };
            states.insert(format!("S{i}"), s);
        }
        json!({"StartAt": "S0", "States": states})
    };
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "End": true,
              "Branches": [branch(3), branch(5), branch(2), branch(4)]}
    }});
    let sm = machine(&e, "stream-sqlite", def).await;
    let mut rx = e.subscribe();
    let mut arns = Vec::new();
    for _ in 0..10 {
        arns.push(start(&e, &sm, json!({})).await);
    }
    let mut per: std::collections::HashMap<String, Vec<cm_engine::history::HistoryEvent>> =
        Default::default();
    let mut closed = 0;
    while closed < arns.len() {
        let ev = rx.recv().await.unwrap();
        if is_terminal(&ev.event.kind) {
            closed += 1;
        }
        per.entry(ev.execution_arn.to_string())
            .or_default()
            .push(ev.event.clone());
    }
    for arn in &arns {
        let got = &per[arn];
        assert_dense(got);
        assert_eq!(got.last().unwrap().kind, "ExecutionSucceeded");
    }
    e.shutdown().await;
}

#[tokio::test]
async fn a_looping_machine_stops_at_max_transitions() {
    let e = Engine::open(EngineConfig {
        clock: vclock(),
        max_transitions: 25,
        ..EngineConfig::default()
    })
    .await
    .unwrap();
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Wait", "Seconds": 1, "Next": "A"}
    }});
    let rec = run(&e, "forever", def, json!({})).await;
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("States.Runtime"));
    assert!(rec.cause.unwrap().contains("25"));
    let entered = history(&e, &rec.arn)
        .iter()
        .filter(|ev| ev.kind.ends_with("StateEntered"))
        .count();
    assert_eq!(entered, 25);
}

#[tokio::test]
async fn express_executions() {
    let e = engine(Resources::new()).await;
    let sm = e
        .create_state_machine(
            "fast",
            &json!({"StartAt": "P", "States": {"P": {"Type": "Pass",
                "Parameters": {"ctx.$": "$$.Execution"}, "End": true}}}),
            MachineType::Express,
        )
        .await
        .unwrap();
    let arn = start(&e, &sm.arn, json!({})).await;
    assert!(
        arn.starts_with("arn:aws:states:us-east-1:000000000000:express:fast:"),
        "{arn}"
    );
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(rec.status, Status::Succeeded);
    let ctx = &rec.output.unwrap()["ctx"];
    assert!(ctx.get("RedriveCount").is_none(), "{ctx}");
    assert_eq!(ctx["Id"], json!(arn));
}

#[tokio::test]
async fn run_once_and_outcome_json() {
    let rec = cm_engine::run_once(
        &pass_machine(),
        json!({}),
        cm_engine::RunOnce {
            virtual_time: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        cm_engine::outcome_json(&rec),
        json!({"status": "SUCCEEDED", "output": {"done": true}})
    );
    let rec = cm_engine::run_once(
        &single(json!({"Type": "Fail", "Error": "E", "Cause": "c"})),
        json!({}),
        cm_engine::RunOnce::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        cm_engine::outcome_json(&rec),
        json!({"status": "FAILED", "error": "E", "cause": "c"})
    );
}
