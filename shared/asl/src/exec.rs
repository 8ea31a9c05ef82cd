//! A synchronous reference executor for JSONPath-mode state machines.
//!
//! It runs Pass, Choice, Succeed, Fail, Wait (without sleeping), Parallel and inline Map,
//! with Retry (without sleeping) and Catch, numbering history events the way Step Functions
//! does so that error causes match AWS's. It is the yardstick the conformance cases measure
//! (`tests/asl-conformance/`); Task resources, durability, timers and history storage belong to
//! the engine built on top (issue 3), which reuses [`crate::payload`], [`crate::choice`] and
//! [`crate::intrinsics`].

use crate::payload::{self, compact};
use crate::{AslError, Env, choice, jsonata, path};
use serde_json::{Map, Value, json};

/// Standard or Express (the context object differs: `RedriveCount` exists only for Standard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionType {
    /// Standard workflow.
    Standard,
    /// Express workflow.
    Express,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Workflow type.
    pub execution_type: ExecutionType,
    /// Execution name (part of `$$.Execution.Id`).
    pub execution_name: String,
    /// State machine name (part of `$$.StateMachine.Id`).
    pub state_machine_name: String,
    /// Upper bound on state transitions, so that a looping machine cannot run forever.
    pub max_transitions: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            execution_type: ExecutionType::Standard,
            execution_name: "execution".into(),
            state_machine_name: "state-machine".into(),
            max_transitions: 100_000,
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Reached a terminal state.
    Succeeded(Value),
    /// Failed; AWS records no `error`/`cause` field when a Fail state sets none.
    Failed {
        /// Error name.
        error: Option<String>,
        /// Cause text.
        cause: Option<String>,
    },
}

/// A failure travelling up through Parallel/Map and Catch.
#[derive(Debug, Clone)]
struct Failure {
    error: Option<String>,
    cause: Option<String>,
}

impl From<AslError> for Failure {
    fn from(e: AslError) -> Self {
        Failure {
            error: Some(e.error),
            cause: Some(e.cause),
        }
    }
}

const TIME: &str = "2026-01-01T00:00:00.000Z";

/// Step Functions' limit on a state's input or output (256 KiB).
const MAX_PAYLOAD_BYTES: usize = 262_144;

/// What Task states call. The engine resolves node-runner functions, service integrations and
/// callbacks behind this; the reference executor has none unless one is given.
pub trait Resources {
    /// Invokes `resource` with the task's effective input (`Parameters` / `Arguments`);
    /// `context` is the context object (with `Task.Token` for `.waitForTaskToken` resources).
    /// An error's name is what Retry and Catch match.
    fn call(&mut self, resource: &str, input: Value, context: &Value) -> Result<Value, AslError>;
}

/// No Task resources: every Task fails with `States.Runtime`.
pub struct NoResources;

impl Resources for NoResources {
    fn call(&mut self, resource: &str, _input: Value, _context: &Value) -> Result<Value, AslError> {
        Err(AslError::runtime(format!(
            "the reference executor has no resource '{resource}'"
        )))
    }
}

/// Runs a definition to completion (Task states fail: no resources).
pub fn run(definition: &Value, input: Value, opts: &RunOptions) -> Outcome {
    run_traced(definition, input, opts, &mut NoResources).0
}

