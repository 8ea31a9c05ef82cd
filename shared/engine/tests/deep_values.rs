//! Deeply nested data: a loop that wraps its data a level per pass must fail with a typed
//! error instead of overflowing the stack, and data nested deeper than serde_json's default
//! parse limit (128) must survive a restart (the journal has to read back what it wrote).

#![allow(clippy::unwrap_used, missing_docs)]

use cm_engine::{
    Clock, Engine, EngineConfig, EngineError, HistoryQuery, MachineType, Status, StoreConfig,
};
use serde_json::{Value, json};
use std::time::Duration;

/// Wraps `$.v` in one more object per pass until `$.i` reaches `levels`, then waits `wait`
/// seconds.
fn nesting(levels: u64, wait: u64) -> Value {
    json!({
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Result": {"i": 0, "v": 1}, "Next": "Check"},
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.i", "NumericLessThan": levels, "Next": "Wrap"}],
                "Default": "Pause"
            },
            "Wrap": {
                "Type": "Pass",
                "Parameters": {"i.$": "States.MathAdd($.i, 1)", "v": {"v.$": "$.v"}},
                "Next": "Check"
            },
            "Pause": {"Type": "Wait", "Seconds": wait, "Next": "Done"},
            "Done": {"Type": "Pass", "Parameters": {"i.$": "$.i", "v.$": "$.v"}, "End": true}
        }
    })
}

fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!({ "v": v });
    }
    v
}

async fn virtual_engine() -> Engine {
    Engine::open(EngineConfig {
        clock: Clock::virtual_at(1_767_225_600_000),
        ..EngineConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_nested_without_end_fails_with_a_typed_error() {
    let engine = virtual_engine().await;
    let sm = engine
        .create_state_machine("deep", &nesting(5_000, 0), MachineType::Standard)
        .await
        .unwrap();
    let s = engine
        .start_execution(&sm.arn, None, json!({}))
        .await
        .unwrap();
    let rec = engine.wait(&s.execution_arn).await.unwrap();
    assert_eq!(rec.status, Status::Failed);
    assert_eq!(rec.error.as_deref(), Some("States.DataLimitExceeded"));
    assert!(rec.cause.unwrap().contains("nested more than 512 levels"));

    // Variables too: an Assign that wraps the previous value.
    let assign = json!({
        "QueryLanguage": "JSONata",
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": {"x": 1, "i": 0}, "Next": "Wrap"},
            "Wrap": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $i < 5000 %}", "Next": "Wrap",
                             "Assign": {"x": {"x": "{% $x %}"}, "i": "{% $i + 1 %}"}}],
                "Default": "Done"
            },
            "Done": {"Type": "Succeed"}
        }
    });
    let sm = engine
        .create_state_machine("deep-vars", &assign, MachineType::Standard)
        .await
        .unwrap();
    let s = engine
        .start_execution(&sm.arn, None, json!({}))
        .await
        .unwrap();
    let rec = engine.wait(&s.execution_arn).await.unwrap();
    assert_eq!(
        rec.error.as_deref(),
        Some("States.DataLimitExceeded"),
        "{rec:?}"
    );

    // A JSONata function that builds the nesting in one go.
    let build = json!({
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {"A": {
            "Type": "Pass",
            "Output": "{% ($f := function($n){ $n = 0 ? 1 : {'a': $f($n - 1)} }; $f(900)) %}",
            "End": true
        }}
    });
    let sm = engine
        .create_state_machine("deep-jsonata", &build, MachineType::Standard)
        .await
        .unwrap();
    let s = engine
        .start_execution(&sm.arn, None, json!({}))
        .await
        .unwrap();
    let rec = engine.wait(&s.execution_arn).await.unwrap();
    assert_eq!(rec.error.as_deref(), Some("States.QueryEvaluationError"));
    assert!(rec.cause.unwrap().contains("nested more than 512 levels"));

    // Input and definitions are refused up front.
    let e = engine
        .start_execution(&sm.arn, None, nested(600))
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::InvalidInput(_)), "{e}");
    let mut deep_definition = nesting(1, 0);
    deep_definition["Comment"] = nested(600);
    let e = engine
        .create_state_machine("deep-definition", &deep_definition, MachineType::Standard)
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::InvalidDefinition { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_nested_deeper_than_128_levels_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = || EngineConfig {
        store: StoreConfig::Sqlite {
            path: dir.path().join("deep.db"),
            durability: Default::default(),
        },
        ..EngineConfig::default()
    };
    let engine = Engine::open(config()).await.unwrap();
    // Nested Parallel states make a definition deeper than 128 levels too.
    let mut definition = nesting(300, 1);
    let mut inner = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    for _ in 0..30 {
        inner = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [inner], "End": true}}});
    }
    definition["States"]["Init"]["Next"] = json!("Nest");
    definition["States"]["Nest"] = json!({
        "Type": "Parallel", "Branches": [inner], "ResultPath": null, "Next": "Check"
    });
    let sm = engine
        .create_state_machine("deep", &definition, MachineType::Standard)
        .await
        .unwrap();
    let s = engine
        .start_execution(&sm.arn, None, json!({}))
        .await
        .unwrap();
    // Stop the engine while the execution waits, its deep data journaled.
    let mut waiting = false;
    for _ in 0..500 {
        let page = engine
            .get_execution_history(
                &s.execution_arn,
                HistoryQuery {
                    max_results: 1000,
                    next_token: None,
                    reverse: true,
                },
            )
            .unwrap();
        if page.events.iter().any(|e| e.kind == "WaitStateEntered") {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(waiting, "the execution never reached its Wait state");
    engine.shutdown().await;
    drop(engine);

    let engine = Engine::open(config()).await.unwrap();
    let rec = engine.wait(&s.execution_arn).await.unwrap();
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    let output = rec.output.unwrap();
    assert_eq!(output["i"], 300);
    assert_eq!(output["v"], nested(300));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_nested_as_deep_as_validation_allows_run() {
    let engine = virtual_engine().await;
    let levels = cm_engine::validate::MAX_DEPTH;
    let mut inner = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    for level in 0..levels {
        inner = if level % 2 == 0 {
            json!({"StartAt": "S", "States": {"S": {"Type": "Parallel", "Branches": [inner], "End": true}}})
        } else {
            json!({"StartAt": "S", "States": {"S": {"Type": "Map", "ItemsPath": "$$.Execution.Input", "ItemProcessor": inner, "End": true}}})
        };
    }
    let sm = engine
        .create_state_machine("nested", &inner, MachineType::Standard)
        .await
        .unwrap();
    // Every Map iterates over the execution input: one item.
    let s = engine
        .start_execution(&sm.arn, None, json!([{}]))
        .await
        .unwrap();
    let rec = engine.wait(&s.execution_arn).await.unwrap();
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
}
