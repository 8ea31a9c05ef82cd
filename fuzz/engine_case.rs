//! One engine fuzz case and how it runs: shared by the `engine_run` fuzz target and the plain
//! `cargo test` that replays `fuzz/regressions/engine-*.json` (cm-engine's
//! `tests/fuzz_regressions.rs`), so that both run exactly the same engine configuration.
//!
//! A case document is `{"definition": …, "input": …, "type": "STANDARD" | "EXPRESS"}` (the
//! shape of the conformance cases in `tests/asl-conformance/cases/`, which seed the fuzzer).
//! It runs on a fresh in-memory engine with a virtual clock and a small transition budget.
//! Task resources answer at once: every function (`lambda:invoke` of `echo`, a Lambda ARN) and
//! every other resource returns its input, fails with the error named by the input's
//! `FuzzError` field, and answers `.waitForTaskToken` tasks through `SendTaskSuccess`.
//!
//! What must hold for any case: the engine refuses it with a typed error, or the execution
//! closes (never RUNNING after `wait`) with a well-formed history (ids dense from 1, one
//! `ExecutionStarted`, one terminal event, and a length bounded by the transition budget).

use cm_asl::AslError;
use cm_engine::resources::BoxFuture;
use cm_engine::{
    Clock, Engine, EngineConfig, EngineError, ExecutionRecord, HistoryQuery, MachineType,
    Resources, Status, StoreConfig, TaskCall, TaskHandler,
};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// State transitions an execution may make before it fails with `States.Runtime`.
pub const MAX_TRANSITIONS: u64 = 200;
/// History events a closed execution may hold: a transition journals a bounded number of
/// events, and everything an execution does is a transition or part of one.
pub const MAX_EVENTS: usize = 40 * MAX_TRANSITIONS as usize + 16;
/// How deep child executions may nest: a definition that starts itself gets one level (more
/// would let a Map of self-starting children multiply the work beyond any budget).
pub const MAX_CHILD_DEPTH: u32 = 1;
/// The state machine's name (so a definition can start itself as a child execution).
pub const MACHINE: &str = "fuzz";

/// A definition, an input and a workflow type.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The ASL definition (anything JSON; the engine validates it).
    pub definition: Value,
    /// The execution input.
    pub input: Value,
    /// Express instead of Standard.
    pub express: bool,
}

impl Case {
    /// From a case document; `None` when it has no `definition`.
    pub fn from_document(doc: &Value) -> Option<Case> {
        Some(Case {
            definition: doc.get("definition")?.clone(),
            input: doc.get("input").cloned().unwrap_or_else(|| json!({})),
            express: doc.get("type").and_then(Value::as_str) == Some("EXPRESS")
                || doc
                    .pointer("/source/state_machine_type")
                    .and_then(Value::as_str)
                    == Some("EXPRESS"),
        })
    }

    /// The case document.
    pub fn to_document(&self) -> Value {
        json!({
            "definition": self.definition,
            "input": self.input,
            "type": if self.express { "EXPRESS" } else { "STANDARD" },
        })
    }
}

/// How a case ended.
#[derive(Debug)]
pub enum Outcome {
    /// CreateStateMachine or StartExecution refused it.
    Refused(EngineError),
    /// The execution closed; its history had this many events.
    Closed(Box<ExecutionRecord>, usize),
}

/// The engine the handlers answer callbacks through. Emptied after the run: the engine holds
/// the handlers, so a handler holding the engine would keep both alive forever.
type Cell = Arc<Mutex<Option<Engine>>>;

/// The Task resources: see the module docs.
struct Answer {
    engine: Cell,
}