/// Runs a definition with Task resources, returning the outcome and the names of the states
/// entered, in order (branch and iteration states included).
pub fn run_traced(
    definition: &Value,
    input: Value,
    opts: &RunOptions,
    resources: &mut dyn Resources,
) -> (Outcome, Vec<String>) {
    let arn_prefix = "arn:aws:states:us-east-1:000000000000";
    // Express executions have their own ARN form (with a per-run suffix).
    let id = match opts.execution_type {
        ExecutionType::Standard => format!(
            "{arn_prefix}:execution:{}:{}",
            opts.state_machine_name, opts.execution_name
        ),
        ExecutionType::Express => format!(
            "{arn_prefix}:express:{}:{}:00000000-0000-0000-0000-000000000000",
            opts.state_machine_name, opts.execution_name
        ),
    };
    let mut execution = json!({
        "Id": id,
        "Input": input,
        "StartTime": TIME,
        "Name": opts.execution_name,
        "RoleArn": "arn:aws:iam::000000000000:role/concertmaster-local",
    });
    if opts.execution_type == ExecutionType::Standard {
        execution["RedriveCount"] = json!(0);
    }
    let mut exec = Exec {
        opts,
        context: json!({
            "Execution": execution,
            "StateMachine": {
                "Id": format!("{arn_prefix}:stateMachine:{}", opts.state_machine_name),
                "Name": opts.state_machine_name,
            },
        }),
        // ExecutionStarted is event #1.
        events: 1,
        transitions: 0,
        pending_assign: None,
        jsonata: false,
        resources,
        trace: Vec::new(),
    };
    let mut vars = Map::new();
    let outcome = match exec.machine(definition, input_of(&exec.context), None, &mut vars) {
        Ok(output) => Outcome::Succeeded(output),
        Err(f) => Outcome::Failed {
            error: f.error,
            cause: f.cause,
        },
    };
    (outcome, exec.trace)
}

fn input_of(context: &Value) -> Value {
    context["Execution"]["Input"].clone()
}

struct Exec<'a> {
    resources: &'a mut dyn Resources,
    /// States entered, in order.
    trace: Vec<String>,
    opts: &'a RunOptions,
    context: Value,
    events: u64,
    transitions: u64,
    /// Variables the current state assigns (applied once it has finished).
    pending_assign: Option<Map<String, Value>>,
    /// Query language of the machine being run (states may override it).
    jsonata: bool,
}

