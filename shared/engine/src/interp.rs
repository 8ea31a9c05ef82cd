//! The interpreter: runs one execution's state machine, journaling every transition before
//! acting on it, and replaying the journal after a restart.
//!
//! Evaluation (paths, templates, intrinsics, Choice rules, JSONata) comes from `cm-asl`; this
//! module owns control flow: transitions, Task calls and callbacks, Wait timers, Retry/Catch,
//! Parallel branches and Map iterations (run concurrently inside the execution's tokio task,
//! bounded by `MaxConcurrency`), timeouts and heartbeats.
//!
//! **Replay.** Events carry a step key (see [`crate::history`]). On resume the journal is
//! indexed by step: a state with a recorded `…StateExited` is not run again (its output, next
//! state and assigned variables are taken from the record); a Task attempt with a recorded
//! result is not invoked again; a Task that was scheduled but has no result is invoked again
//! (at-least-once); a Wait sleeps until its recorded deadline.

use crate::engine::Inner;
use crate::history::{HistoryEvent, state_event};
use crate::resources::{TaskCall, base_resource};
use crate::store::{Ack, Close, StoreError};
use cm_asl::payload::{self, compact};
use cm_asl::{AslError, Env, choice, jsonata, path};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Step Functions' limit on a state's input or output (256 KiB).
const MAX_PAYLOAD_BYTES: usize = 262_144;

/// A failure travelling up through Parallel/Map, Retry and Catch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub error: Option<String>,
    pub cause: Option<String>,
    /// The journal could not be written: not an ASL error (no Retry/Catch); the execution
    /// stops where it is and resumes from its journal when the engine restarts.
    pub interrupted: Option<StoreError>,
}

impl From<AslError> for Failure {
    fn from(e: AslError) -> Self {
        Failure {
            error: Some(e.error),
            cause: Some(e.cause),
            interrupted: None,
        }
    }
}

impl Failure {
    fn new(error: &str, cause: impl Into<String>) -> Failure {
        AslError::new(error, cause).into()
    }

    fn interrupt(e: StoreError) -> Failure {
        Failure {
            error: None,
            cause: None,
            interrupted: Some(e),
        }
    }

    fn error_output(&self) -> Value {
        json!({"Error": self.error, "Cause": self.cause})
    }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A recorded state exit: output, next state, assigned variables.
type Exit = (Value, Option<String>, Map<String, Value>);
/// A recorded task result (a failure keeps its error name and cause).
type TaskResult = Result<Value, (Option<String>, Option<String>)>;

/// What a step recorded, for replay.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// step → (output, next state, assigned variables)
    exits: HashMap<String, Exit>,
    /// "step#attempt" → task token issued when it was scheduled
    tokens: HashMap<String, String>,
    /// "step#attempt" → result
    results: HashMap<String, TaskResult>,
    /// (step, event type) → event id, for events already in the journal (not re-emitted)
    seen: HashMap<(String, String), (u64, i64)>,
    /// When the execution was last redriven (its timeout counts from then).
    pub redriven_at: Option<i64>,
}

impl Replay {
    /// Indexes a journal. `redrive` keeps only what succeeded (exits and successful task
    /// results), so that failed states run again and log fresh events.
    pub(crate) fn from_events(events: &[HistoryEvent], redrive: bool) -> Replay {
        let mut r = Replay::default();
        for e in events {
            let d = &e.details;
            if e.kind == "ExecutionRedriven" {
                r.redriven_at = Some(e.timestamp_ms);
            }
            if e.kind.ends_with("StateExited") {
                let next = d.get("next").and_then(Value::as_str).map(str::to_owned);
                let assigned = d
                    .get("assignedVariables")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let output = d.get("output").cloned().unwrap_or(Value::Null);
                r.exits.insert(e.step.clone(), (output, next, assigned));
            }
            match e.kind.as_str() {
                // A redriven task is a new attempt on AWS: it gets a new token.
                "TaskScheduled" if !redrive => {
                    if let Some(t) = d.get("taskToken").and_then(Value::as_str) {
                        r.tokens.insert(e.step.clone(), t.to_owned());
                    }
                }
                "TaskSucceeded" => {
                    let out = d.get("output").cloned().unwrap_or(Value::Null);
                    r.results.insert(e.step.clone(), Ok(out));
                }
                "TaskFailed" | "TaskTimedOut" if !redrive => {
                    let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
                    r.results
                        .insert(e.step.clone(), Err((text("error"), text("cause"))));
                }
                _ => {}
            }
            if !redrive {
                r.seen
                    .insert((e.step.clone(), e.kind.clone()), (e.id, e.timestamp_ms));
            }
        }
        r
    }
}

struct Journal {
    next_id: u64,
    pending: Vec<HistoryEvent>,
    /// Events sent to the store and not yet published on the live stream, in id order.
    unpublished: Vec<HistoryEvent>,
}

/// One running execution, shared by its branches and iterations.
pub(crate) struct Exec {
    pub inner: Arc<Inner>,
    pub seq: u64,
    pub arn: Arc<str>,
    /// `{"Execution": …, "StateMachine": …}`; per-state parts are added when a state runs.
    pub base_context: Value,
    /// False when nothing in the definition reads the context object, so it is not built.
    pub needs_context: bool,
    journal: Mutex<Journal>,
    replay: Replay,
    transitions: AtomicU64,
    /// Set by whoever closes the execution (its own task, or StopExecution).
    closing: std::sync::atomic::AtomicBool,
}

/// `{"name": name, key: value}`. (`json!` would convert `value` with `to_value`, which
/// costs about twice a clone.)
fn named(name: &str, key: &str, value: &Value) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(name.to_owned()));
    m.insert(key.into(), value.clone());
    Value::Object(m)
}

/// Where an error happened, for AWS's cause prefix.
#[derive(Clone, Copy)]
struct Loc<'a> {
    name: &'a str,
    entered: u64,
}

impl Loc<'_> {
    fn at(self, e: AslError) -> Failure {
        AslError::new(
            e.error,
            format!(
                "An error occurred while executing the state '{}' (entered at the event id #{}). {}",
                self.name, self.entered, e.cause
            ),
        )
        .into()
    }
}

/// Per-scope interpreter state (the top level, a branch, an iteration).
struct Scope {
    prefix: String,
    visits: u32,
    vars: Map<String, Value>,
    pending: Option<Map<String, Value>>,
    jsonata: bool,
    item: Option<Value>,
}

impl Scope {
    fn child(&self, prefix: String, item: Option<Value>) -> Scope {
        Scope {
            prefix,
            visits: 0,
            vars: self.vars.clone(),
            pending: None,
            jsonata: self.jsonata,
            item,
        }
    }
}

/// Whether the definition reads the context object anywhere (`$$`, `$states.context`).
pub(crate) fn reads_context(definition: &Value) -> bool {
    match definition {
        Value::String(s) => s.contains("$$") || s.contains("$states"),
        Value::Array(a) => a.iter().any(reads_context),
        Value::Object(m) => m.values().any(reads_context),
        _ => false,
    }
}

enum Work {
    Task,
    Parallel { input: Value },
    Map { effective: Value },
    MapJsonata { st: Value },
}

