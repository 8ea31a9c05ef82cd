//! RedriveExecution: a FAILED / ABORTED Standard execution resumes from where it failed,
//! without running the states that completed again.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use cm_asl::AslError;
use cm_engine::{EngineError, FnHandler, MachineType, Resources, Status, TaskCall};
use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One → Two (fails on its first `failures` calls) → Three (records `$$.Execution.RedriveCount`).
struct Pipeline {
    one: Arc<AtomicUsize>,
    two: Arc<AtomicUsize>,
    redrive_counts: Arc<Mutex<Vec<Value>>>,
    resources: Resources,
}

fn pipeline(failures: usize) -> Pipeline {
    let one = counter();
    let two = counter();
    let redrive_counts = Arc::new(Mutex::new(Vec::new()));
    let r = redrive_counts.clone();
    let resources = Resources::new()
        .function("one", counting_echo(one.clone()))
        .function("two", flaky(two.clone(), failures, "Boom"))
        .function(
            "three",
            FnHandler(move |c: &TaskCall| {
                r.lock().unwrap().push(c.input["redrive"].clone());
                Ok(json!("finished"))
            }),
        );
    Pipeline {
        one,
        two,
        redrive_counts,
        resources,
    }
}

fn pipeline_machine() -> Value {
    let mut one = invoke("one");
    let mut two = invoke("two");
    for (s, next) in [(&mut one, "Two"), (&mut two, "Three")] {
        s.as_object_mut().unwrap().remove("End");
        s["Next"] = json!(next);
    }
    json!({"StartAt": "One", "States": {
        "One": one,
        "Two": two,
        "Three": {"Type": "Task", "Resource": INVOKE, "End": true,
                  "Parameters": {"FunctionName": "three",
                                 "Payload": {"redrive.$": "$$.Execution.RedriveCount"}},
                  "OutputPath": "$.Payload"}
    }})
}

#[tokio::test]
async fn redrive_resumes_at_the_failed_state() {
    let p = pipeline(1);
    let e = engine(p.resources.clone()).await;
    let rec = run(&e, "pipeline", pipeline_machine(), json!({"n": 1})).await;
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("Boom"));
    assert_eq!(rec.to_aws_json()["redriveStatus"], "REDRIVABLE");
    assert_eq!(p.one.load(Ordering::SeqCst), 1);
    assert_eq!(p.two.load(Ordering::SeqCst), 1);

    let redriven = e.redrive_execution(&rec.arn).await.unwrap();
    assert_eq!(redriven.redrive_count, 1);
    let done = e.wait(&rec.arn).await.unwrap();
    assert_eq!(done.status, Status::Succeeded, "{done:?}");
    assert_eq!(done.output.clone().unwrap(), json!("finished"));
    assert_eq!(done.error, None);
    assert_eq!(done.redrive_count, 1);
    let d = done.to_aws_json();
    assert_eq!(d["redriveCount"], 1);
    assert_eq!(d["redriveStatus"], "NOT_REDRIVABLE");
    // One ran once; Two ran again; Three saw the redrive count.
    assert_eq!(p.one.load(Ordering::SeqCst), 1);
    assert_eq!(p.two.load(Ordering::SeqCst), 2);
    assert_eq!(*p.redrive_counts.lock().unwrap(), vec![json!(1)]);

    let h = history(&e, &rec.arn);
    assert_dense(&h);
    let k = kinds(&h);
    let failed_at = k.iter().position(|x| x == "ExecutionFailed").unwrap();
    assert_eq!(k[failed_at + 1], "ExecutionRedriven");
    assert_eq!(h[failed_at + 1].details["redriveCount"], 1);
    assert_eq!(k.last().unwrap(), "ExecutionSucceeded");
    // After the redrive: Two entered again, One not.
    let after: Vec<&String> = k[failed_at + 1..].iter().collect();
    let entered: Vec<&str> = h[failed_at + 1..]
        .iter()
        .filter(|e| e.kind.ends_with("StateEntered"))
        .map(|e| e.details["name"].as_str().unwrap())
        .collect();
    assert_eq!(entered, ["Two", "Three"], "{after:?}");
}

#[tokio::test]
async fn redrive_counts_up_each_time() {
    let p = pipeline(2);
    let e = engine(p.resources.clone()).await;
    let rec = run(&e, "twice", pipeline_machine(), json!({})).await;
    assert_eq!(rec.status, Status::Failed);
    e.redrive_execution(&rec.arn).await.unwrap();
    let again = e.wait(&rec.arn).await.unwrap();
    assert_eq!(again.status, Status::Failed);
    assert_eq!(again.redrive_count, 1);
    e.redrive_execution(&rec.arn).await.unwrap();
    let done = e.wait(&rec.arn).await.unwrap();
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!(done.redrive_count, 2);
    assert_eq!(*p.redrive_counts.lock().unwrap(), vec![json!(2)]);
    assert_eq!(p.one.load(Ordering::SeqCst), 1);
    assert_eq!(p.two.load(Ordering::SeqCst), 3);
    assert_dense(&history(&e, &rec.arn));
}

