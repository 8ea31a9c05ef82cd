//! Helpers shared by the engine's behaviour tests: engines on the virtual clock, counting and
//! parking task handlers, and history readers.

#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use cm_asl::AslError;
use cm_engine::history::HistoryEvent;
use cm_engine::resources::BoxFuture;
use cm_engine::{
    Clock, Engine, EngineConfig, EngineError, ExecutionRecord, HistoryQuery, MachineType,
    Resources, StoreConfig, TaskCall, TaskHandler,
};
use serde_json::{Value, json};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// 2026-01-01T00:00:00Z, where every virtual clock starts.
pub const T0: i64 = 1_767_225_600_000;

/// `arn:aws:states:::lambda:invoke`.
pub const INVOKE: &str = "arn:aws:states:::lambda:invoke";
/// `arn:aws:states:::lambda:invoke.waitForTaskToken`.
pub const INVOKE_CALLBACK: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";

/// A virtual clock at [`T0`].
pub fn vclock() -> Clock {
    Clock::virtual_at(T0)
}

/// An in-memory engine on the virtual clock.
pub async fn engine(resources: Resources) -> Engine {
    Engine::open(EngineConfig {
        clock: vclock(),
        resources,
        ..EngineConfig::default()
    })
    .await
    .unwrap()
}

/// An in-memory engine on the system clock (for TimeoutSeconds / HeartbeatSeconds).
pub async fn system_engine(resources: Resources) -> Engine {
    Engine::in_memory(resources).await
}

/// A SQLite engine on the virtual clock.
pub async fn sqlite_engine(path: &Path, resources: Resources) -> Engine {
    Engine::open(EngineConfig {
        store: StoreConfig::Sqlite {
            path: path.to_owned(),
            durability: Default::default(),
        },
        clock: vclock(),
        resources,
        ..EngineConfig::default()
    })
    .await
    .unwrap()
}

/// Creates (or updates) a Standard state machine and returns its ARN.
pub async fn machine(engine: &Engine, name: &str, definition: Value) -> String {
    engine
        .create_state_machine(name, &definition, MachineType::Standard)
        .await
        .unwrap()
        .arn
}

/// Starts an execution (generated name) and returns its ARN.
pub async fn start(engine: &Engine, sm: &str, input: Value) -> String {
    engine
        .start_execution(sm, None, input)
        .await
        .unwrap()
        .execution_arn
}

/// Creates a state machine named `name`, runs one execution on `input` and waits for it.
pub async fn run(engine: &Engine, name: &str, definition: Value, input: Value) -> ExecutionRecord {
    let sm = machine(engine, name, definition).await;
    let arn = start(engine, &sm, input).await;
    engine.wait(&arn).await.unwrap()
}

/// A one-state machine around `state` (which must have `"End": true`).
pub fn single(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

/// A `lambda:invoke` Task of function `f` with the state input as payload.
pub fn invoke(f: &str) -> Value {
    json!({
        "Type": "Task",
        "Resource": INVOKE,
        "Parameters": {"FunctionName": f, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "End": true
    })
}

/// Every event of an execution, in order, read a page at a time.
pub fn history(engine: &Engine, arn: &str) -> Vec<HistoryEvent> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = engine
            .get_execution_history(
                arn,
                HistoryQuery {
                    max_results: 1000,
                    next_token: token.as_deref(),
                    reverse: false,
                },
            )
            .unwrap();
        out.extend(page.events);
        match page.next_token {
            Some(t) => token = Some(t),
            None => return out,
        }
    }
}

/// The event types of a history.
pub fn kinds(events: &[HistoryEvent]) -> Vec<String> {
    events.iter().map(|e| e.kind.clone()).collect()
}

/// Asserts that event ids are 1, 2, 3, … and each follows the one before.
pub fn assert_dense(events: &[HistoryEvent]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.id,
            i as u64 + 1,
            "event ids must be dense: {:?}",
            kinds(events)
        );
        assert_eq!(e.previous_event_id, e.id - 1);
    }
}

/// A handler from an async closure.
pub struct AsyncFn<F>(pub F);

impl<F, Fut> TaskHandler for AsyncFn<F>
where
    F: Fn(TaskCall) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, AslError>> + Send + 'static,
{
    fn call(&self, call: TaskCall) -> BoxFuture<Result<Value, AslError>> {
        Box::pin((self.0)(call))
    }
}

/// A shared call counter.
pub fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// A function that counts its calls and returns its payload.
pub fn counting_echo(count: Arc<AtomicUsize>) -> impl TaskHandler {
    cm_engine::FnHandler(move |c: &TaskCall| {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(c.input.clone())
    })
}

/// A function that fails with `error` on its first `failures` calls, then returns its payload.
pub fn flaky(count: Arc<AtomicUsize>, failures: usize, error: &'static str) -> impl TaskHandler {
    cm_engine::FnHandler(move |c: &TaskCall| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        if n < failures {
            Err(AslError::new(error, format!("failure #{}", n + 1)))
        } else {
            Ok(c.input.clone())
        }
    })
}

/// A handler that reports every call on a channel and returns `null` (for callback tasks,
/// whose result is what `send_task_*` says).
pub fn reporting() -> (impl TaskHandler, mpsc::UnboundedReceiver<TaskCall>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let h = cm_engine::FnHandler(move |c: &TaskCall| {
        let _ = tx.send(c.clone());
        Ok(Value::Null)
    });
    (h, rx)
}

/// The error code of an API error.
pub fn code<T: std::fmt::Debug>(r: Result<T, EngineError>) -> &'static str {
    r.unwrap_err().code()
}