impl TaskHandler for Answer {
    fn call(&self, call: TaskCall) -> BoxFuture<Result<Value, AslError>> {
        if let Some(error) = call.input.get("FuzzError").and_then(Value::as_str) {
            let e = AslError::new(error, "the fuzz input asked for this error");
            return Box::pin(async move { Err(e) });
        }
        let engine = self.engine.lock().ok().and_then(|e| e.clone());
        if let (Some(token), Some(engine)) = (call.task_token.clone(), engine) {
            let output = call.input;
            tokio::spawn(async move {
                if engine.send_task_success(&token, output).await.is_err() {
                    // Too large, say: the task must still end.
                    let _ = engine
                        .send_task_failure(&token, Some("Fuzz.CallbackRefused".into()), None)
                        .await;
                }
            });
            return Box::pin(async { Ok(json!({})) });
        }
        let output = call.input;
        Box::pin(async move { Ok(output) })
    }
}

/// Runs a case on a fresh engine. `Err` names a broken invariant (a bug).
pub async fn run(case: &Case) -> Result<Outcome, String> {
    let cell: Cell = Arc::new(Mutex::new(None));
    let resources = Resources::new()
        .function(
            "echo",
            Answer {
                engine: cell.clone(),
            },
        )
        .fallback(Answer {
            engine: cell.clone(),
        });
    let engine = Engine::open(EngineConfig {
        store: StoreConfig::Memory,
        clock: Clock::virtual_at(1_767_225_600_000),
        resources,
        max_transitions: MAX_TRANSITIONS,
        max_child_depth: MAX_CHILD_DEPTH,
    })
    .await
    .map_err(|e| format!("the memory store failed to open: {e}"))?;
    if let Ok(mut c) = cell.lock() {
        *c = Some(engine.clone());
    }
    let result = execute(&engine, case).await;
    engine.shutdown().await;
    if let Ok(mut c) = cell.lock() {
        *c = None;
    }
    result
}

async fn execute(engine: &Engine, case: &Case) -> Result<Outcome, String> {
    let machine_type = if case.express {
        MachineType::Express
    } else {
        MachineType::Standard
    };
    let sm = match engine
        .create_state_machine(MACHINE, &case.definition, machine_type)
        .await
    {
        Ok(sm) => sm,
        Err(e) => return Ok(Outcome::Refused(e)),
    };
    let started = match engine
        .start_execution(&sm.arn, Some("execution".into()), case.input.clone())
        .await
    {
        Ok(s) => s,
        Err(e) => return Ok(Outcome::Refused(e)),
    };
    let rec = engine
        .wait(&started.execution_arn)
        .await
        .map_err(|e| format!("wait failed: {e}"))?;
    if rec.status == Status::Running {
        return Err("wait returned an execution that is still RUNNING".into());
    }
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = engine
            .get_execution_history(
                &rec.arn,
                HistoryQuery {
                    max_results: 1000,
                    next_token: token.as_deref(),
                    reverse: false,
                },
            )
            .map_err(|e| format!("history failed: {e}"))?;
        events.extend(page.events);
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
        if events.len() > MAX_EVENTS {
            break;
        }
    }
    if events.len() > MAX_EVENTS {
        return Err(format!(
            "the history holds more than {MAX_EVENTS} events for {MAX_TRANSITIONS} transitions"
        ));
    }
    for (i, e) in events.iter().enumerate() {
        if e.id != i as u64 + 1 || e.previous_event_id != i as u64 {
            return Err(format!("event #{i} has id {} (expected {})", e.id, i + 1));
        }
    }
    let count = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
    let terminal = events
        .iter()
        .filter(|e| cm_engine::history::is_terminal(&e.kind))
        .count();
    if count("ExecutionStarted") != 1 || terminal != 1 {
        return Err(format!(
            "{} ExecutionStarted and {terminal} terminal events",
            count("ExecutionStarted")
        ));
    }
    let n = events.len();
    Ok(Outcome::Closed(Box::new(rec), n))
}

/// Runs a case on its own runtime (what the fuzz target does per input). The execution runs
/// on the runtime's worker thread, whose stack is tokio's default 2 MiB as in a real
/// deployment (the fuzzer's main thread has 8 MiB, which would hide stack overflows). The
/// fuzz target keeps one such runtime for all its inputs instead.
#[allow(dead_code)]
pub fn run_blocking(case: &Case) -> Result<Outcome, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("no runtime: {e}"))?;
    rt.block_on(run(case))
}
