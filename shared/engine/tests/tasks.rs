//! Task states: local functions, resource handlers, Retry / Catch, callbacks (task tokens),
//! timeouts and heartbeats.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use cm_asl::AslError;
use cm_engine::{Clock, EngineError, FnHandler, Resources, Status, TaskCall, TaskHandler};
use common::*;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Virtual times (ms after [`T0`]) at which a function was called.
type Times = Arc<Mutex<Vec<i64>>>;

/// A function that records the virtual time of each call and fails with the next error of
/// `errors` (then succeeds with `{"ok": true}`).
fn scripted(clock: Clock, errors: &[&'static str]) -> (impl TaskHandler, Times) {
    let times = Arc::new(Mutex::new(Vec::new()));
    let seen = times.clone();
    let errors = errors.to_vec();
    let h = FnHandler(move |_: &TaskCall| {
        let mut t = seen.lock().unwrap();
        let n = t.len();
        t.push(clock.now_ms() - T0);
        match errors.get(n) {
            Some(e) => Err(AslError::new(*e, format!("call {n}"))),
            None => Ok(json!({"ok": true})),
        }
    });
    (h, times)
}

#[tokio::test]
async fn local_function_result_has_lambdas_shape() {
    let count = counter();
    let e = engine(Resources::new().function("echo", counting_echo(count.clone()))).await;
    let rec = run(
        &e,
        "lambda",
        single(json!({
            "Type": "Task", "Resource": INVOKE, "End": true,
            "Parameters": {"FunctionName": "echo", "Payload": {"x.$": "$.x"}}
        })),
        json!({"x": 42}),
    )
    .await;
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    assert_eq!(
        rec.output.unwrap(),
        json!({"ExecutedVersion": "$LATEST", "Payload": {"x": 42}, "StatusCode": 200})
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn function_arns_and_direct_lambda_resources_resolve_to_local_functions() {
    let e = engine(Resources::new().function("echo", counting_echo(counter()))).await;
    // FunctionName as a full ARN with a qualifier.
    let rec = run(
        &e,
        "by-arn",
        single(json!({
            "Type": "Task", "Resource": INVOKE, "End": true,
            "Parameters": {
                "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST",
                "Payload": {"a": 1}
            }
        })),
        json!({}),
    )
    .await;
    assert_eq!(rec.output.unwrap()["Payload"], json!({"a": 1}));
    // A Lambda ARN as the resource: the result is the payload itself.
    let rec = run(
        &e,
        "direct",
        single(json!({
            "Type": "Task", "End": true,
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:echo"
        })),
        json!({"b": 2}),
    )
    .await;
    assert_eq!(rec.output.unwrap(), json!({"b": 2}));
}

#[tokio::test]
async fn exact_resource_handlers_take_precedence() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let e = engine(Resources::new().resource(
        "arn:aws:states:::sqs:sendMessage",
        FnHandler(move |c: &TaskCall| {
            s.lock()
                .unwrap()
                .push((c.resource.clone(), c.state_name.clone()));
            Ok(json!({"MessageId": "m-1", "Body": c.input["MessageBody"]}))
        }),
    ))
    .await;
    let rec = run(
        &e,
        "sqs",
        single(json!({
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": true,
            "Parameters": {"QueueUrl": "q", "MessageBody.$": "$.msg"}
        })),
        json!({"msg": "hi"}),
    )
    .await;
    assert_eq!(
        rec.output.unwrap(),
        json!({"MessageId": "m-1", "Body": "hi"})
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[(
            "arn:aws:states:::sqs:sendMessage".to_owned(),
            "S".to_owned()
        )]
    );
}

#[tokio::test]
async fn function_errors_are_named_by_their_error_type() {
    let e = engine(Resources::new().function(
        "boom",
        FnHandler(|_: &TaskCall| Err(AslError::new("Custom.Error", "it broke"))),
    ))
    .await;
    let rec = run(&e, "boom", single(invoke("boom")), json!({})).await;
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("Custom.Error"));
    let cause: Value = serde_json::from_str(rec.cause.as_deref().unwrap()).unwrap();
    assert_eq!(cause["errorType"], "Custom.Error");
    assert_eq!(cause["errorMessage"], "it broke");
    let h = history(&e, &rec.arn);
    let failed = h.iter().find(|ev| ev.kind == "TaskFailed").unwrap();
    assert_eq!(failed.details["error"], "Custom.Error");
    assert_eq!(kinds(&h).last().unwrap(), "ExecutionFailed");
}

#[tokio::test]
async fn retry_backoff_and_max_delay_advance_virtual_time() {
    let clock = vclock();
    let (f, times) = scripted(clock.clone(), &["E", "E", "E", "E"]);
    let e = cm_engine::Engine::open(cm_engine::EngineConfig {
        clock: clock.clone(),
        resources: Resources::new().function("f", f),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut state = invoke("f");
    state["Retry"] = json!([{
        "ErrorEquals": ["E"], "IntervalSeconds": 2, "BackoffRate": 3,
        "MaxDelaySeconds": 10, "MaxAttempts": 4
    }]);
    let rec = run(&e, "backoff", single(state), json!({})).await;
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    assert_eq!(rec.output.unwrap(), json!({"ok": true}));
    // Delays 2, 6, min(18, 10), min(54, 10) seconds.
    assert_eq!(
        *times.lock().unwrap(),
        vec![0, 2_000, 8_000, 18_000, 28_000]
    );
    assert_eq!(e.clock().now_ms() - T0, 28_000);
}

#[tokio::test]
async fn retry_defaults_are_one_second_doubling_three_attempts() {
    let clock = vclock();
    let (f, times) = scripted(clock.clone(), &["E"; 10]);
    let e = cm_engine::Engine::open(cm_engine::EngineConfig {
        clock: clock.clone(),
        resources: Resources::new().function("f", f),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut state = invoke("f");
    state["Retry"] = json!([{"ErrorEquals": ["States.ALL"]}]);
    let rec = run(&e, "defaults", single(state), json!({})).await;
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("E"));
    assert_eq!(*times.lock().unwrap(), vec![0, 1_000, 3_000, 7_000]);
}

#[tokio::test]
async fn retriers_count_separately_and_exhaustion_falls_through_to_catch() {
    // The example of the Step Functions guide: ErrorA, ErrorB, ErrorC, ErrorB.
    let clock = vclock();
    let (f, times) = scripted(clock.clone(), &["ErrorA", "ErrorB", "ErrorC", "ErrorB"]);
    let e = cm_engine::Engine::open(cm_engine::EngineConfig {
        clock: clock.clone(),
        resources: Resources::new().function("f", f),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut x = invoke("f");
    x["Retry"] = json!([
        {"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2},
        {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5}
    ]);
    x["Catch"] = json!([{"ErrorEquals": ["States.ALL"], "Next": "Z"}]);
    x.as_object_mut().unwrap().remove("End");
    x["Next"] = json!("Done");
    let def = json!({"StartAt": "X", "States": {
        "X": x,
        "Z": {"Type": "Pass", "Result": "caught", "End": true},
        "Done": {"Type": "Pass", "End": true}
    }});
    let rec = run(&e, "guide", def, json!({})).await;
    assert_eq!(rec.output.unwrap(), json!("caught"));
    assert_eq!(*times.lock().unwrap(), vec![0, 1_000, 3_000, 8_000]);
}

#[tokio::test]
async fn max_attempts_zero_never_retries_and_exhaustion_fails_the_execution() {
    let count = counter();
    let e = engine(Resources::new().function("f", flaky(count.clone(), 100, "E"))).await;
    let mut state = invoke("f");
    state["Retry"] = json!([{"ErrorEquals": ["E"], "MaxAttempts": 0}]);
    let rec = run(&e, "zero", single(state), json!({})).await;
    assert_eq!(rec.error.as_deref(), Some("E"));
    assert_eq!(count.load(Ordering::SeqCst), 1);

    count.store(0, Ordering::SeqCst);
    let mut state = invoke("f");
    state["Retry"] = json!([{"ErrorEquals": ["E"], "MaxAttempts": 2, "IntervalSeconds": 1}]);
    let rec = run(&e, "two", single(state), json!({})).await;
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("E"));
    assert_eq!(count.load(Ordering::SeqCst), 3);
    let h = history(&e, &rec.arn);
    assert_eq!(kinds(&h).iter().filter(|k| *k == "TaskFailed").count(), 3);
    assert_dense(&h);
}

#[tokio::test]
async fn a_retrier_that_does_not_match_does_not_retry() {
    let count = counter();
    let e = engine(Resources::new().function("f", flaky(count.clone(), 100, "Other"))).await;
    let mut state = invoke("f");
    state["Retry"] = json!([{"ErrorEquals": ["E"], "MaxAttempts": 5}]);
    let rec = run(&e, "nomatch", single(state), json!({})).await;
    assert_eq!(rec.error.as_deref(), Some("Other"));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn full_jitter_stays_within_the_capped_delay() {
    let clock = vclock();
    let times = Arc::new(Mutex::new(Vec::<i64>::new()));
    let seen = times.clone();
    let c = clock.clone();
    let f = FnHandler(move |call: &TaskCall| {
        seen.lock().unwrap().push(c.now_ms());
        if call.attempt < 5 {
            Err(AslError::new("E", "again"))
        } else {
            Ok(json!(null))
        }
    });
    let e = cm_engine::Engine::open(cm_engine::EngineConfig {
        clock: clock.clone(),
        resources: Resources::new().function("f", f),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut state = invoke("f");
    state["Retry"] = json!([{
        "ErrorEquals": ["E"], "IntervalSeconds": 4, "BackoffRate": 2,
        "MaxDelaySeconds": 5, "MaxAttempts": 5, "JitterStrategy": "FULL"
    }]);
    let sm = machine(&e, "jitter", single(state)).await;
    let caps = [4_000, 5_000, 5_000, 5_000, 5_000];
    let mut below_cap = 0;
    for _ in 0..20 {
        times.lock().unwrap().clear();
        let arn = start(&e, &sm, json!({})).await;
        let rec = e.wait(&arn).await.unwrap();
        assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
        let t = times.lock().unwrap().clone();
        assert_eq!(t.len(), 6);
        for (i, w) in t.windows(2).enumerate() {
            let gap = w[1] - w[0];
            assert!((0..=caps[i]).contains(&gap), "gap {i} = {gap} ms");
            if gap < caps[i] {
                below_cap += 1;
            }
        }
    }
    // 100 uniformly random delays: some fall below the cap.
    assert!(below_cap > 0);
}

#[tokio::test]
async fn retry_count_is_visible_in_parameters_on_every_attempt() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let f = FnHandler(move |c: &TaskCall| {
        s.lock().unwrap().push((c.input["n"].clone(), c.attempt));
        if c.attempt < 2 {
            Err(AslError::new("E", "again"))
        } else {
            Ok(json!("done"))
        }
    });
    let e = engine(Resources::new().function("f", f)).await;
    let rec = run(
        &e,
        "retrycount",
        single(json!({
            "Type": "Task", "Resource": INVOKE, "End": true,
            "Parameters": {"FunctionName": "f", "Payload": {"n.$": "$$.State.RetryCount"}},
            "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 3}]
        })),
        json!({}),
    )
    .await;
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(json!(0), 0), (json!(1), 1), (json!(2), 2)]
    );
}

/// A Task that runs `f`, with `catch`, falling into `Caught` (a Pass) or ending.
fn caught(f: &str, catch: Value) -> Value {
    let mut t = invoke(f);
    t.as_object_mut().unwrap().remove("OutputPath");
    t["Catch"] = catch;
    json!({"StartAt": "T", "States": {
        "T": t,
        "Caught": {"Type": "Pass", "End": true},
        "Other": {"Type": "Pass", "Result": "other", "End": true}
    }})
}

#[tokio::test]
async fn catch_result_path_keeps_the_input_beside_the_error() {
    let e = engine(Resources::new().function(
        "boom",
        FnHandler(|_: &TaskCall| Err(AslError::new("Custom.Error", "bad"))),
    ))
    .await;
    let rec = run(
        &e,
        "resultpath",
        caught(
            "boom",
            json!([{"ErrorEquals": ["Custom.Error"], "ResultPath": "$.error", "Next": "Caught"}]),
        ),
        json!({"order": 7}),
    )
    .await;
    let out = rec.output.unwrap();
    assert_eq!(out["order"], 7);
    assert_eq!(out["error"]["Error"], "Custom.Error");
    let cause: Value = serde_json::from_str(out["error"]["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["errorMessage"], "bad");

    // Without ResultPath the error replaces the input; with null it is discarded.
    let rec = run(
        &e,
        "replace",
        caught(
            "boom",
            json!([{"ErrorEquals": ["Custom.Error"], "Next": "Caught"}]),
        ),
        json!({"order": 7}),
    )
    .await;
    let out = rec.output.unwrap();
    assert_eq!(out.as_object().unwrap().len(), 2, "{out}");
    assert_eq!(out["Error"], "Custom.Error");
    let rec = run(
        &e,
        "discard",
        caught(
            "boom",
            json!([{"ErrorEquals": ["Custom.Error"], "ResultPath": null, "Next": "Caught"}]),
        ),
        json!({"order": 7}),
    )
    .await;
    assert_eq!(rec.output.unwrap(), json!({"order": 7}));
}

#[tokio::test]
async fn catchers_are_tried_in_order_and_states_all_takes_anything() {
    let e = engine(
        Resources::new()
            .function(
                "boom",
                FnHandler(|_: &TaskCall| Err(AslError::new("Custom.Error", "bad"))),
            )
            .function("echo", counting_echo(counter())),
    )
    .await;
    let rec = run(
        &e,
        "order",
        caught(
            "boom",
            json!([
                {"ErrorEquals": ["Nope"], "Next": "Other"},
                {"ErrorEquals": ["States.ALL"], "Next": "Caught"},
                {"ErrorEquals": ["Custom.Error"], "Next": "Other"}
            ]),
        ),
        json!({}),
    )
    .await;
    assert_eq!(rec.output.unwrap()["Error"], "Custom.Error");
    // States.ALL also takes an unknown function's error.
    let rec = run(
        &e,
        "missing",
        caught(
            "no-such-function",
            json!([{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]),
        ),
        json!({}),
    )
    .await;
    assert_eq!(
        rec.output.unwrap()["Error"],
        "Lambda.ResourceNotFoundException"
    );
}

#[tokio::test]
async fn states_task_failed_matches_task_errors_but_not_timeouts() {
    let e = engine(
        Resources::new()
            .function(
                "boom",
                FnHandler(|_: &TaskCall| Err(AslError::new("Custom.Error", "bad"))),
            )
            .resource(
                "arn:aws:states:::test:timeout",
                FnHandler(|_: &TaskCall| Err(AslError::new("States.Timeout", "slow"))),
            ),
    )
    .await;
    let rec = run(
        &e,
        "taskfailed",
        caught(
            "boom",
            json!([{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}]),
        ),
        json!({}),
    )
    .await;
    assert_eq!(rec.output.unwrap()["Error"], "Custom.Error");

    let timeout_task = |catch: Value| {
        json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:states:::test:timeout", "End": true,
                  "Catch": catch},
            "Caught": {"Type": "Pass", "End": true}
        }})
    };
    let rec = run(
        &e,
        "timeout-not-taskfailed",
        timeout_task(json!([{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}])),
        json!({}),
    )
    .await;
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("States.Timeout"));
    let rec = run(
        &e,
        "timeout-caught",
        timeout_task(json!([{"ErrorEquals": ["States.Timeout"], "Next": "Caught"}])),
        json!({}),
    )
    .await;
    assert_eq!(rec.output.unwrap()["Error"], "States.Timeout");
    // A Retry on States.TaskFailed retries a function error.
    let count = counter();
    let e = engine(Resources::new().function("f", flaky(count.clone(), 2, "Custom.Error"))).await;
    let mut state = invoke("f");
    state["Retry"] = json!([{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 2}]);
    let rec = run(&e, "retry-taskfailed", single(state), json!({"v": 1})).await;
    assert_eq!(rec.output.unwrap(), json!({"v": 1}));
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn unknown_function_is_lambda_resource_not_found() {
    let e = engine(Resources::new().function("echo", counting_echo(counter()))).await;
    let rec = run(&e, "nofn", single(invoke("ghost")), json!({})).await;
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(
        rec.error.as_deref(),
        Some("Lambda.ResourceNotFoundException")
    );
    assert!(rec.cause.as_deref().unwrap().contains("ghost"), "{rec:?}");
    let rec = run(
        &e,
        "nofn-arn",
        single(json!({"Type": "Task", "End": true,
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:ghost"})),
        json!({}),
    )
    .await;
    assert_eq!(
        rec.error.as_deref(),
        Some("Lambda.ResourceNotFoundException")
    );
}

#[tokio::test]
async fn unknown_resource_is_a_runtime_error_naming_it() {
    let e = engine(Resources::new()).await;
    let rec = run(
        &e,
        "nores",
        single(json!({"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": true})),
        json!({}),
    )
    .await;
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("States.Runtime"));
    let cause = rec.cause.unwrap();
    assert!(cause.contains("arn:aws:states:::sns:publish"), "{cause}");
    assert!(cause.contains("'S'"), "{cause}");
}

#[tokio::test]
async fn a_fallback_handler_takes_unclaimed_resources() {
    let e = engine(
        Resources::new().fallback(FnHandler(|c: &TaskCall| Ok(json!({"handled": c.resource})))),
    )
    .await;
    let rec = run(
        &e,
        "fallback",
        single(json!({"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": true})),
        json!({}),
    )
    .await;
    assert_eq!(
        rec.output.unwrap(),
        json!({"handled": "arn:aws:states:::sns:publish"})
    );
}

// ---- callbacks -------------------------------------------------------------------------

/// A `.waitForTaskToken` task on function `park`, passing the token in the payload.
fn callback_state() -> Value {
    json!({
        "Type": "Task", "Resource": INVOKE_CALLBACK,
        "Parameters": {"FunctionName": "park", "Payload": {"token.$": "$$.Task.Token", "in.$": "$"}},
        "End": true
    })
}

#[tokio::test]
async fn callback_token_is_in_the_context_and_success_completes_the_task() {
    let (park, mut calls) = reporting();
    let e = engine(Resources::new().function("park", park)).await;
    let sm = machine(&e, "callback", single(callback_state())).await;
    let arn = start(&e, &sm, json!({"job": 1})).await;
    let call = calls.recv().await.unwrap();
    let token = call.task_token.clone().unwrap();
    assert_eq!(call.input["token"], json!(token));
    assert_eq!(call.input["in"], json!({"job": 1}));
    assert_eq!(call.context["Task"]["Token"], json!(token));
    assert_eq!(e.describe_execution(&arn).unwrap().status, Status::Running);
    // The token stays internal: it is in the journal but not in AWS's event shape.
    let h = history(&e, &arn);
    let scheduled = h.iter().find(|ev| ev.kind == "TaskScheduled").unwrap();
    assert_eq!(scheduled.details["taskToken"], json!(token));
    let aws = scheduled.to_aws_json();
    assert!(
        aws["taskScheduledEventDetails"].get("taskToken").is_none(),
        "{aws}"
    );
    assert_eq!(
        aws["taskScheduledEventDetails"]["resource"],
        "invoke.waitForTaskToken"
    );

    e.send_task_heartbeat(&token).unwrap();
    e.send_task_success(&token, json!({"approved": true}))
        .await
        .unwrap();
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(rec.status, Status::Succeeded);
    assert_eq!(rec.output.unwrap(), json!({"approved": true}));
    // The token is spent.
    assert!(matches!(
        e.send_task_success(&token, json!(1)).await,
        Err(EngineError::TaskDoesNotExist(_))
    ));
    assert!(matches!(
        e.send_task_heartbeat(&token),
        Err(EngineError::TaskDoesNotExist(_))
    ));
}

#[tokio::test]
async fn callback_on_a_resource_handler() {
    let (h, mut calls) = reporting();
    let e = engine(Resources::new().resource("arn:aws:states:::sqs:sendMessage", h)).await;
    let sm = machine(
        &e,
        "sqs-callback",
        single(json!({
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": "q", "MessageBody": {"t.$": "$$.Task.Token"}},
            "ResultPath": "$.reply", "End": true
        })),
    )
    .await;
    let arn = start(&e, &sm, json!({"a": 1})).await;
    let call = calls.recv().await.unwrap();
    let token = call.input["MessageBody"]["t"].as_str().unwrap().to_owned();
    assert_eq!(call.task_token.as_deref(), Some(token.as_str()));
    e.send_task_success(&token, json!("yes")).await.unwrap();
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(rec.output.unwrap(), json!({"a": 1, "reply": "yes"}));
}

#[tokio::test]
async fn send_task_failure_is_caught_by_its_error_name() {
    let (park, mut calls) = reporting();
    let e = engine(Resources::new().function("park", park)).await;
    let mut t = callback_state();
    t.as_object_mut().unwrap().remove("End");
    t["Next"] = json!("Approved");
    t["Catch"] =
        json!([{"ErrorEquals": ["Approval.Rejected"], "ResultPath": "$.why", "Next": "Rejected"}]);
    let def = json!({"StartAt": "Ask", "States": {
        "Ask": t,
        "Approved": {"Type": "Pass", "End": true},
        "Rejected": {"Type": "Pass", "End": true}
    }});
    let sm = machine(&e, "reject", def).await;
    let arn = start(&e, &sm, json!({"req": 1})).await;
    let token = calls.recv().await.unwrap().task_token.unwrap();
    e.send_task_failure(
        &token,
        Some("Approval.Rejected".into()),
        Some("too expensive".into()),
    )
    .await
    .unwrap();
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(
        rec.output.unwrap(),
        json!({"req": 1, "why": {"Error": "Approval.Rejected", "Cause": "too expensive"}})
    );
    let h = history(&e, &arn);
    let failed = h.iter().find(|ev| ev.kind == "TaskFailed").unwrap();
    assert_eq!(failed.details["error"], "Approval.Rejected");
    assert_eq!(failed.details["cause"], "too expensive");

    // Uncaught: the execution fails with that error.
    let arn = start(&e, &sm, json!({"req": 2})).await;
    let token = calls.recv().await.unwrap().task_token.unwrap();
    e.send_task_failure(&token, Some("Other".into()), None)
        .await
        .unwrap();
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("Other"));
}

#[tokio::test]
async fn unknown_tokens_are_task_does_not_exist() {
    let e = engine(Resources::new()).await;
    for r in [
        e.send_task_success("nope", json!({})).await,
        e.send_task_failure("nope", None, None).await,
        e.send_task_heartbeat("nope"),
    ] {
        let err = r.unwrap_err();
        assert!(matches!(err, EngineError::TaskDoesNotExist(_)), "{err:?}");
        assert_eq!(err.code(), "TaskDoesNotExist");
    }
}

#[tokio::test]
async fn callback_output_over_256_kib_is_refused() {
    let (park, mut calls) = reporting();
    let e = engine(Resources::new().function("park", park)).await;
    let sm = machine(&e, "big-output", single(callback_state())).await;
    let arn = start(&e, &sm, json!({})).await;
    let token = calls.recv().await.unwrap().task_token.unwrap();
    let big = json!("x".repeat(300_000));
    assert_eq!(
        code(e.send_task_success(&token, big).await),
        "InvalidExecutionInput"
    );
    // The task still waits and takes a valid answer.
    e.send_task_success(&token, json!("small")).await.unwrap();
    assert_eq!(e.wait(&arn).await.unwrap().output.unwrap(), json!("small"));
}

#[tokio::test]
async fn a_callback_resource_that_fails_fails_the_task_without_waiting() {
    let e = engine(Resources::new().function(
        "park",
        FnHandler(|_: &TaskCall| Err(AslError::new("Send.Failed", "queue down"))),
    ))
    .await;
    let rec = run(&e, "cb-fail", single(callback_state()), json!({})).await;
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("Send.Failed"));
}

#[tokio::test]
async fn timeout_seconds_path_and_heartbeat_seconds_path_are_read_from_the_input() {
    let (park, mut calls) = reporting();
    let e = engine(Resources::new().function("park", park)).await;
    let mut t = callback_state();
    t["TimeoutSecondsPath"] = json!("$.limits.timeout");
    t["HeartbeatSecondsPath"] = json!("$.limits.heartbeat");
    let sm = machine(&e, "paths", single(t)).await;
    let arn = start(&e, &sm, json!({"limits": {"timeout": 30, "heartbeat": 10}})).await;
    let token = calls.recv().await.unwrap().task_token.unwrap();
    let h = history(&e, &arn);
    let scheduled = h.iter().find(|ev| ev.kind == "TaskScheduled").unwrap();
    assert_eq!(scheduled.details["timeoutInSeconds"], 30);
    assert_eq!(scheduled.details["heartbeatInSeconds"], 10);
    e.send_task_success(&token, json!(1)).await.unwrap();
    assert_eq!(e.wait(&arn).await.unwrap().status, Status::Succeeded);

    // Not a positive integer: States.Runtime, and the resource is not called.
    let rec = {
        let arn = start(&e, &sm, json!({"limits": {"timeout": 0, "heartbeat": 10}})).await;
        e.wait(&arn).await.unwrap()
    };
    assert_eq!(rec.error.as_deref(), Some("States.Runtime"));
    assert!(rec.cause.unwrap().contains("TimeoutSecondsPath"));
    assert!(calls.try_recv().is_err());
}

// ---- timeouts on the system clock (1-second limits) -----------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn heartbeat_expiry_is_states_heartbeat_timeout() {
    let (park, mut calls) = reporting();
    let e = system_engine(Resources::new().function("park", park)).await;
    let mut t = callback_state();
    t["HeartbeatSeconds"] = json!(1);
    let sm = machine(&e, "heartbeat", single(t)).await;
    let arn = start(&e, &sm, json!({})).await;
    let token = calls.recv().await.unwrap().task_token.unwrap();
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("States.HeartbeatTimeout"));
    let h = history(&e, &arn);
    assert!(
        kinds(&h).contains(&"TaskTimedOut".to_owned()),
        "{:?}",
        kinds(&h)
    );
    assert!(matches!(
        e.send_task_success(&token, json!(1)).await,
        Err(EngineError::TaskDoesNotExist(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_seconds_is_states_timeout_which_task_failed_does_not_catch() {
    let (park, mut calls) = reporting();
    let e = system_engine(Resources::new().function("park", park)).await;
    let mut t = callback_state();
    t["TimeoutSeconds"] = json!(1);
    t.as_object_mut().unwrap().remove("End");
    t["Next"] = json!("Done");
    t["Catch"] = json!([
        {"ErrorEquals": ["States.TaskFailed"], "Next": "Wrong"},
        {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.err", "Next": "Done"}
    ]);
    let def = json!({"StartAt": "T", "States": {
        "T": t,
        "Wrong": {"Type": "Fail", "Error": "Wrong"},
        "Done": {"Type": "Pass", "End": true}
    }});
    let sm = machine(&e, "timeout", def).await;
    let arn = start(&e, &sm, json!({})).await;
    calls.recv().await.unwrap();
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    assert_eq!(rec.output.unwrap()["err"]["Error"], "States.Timeout");
    let h = history(&e, &arn);
    let timed_out = h.iter().find(|ev| ev.kind == "TaskTimedOut").unwrap();
    assert_eq!(timed_out.details["error"], "States.Timeout");
    assert!(rec.stop_ms.unwrap() - rec.start_ms >= 1_000);
}

#[tokio::test]
async fn timeouts_do_not_fire_on_the_virtual_clock() {
    let (park, mut calls) = reporting();
    let e = engine(Resources::new().function("park", park)).await;
    let mut t = callback_state();
    t["TimeoutSeconds"] = json!(1);
    t["HeartbeatSeconds"] = json!(1);
    let def = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 5, "Next": "T"},
        "T": t
    }});
    let sm = machine(&e, "virtual-timeout", def).await;
    let arn = start(&e, &sm, json!({})).await;
    let token = calls.recv().await.unwrap().task_token.unwrap();
    // The Wait moved virtual time past both limits; the task still waits.
    assert_eq!(e.clock().now_ms() - T0, 5_000);
    e.send_task_success(&token, json!("late")).await.unwrap();
    assert_eq!(e.wait(&arn).await.unwrap().output.unwrap(), json!("late"));
}

#[tokio::test]
async fn handlers_see_the_invocation_context() {
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let e = engine(Resources::new().function(
        "f",
        FnHandler(move |c: &TaskCall| {
            *s.lock().unwrap() = Some(c.clone());
            Ok(json!(1))
        }),
    ))
    .await;
    let sm = machine(&e, "ctx", single(invoke("f"))).await;
    let started = e
        .start_execution(&sm, Some("run-1".into()), json!({}))
        .await
        .unwrap();
    e.wait(&started.execution_arn).await.unwrap();
    let call = seen.lock().unwrap().clone().unwrap();
    assert_eq!(call.execution_arn, started.execution_arn);
    assert_eq!(call.state_name, "S");
    assert_eq!(call.attempt, 0);
    assert!(call.task_token.is_none());
    assert!(
        call.invocation_id.starts_with(&started.execution_arn),
        "{}",
        call.invocation_id
    );
}

#[tokio::test]
async fn jsonata_tasks_read_the_token_and_retry_count_from_states_context() {
    let (park, mut calls) = reporting();
    let tries = counter();
    let t = tries.clone();
    let e = engine(Resources::new().function("park", park).function(
        "count",
        FnHandler(move |c: &TaskCall| {
            if t.fetch_add(1, Ordering::SeqCst) < 1 {
                Err(AslError::new("Again", "once more"))
            } else {
                Ok(c.input.clone())
            }
        }),
    ))
    .await;
    let def = json!({"QueryLanguage": "JSONata", "StartAt": "Count", "States": {
        "Count": {"Type": "Task", "Resource": INVOKE, "Next": "Park",
                  "Arguments": {"FunctionName": "count",
                                "Payload": {"n": "{% $states.context.State.RetryCount %}"}},
                  "Retry": [{"ErrorEquals": ["Again"]}],
                  "Output": "{% $states.result.Payload %}"},
        "Park": {"Type": "Task", "Resource": INVOKE_CALLBACK, "End": true,
                 "Arguments": {"FunctionName": "park",
                               "Payload": {"token": "{% $states.context.Task.Token %}",
                                           "n": "{% $states.input.n %}"}},
                 "Output": {"reply": "{% $states.result %}", "n": "{% $states.input.n %}"}}
    }});
    let sm = machine(&e, "jsonata-tasks", def).await;
    let arn = start(&e, &sm, json!({})).await;
    let call = calls.recv().await.unwrap();
    let token = call.task_token.unwrap();
    assert_eq!(call.input, json!({"token": token, "n": 1}));
    e.send_task_success(&token, json!("ok")).await.unwrap();
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(rec.output.unwrap(), json!({"reply": "ok", "n": 1}));
    assert_eq!(tries.load(Ordering::SeqCst), 2);
}