impl Exec {
    pub(crate) fn new(
        inner: Arc<Inner>,
        seq: u64,
        arn: Arc<str>,
        base_context: Value,
        needs_context: bool,
        next_id: u64,
        replay: Replay,
    ) -> Exec {
        Exec {
            inner,
            seq,
            arn,
            base_context,
            needs_context,
            journal: Mutex::new(Journal {
                next_id,
                pending: Vec::new(),
                unpublished: Vec::new(),
            }),
            replay,
            transitions: AtomicU64::new(0),
            closing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// True for the first caller only: that one closes the execution.
    pub(crate) fn claim_close(&self) -> bool {
        !self.closing.swap(true, Ordering::SeqCst)
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an event (not yet durable: see [`Exec::flush`]); returns its id. Events the
    /// journal already holds (replay) are not recorded twice.
    fn emit(&self, step: &str, kind: &str, details: Value) -> u64 {
        if !self.replay.seen.is_empty()
            && let Some((id, _)) = self.replay.seen.get(&(step.to_owned(), kind.to_owned()))
        {
            return *id;
        }
        let now = self.inner.clock.now_ms();
        let mut j = self.journal();
        let id = j.next_id;
        j.next_id += 1;
        j.pending.push(HistoryEvent {
            id,
            previous_event_id: id - 1,
            timestamp_ms: now,
            kind: kind.to_owned(),
            step: step.to_owned(),
            details,
        });
        id
    }

    /// When an event was first recorded (replay), else now.
    fn recorded_time(&self, step: &str, kind: &str) -> i64 {
        self.replay
            .seen
            .get(&(step.to_owned(), kind.to_owned()))
            .map_or_else(|| self.inner.clock.now_ms(), |(_, ts)| *ts)
    }

    /// Makes every recorded event durable before the caller acts on it.
    async fn flush(&self) -> Result<(), Failure> {
        let (ack, last) = {
            let mut j = self.journal();
            if j.pending.is_empty() {
                return Ok(());
            }
            self.send_pending(&mut j, None)
        };
        let written = ack.wait().await;
        self.publish_through(last, written.is_ok());
        written.map_err(Failure::interrupt)
    }

    /// Sends the pending events to the store and queues them for the live stream. Called
    /// with the journal locked, so that the store sees events in id order; returns the write's
    /// ack and the last id sent.
    fn send_pending(&self, j: &mut Journal, close: Option<Close>) -> (Ack<()>, u64) {
        let events = std::mem::take(&mut j.pending);
        let last = events.last().map_or(0, |e| e.id);
        if self.inner.publishing() {
            j.unpublished.extend(events.iter().cloned());
        }
        (self.inner.store.append(self.seq, events, close), last)
    }

    /// Publishes the queued events up to id `last` once their write is acknowledged (or
    /// drops them if it failed). Concurrent flushes (Parallel branches, Map iterations) can
    /// see their acks in any order; the store commits writes in the order they were sent, so
    /// whichever comes first publishes everything up to its last id, in id order.
    fn publish_through(&self, last: u64, written: bool) {
        let mut j = self.journal();
        let n = j.unpublished.iter().take_while(|e| e.id <= last).count();
        let events: Vec<HistoryEvent> = j.unpublished.drain(..n).collect();
        if written && !events.is_empty() {
            // Still under the journal lock, so that two publishers cannot interleave.
            self.inner.publish(&self.arn, events);
        }
    }

    /// Journals the closing event with the execution's final status, in one commit.
    pub(crate) async fn close(
        &self,
        kind: &str,
        details: Value,
        close: Close,
    ) -> Result<(), StoreError> {
        self.emit("", kind, details);
        let (ack, last) = {
            let mut j = self.journal();
            self.send_pending(&mut j, Some(close))
        };
        let written = ack.wait().await;
        self.publish_through(last, written.is_ok());
        written
    }

    /// Runs the whole machine on `input`.
    pub(crate) async fn run(&self, definition: &Value, input: Value) -> Result<Value, Failure> {
        let mut scope = Scope {
            prefix: String::new(),
            visits: 0,
            vars: Map::new(),
            pending: None,
            jsonata: false,
            item: None,
        };
        // Events still pending at the end go out with the closing event, in one commit.
        self.machine(&mut scope, definition, input).await
    }

    fn machine<'a>(
        &'a self,
        sc: &'a mut Scope,
        machine: &'a Value,
        data: Value,
    ) -> BoxFut<'a, Result<Value, Failure>> {
        Box::pin(GrowStack(Box::pin(async move {
            let states = machine
                .get("States")
                .and_then(Value::as_object)
                .ok_or_else(|| AslError::runtime("the definition has no States"))?;
            if let Some(lang) = machine.get("QueryLanguage").and_then(Value::as_str) {
                sc.jsonata = lang == "JSONata";
            }
            self.run_states(sc, states, machine, data).await
        })))
    }

    async fn run_states(
        &self,
        sc: &mut Scope,
        states: &Map<String, Value>,
        machine: &Value,
        mut data: Value,
    ) -> Result<Value, Failure> {
        let mut current = machine
            .get("StartAt")
            .and_then(Value::as_str)
            .ok_or_else(|| AslError::runtime("the definition has no StartAt"))?
            .to_owned();
        loop {
            let n = self.transitions.fetch_add(1, Ordering::Relaxed) + 1;
            if n > self.inner.config.max_transitions {
                return Err(Failure::new(
                    "States.Runtime",
                    format!(
                        "The execution exceeded {} state transitions.",
                        self.inner.config.max_transitions
                    ),
                ));
            }
            let state = states
                .get(&current)
                .ok_or_else(|| AslError::runtime(format!("no state named '{current}'")))?;
            let step = format!("{}{}", sc.prefix, sc.visits);
            sc.visits += 1;
            if let Some((output, next, assigned)) = self.replay.exits.get(&step) {
                sc.vars.extend(assigned.clone());
                data = output.clone();
                match next {
                    Some(n) => {
                        current = n.clone();
                        continue;
                    }
                    None => return Ok(data),
                }
            }
            let ty = state
                .get("Type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let entered_kind = state_event(ty, "Entered");
            let entered = self.emit(&step, &entered_kind, named(&current, "input", &data));
            // The transition is durable before the state runs. Tasks and Waits flush
            // themselves before acting, so they share this commit.
            if !matches!(ty, "Task" | "Wait") {
                self.flush().await?;
            }
            let context = if self.needs_context {
                let mut c = self.base_context.clone();
                let at = self.recorded_time(&step, &entered_kind);
                c["State"] = json!({"Name": current, "EnteredTime": crate::time::iso(at)});
                if let Some(item) = &sc.item {
                    c["Map"] = json!({ "Item": item });
                }
                c
            } else {
                Value::Null
            };
            let loc = Loc {
                name: &current,
                entered,
            };
            let (next, output) = self
                .state(sc, state, &step, &current, data, &context, loc)
                .await?;
            // Assignments take effect after the state: its own paths saw the old values.
            let assigned = sc.pending.take().unwrap_or_default();
            if !assigned.is_empty() {
                sc.vars.extend(assigned.clone());
            }
            let limit = payload::MAX_DEPTH;
            if payload::depth(&output) > limit
                || assigned.values().any(|v| payload::depth(v) > limit)
            {
                return Err(Failure::new(
                    "States.DataLimitExceeded",
                    format!(
                        "The state/task '{current}' returned a result or assigned a variable nested more than {limit} levels deep."
                    ),
                ));
            }
            // Step Functions' limit on what one Assign stores (each variable, and all of them).
            let assigned_bytes: usize = assigned
                .iter()
                .map(|(k, v)| k.len() + compact(v).len())
                .sum();
            if assigned_bytes > MAX_PAYLOAD_BYTES {
                return Err(Failure::new(
                    "States.DataLimitExceeded",
                    format!(
                        "The state/task '{current}' assigned variables with a size exceeding the maximum number of bytes service limit."
                    ),
                ));
            }
            if compact(&output).len() > MAX_PAYLOAD_BYTES {
                return Err(Failure::new(
                    "States.DataLimitExceeded",
                    format!(
                        "The state/task '{current}' returned a result with a size exceeding the maximum number of bytes service limit."
                    ),
                ));
            }
            let mut details = named(&current, "output", &output);
            if let Some(n) = &next {
                details["next"] = json!(n);
            }
            if !assigned.is_empty() {
                details["assignedVariables"] = Value::Object(assigned);
            }
            self.emit(&step, &state_event(ty, "Exited"), details);
            match next {
                Some(n) => {
                    current = n;
                    data = output;
                }
                None => return Ok(output),
            }
        }
    }

    /// Runs one state: (next state, output) or a failure.
    #[allow(clippy::too_many_arguments)]
    async fn state(
        &self,
        sc: &mut Scope,
        s: &Value,
        step: &str,
        name: &str,
        input: Value,
        context: &Value,
        loc: Loc<'_>,
    ) -> Result<(Option<String>, Value), Failure> {
        let jsonata = match s.get("QueryLanguage").and_then(Value::as_str) {
            Some(lang) => lang == "JSONata",
            None => sc.jsonata,
        };
        if jsonata {
            return self
                .state_jsonata(sc, s, step, name, input, context, loc)
                .await;
        }
        let ty = s.get("Type").and_then(Value::as_str).unwrap_or_default();
        let next = s.get("Next").and_then(Value::as_str).map(str::to_owned);
        let vars = sc.vars.clone();
        let env = Env {
            context,
            vars: &vars,
        };
        match ty {
            "Pass" => {
                let effective = payload::effective_input(s, &input, &env, "Parameters")
                    .map_err(|e| loc.at(e))?;
                let result = s.get("Result").cloned().unwrap_or(effective);
                assign(sc, s, &result, &env).map_err(|e| loc.at(e))?;
                let output = payload::output(s, input, result, &env).map_err(|e| loc.at(e))?;
                Ok((next, output))
            }
            "Succeed" => {
                let effective = payload::select_path(s.get("InputPath"), &input, &env)
                    .map_err(|e| loc.at(e))?;
                let output = payload::select_path(s.get("OutputPath"), &effective, &env)
                    .map_err(|e| loc.at(e))?;
                Ok((None, output))
            }
            "Fail" => {
                let field = |name: &str, path_field: &str| -> Result<Option<String>, Failure> {
                    if let Some(v) = s.get(name).and_then(Value::as_str) {
                        return Ok(Some(v.to_owned()));
                    }
                    match s.get(path_field).and_then(Value::as_str) {
                        Some(p) if p.starts_with("States.") => {
                            let v = payload::template(&json!({ "v.$": p }), &input, &env)
                                .map_err(|e| loc.at(e))?;
                            Ok(v["v"]
                                .as_str()
                                .map(str::to_owned)
                                .or_else(|| Some(compact(&v["v"]))))
                        }
                        Some(p) => match path::select(p, &input, &env).map_err(|e| loc.at(e))? {
                            Some(Value::String(v)) => Ok(Some(v)),
                            Some(other) => Ok(Some(compact(&other))),
                            None => Err(loc.at(AslError::runtime(format!(
                                "The JSONPath '{p}' specified for the field '{path_field}' could not be found in the input '{}'",
                                compact(&input)
                            )))),
                        },
                        None => Ok(None),
                    }
                };
                Err(Failure {
                    error: field("Error", "ErrorPath")?,
                    cause: field("Cause", "CausePath")?,
                    interrupted: None,
                })
            }
            "Choice" => {
                let effective = payload::select_path(s.get("InputPath"), &input, &env)
                    .map_err(|e| loc.at(e))?;
                for rule in s
                    .get("Choices")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if choice::evaluate(rule, &effective, &env).map_err(|e| loc.at(e))? {
                        assign(sc, rule, &effective, &env).map_err(|e| loc.at(e))?;
                        let target = rule.get("Next").and_then(Value::as_str).map(str::to_owned);
                        let output = payload::select_path(s.get("OutputPath"), &effective, &env)
                            .map_err(|e| loc.at(e))?;
                        return Ok((target, output));
                    }
                }
                match s.get("Default").and_then(Value::as_str) {
                    Some(d) => {
                        assign(sc, s, &effective, &env).map_err(|e| loc.at(e))?;
                        let output = payload::select_path(s.get("OutputPath"), &effective, &env)
                            .map_err(|e| loc.at(e))?;
                        Ok((Some(d.to_owned()), output))
                    }
                    None => Err(Failure::new("States.NoChoiceMatched", "No Matches!")),
                }
            }
            "Wait" => {
                let effective = payload::select_path(s.get("InputPath"), &input, &env)
                    .map_err(|e| loc.at(e))?;
                let deadline = wait_deadline(s, &effective, &env).map_err(|e| loc.at(e))?;
                self.wait(step, deadline).await?;
                assign(sc, s, &effective, &env).map_err(|e| loc.at(e))?;
                let output = payload::select_path(s.get("OutputPath"), &effective, &env)
                    .map_err(|e| loc.at(e))?;
                Ok((next, output))
            }
            "Parallel" | "Map" | "Task" => {
                let result = match ty {
                    "Task" => {
                        self.attempts(sc, s, step, name, &input, context, loc, Work::Task)
                            .await
                    }
                    "Parallel" => match payload::effective_input(s, &input, &env, "Parameters") {
                        Ok(effective) => {
                            self.attempts(
                                sc,
                                s,
                                step,
                                name,
                                &input,
                                context,
                                loc,
                                Work::Parallel { input: effective },
                            )
                            .await
                        }
                        Err(e) => Err(loc.at(e)),
                    },
                    _ => match payload::select_path(s.get("InputPath"), &input, &env) {
                        // A Map's Parameters select each item's input (legacy ItemSelector).
                        Ok(effective) => {
                            self.attempts(
                                sc,
                                s,
                                step,
                                name,
                                &input,
                                context,
                                loc,
                                Work::Map { effective },
                            )
                            .await
                        }
                        Err(e) => Err(loc.at(e)),
                    },
                };
                match result {
                    Ok(result) => {
                        assign(sc, s, &result, &env).map_err(|e| loc.at(e))?;
                        let output =
                            payload::output(s, input, result, &env).map_err(|e| loc.at(e))?;
                        Ok((next, output))
                    }
                    Err(f) => {
                        let Some(catcher) = catcher_for(s, &f) else {
                            return Err(f);
                        };
                        let output = payload::apply_result_path(
                            catcher.get("ResultPath"),
                            input,
                            f.error_output(),
                        )
                        .map_err(|e| loc.at(e))?;
                        let target = catcher
                            .get("Next")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        Ok((target, output))
                    }
                }
            }
            other => Err(loc.at(AslError::runtime(format!(
                "unsupported state type '{other}'"
            )))),
        }
    }

    /// One state in JSONata mode: `Arguments`, `Output`, `Assign`, `Condition`, `Items`.
    #[allow(clippy::too_many_arguments)]
    async fn state_jsonata(
        &self,
        sc: &mut Scope,
        s: &Value,
        step: &str,
        name: &str,
        input: Value,
        context: &Value,
        loc: Loc<'_>,
    ) -> Result<(Option<String>, Value), Failure> {
        let ty = s.get("Type").and_then(Value::as_str).unwrap_or_default();
        let next = s.get("Next").and_then(Value::as_str).map(str::to_owned);
        let vars = sc.vars.clone();
        let states = |extra: Option<(&str, &Value)>| {
            let mut v = json!({"input": input, "context": context});
            if let Some((k, x)) = extra {
                v[k] = x.clone();
            }
            v
        };
        let eval = |tpl: &Value, st: &Value, field: &str| -> Result<Value, Failure> {
            jsonata::template(tpl, st, &vars, field).map_err(|e| loc.at(e))
        };
        // Output (default: `default`) and Assign of a state or rule, both seeing the same
        // variables.
        let finish = |sc: &mut Scope,
                      holder: &Value,
                      st: &Value,
                      default: Value|
         -> Result<Value, Failure> {
            if let Some(tpl) = holder.get("Assign") {
                let Value::Object(values) = eval(tpl, st, "Assign")? else {
                    return Err(loc.at(AslError::runtime("Assign must be an object")));
                };
                sc.pending.get_or_insert_with(Map::new).extend(values);
            }
            match holder.get("Output") {
                Some(tpl) => eval(tpl, st, "Output"),
                None => Ok(default),
            }
        };
        match ty {
            "Pass" | "Succeed" => {
                let st = states(None);
                let out = finish(sc, s, &st, input.clone())?;
                Ok((if ty == "Succeed" { None } else { next }, out))
            }
            "Fail" => {
                let st = states(None);
                let text = |field: &str| -> Result<Option<String>, Failure> {
                    match s.get(field) {
                        Some(tpl) => match eval(tpl, &st, field)? {
                            Value::String(v) => Ok(Some(v)),
                            other => Ok(Some(compact(&other))),
                        },
                        None => Ok(None),
                    }
                };
                Err(Failure {
                    error: text("Error")?,
                    cause: text("Cause")?,
                    interrupted: None,
                })
            }
            "Choice" => {
                let st = states(None);
                for rule in s
                    .get("Choices")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let holds = eval(
                        rule.get("Condition").unwrap_or(&Value::Null),
                        &st,
                        "Condition",
                    )?;
                    let Value::Bool(holds) = holds else {
                        return Err(loc.at(AslError::new(
                            "States.QueryEvaluationError",
                            format!(
                                "The Condition field evaluated to a non-boolean value: {}",
                                compact(&holds)
                            ),
                        )));
                    };
                    if holds {
                        let out = finish(sc, rule, &st, input.clone())?;
                        return Ok((
                            rule.get("Next").and_then(Value::as_str).map(str::to_owned),
                            out,
                        ));
                    }
                }
                match s.get("Default").and_then(Value::as_str) {
                    Some(d) => {
                        let out = finish(sc, s, &st, input.clone())?;
                        Ok((Some(d.to_owned()), out))
                    }
                    None => Err(Failure::new("States.NoChoiceMatched", "No Matches!")),
                }
            }
            "Wait" => {
                let st = states(None);
                let mut deadline = None;
                if let Some(tpl) = s.get("Seconds") {
                    let v = eval(tpl, &st, "Seconds")?;
                    let Some(secs) = v.as_i64().filter(|n| *n >= 0) else {
                        return Err(loc.at(AslError::new(
                            "States.QueryEvaluationError",
                            format!(
                                "The Seconds field must be a non-negative integer: {}",
                                compact(&v)
                            ),
                        )));
                    };
                    deadline = Some(Deadline::After(secs.saturating_mul(1000)));
                }
                if let Some(tpl) = s.get("Timestamp") {
                    let v = eval(tpl, &st, "Timestamp")?;
                    let Some(at) = v.as_str().and_then(crate::time::parse_ms) else {
                        return Err(loc.at(AslError::new(
                            "States.QueryEvaluationError",
                            format!(
                                "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {}",
                                number_text(&v)
                            ),
                        )));
                    };
                    deadline = Some(Deadline::At(at));
                }
                if let Some(d) = deadline {
                    self.wait(step, d).await?;
                }
                let out = finish(sc, s, &st, input.clone())?;
                Ok((next, out))
            }
            "Parallel" | "Map" | "Task" => {
                let st = states(None);
                let result = match ty {
                    "Task" => {
                        self.attempts(sc, s, step, name, &input, context, loc, Work::Task)
                            .await
                    }
                    "Parallel" => {
                        let args = match s.get("Arguments") {
                            Some(tpl) => eval(tpl, &st, "Arguments")?,
                            None => input.clone(),
                        };
                        self.attempts(
                            sc,
                            s,
                            step,
                            name,
                            &input,
                            context,
                            loc,
                            Work::Parallel { input: args },
                        )
                        .await
                    }
                    _ => {
                        self.attempts(
                            sc,
                            s,
                            step,
                            name,
                            &input,
                            context,
                            loc,
                            Work::MapJsonata { st: st.clone() },
                        )
                        .await
                    }
                };
                match result {
                    Ok(result) => {
                        let st = states(Some(("result", &result)));
                        let out = finish(sc, s, &st, result.clone())?;
                        Ok((next, out))
                    }
                    Err(f) => {
                        let Some(catcher) = catcher_for(s, &f) else {
                            return Err(f);
                        };
                        let error_output = f.error_output();
                        let st = states(Some(("errorOutput", &error_output)));
                        let out = finish(sc, catcher, &st, error_output.clone())?;
                        let target = catcher
                            .get("Next")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        Ok((target, out))
                    }
                }
            }
            other => Err(loc.at(AslError::runtime(format!(
                "unsupported state type '{other}'"
            )))),
        }
    }