#[tokio::test]
async fn succeeded_running_and_express_executions_are_not_redrivable() {
    let (park, mut calls) = reporting();
    let p = pipeline(0);
    let e = engine(p.resources.clone().function("park", park)).await;
    let rec = run(&e, "ok", pipeline_machine(), json!({})).await;
    assert_eq!(rec.status, Status::Succeeded);
    let err = e.redrive_execution(&rec.arn).await.unwrap_err();
    assert!(
        matches!(err, EngineError::ExecutionNotRedrivable { .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "ExecutionNotRedrivable");

    let sm = machine(
        &e,
        "parked",
        single(json!({"Type": "Task", "Resource": INVOKE_CALLBACK,
            "Parameters": {"FunctionName": "park", "Payload": {}}, "End": true})),
    )
    .await;
    let running = start(&e, &sm, json!({})).await;
    calls.recv().await.unwrap();
    assert_eq!(
        code(e.redrive_execution(&running).await),
        "ExecutionNotRedrivable"
    );

    let express = e
        .create_state_machine(
            "express-fail",
            &single(json!({"Type": "Fail", "Error": "E"})),
            MachineType::Express,
        )
        .await
        .unwrap();
    let arn = start(&e, &express.arn, json!({})).await;
    let rec = e.wait(&arn).await.unwrap();
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.to_aws_json()["redriveStatus"], "NOT_REDRIVABLE");
    assert_eq!(
        code(e.redrive_execution(&arn).await),
        "ExecutionNotRedrivable"
    );
}

#[tokio::test]
async fn an_aborted_execution_is_redriven_from_the_waiting_task() {
    let (park, mut calls) = reporting();
    let before = counter();
    let e = engine(
        Resources::new()
            .function("park", park)
            .function("before", counting_echo(before.clone())),
    )
    .await;
    let mut first = invoke("before");
    first.as_object_mut().unwrap().remove("End");
    first["Next"] = json!("Park");
    let def = json!({"StartAt": "Before", "States": {
        "Before": first,
        "Park": {"Type": "Task", "Resource": INVOKE_CALLBACK,
                 "Parameters": {"FunctionName": "park", "Payload": {}}, "End": true}
    }});
    let sm = machine(&e, "abort-redrive", def).await;
    let arn = start(&e, &sm, json!({})).await;
    calls.recv().await.unwrap();
    let stopped = e.stop_execution(&arn, None, None).await.unwrap();
    assert_eq!(stopped.status, Status::Aborted);

    e.redrive_execution(&arn).await.unwrap();
    let token = calls.recv().await.unwrap().task_token.unwrap();
    e.send_task_success(&token, json!({"resumed": true}))
        .await
        .unwrap();
    let done = e.wait(&arn).await.unwrap();
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!(done.output.unwrap(), json!({"resumed": true}));
    assert_eq!(before.load(Ordering::SeqCst), 1);
    assert_dense(&history(&e, &arn));
}

#[tokio::test]
async fn redrive_reruns_only_the_failed_map_iterations() {
    let calls: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let c = calls.clone();
    let e = engine(Resources::new().function(
        "item",
        FnHandler(move |call: &TaskCall| {
            let v = call.input.as_i64().unwrap();
            let mut m = c.lock().unwrap();
            let n = m.entry(v).or_default();
            *n += 1;
            if v == 2 && *n == 1 {
                Err(AslError::new("Item.Failed", "first time"))
            } else {
                Ok(json!(v * 10))
            }
        }),
    ))
    .await;
    let def = single(json!({
        "Type": "Map", "End": true, "MaxConcurrency": 1,
        "ItemProcessor": {"StartAt": "F", "States": {"F": invoke("item")}}
    }));
    let rec = run(&e, "map-redrive", def, json!([0, 1, 2])).await;
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("Item.Failed"));
    e.redrive_execution(&rec.arn).await.unwrap();
    let done = e.wait(&rec.arn).await.unwrap();
    assert_eq!(done.status, Status::Succeeded, "{done:?}");
    assert_eq!(done.output.unwrap(), json!([0, 10, 20]));
    let calls = calls.lock().unwrap().clone();
    // Items 0 and 1 completed before item 2 failed (MaxConcurrency 1): not run again.
    assert_eq!(calls[&0], 1);
    assert_eq!(calls[&1], 1);
    assert_eq!(calls[&2], 2);
}
