//! Parents waiting on `.sync` child executions across a shutdown and a restart: the parents
//! must neither fail when the engine stops (their children's completion channels close) nor
//! when it reopens (a parent resumed before its child would find the child RUNNING but not
//! running, and take that as its result).

#![allow(clippy::unwrap_used, missing_docs)]

use cm_engine::{Engine, EngineConfig, HistoryQuery, MachineType, Status, StoreConfig};
use serde_json::json;
use std::time::Duration;

const PARENTS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_children_survive_shutdown_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = || EngineConfig {
        store: StoreConfig::Sqlite {
            path: dir.path().join("children.db"),
            durability: Default::default(),
        },
        ..EngineConfig::default()
    };
    let engine = Engine::open(config()).await.unwrap();
    let child = engine
        .create_state_machine(
            "child",
            &json!({"StartAt": "W", "States": {
                "W": {"Type": "Wait", "Seconds": 1, "Next": "P"},
                "P": {"Type": "Pass", "Parameters": {"y.$": "States.MathAdd($.x, 1)"}, "End": true}}}),
            MachineType::Standard,
        )
        .await
        .unwrap();
    let parent = engine
        .create_state_machine(
            "parent",
            &json!({"StartAt": "C", "States": {"C": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution.sync:2",
                "Parameters": {"StateMachineArn": child.arn, "Input": {"x.$": "$.x"}},
                "OutputPath": "$.Output",
                "End": true}}}),
            MachineType::Standard,
        )
        .await
        .unwrap();
    let mut arns = Vec::new();
    for x in 0..PARENTS {
        let s = engine
            .start_execution(&parent.arn, None, json!({"x": x}))
            .await
            .unwrap();
        arns.push((x, s.execution_arn));
    }
    // Every parent waits on its child.
    for _ in 0..500 {
        let children = engine
            .list_executions(Some(&child.arn), None, 1000, None)
            .unwrap();
        if children.executions.len() == PARENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    engine.shutdown().await;
    for (_, arn) in &arns {
        let rec = engine.describe_execution(arn).unwrap();
        assert_eq!(
            rec.status,
            Status::Running,
            "stopping the engine closed a parent: {rec:?}"
        );
    }
    drop(engine);

    let engine = Engine::open(config()).await.unwrap();
    for (x, arn) in &arns {
        let rec = engine.wait(arn).await.unwrap();
        assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
        assert_eq!(rec.output, Some(json!({"y": x + 1})));
        let history = engine
            .get_execution_history(
                arn,
                HistoryQuery {
                    max_results: 1000,
                    ..HistoryQuery::default()
                },
            )
            .unwrap();
        let started = history
            .events
            .iter()
            .filter(|e| e.kind == "TaskSucceeded")
            .count();
        assert_eq!(started, 1, "{:?}", history.events);
    }
    assert_eq!(
        engine
            .list_executions(Some(&child.arn), None, 1000, None)
            .unwrap()
            .executions
            .len(),
        PARENTS,
        "a restarted parent started a second child"
    );
    engine.shutdown().await;
}