    /// Sleeps until a Wait state's deadline (measured from when the state was first entered,
    /// so a restart does not wait again from the start).
    async fn wait(&self, step: &str, deadline: Deadline) -> Result<(), Failure> {
        let at = match deadline {
            Deadline::At(ms) => ms,
            Deadline::After(ms) => {
                let kind = "WaitStateEntered";
                self.recorded_time(step, kind).saturating_add(ms)
            }
        };
        self.flush().await?;
        self.inner.clock.sleep_until(at).await;
        Ok(())
    }

    /// Runs Task / Parallel / Map work, retrying as the state's `Retry` says.
    #[allow(clippy::too_many_arguments)]
    async fn attempts(
        &self,
        sc: &mut Scope,
        s: &Value,
        step: &str,
        name: &str,
        raw_input: &Value,
        context: &Value,
        loc: Loc<'_>,
        work: Work,
    ) -> Result<Value, Failure> {
        let retriers = s
            .get("Retry")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut counts = vec![0u32; retriers.len()];
        let mut attempt: u32 = 0;
        loop {
            let result = match &work {
                Work::Task => {
                    self.task(sc, s, step, name, raw_input, context, loc, attempt)
                        .await
                }
                Work::Parallel { input } => self.branches(sc, s, step, attempt, input).await,
                Work::Map { effective } => {
                    self.map(sc, s, step, attempt, effective, context, loc)
                        .await
                }
                Work::MapJsonata { st } => {
                    self.map_jsonata(sc, s, step, attempt, st, context, loc)
                        .await
                }
            };
            let f = match result {
                Ok(v) => return Ok(v),
                Err(f) if f.interrupted.is_some() => return Err(f),
                Err(f) => f,
            };
            let err_name = f.error.clone().unwrap_or_default();
            if is_terminal_error(&err_name) {
                return Err(f);
            }
            let Some(k) = retriers.iter().position(|r| error_matches(r, &err_name)) else {
                return Err(f);
            };
            let r = &retriers[k];
            let max = r.get("MaxAttempts").and_then(Value::as_u64).unwrap_or(3);
            if u64::from(counts[k]) >= max {
                return Err(f);
            }
            // A retry counts as a transition: `MaxAttempts` (up to 99,999,999) must not let
            // one state run past the execution's budget.
            let n = self.transitions.fetch_add(1, Ordering::Relaxed) + 1;
            if n > self.inner.config.max_transitions {
                return Err(Failure::new(
                    "States.Runtime",
                    format!(
                        "The execution exceeded {} state transitions.",
                        self.inner.config.max_transitions
                    ),
                ));
            }
            let delay = retry_delay_ms(r, counts[k], &self.inner);
            counts[k] += 1;
            attempt += 1;
            if delay > 0 {
                self.flush().await?;
                let at = self.inner.clock.now_ms().saturating_add(delay);
                self.inner.clock.sleep_until(at).await;
            }
        }
    }