impl Exec<'_> {
    fn machine(
        &mut self,
        machine: &Value,
        data: Value,
        map_item: Option<&Value>,
        vars: &mut Map<String, Value>,
    ) -> Result<Value, Failure> {
        let states = machine
            .get("States")
            .and_then(Value::as_object)
            .ok_or_else(|| AslError::runtime("the definition has no States"))?;
        // A (sub-)machine's QueryLanguage applies to its states; nested ones inherit it.
        let outer = self.jsonata;
        if let Some(lang) = machine.get("QueryLanguage").and_then(Value::as_str) {
            self.jsonata = lang == "JSONata";
        }
        let result = self.run_states(states, machine, data, map_item, vars);
        self.jsonata = outer;
        result
    }

    fn run_states(
        &mut self,
        states: &Map<String, Value>,
        machine: &Value,
        mut data: Value,
        map_item: Option<&Value>,
        vars: &mut Map<String, Value>,
    ) -> Result<Value, Failure> {
        let mut current = machine
            .get("StartAt")
            .and_then(Value::as_str)
            .ok_or_else(|| AslError::runtime("the definition has no StartAt"))?
            .to_owned();
        loop {
            self.transitions += 1;
            if self.transitions > self.opts.max_transitions {
                return Err(AslError::runtime(format!(
                    "the execution exceeded {} state transitions",
                    self.opts.max_transitions
                ))
                .into());
            }
            let state = states
                .get(&current)
                .ok_or_else(|| AslError::runtime(format!("no state named '{current}'")))?;
            self.events += 1;
            let entered = self.events;
            self.trace.push(current.clone());
            let mut context = self.context.clone();
            context["State"] = json!({"Name": current, "EnteredTime": TIME});
            if let Some(item) = map_item {
                context["Map"] = json!({"Item": item});
            }
            let located = |e: AslError| -> Failure {
                AslError::new(
                    e.error,
                    format!(
                        "An error occurred while executing the state '{current}' (entered at the event id #{entered}). {}",
                        e.cause
                    ),
                )
                .into()
            };
            let env = Env {
                context: &context,
                vars,
            };
            let (next, output) = self.state(state, data, &env, &located)?;
            // Assignments take effect after the state: its own paths saw the old values.
            if let Some(assigned) = self.pending_assign.take() {
                vars.extend(assigned);
            }
            if payload::compact(&output).len() > MAX_PAYLOAD_BYTES {
                return Err(AslError::new(
                    "States.DataLimitExceeded",
                    format!(
                        "The state/task '{current}' returned a result with a size exceeding the maximum number of bytes service limit."
                    ),
                )
                .into());
            }
            self.events += 1;
            match next {
                Some(n) => {
                    current = n;
                    data = output;
                }
                None => return Ok(output),
            }
        }
    }

    /// One state in JSONata mode: `Arguments`, `Output`, `Assign`, `Condition`, `Items`.
    fn state_jsonata(
        &mut self,
        s: &Value,
        input: Value,
        env: &Env<'_>,
        located: &dyn Fn(AslError) -> Failure,
    ) -> Result<(Option<String>, Value), Failure> {
        let ty = s.get("Type").and_then(Value::as_str).unwrap_or_default();
        let next = s.get("Next").and_then(Value::as_str).map(str::to_owned);
        let states = |extra: Option<(&str, &Value)>| {
            let mut v = json!({"input": input, "context": env.context});
            if let Some((k, x)) = extra {
                v[k] = x.clone();
            }
            v
        };
        let eval = |tpl: &Value, st: &Value, field: &str| -> Result<Value, Failure> {
            jsonata::template(tpl, st, env.vars, field).map_err(located)
        };
        // Output (default: `default`) and Assign of a state or rule, both seeing the same
        // variables.
        let finish =
            |me: &mut Self, holder: &Value, st: &Value, default: Value| -> Result<Value, Failure> {
                if let Some(tpl) = holder.get("Assign") {
                    let Value::Object(values) = eval(tpl, st, "Assign")? else {
                        return Err(located(AslError::runtime("Assign must be an object")));
                    };
                    me.pending_assign
                        .get_or_insert_with(Map::new)
                        .extend(values);
                }
                match holder.get("Output") {
                    Some(tpl) => eval(tpl, st, "Output"),
                    None => Ok(default),
                }
            };
        match ty {
            "Pass" | "Succeed" => {
                let st = states(None);
                let out = finish(self, s, &st, input.clone())?;
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
                        return Err(located(AslError::new(
                            "States.QueryEvaluationError",
                            format!(
                                "The Condition field evaluated to a non-boolean value: {}",
                                compact(&holds)
                            ),
                        )));
                    };
                    if holds {
                        let out = finish(self, rule, &st, input.clone())?;
                        return Ok((
                            rule.get("Next").and_then(Value::as_str).map(str::to_owned),
                            out,
                        ));
                    }
                }
                match s.get("Default").and_then(Value::as_str) {
                    Some(d) => {
                        let out = finish(self, s, &st, input.clone())?;
                        Ok((Some(d.to_owned()), out))
                    }
                    None => Err(AslError::new("States.NoChoiceMatched", "No Matches!").into()),
                }
            }
            "Wait" => {
                let st = states(None);
                if let Some(tpl) = s.get("Seconds") {
                    let v = eval(tpl, &st, "Seconds")?;
                    if v.as_i64().is_none_or(|n| n < 0) {
                        return Err(located(AslError::new(
                            "States.QueryEvaluationError",
                            format!(
                                "The Seconds field must be a non-negative integer: {}",
                                compact(&v)
                            ),
                        )));
                    }
                }
                if let Some(tpl) = s.get("Timestamp") {
                    let v = eval(tpl, &st, "Timestamp")?;
                    if v.as_str().and_then(choice::timestamp).is_none() {
                        return Err(located(AslError::new(
                            "States.QueryEvaluationError",
                            format!(
                                "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {}",
                                number_text(&v)
                            ),
                        )));
                    }
                }
                let out = finish(self, s, &st, input.clone())?;
                Ok((next, out))
            }
            "Parallel" | "Map" | "Task" => {
                let mut st = states(None);
                if ty == "Task" {
                    let resource = s
                        .get("Resource")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    st["context"] = task_context(env.context, resource);
                }
                let args = match s.get("Arguments") {
                    Some(tpl) => eval(tpl, &st, "Arguments")?,
                    None => input.clone(),
                };
                let result = self.retrying(s, |me| match ty {
                    "Parallel" => me.branches(s, &args, env.vars),
                    "Map" => me.map_jsonata(s, &st, env, located),
                    _ => {
                        let resource = s
                            .get("Resource")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        me.events += 3; // TaskScheduled, TaskStarted, TaskSucceeded/Failed
                        me.resources
                            .call(resource, args.clone(), &st["context"])
                            .map_err(Failure::from)
                    }
                });
                match result {
                    Ok(result) => {
                        let st = states(Some(("result", &result)));
                        let out = finish(self, s, &st, result.clone())?;
                        Ok((next, out))
                    }
                    Err(f) => {
                        let Some(catcher) = catcher_for(s, &f) else {
                            return Err(f);
                        };
                        let error_output = json!({"Error": f.error, "Cause": f.cause});
                        let st = states(Some(("errorOutput", &error_output)));
                        let out = finish(self, catcher, &st, error_output.clone())?;
                        let target = catcher
                            .get("Next")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        Ok((target, out))
                    }
                }
            }
            other => Err(located(AslError::runtime(format!(
                "unsupported state type '{other}'"
            )))),
        }
    }

    fn map_jsonata(
        &mut self,
        s: &Value,
        st: &Value,
        env: &Env<'_>,
        located: &dyn Fn(AslError) -> Failure,
    ) -> Result<Value, Failure> {
        let items = match s.get("Items") {
            Some(tpl) => jsonata::template(tpl, st, env.vars, "Items").map_err(located)?,
            None => st["input"].clone(),
        };
        let Value::Array(items) = items else {
            let Some(expr) = s
                .get("Items")
                .and_then(Value::as_str)
                .and_then(jsonata::expression)
            else {
                return Err(located(AslError::new(
                    "States.QueryEvaluationError",
                    format!(
                        "Map state input must be an array but was: {}",
                        compact(&items)
                    ),
                )));
            };
            return Err(located(AslError::new(
                "States.QueryEvaluationError",
                format!(
                    "The JSONata expression '{expr}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {}",
                    json_type(&items),
                    compact(&items)
                ),
            )));
        };
        self.iterate(s, items, env.vars, located, |item, value| {
            match s.get("ItemSelector") {
                Some(tpl) => {
                    let mut item_states = st.clone();
                    item_states["context"]["Map"] = json!({ "Item": item });
                    jsonata::template(tpl, &item_states, env.vars, "ItemSelector").map_err(located)
                }
                None => Ok(value),
            }
        })
    }

    /// Runs a Map's item processor once per item. `select` makes an iteration's input from
    /// the item's context object (`{Index, Value}`) and value. An iteration reads the outer
    /// variables; what it assigns stays inside it.
    fn iterate(
        &mut self,
        s: &Value,
        items: Vec<Value>,
        vars: &Map<String, Value>,
        located: &dyn Fn(AslError) -> Failure,
        select: impl Fn(&Value, Value) -> Result<Value, Failure>,
    ) -> Result<Value, Failure> {
        let processor = s
            .get("ItemProcessor")
            .or_else(|| s.get("Iterator"))
            .ok_or_else(|| located(AslError::runtime("Map state without ItemProcessor")))?;
        self.events += 1; // MapStateStarted
        let mut results = Vec::with_capacity(items.len());
        for (index, value) in items.into_iter().enumerate() {
            let item = json!({"Index": index, "Value": value});
            let iteration_input = select(&item, value)?;
            self.events += 1; // MapIterationStarted
            results.push(self.machine(
                processor,
                iteration_input,
                Some(&item),
                &mut vars.clone(),
            )?);
            self.events += 1; // MapIterationSucceeded
        }
        self.events += 1; // MapStateSucceeded
        Ok(Value::Array(results))
    }

    /// Runs one state: (next state, output) or a failure.
    fn state(
        &mut self,
        s: &Value,
        input: Value,
        env: &Env<'_>,
        located: &dyn Fn(AslError) -> Failure,
    ) -> Result<(Option<String>, Value), Failure> {
        let jsonata = match s.get("QueryLanguage").and_then(Value::as_str) {
            Some(lang) => lang == "JSONata",
            None => self.jsonata,
        };
        if jsonata {
            return self.state_jsonata(s, input, env, located);
        }
        let ty = s.get("Type").and_then(Value::as_str).unwrap_or_default();
        let next = s.get("Next").and_then(Value::as_str).map(str::to_owned);
        match ty {
            "Pass" => {
                let effective =
                    payload::effective_input(s, &input, env, "Parameters").map_err(located)?;
                let result = s.get("Result").cloned().unwrap_or(effective);
                self.assign(s, &result, env).map_err(located)?;
                let output = payload::output(s, input, result, env).map_err(located)?;
                Ok((next, output))
            }
            "Succeed" => {
                let effective =
                    payload::select_path(s.get("InputPath"), &input, env).map_err(located)?;
                let output =
                    payload::select_path(s.get("OutputPath"), &effective, env).map_err(located)?;
                Ok((None, output))
            }
            "Fail" => {
                let field = |name: &str, path_field: &str| -> Result<Option<String>, Failure> {
                    if let Some(v) = s.get(name).and_then(Value::as_str) {
                        return Ok(Some(v.to_owned()));
                    }
                    match s.get(path_field).and_then(Value::as_str) {
                        Some(p) if p.starts_with("States.") => {
                            let v = payload::template(&json!({ "v.$": p }), &input, env)
                                .map_err(located)?;
                            Ok(v["v"]
                                .as_str()
                                .map(str::to_owned)
                                .or_else(|| Some(compact(&v["v"]))))
                        }
                        Some(p) => match path::select(p, &input, env).map_err(located)? {
                            Some(Value::String(v)) => Ok(Some(v)),
                            Some(other) => Ok(Some(compact(&other))),
                            None => Err(located(AslError::runtime(format!(
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
                })
            }
            "Choice" => {
                let effective =
                    payload::select_path(s.get("InputPath"), &input, env).map_err(located)?;
                for rule in s
                    .get("Choices")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if choice::evaluate(rule, &effective, env).map_err(located)? {
                        self.assign(rule, &effective, env).map_err(located)?;
                        let target = rule.get("Next").and_then(Value::as_str).map(str::to_owned);
                        let output = payload::select_path(s.get("OutputPath"), &effective, env)
                            .map_err(located)?;
                        return Ok((target, output));
                    }
                }
                match s.get("Default").and_then(Value::as_str) {
                    Some(d) => {
                        self.assign(s, &effective, env).map_err(located)?;
                        let output = payload::select_path(s.get("OutputPath"), &effective, env)
                            .map_err(located)?;
                        Ok((Some(d.to_owned()), output))
                    }
                    None => Err(AslError::new("States.NoChoiceMatched", "No Matches!").into()),
                }
            }
            "Wait" => {
                let effective =
                    payload::select_path(s.get("InputPath"), &input, env).map_err(located)?;
                self.check_wait(s, &effective, env).map_err(located)?;
                self.assign(s, &effective, env).map_err(located)?;
                let output =
                    payload::select_path(s.get("OutputPath"), &effective, env).map_err(located)?;
                Ok((next, output))
            }
            "Parallel" => {
                let result = self.with_retry(s, &input, env, located, |me, effective| {
                    me.branches(s, &effective, env.vars)
                });
                self.finish_task_like(s, input, env, located, result, next)
            }
            "Map" => {
                let result = self.with_retry(s, &input, env, located, |me, effective| {
                    me.map(s, effective, env, located)
                });
                self.finish_task_like(s, input, env, located, result, next)
            }
            "Task" => {
                let resource = s
                    .get("Resource")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                // Parameters may read `$$.Task.Token` and `$$.State.RetryCount`.
                let task_context = task_context(env.context, &resource);
                let task_env = Env {
                    context: &task_context,
                    vars: env.vars,
                };
                let result = self.with_retry(s, &input, &task_env, located, |me, effective| {
                    me.events += 3; // TaskScheduled, TaskStarted, TaskSucceeded/Failed
                    me.resources
                        .call(&resource, effective, &task_context)
                        .map_err(Failure::from)
                });
                self.finish_task_like(s, input, env, located, result, next)
            }
            other => Err(located(AslError::runtime(format!(
                "unsupported state type '{other}'"
            )))),
        }
    }

    /// Runs a Parallel state's branches on `input`; each reads the outer variables, and what it
    /// assigns stays inside it.
    fn branches(
        &mut self,
        s: &Value,
        input: &Value,
        vars: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        let mut results = Vec::new();
        self.events += 1; // ParallelStateStarted
        for branch in s
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            results.push(self.machine(branch, input.clone(), None, &mut vars.clone())?);
        }
        self.events += 1; // ParallelStateSucceeded
        Ok(Value::Array(results))
    }

    /// Evaluates a state's (or Choice rule's) `Assign` against `basis` (its result) with the
    /// variables as they were when the state started; they are applied after it finishes.
    fn assign(&mut self, s: &Value, basis: &Value, env: &Env<'_>) -> Result<(), AslError> {
        if let Some(tpl) = s.get("Assign") {
            let Value::Object(values) = payload::template(tpl, basis, env)? else {
                return Err(AslError::runtime("Assign must be an object"));
            };
            self.pending_assign
                .get_or_insert_with(Map::new)
                .extend(values);
        }
        Ok(())
    }

    /// Output of a Task/Parallel/Map from its result, or its Catch handling.
    fn finish_task_like(
        &mut self,
        s: &Value,
        input: Value,
        env: &Env<'_>,
        located: &dyn Fn(AslError) -> Failure,
        result: Result<Value, Failure>,
        next: Option<String>,
    ) -> Result<(Option<String>, Value), Failure> {
        match result {
            Ok(result) => {
                self.assign(s, &result, env).map_err(located)?;
                let output = payload::output(s, input, result, env).map_err(located)?;
                Ok((next, output))
            }
            Err(f) => {
                let Some(catcher) = catcher_for(s, &f) else {
                    return Err(f);
                };
                let error_output = json!({"Error": f.error, "Cause": f.cause});
                let output =
                    payload::apply_result_path(catcher.get("ResultPath"), input, error_output)
                        .map_err(located)?;
                let target = catcher
                    .get("Next")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Ok((target, output))
            }
        }
    }

    /// Runs `work` on the effective input, retrying as the state's Retry says (without
    /// sleeping: the reference executor has no clock).
    fn with_retry(
        &mut self,
        s: &Value,
        input: &Value,
        env: &Env<'_>,
        located: &dyn Fn(AslError) -> Failure,
        work: impl Fn(&mut Self, Value) -> Result<Value, Failure>,
    ) -> Result<Value, Failure> {
        // A Map's Parameters select each item's input (legacy ItemSelector), not the state's.
        let effective = if s.get("Type").and_then(Value::as_str) == Some("Map") {
            payload::select_path(s.get("InputPath"), input, env).map_err(located)?
        } else {
            payload::effective_input(s, input, env, "Parameters").map_err(located)?
        };
        self.retrying(s, |me| work(me, effective.clone()))
    }

    /// Runs `attempt` until it succeeds or no retrier of the state takes its error (each
    /// retrier counts its own attempts; no sleeping: the reference executor has no clock).
    fn retrying(
        &mut self,
        s: &Value,
        mut attempt: impl FnMut(&mut Self) -> Result<Value, Failure>,
    ) -> Result<Value, Failure> {
        let retriers = s
            .get("Retry")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut counts = vec![0u64; retriers.len()];
        loop {
            let f = match attempt(self) {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            let name = f.error.clone().unwrap_or_default();
            let Some(k) = retriers.iter().position(|r| error_matches(r, &name)) else {
                return Err(f);
            };
            let max = retriers[k]
                .get("MaxAttempts")
                .and_then(Value::as_u64)
                .unwrap_or(3);
            if counts[k] >= max {
                return Err(f);
            }
            counts[k] += 1;
        }
    }

    fn map(
        &mut self,
        s: &Value,
        effective: Value,
        env: &Env<'_>,
        located: &dyn Fn(AslError) -> Failure,
    ) -> Result<Value, Failure> {
        let items = match s.get("ItemsPath") {
            Some(Value::String(p)) => path::select(p, &effective, env)
                .map_err(located)?
                .ok_or_else(|| {
                    located(AslError::runtime(format!(
                        "Invalid path '{p}' : No results for path: {}",
                        path::normalised(p)
                    )))
                })?,
            _ => effective.clone(),
        };
        self.check_map_limits(s, &effective, env).map_err(located)?;
        let Value::Array(items) = items else {
            return Err(located(AslError::runtime(format!(
                "Map state input must be an array, got {}",
                compact(&items)
            ))));
        };
        let selector = s.get("ItemSelector").or_else(|| s.get("Parameters"));
        self.iterate(s, items, env.vars, located, |item, value| match selector {
            Some(tpl) => {
                let mut item_context = env.context.clone();
                item_context["Map"] = json!({ "Item": item });
                let item_env = Env {
                    context: &item_context,
                    vars: env.vars,
                };
                payload::template(tpl, &effective, &item_env).map_err(located)
            }
            None => Ok(value),
        })
    }

    /// The `*Path` variants of MaxConcurrency / ToleratedFailureCount / ToleratedFailurePercentage
    /// must resolve to valid numbers, reported in AWS's words.
    fn check_map_limits(&self, s: &Value, data: &Value, env: &Env<'_>) -> Result<(), AslError> {
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
        resolve("MaxConcurrency", true)?;
        if resolve("ToleratedFailureCount", true)?.is_some_and(|n| n < 0.0) {
            return Err(AslError::runtime(
                "ToleratedFailureCount cannot be negative.",
            ));
        }
        if resolve("ToleratedFailurePercentage", false)?
            .is_some_and(|n| !(0.0..=100.0).contains(&n))
        {
            return Err(AslError::runtime(
                "ToleratedFailurePercentage must be between 0 and 100.",
            ));
        }
        Ok(())
    }

    fn check_wait(&self, s: &Value, data: &Value, env: &Env<'_>) -> Result<(), AslError> {
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
            let ok = v.as_i64().is_some() || v.as_u64().is_some();
            if !ok {
                return Err(AslError::runtime(format!(
                    "The SecondsPath parameter cannot be parsed as a long value: {p} == {}",
                    number_text(&v)
                )));
            }
        }
        if let Some(p) = s.get("TimestampPath").and_then(Value::as_str) {
            let v = path::select(p, data, env)?.ok_or_else(|| {
                AslError::runtime(format!(
                    "Invalid path '{p}' : No results for path: {}",
                    path::normalised(p)
                ))
            })?;
            if v.as_str().and_then(choice::timestamp).is_none() {
                return Err(AslError::runtime(format!(
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {p} == {}",
                    number_text(&v)
                )));
            }
        }
        Ok(())
    }
}

/// The context object of a Task: a retry count, and a task token for callback resources.
fn task_context(context: &Value, resource: &str) -> Value {
    let mut c = context.clone();
    c["State"]["RetryCount"] = json!(0);
    if resource.ends_with(".waitForTaskToken") {
        let token = format!(
            "{}:{}",
            c["Execution"]["Id"].as_str().unwrap_or_default(),
            c["State"]["Name"].as_str().unwrap_or_default()
        );
        c["Task"] = json!({ "Token": token });
    }
    c
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

/// The first catcher of a state that takes this failure.
fn catcher_for<'s>(s: &'s Value, f: &Failure) -> Option<&'s Value> {
    let name = f.error.clone().unwrap_or_default();
    s.get("Catch")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| error_matches(c, &name))
}

fn error_matches(rule: &Value, name: &str) -> bool {
    rule.get("ErrorEquals")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|e| {
            e == name
                || e == "States.ALL"
                || (e == "States.TaskFailed"
                    && name != "States.Timeout"
                    && !name.starts_with("States."))
        })
}

/// The `{"status": ...}` document the conformance runner expects.
pub fn outcome_json(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Succeeded(output) => json!({"status": "SUCCEEDED", "output": output}),
        Outcome::Failed { error, cause } => {
            let mut m = Map::new();
            m.insert("status".into(), json!("FAILED"));
            m.insert("error".into(), json!(error));
            m.insert("cause".into(), json!(cause));
            Value::Object(m)
        }
    }
}