    /// One attempt of a Task state.
    #[allow(clippy::too_many_arguments)]
    async fn task(
        &self,
        sc: &mut Scope,
        s: &Value,
        step: &str,
        name: &str,
        raw_input: &Value,
        context: &Value,
        loc: Loc<'_>,
        attempt: u32,
    ) -> Result<Value, Failure> {
        let resource = s
            .get("Resource")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let key = format!("{step}#{attempt}");
        if let Some(recorded) = self.replay.results.get(&key) {
            return match recorded {
                Ok(v) => Ok(v.clone()),
                Err((error, cause)) => Err(Failure {
                    error: error.clone(),
                    cause: cause.clone(),
                    interrupted: None,
                }),
            };
        }
        let callback = resource.ends_with(".waitForTaskToken");
        let token = callback.then(|| {
            self.replay
                .tokens
                .get(&key)
                .cloned()
                .unwrap_or_else(crate::engine::new_token)
        });
        let mut task_context = context.clone();
        if self.needs_context || callback {
            if !task_context.is_object() {
                task_context = self.base_context.clone();
                task_context["State"] = json!({"Name": name});
            }
            task_context["State"]["RetryCount"] = json!(attempt);
            if let Some(t) = &token {
                task_context["Task"] = json!({ "Token": t });
            }
        }
        let vars = sc.vars.clone();
        let env = Env {
            context: &task_context,
            vars: &vars,
        };
        // Parameters are evaluated per attempt: they may read `$$.State.RetryCount`.
        let jsonata = match s.get("QueryLanguage").and_then(Value::as_str) {
            Some(lang) => lang == "JSONata",
            None => sc.jsonata,
        };
        // JSONata's `$states`; JSONPath does not read it.
        let st = if jsonata {
            json!({"input": raw_input, "context": task_context})
        } else {
            Value::Null
        };
        let effective = if jsonata {
            match s.get("Arguments") {
                Some(tpl) => {
                    jsonata::template(tpl, &st, &vars, "Arguments").map_err(|e| loc.at(e))?
                }
                None => raw_input.clone(),
            }
        } else {
            payload::effective_input(s, raw_input, &env, "Parameters").map_err(|e| loc.at(e))?
        };
        let number = |field: &str| -> Result<Option<i64>, Failure> {
            if jsonata {
                return match s.get(field) {
                    Some(tpl) => {
                        let v = jsonata::template(tpl, &st, &vars, field).map_err(|e| loc.at(e))?;
                        v.as_i64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                            loc.at(AslError::new(
                                "States.QueryEvaluationError",
                                format!(
                                    "The {field} field must be a positive integer: {}",
                                    compact(&v)
                                ),
                            ))
                        })
                    }
                    None => Ok(None),
                };
            }
            if let Some(p) = s.get(format!("{field}Path")).and_then(Value::as_str) {
                let v = path::select(p, raw_input, &env)
                    .map_err(|e| loc.at(e))?
                    .unwrap_or(Value::Null);
                return v.as_i64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                    loc.at(AslError::runtime(format!(
                        "The {field}Path field refers to value \"{}\" which is not a valid positive integer: {p}",
                        number_text(&v)
                    )))
                });
            }
            Ok(s.get(field).and_then(Value::as_i64))
        };
        let timeout = number("TimeoutSeconds")?;
        let heartbeat = number("HeartbeatSeconds")?;
        let mut scheduled = json!({
            "resourceType": resource_type(resource),
            "resource": resource_name(resource),
            "region": crate::engine::REGION,
        });
        scheduled["parameters"] = effective.clone();
        if let Some(t) = timeout {
            scheduled["timeoutInSeconds"] = json!(t);
        }
        if let Some(h) = heartbeat {
            scheduled["heartbeatInSeconds"] = json!(h);
        }
        if let Some(t) = &token {
            scheduled["taskToken"] = json!(t);
        }
        self.emit(&key, "TaskScheduled", scheduled);
        // The schedule is durable before the resource is called (at-least-once).
        self.flush().await?;
        let now = self.inner.clock.now_ms();
        let deadline = timeout.map(|t| now.saturating_add(t.saturating_mul(1000)));
        self.emit(
            &key,
            "TaskStarted",
            json!({"resourceType": resource_type(resource), "resource": resource_name(resource)}),
        );
        let call = TaskCall {
            resource: resource.to_owned(),
            input: effective,
            context: task_context,
            task_token: token.clone(),
            execution_arn: self.arn.to_string(),
            state_name: name.to_owned(),
            attempt,
            invocation_id: format!("{}/{key}", self.arn),
        };
        let (outcome, ack) = self
            .inner
            .clone()
            .run_task(call, deadline, heartbeat.map(|h| h.saturating_mul(1000)))
            .await;
        let details = |extra: Value| {
            let mut d = json!({"resourceType": resource_type(resource), "resource": resource_name(resource)});
            if let (Value::Object(d), Value::Object(x)) = (&mut d, extra) {
                d.extend(x);
            }
            d
        };
        // A result nested too deep to carry on fails the task, as an oversized one does.
        let outcome = outcome.and_then(|v| {
            if payload::depth(&v) > payload::MAX_DEPTH {
                return Err(AslError::new(
                    "States.DataLimitExceeded",
                    format!(
                        "The task returned a result nested more than {} levels deep.",
                        payload::MAX_DEPTH
                    ),
                ));
            }
            Ok(v)
        });
        let result = match outcome {
            Ok(v) => {
                let mut output = Map::new();
                output.insert("output".into(), v.clone());
                self.emit(&key, "TaskSucceeded", details(Value::Object(output)));
                Ok(v)
            }
            Err(e) => {
                let kind = if e.error == "States.Timeout" || e.error == "States.HeartbeatTimeout" {
                    "TaskTimedOut"
                } else {
                    "TaskFailed"
                };
                self.emit(
                    &key,
                    kind,
                    details(json!({"error": e.error, "cause": e.cause})),
                );
                Err(e.into())
            }
        };
        if let Some(ack) = ack {
            // SendTaskSuccess / SendTaskFailure return once their answer is durable.
            let flushed = self.flush().await;
            let _ = ack.send(match &flushed {
                Ok(()) => Ok(()),
                Err(f) => Err(crate::EngineError::Store(
                    f.interrupted
                        .clone()
                        .unwrap_or(crate::store::StoreError::Closed),
                )),
            });
            flushed?;
        }
        result
    }

    /// Runs a Parallel state's branches on `input`, concurrently; each reads the outer
    /// variables, and what it assigns stays inside it. The first failure fails the state
    /// (the other branches are stopped).
    async fn branches(
        &self,
        sc: &Scope,
        s: &Value,
        step: &str,
        attempt: u32,
        input: &Value,
    ) -> Result<Value, Failure> {
        let branches: &[Value] = s
            .get("Branches")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let key = format!("{step}{}", retry_tag(attempt));
        self.emit(&key, "ParallelStateStarted", json!({}));
        let mut scopes: Vec<Scope> = (0..branches.len())
            .map(|i| sc.child(format!("{step}{}.b{i}.", retry_tag(attempt)), None))
            .collect();
        let futures = scopes
            .iter_mut()
            .zip(branches)
            .map(|(scope, branch)| self.machine(scope, branch, input.clone()));
        let results = futures_util::future::try_join_all(futures).await;
        match results {
            Ok(results) => {
                self.emit(&key, "ParallelStateSucceeded", json!({}));
                Ok(Value::Array(results))
            }
            Err(f) => {
                if f.interrupted.is_none() {
                    self.emit(&key, "ParallelStateFailed", json!({}));
                }
                Err(f)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn map(
        &self,
        sc: &Scope,
        s: &Value,
        step: &str,
        attempt: u32,
        effective: &Value,
        context: &Value,
        loc: Loc<'_>,
    ) -> Result<Value, Failure> {
        let vars = sc.vars.clone();
        let env = Env {
            context,
            vars: &vars,
        };
        let items = match s.get("ItemsPath") {
            Some(Value::String(p)) => path::select(p, effective, &env)
                .map_err(|e| loc.at(e))?
                .ok_or_else(|| {
                    loc.at(AslError::runtime(format!(
                        "Invalid path '{p}' : No results for path: {}",
                        path::normalised(p)
                    )))
                })?,
            _ => effective.clone(),
        };
        let limits = map_limits(s, effective, &env).map_err(|e| loc.at(e))?;
        let Value::Array(items) = items else {
            return Err(loc.at(AslError::runtime(format!(
                "Map state input must be an array, got {}",
                compact(&items)
            ))));
        };
        let selector = s.get("ItemSelector").or_else(|| s.get("Parameters"));
        let mut inputs = Vec::with_capacity(items.len());
        for (index, value) in items.into_iter().enumerate() {
            let item = json!({"Index": index, "Value": value});
            inputs.push(match selector {
                Some(tpl) => {
                    let mut item_context = if context.is_object() {
                        context.clone()
                    } else {
                        json!({})
                    };
                    item_context["Map"] = json!({ "Item": item });
                    let item_env = Env {
                        context: &item_context,
                        vars: &vars,
                    };
                    (
                        item,
                        payload::template(tpl, effective, &item_env).map_err(|e| loc.at(e))?,
                    )
                }
                None => (item, value),
            });
        }
        let inputs = batch(s, inputs, &env, false).map_err(|e| loc.at(e))?;
        self.iterate(sc, s, step, attempt, inputs, limits).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn map_jsonata(
        &self,
        sc: &Scope,
        s: &Value,
        step: &str,
        attempt: u32,
        st: &Value,
        context: &Value,
        loc: Loc<'_>,
    ) -> Result<Value, Failure> {
        let vars = sc.vars.clone();
        let items = match s.get("Items") {
            Some(tpl) => jsonata::template(tpl, st, &vars, "Items").map_err(|e| loc.at(e))?,
            None => st["input"].clone(),
        };
        let Value::Array(items) = items else {
            let Some(expr) = s
                .get("Items")
                .and_then(Value::as_str)
                .and_then(jsonata::expression)
            else {
                return Err(loc.at(AslError::new(
                    "States.QueryEvaluationError",
                    format!(
                        "Map state input must be an array but was: {}",
                        compact(&items)
                    ),
                )));
            };
            return Err(loc.at(AslError::new(
                "States.QueryEvaluationError",
                format!(
                    "The JSONata expression '{expr}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {}",
                    json_type(&items),
                    compact(&items)
                ),
            )));
        };
        let limits = map_limits_jsonata(s, st, &vars).map_err(|e| loc.at(e))?;
        let mut inputs = Vec::with_capacity(items.len());
        for (index, value) in items.into_iter().enumerate() {
            let item = json!({"Index": index, "Value": value});
            inputs.push(match s.get("ItemSelector") {
                Some(tpl) => {
                    let mut item_states = st.clone();
                    if !item_states["context"].is_object() {
                        item_states["context"] = json!({});
                    }
                    item_states["context"]["Map"] = json!({ "Item": item });
                    let v = jsonata::template(tpl, &item_states, &vars, "ItemSelector")
                        .map_err(|e| loc.at(e))?;
                    (item, v)
                }
                None => (item, value),
            });
        }
        let env = Env {
            context,
            vars: &vars,
        };
        let inputs = batch(s, inputs, &env, true).map_err(|e| loc.at(e))?;
        self.iterate(sc, s, step, attempt, inputs, limits).await
    }

    /// Runs a Map's item processor once per input, at most `MaxConcurrency` at a time. An
    /// iteration reads the outer variables; what it assigns stays inside it. Failures up to
    /// the tolerated count/percentage leave `{Error, Cause}` in the item's place.
    async fn iterate(
        &self,
        sc: &Scope,
        s: &Value,
        step: &str,
        attempt: u32,
        inputs: Vec<(Value, Value)>,
        limits: MapLimits,
    ) -> Result<Value, Failure> {
        let processor = s
            .get("ItemProcessor")
            .or_else(|| s.get("Iterator"))
            .ok_or_else(|| AslError::runtime("Map state without ItemProcessor"))?;
        let total = inputs.len();
        let tag = retry_tag(attempt);
        let key = format!("{step}{tag}");
        self.emit(&key, "MapStateStarted", json!({"length": total}));
        let tolerated = limits.tolerated(total);
        let mut results: Vec<Value> = vec![Value::Null; total];
        let mut failures = 0usize;
        let limit = if limits.max_concurrency == 0 {
            total.max(1)
        } else {
            limits.max_concurrency
        };
        let mut running = FuturesUnordered::new();
        let mut pending = inputs.into_iter().enumerate();
        loop {
            while running.len() < limit {
                let Some((index, (item, input))) = pending.next() else {
                    break;
                };
                let prefix = format!("{step}{tag}.i{index}.");
                let scope = sc.child(prefix, Some(item));
                running.push(self.iteration(scope, processor, index, input));
            }
            let Some((index, result)) = running.next().await else {
                break;
            };
            match result {
                Ok(v) => results[index] = v,
                Err(f) if f.interrupted.is_some() => return Err(f),
                Err(f) => {
                    failures += 1;
                    if tolerated.is_none_or(|t| failures > t) {
                        self.emit(&key, "MapStateFailed", json!({}));
                        if tolerated.is_some() {
                            return Err(Failure::new(
                                "States.ExceedToleratedFailureThreshold",
                                "The specified tolerated failure threshold was exceeded",
                            ));
                        }
                        return Err(f);
                    }
                    results[index] = f.error_output();
                }
            }
        }
        self.emit(&key, "MapStateSucceeded", json!({}));
        Ok(Value::Array(results))
    }

    fn iteration<'a>(
        &'a self,
        mut scope: Scope,
        processor: &'a Value,
        index: usize,
        input: Value,
    ) -> BoxFut<'a, (usize, Result<Value, Failure>)> {
        Box::pin(async move {
            let key = scope.prefix.clone();
            self.emit(&key, "MapIterationStarted", json!({"index": index}));
            let r = self.machine(&mut scope, processor, input).await;
            match &r {
                Ok(_) => {
                    self.emit(&key, "MapIterationSucceeded", json!({"index": index}));
                }
                Err(f) if f.interrupted.is_none() => {
                    self.emit(&key, "MapIterationFailed", json!({"index": index}));
                }
                Err(_) => {}
            }
            (index, r)
        })
    }
}

/// Polls a scope (the machine, a Parallel branch, a Map iteration) on a fresh stack segment
/// when the thread's stack runs low. Polling recurses through every nesting level, tens of
/// kilobytes each in a debug build, and a tokio worker has a 2 MiB stack: without this, a
/// definition nested as deep as validation allows could overflow it.
struct GrowStack<'a, T>(BoxFut<'a, T>);

impl<T> Future for GrowStack<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<T> {
        let inner = &mut self.get_mut().0;
        stacker::maybe_grow(512 * 1024, 4 * 1024 * 1024, || inner.as_mut().poll(cx))
    }
}

/// A Wait state's deadline: absolute, or relative to when the state was entered.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    At(i64),
    After(i64),
}

fn retry_tag(attempt: u32) -> String {
    if attempt == 0 {
        String::new()
    } else {
        format!("r{attempt}")
    }
}

/// The delay before retry number `count` (0-based) of a retrier, in ms.
fn retry_delay_ms(r: &Value, count: u32, inner: &Inner) -> i64 {
    let interval = r
        .get("IntervalSeconds")
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    let backoff = r.get("BackoffRate").and_then(Value::as_f64).unwrap_or(2.0);
    let mut delay = interval * backoff.powi(count.min(1000) as i32);
    if let Some(max) = r.get("MaxDelaySeconds").and_then(Value::as_f64) {
        delay = delay.min(max);
    }
    let mut ms = (delay * 1000.0).clamp(0.0, 1e15) as i64;
    if r.get("JitterStrategy").and_then(Value::as_str) == Some("FULL") {
        ms = (inner.random_u64() % (ms as u64 + 1)) as i64;
    }
    ms
}

/// Wait's deadline from Seconds / SecondsPath / Timestamp / TimestampPath, with AWS's errors.
fn wait_deadline(s: &Value, data: &Value, env: &Env<'_>) -> Result<Deadline, AslError> {
    if let Some(secs) = s.get("Seconds").and_then(Value::as_i64) {
        return Ok(Deadline::After(secs.saturating_mul(1000)));
    }
    if let Some(ts) = s.get("Timestamp").and_then(Value::as_str) {
        return crate::time::parse_ms(ts)
            .map(Deadline::At)
            .ok_or_else(|| AslError::runtime(format!("Invalid Timestamp '{ts}'")));
    }
    if let Some(p) = s.get("SecondsPath").and_then(Value::as_str) {
        let v = path::select(p, data, env)?.ok_or_else(|| {
            AslError::runtime(format!(
                "Invalid path '{p}' : No results for path: {}",
                path::normalised(p)
            ))
        })?;
        if v.as_i64().is_some_and(|n| n < 0) {
            return Err(AslError::runtime(format!(
                "The SecondsPath parameter references a negative value: {p} == {}",
                number_text(&v)
            )));
        }
        let Some(secs) = v.as_i64().or_else(|| v.as_u64().map(|u| u as i64)) else {
            return Err(AslError::runtime(format!(
                "The SecondsPath parameter cannot be parsed as a long value: {p} == {}",
                number_text(&v)
            )));
        };
        return Ok(Deadline::After(secs.saturating_mul(1000)));
    }
    if let Some(p) = s.get("TimestampPath").and_then(Value::as_str) {
        let v = path::select(p, data, env)?.ok_or_else(|| {
            AslError::runtime(format!(
                "Invalid path '{p}' : No results for path: {}",
                path::normalised(p)
            ))
        })?;
        return v
            .as_str()
            .and_then(crate::time::parse_ms)
            .map(Deadline::At)
            .ok_or_else(|| {
                AslError::runtime(format!(
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {p} == {}",
                    number_text(&v)
                ))
            });
    }
    Ok(Deadline::After(0))
}

/// A Map's concurrency and failure tolerance.
#[derive(Debug, Clone, Copy, Default)]
struct MapLimits {
    max_concurrency: usize,
    tolerated_count: Option<f64>,
    tolerated_percentage: Option<f64>,
}

impl MapLimits {
    /// How many failures are tolerated, or `None` when any failure fails the Map.
    fn tolerated(&self, total: usize) -> Option<usize> {
        let by_count = self.tolerated_count.map(|c| c as usize);
        let by_pct = self
            .tolerated_percentage
            .map(|p| ((p / 100.0) * total as f64).floor() as usize);
        match (by_count, by_pct) {
            (None, None) => None,
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The `*Path` variants of MaxConcurrency / ToleratedFailureCount / ToleratedFailurePercentage
/// must resolve to valid numbers, reported in AWS's words.
fn map_limits(s: &Value, data: &Value, env: &Env<'_>) -> Result<MapLimits, AslError> {
    let resolve = |field: &str, integer: bool| -> Result<Option<f64>, AslError> {
        let literal = s.get(field).and_then(Value::as_f64);
        let Some(p) = s.get(format!("{field}Path")).and_then(Value::as_str) else {
            return Ok(literal);
        };
        let v = path::select(p, data, env)?.ok_or_else(|| {
            AslError::runtime(format!(
                "Invalid path '{p}' : No results for path: {}",
                path::normalised(p)
            ))
        })?;
        // Numeric strings are accepted, as AWS does.
        let parsed = v.as_str().and_then(|t| t.trim().parse::<f64>().ok());
        let number = if integer {
            v.as_i64()
                .map(|n| n as f64)
                .or(parsed.filter(|f| f.fract() == 0.0))
        } else {
            v.as_f64().or(parsed)
        };
        number.map(Some).ok_or_else(|| {
            AslError::runtime(format!(
                "The {field}Path field refers to value \"{}\" which is not a valid {}: {p}",
                number_text(&v),
                if integer { "integer" } else { "number" }
            ))
        })
    };
    checked_limits(resolve)
}

/// Resolves MaxConcurrency and the tolerated failures in AWS's order (`resolve(field,
/// integer)`), checking each tolerance as soon as it is known.
fn checked_limits(
    resolve: impl Fn(&str, bool) -> Result<Option<f64>, AslError>,
) -> Result<MapLimits, AslError> {
    let max = resolve("MaxConcurrency", true)?;
    let count = resolve("ToleratedFailureCount", true)?;
    if count.is_some_and(|n| n < 0.0) {
        return Err(AslError::runtime(
            "ToleratedFailureCount cannot be negative.",
        ));
    }
    let pct = resolve("ToleratedFailurePercentage", false)?;
    if pct.is_some_and(|n| !(0.0..=100.0).contains(&n)) {
        return Err(AslError::runtime(
            "ToleratedFailurePercentage must be between 0 and 100.",
        ));
    }
    Ok(MapLimits {
        max_concurrency: max.map_or(0, |m| m.max(0.0) as usize),
        tolerated_count: count,
        tolerated_percentage: pct,
    })
}

fn map_limits_jsonata(
    s: &Value,
    st: &Value,
    vars: &Map<String, Value>,
) -> Result<MapLimits, AslError> {
    let num = |field: &str| -> Result<Option<f64>, AslError> {
        match s.get(field) {
            None => Ok(None),
            Some(tpl) => {
                let v = jsonata::template(tpl, st, vars, field)?;
                v.as_f64().map(Some).ok_or_else(|| {
                    AslError::new(
                        "States.QueryEvaluationError",
                        format!("The {field} field must be a number: {}", compact(&v)),
                    )
                })
            }
        }
    };
    checked_limits(|field, _integer| num(field))
}

/// `ItemBatcher`: groups item inputs into `{"Items": [...], "BatchInput": …}` inputs by
/// `MaxItemsPerBatch` and `MaxInputBytesPerBatch`.
fn batch(
    s: &Value,
    inputs: Vec<(Value, Value)>,
    env: &Env<'_>,
    jsonata_mode: bool,
) -> Result<Vec<(Value, Value)>, AslError> {
    let Some(b) = s.get("ItemBatcher") else {
        return Ok(inputs);
    };
    let limit = |field: &str| -> Result<Option<usize>, AslError> {
        if let Some(n) = b.get(field).and_then(Value::as_u64) {
            return Ok(Some(n as usize));
        }
        if !jsonata_mode && let Some(p) = b.get(format!("{field}Path")).and_then(Value::as_str) {
            let v = path::select(p, &Value::Null, env)?.unwrap_or(Value::Null);
            return v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                AslError::runtime(format!(
                    "The {field}Path field refers to value \"{}\" which is not a valid integer: {p}",
                    number_text(&v)
                ))
            });
        }
        Ok(None)
    };
    let max_items = limit("MaxItemsPerBatch")?
        .filter(|n| *n > 0)
        .unwrap_or(usize::MAX);
    let max_bytes = limit("MaxInputBytesPerBatch")?
        .filter(|n| *n > 0)
        .unwrap_or(MAX_PAYLOAD_BYTES);
    let batch_input = b.get("BatchInput").cloned();
    let mut out = Vec::new();
    let mut items: Vec<Value> = Vec::new();
    let mut bytes = 0usize;
    let flush = |items: &mut Vec<Value>, out: &mut Vec<(Value, Value)>| {
        if items.is_empty() {
            return;
        }
        let mut input = json!({ "Items": std::mem::take(items) });
        if let Some(bi) = &batch_input {
            input["BatchInput"] = bi.clone();
        }
        let index = out.len();
        out.push((
            json!({"Index": index, "Value": input["Items"].clone()}),
            input,
        ));
    };
    for (_, value) in inputs {
        let size = compact(&value).len();
        if !items.is_empty() && (items.len() >= max_items || bytes + size > max_bytes) {
            flush(&mut items, &mut out);
            bytes = 0;
        }
        bytes += size;
        items.push(value);
    }
    flush(&mut items, &mut out);
    Ok(out)
}

/// Evaluates a state's (or Choice rule's) `Assign` against `basis` (its result) with the
/// variables as they were when the state started; they are applied after it finishes.
fn assign(sc: &mut Scope, s: &Value, basis: &Value, env: &Env<'_>) -> Result<(), AslError> {
    if let Some(tpl) = s.get("Assign") {
        let Value::Object(values) = payload::template(tpl, basis, env)? else {
            return Err(AslError::runtime("Assign must be an object"));
        };
        sc.pending.get_or_insert_with(Map::new).extend(values);
    }
    Ok(())
}

fn resource_type(resource: &str) -> &str {
    // arn:aws:states:::lambda:invoke → lambda; arn:aws:lambda:…:function:f → lambda
    let base = base_resource(resource);
    if let Some(rest) = base.strip_prefix("arn:aws:states:::") {
        return rest.split(':').next().unwrap_or(rest);
    }
    base.split(':').nth(2).unwrap_or("unknown")
}

fn resource_name(resource: &str) -> &str {
    if let Some(rest) = resource.strip_prefix("arn:aws:states:::") {
        return rest.split_once(':').map_or(rest, |(_, r)| r);
    }
    resource
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn number_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => compact(other),
    }
}

/// The first catcher of a state that takes this failure (storage interruptions are never
/// caught).
fn catcher_for<'s>(s: &'s Value, f: &Failure) -> Option<&'s Value> {
    if f.interrupted.is_some() {
        return None;
    }
    let name = f.error.clone().unwrap_or_default();
    s.get("Catch")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| error_matches(c, &name))
}

/// Whether a retrier or catcher's `ErrorEquals` takes the error `name`. `States.ALL` takes
/// every error except the terminal ones ([`is_terminal_error`]); `States.TaskFailed` takes
/// every error except `States.Timeout` and other `States.*` names raised by the service itself.
pub(crate) fn error_matches(rule: &Value, name: &str) -> bool {
    rule.get("ErrorEquals")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|e| {
            e == name
                || (e == "States.ALL" && !is_terminal_error(name))
                || (e == "States.TaskFailed"
                    && name != "States.Timeout"
                    && !name.starts_with("States."))
        })
}

/// `States.Runtime` and `States.DataLimitExceeded`: AWS documents them as terminal — never
/// retried, and not caught by `States.ALL` (only a catcher naming them takes them).
pub(crate) fn is_terminal_error(name: &str) -> bool {
    matches!(name, "States.Runtime" | "States.DataLimitExceeded")
}
