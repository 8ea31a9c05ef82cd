//! A small reference interpreter for the ASL subset the compiler emits, used to check that the
//! compiled state machine runs exactly the nodes the workflow semantics say, each after every
//! predecessor that runs. It tracks causality (which node completions happened before what)
//! rather than wall-clock order, so a Parallel's branches are checked as truly concurrent.
//!
//! Semantics checked against (`reference`): a node runs when one of its incoming edges is
//! active; an edge is active when its source ran and took the edge's port.

#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use cm_compiler::{Compiled, StateRole};
use cm_model::Workflow;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};

/// What the outside world does in one run.
#[derive(Debug, Clone, Default)]
pub struct Oracle {
    /// Port a node-runner task returns (default "out").
    pub ports: HashMap<String, String>,
    /// Tasks that fail with this error.
    pub failures: HashMap<String, String>,
    /// Items a for-each iterates over, by node id of the task producing them.
    pub outputs: HashMap<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Started {
    pub node: String,
    /// Nodes whose work completed causally before this one started.
    pub after: BTreeSet<String>,
}

#[derive(Debug)]
pub struct Run {
    pub started: Vec<Started>,
    pub output: Value,
}

#[derive(Debug)]
pub struct Failure {
    pub error: String,
    pub cause: String,
}

fn fail(error: &str, cause: impl Into<String>) -> Failure {
    Failure {
        error: error.into(),
        cause: cause.into(),
    }
}

pub struct Interp<'a> {
    compiled: &'a Compiled,
    oracle: &'a Oracle,
    pub started: Vec<Started>,
    steps: usize,
    /// `QueryLanguage: "JSONata"` machine.
    jsonata: bool,
}

type Hist = BTreeSet<String>;

impl<'a> Interp<'a> {
    pub fn run(compiled: &'a Compiled, oracle: &'a Oracle, input: Value) -> Result<Run, Failure> {
        let mut me = Interp {
            compiled,
            oracle,
            started: Vec::new(),
            steps: 0,
            jsonata: compiled.definition.get("QueryLanguage") == Some(&json!("JSONata")),
        };
        let def = &compiled.definition;
        let mut hist = Hist::new();
        let output = me.machine(def, input, &mut hist, &json!({}))?;
        Ok(Run {
            started: me.started,
            output,
        })
    }

    fn machine(
        &mut self,
        m: &Value,
        mut data: Value,
        hist: &mut Hist,
        map_ctx: &Value,
    ) -> Result<Value, Failure> {
        let states = m["States"].as_object().unwrap();
        let mut current = m["StartAt"].as_str().unwrap().to_owned();
        loop {
            self.steps += 1;
            assert!(self.steps < 100_000, "runaway execution");
            let state = states
                .get(&current)
                .unwrap_or_else(|| panic!("Next points to missing state {current}"));
            let role = self.compiled.state_map.get(&current);
            let node_state = role
                .filter(|r| r.role == StateRole::Node)
                .and_then(|r| r.node_id.clone());
            if let Some(node) = &node_state {
                self.started.push(Started {
                    node: node.clone(),
                    after: hist.clone(),
                });
            }
            let (next, out) = self.state(state, data, hist, map_ctx)?;
            if let Some(node) = node_state {
                hist.insert(node);
            }
            data = out;
            match next {
                Some(n) => current = n,
                None => return Ok(data),
            }
        }
    }

    fn state(
        &mut self,
        s: &Value,
        input: Value,
        hist: &mut Hist,
        map_ctx: &Value,
    ) -> Result<(Option<String>, Value), Failure> {
        if self.jsonata {
            return self.state_jsonata(s, input, hist, map_ctx);
        }
        let ty = s["Type"].as_str().unwrap();
        let next = s.get("Next").and_then(Value::as_str).map(str::to_owned);
        let end = s.get("End").and_then(Value::as_bool).unwrap_or(false);
        assert!(
            next.is_some() != end || ty == "Choice",
            "state needs exactly one of Next/End: {s}"
        );
        let ctx = json!({"Execution": {"Id": "arn:exec:1", "Name": "run-1", "StartTime": "2026-01-01T00:00:00Z"}, "State": {"Name": "x", "EnteredTime": "2026-01-01T00:00:00Z", "RetryCount": 0}, "Map": map_ctx, "Task": {"Token": "token-1"}});
        match ty {
            "Pass" => {
                let result = if let Some(p) = s.get("Parameters") {
                    params(p, &input, &ctx)?
                } else if let Some(r) = s.get("Result") {
                    r.clone()
                } else {
                    input.clone()
                };
                let out = apply_result(s, input, result)?;
                Ok((next, out))
            }
            "Choice" => {
                for rule in s["Choices"].as_array().unwrap() {
                    if choice(rule, &input)? {
                        return Ok((Some(rule["Next"].as_str().unwrap().to_owned()), input));
                    }
                }
                match s.get("Default").and_then(Value::as_str) {
                    Some(d) => Ok((Some(d.to_owned()), input)),
                    None => Err(fail("States.NoChoiceMatched", "no rule matched")),
                }
            }
            "Wait" => Ok((next, input)),
            "Task" => {
                let args = params(&s["Parameters"], &input, &ctx)?;
                match self.task(s, &args) {
                    Ok(raw) => {
                        let result = match s.get("ResultSelector") {
                            Some(sel) => params(sel, &raw, &ctx)?,
                            None => raw,
                        };
                        Ok((next, apply_result(s, input, result)?))
                    }
                    Err(f) => self.catch(s, input, f),
                }
            }
            "Parallel" => {
                let start = hist.clone();
                let mut results = Vec::new();
                for b in s["Branches"].as_array().unwrap() {
                    let mut h = start.clone();
                    results.push(self.machine(b, input.clone(), &mut h, map_ctx)?);
                    hist.extend(h);
                }
                Ok((next, apply_result(s, input, Value::Array(results))?))
            }
            "Map" => {
                let items = get(&input, s["ItemsPath"].as_str().unwrap())
                    .ok_or_else(|| fail("States.Runtime", "ItemsPath missing"))?;
                let start = hist.clone();
                let mut results = Vec::new();
                for (i, item) in items
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                {
                    let mctx = json!({"Item": {"Value": item, "Index": i}});
                    let mut c2 = ctx.clone();
                    c2["Map"] = mctx.clone();
                    let iter_input = params(&s["ItemSelector"], &input, &c2)?;
                    let mut h = start.clone();
                    results.push(self.machine(&s["ItemProcessor"], iter_input, &mut h, &mctx)?);
                    hist.extend(h);
                }
                let raw = Value::Array(results);
                let result = match s.get("ResultSelector") {
                    Some(sel) => params(sel, &raw, &ctx)?,
                    None => raw,
                };
                Ok((next, apply_result(s, input, result)?))
            }
            "Succeed" => Ok((None, input)),
            "Fail" => Err(fail(
                s["Error"].as_str().unwrap_or(""),
                s["Cause"].as_str().unwrap_or(""),
            )),
            other => panic!("unexpected state type {other}"),
        }
    }

    /// JSONata mode: `Arguments`, `Output`, `Items`, `Condition`, catcher `Output`.
    fn state_jsonata(
        &mut self,
        s: &Value,
        input: Value,
        hist: &mut Hist,
        map_ctx: &Value,
    ) -> Result<(Option<String>, Value), Failure> {
        let ty = s["Type"].as_str().unwrap();
        let next = s.get("Next").and_then(Value::as_str).map(str::to_owned);
        let context = json!({"Execution": {"Id": "arn:exec:1", "Name": "run-1", "StartTime": "2026-01-01T00:00:00Z"}, "State": {"Name": "x", "EnteredTime": "2026-01-01T00:00:00Z", "RetryCount": 0}, "Map": map_ctx, "Task": {"Token": "token-1"}});
        let states_var = |result: Option<&Value>, error: Option<&Value>| {
            let mut v = json!({"input": input, "context": context});
            if let Some(r) = result {
                v["result"] = r.clone();
            }
            if let Some(e) = error {
                v["errorOutput"] = e.clone();
            }
            v
        };
        let output = |s: &Value, vars: &Value, default: Value| -> Result<Value, Failure> {
            match s.get("Output") {
                Some(o) => jsonata_template(o, vars),
                None => Ok(default),
            }
        };
        match ty {
            "Pass" | "Wait" => {
                let out = output(s, &states_var(None, None), input.clone())?;
                Ok((next, out))
            }
            "Choice" => {
                let vars = states_var(None, None);
                for rule in s["Choices"].as_array().unwrap() {
                    let cond = jsonata_template(&rule["Condition"], &vars)?;
                    if cond == json!(true) {
                        return Ok((Some(rule["Next"].as_str().unwrap().to_owned()), input));
                    }
                }
                match s.get("Default").and_then(Value::as_str) {
                    Some(d) => Ok((Some(d.to_owned()), input)),
                    None => Err(fail("States.NoChoiceMatched", "no rule matched")),
                }
            }
            "Task" => {
                let args = jsonata_template(&s["Arguments"], &states_var(None, None))?;
                match self.task(s, &args) {
                    Ok(raw) => Ok((next, output(s, &states_var(Some(&raw), None), raw.clone())?)),
                    Err(f) => {
                        let Some(c) = catcher(s, &f) else {
                            return Err(f);
                        };
                        let err = json!({"Error": f.error, "Cause": f.cause});
                        let out = output(&c, &states_var(None, Some(&err)), err.clone())?;
                        Ok((Some(c["Next"].as_str().unwrap().to_owned()), out))
                    }
                }
            }
            "Parallel" => {
                let start = hist.clone();
                let mut results = Vec::new();
                for b in s["Branches"].as_array().unwrap() {
                    let mut h = start.clone();
                    results.push(self.machine(b, input.clone(), &mut h, map_ctx)?);
                    hist.extend(h);
                }
                let raw = Value::Array(results);
                Ok((next, output(s, &states_var(Some(&raw), None), raw.clone())?))
            }
            "Map" => {
                let items = jsonata_template(&s["Items"], &states_var(None, None))?;
                let start = hist.clone();
                let mut results = Vec::new();
                for (i, item) in items
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                {
                    let mctx = json!({"Item": {"Value": item, "Index": i}});
                    let mut vars = states_var(None, None);
                    vars["context"]["Map"] = mctx.clone();
                    let iter_input = jsonata_template(&s["ItemSelector"], &vars)?;
                    let mut h = start.clone();
                    results.push(self.machine(&s["ItemProcessor"], iter_input, &mut h, &mctx)?);
                    hist.extend(h);
                }
                let raw = Value::Array(results);
                Ok((next, output(s, &states_var(Some(&raw), None), raw.clone())?))
            }
            other => panic!("unexpected state type {other} in JSONata mode"),
        }
    }

    fn task(&mut self, s: &Value, args: &Value) -> Result<Value, Failure> {
        let resource = s["Resource"].as_str().unwrap();
        let node = args
            .pointer("/Payload/node/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                args.pointer("/Item/nodeId/S")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        if let Some(err) = self.oracle.failures.get(&node) {
            return Err(fail(err, format!("{node} failed")));
        }
        let output = self
            .oracle
            .outputs
            .get(&node)
            .cloned()
            .unwrap_or(json!({"from": node}));
        let port = self
            .oracle
            .ports
            .get(&node)
            .cloned()
            .unwrap_or_else(|| "out".into());
        Ok(match resource {
            "arn:aws:states:::lambda:invoke" => {
                json!({"Payload": {"output": output, "port": port}, "StatusCode": 200})
            }
            "arn:aws:states:::lambda:invoke.waitForTaskToken" => {
                json!({"output": output, "port": port})
            }
            "arn:aws:states:::sqs:sendMessage" => json!({"MessageId": "m-1"}),
            "arn:aws:states:::dynamodb:putItem" => json!({}),
            r if r.starts_with("arn:aws:states:::states:startExecution") => {
                json!({"Output": output, "ExecutionArn": "arn:child"})
            }
            r => panic!("unexpected resource {r}"),
        })
    }

    fn catch(
        &mut self,
        s: &Value,
        input: Value,
        f: Failure,
    ) -> Result<(Option<String>, Value), Failure> {
        let Some(c) = catcher(s, &f) else {
            return Err(f);
        };
        let err = json!({"Error": f.error, "Cause": f.cause});
        let out = match c.get("ResultPath") {
            Some(Value::String(p)) => set(input, p, err)?,
            _ => err,
        };
        Ok((Some(c["Next"].as_str().unwrap().to_owned()), out))
    }
}

/// Evaluates every `{% expr %}` string in a JSON template, with `$states` bound to `vars`.
pub fn jsonata_template(t: &Value, vars: &Value) -> Result<Value, Failure> {
    match t {
        Value::String(s) if s.starts_with("{%") && s.ends_with("%}") => {
            let expr = &s[2..s.len() - 2];
            let program = format!("($states := $$; {expr})");
            let compiled = jsonata_core::Expression::compile(&program)
                .unwrap_or_else(|e| panic!("JSONata does not parse: {expr}: {e:?}"));
            let data = jsonata_core::value::JValue::from(vars.clone());
            let result = compiled
                .evaluate(&data)
                .map_err(|e| fail("States.QueryEvaluationError", format!("{expr}: {e:?}")))?;
            Ok(Value::from(&result))
        }
        Value::Array(items) => items
            .iter()
            .map(|i| jsonata_template(i, vars))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k.clone(), jsonata_template(v, vars)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// The first catcher of a state whose ErrorEquals takes this failure.
fn catcher(s: &Value, f: &Failure) -> Option<Value> {
    s.get("Catch")?
        .as_array()?
        .iter()
        .find(|c| {
            let errs: Vec<&str> = c["ErrorEquals"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            errs.contains(&"States.ALL") || errs.contains(&f.error.as_str())
        })
        .cloned()
}

fn apply_result(s: &Value, input: Value, result: Value) -> Result<Value, Failure> {
    let after = match s.get("ResultPath") {
        None => result,
        Some(Value::Null) => input,
        Some(Value::String(p)) => set(input, p, result)?,
        Some(other) => panic!("bad ResultPath {other}"),
    };
    match s.get("OutputPath").and_then(Value::as_str) {
        Some(p) => get(&after, p)
            .ok_or_else(|| fail("States.Runtime", format!("OutputPath {p} not found"))),
        None => Ok(after),
    }
}

/// `$`, `$.a.b`, `$.a[0]`, `$.a['b']`.
fn segments(path: &str) -> Vec<Value> {
    let rest = path.trim_start_matches('$');
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    name.push(c);
                    chars.next();
                }
                out.push(json!(name));
            }
            '[' => {
                let mut inner = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    inner.push(c);
                }
                if let Ok(i) = inner.parse::<usize>() {
                    out.push(json!(i));
                } else {
                    out.push(json!(inner.trim_matches('\'')));
                }
            }
            _ => panic!("bad path {path}"),
        }
    }
    out
}

pub fn get(v: &Value, path: &str) -> Option<Value> {
    let mut cur = v;
    for seg in segments(path) {
        cur = match seg {
            Value::String(k) => cur.as_object()?.get(&k)?,
            Value::Number(i) => cur.as_array()?.get(i.as_u64()? as usize)?,
            _ => return None,
        };
    }
    Some(cur.clone())
}

fn set(mut root: Value, path: &str, value: Value) -> Result<Value, Failure> {
    let segs = segments(path);
    if segs.is_empty() {
        return Ok(value);
    }
    let mut cur = &mut root;
    for (k, seg) in segs.iter().enumerate() {
        let key = seg.as_str().expect("ResultPath uses names");
        if !cur.is_object() {
            return Err(fail(
                "States.Runtime",
                format!("ResultPath {path}: not an object"),
            ));
        }
        let obj = cur.as_object_mut().unwrap();
        if k + 1 == segs.len() {
            obj.insert(key.to_owned(), value);
            break;
        }
        cur = obj
            .entry(key.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(root)
}

fn params(p: &Value, input: &Value, ctx: &Value) -> Result<Value, Failure> {
    match p {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(stripped) = k.strip_suffix(".$") {
                    out.insert(stripped.to_owned(), expr(v.as_str().unwrap(), input, ctx)?);
                } else {
                    out.insert(k.clone(), params(v, input, ctx)?);
                }
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

fn expr(e: &str, input: &Value, ctx: &Value) -> Result<Value, Failure> {
    let e = e.trim();
    if let Some(rest) = e.strip_prefix("$$") {
        return get(ctx, &format!("${rest}"))
            .ok_or_else(|| fail("States.Runtime", format!("{e} not found")));
    }
    if e.starts_with('$') {
        return get(input, e).ok_or_else(|| {
            fail(
                "States.Runtime",
                format!("The JSONPath '{e}' could not be found"),
            )
        });
    }
    if let Some(args) = e
        .strip_prefix("States.JsonMerge(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let parts = split_args(args);
        let a = expr(&parts[0], input, ctx)?;
        let b = expr(&parts[1], input, ctx)?;
        let (Value::Object(mut a), Value::Object(b)) = (a, b) else {
            return Err(fail("States.IntrinsicFailure", "JsonMerge needs objects"));
        };
        a.extend(b);
        return Ok(Value::Object(a));
    }
    if let Some(args) = e
        .strip_prefix("States.Array(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return split_args(args)
            .iter()
            .map(|a| expr(a, input, ctx))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(args) = e
        .strip_prefix("States.ArrayLength(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let v = expr(args, input, ctx)?;
        return Ok(json!(v.as_array().map(Vec::len).unwrap_or(0)));
    }
    if let Some(args) = e
        .strip_prefix("States.JsonToString(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return Ok(json!(expr(args, input, ctx)?.to_string()));
    }
    if let Some(args) = e
        .strip_prefix("States.Format(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let parts = split_args(args);
        let template = parts[0].trim_matches('\'').replace("\\'", "'");
        let mut out = String::new();
        let mut values = parts[1..].iter();
        let mut rest = template.as_str();
        while let Some(i) = rest.find("{}") {
            out.push_str(&rest[..i]);
            let v = expr(values.next().unwrap(), input, ctx)?;
            match v {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            }
            rest = &rest[i + 2..];
        }
        out.push_str(rest);
        return Ok(json!(out));
    }
    if e.starts_with('\'') {
        return Ok(json!(e.trim_matches('\'')));
    }
    if e == "false" || e == "true" {
        return Ok(json!(e == "true"));
    }
    panic!("unsupported expression {e}")
}

fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut quote = false;
    let mut cur = String::new();
    let mut prev = ' ';
    for c in s.chars() {
        match c {
            '\'' if prev != '\\' => quote = !quote,
            '(' if !quote => depth += 1,
            ')' if !quote => depth -= 1,
            ',' if !quote && depth == 0 => {
                out.push(cur.trim().to_owned());
                cur.clear();
                prev = c;
                continue;
            }
            _ => {}
        }
        cur.push(c);
        prev = c;
    }
    out.push(cur.trim().to_owned());
    out
}

fn choice(rule: &Value, input: &Value) -> Result<bool, Failure> {
    if let Some(all) = rule.get("And") {
        for r in all.as_array().unwrap() {
            if !choice(r, input)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(any) = rule.get("Or") {
        for r in any.as_array().unwrap() {
            if choice(r, input)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if let Some(inner) = rule.get("Not") {
        return Ok(!choice(inner, input)?);
    }
    let var = rule["Variable"].as_str().unwrap();
    let value = get(input, var);
    if let Some(expected) = rule.get("IsPresent") {
        return Ok(value.is_some() == expected.as_bool().unwrap());
    }
    let value = value.ok_or_else(|| fail("States.Runtime", format!("Invalid path '{var}': the choice state's condition path references an invalid value.")))?;
    let (op, operand) = rule
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| *k != "Variable" && *k != "Next")
        .unwrap();
    Ok(match op.as_str() {
        "IsBoolean" => value.is_boolean() == operand.as_bool().unwrap(),
        "IsString" => value.is_string() == operand.as_bool().unwrap(),
        "IsNumeric" => value.is_number() == operand.as_bool().unwrap(),
        "IsNull" => value.is_null() == operand.as_bool().unwrap(),
        "BooleanEquals" => value.as_bool() == operand.as_bool(),
        "StringEquals" => value.as_str() == operand.as_str(),
        "NumericEquals" => value.as_f64() == operand.as_f64(),
        "NumericGreaterThan" => value.as_f64() > operand.as_f64(),
        "NumericGreaterThanEquals" => value.as_f64() >= operand.as_f64(),
        "NumericLessThan" => value.as_f64() < operand.as_f64(),
        other => panic!("unsupported choice operator {other}"),
    })
}

/// Which nodes run under the workflow semantics, given which port each branching node takes
/// (`port_of`), for graphs without loops.
pub fn reference(
    wf: &Workflow,
    port_of: &dyn Fn(&str) -> String,
    branching: &dyn Fn(&str) -> bool,
) -> BTreeSet<String> {
    let mut ran: BTreeSet<String> = BTreeSet::new();
    // Node order in the file is topological in the generated tests.
    for node in &wf.nodes {
        let incoming: Vec<_> = wf.edges.iter().filter(|e| e.to == node.id).collect();
        let active = incoming.is_empty()
            || incoming.iter().any(|e| {
                ran.contains(&e.from) && (!branching(&e.from) || port_of(&e.from) == e.from_port)
            });
        if active {
            ran.insert(node.id.clone());
        }
    }
    ran
}

/// Structural checks AWS applies when a state machine is created (the ones our output could
/// plausibly break): every transition lands on a state of the same scope, every state is
/// reachable, terminal rules, unique names of at most 80 characters, field placement, retriers.
pub fn lint(definition: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    lint_scope(definition, "", &mut names, &mut problems);
    if definition.get("QueryLanguage") == Some(&json!("JSONata")) {
        check_jsonata(definition, "", &mut problems);
    }
    problems
}

/// Every `{% %}` string of a JSONata-mode machine must parse.
fn check_jsonata(v: &Value, at: &str, problems: &mut Vec<String>) {
    match v {
        Value::String(s) if s.starts_with("{%") && s.ends_with("%}") => {
            let expr = &s[2..s.len() - 2];
            if let Err(e) = jsonata_core::parser::parse(expr) {
                problems.push(format!("{at}: {expr} does not parse: {e}"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_jsonata(item, &format!("{at}/{i}"), problems);
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                check_jsonata(item, &format!("{at}/{k}"), problems);
            }
        }
        _ => {}
    }
}

fn lint_scope(scope: &Value, at: &str, names: &mut BTreeSet<String>, problems: &mut Vec<String>) {
    let Some(states) = scope.get("States").and_then(Value::as_object) else {
        problems.push(format!("{at}: no States"));
        return;
    };
    let start = scope
        .get("StartAt")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !states.contains_key(start) {
        problems.push(format!("{at}: StartAt {start:?} is not a state"));
    }
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, s) in states {
        let here = format!("{at}/{name}");
        if name.chars().count() > 80 {
            problems.push(format!("{here}: name longer than 80 characters"));
        }
        if !names.insert(name.clone()) {
            problems.push(format!("{here}: state name used twice in the machine"));
        }
        let ty = s.get("Type").and_then(Value::as_str).unwrap_or_default();
        let mut targets: Vec<&str> = Vec::new();
        if let Some(n) = s.get("Next").and_then(Value::as_str) {
            targets.push(n);
        }
        let end = s.get("End") == Some(&json!(true));
        match ty {
            "Choice" => {
                if s.get("Next").is_some() || s.get("End").is_some() {
                    problems.push(format!("{here}: Choice cannot have Next/End"));
                }
                let rules: &[Value] = s
                    .get("Choices")
                    .and_then(Value::as_array)
                    .map_or(&[], Vec::as_slice);
                if rules.is_empty() {
                    problems.push(format!("{here}: Choice without Choices"));
                }
                for r in rules {
                    match r.get("Next").and_then(Value::as_str) {
                        Some(n) => {
                            targets.push(states.get_key_value(n).map_or(n, |(k, _)| k.as_str()))
                        }
                        None => problems.push(format!("{here}: choice rule without Next")),
                    }
                }
                if let Some(d) = s.get("Default").and_then(Value::as_str) {
                    targets.push(d);
                }
            }
            "Succeed" | "Fail" => {}
            "Pass" | "Task" | "Wait" | "Parallel" | "Map" => {
                if end == s.get("Next").is_some() {
                    problems.push(format!("{here}: needs exactly one of Next and End"));
                }
            }
            other => problems.push(format!("{here}: unknown Type {other:?}")),
        }
        if s.get("ResultSelector").is_some() && !matches!(ty, "Task" | "Map" | "Parallel") {
            problems.push(format!("{here}: ResultSelector on a {ty}"));
        }
        if (s.get("Retry").is_some() || s.get("Catch").is_some())
            && !matches!(ty, "Task" | "Map" | "Parallel")
        {
            problems.push(format!("{here}: Retry/Catch on a {ty}"));
        }
        if ty == "Task" && s.get("Resource").and_then(Value::as_str).is_none() {
            problems.push(format!("{here}: Task without Resource"));
        }
        for (k, retrier) in s
            .get("Retry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let errors = retrier["ErrorEquals"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if errors.is_empty() {
                problems.push(format!("{here}: retrier {k} has no ErrorEquals"));
            }
            if errors.contains(&json!("States.ALL"))
                && (errors.len() > 1 || k + 1 != s["Retry"].as_array().map_or(0, Vec::len))
            {
                problems.push(format!(
                    "{here}: States.ALL must be alone in the last retrier"
                ));
            }
        }
        for c in s
            .get("Catch")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match c.get("Next").and_then(Value::as_str) {
                Some(n) => targets.push(states.get_key_value(n).map_or(n, |(k, _)| k.as_str())),
                None => problems.push(format!("{here}: catcher without Next")),
            }
        }
        for field in ["Parameters", "ResultSelector", "ItemSelector"] {
            if let Some(p) = s.get(field) {
                check_dollar_keys(p, &format!("{here}.{field}"), problems);
            }
        }
        for t in &targets {
            if !states.contains_key(*t) {
                problems.push(format!(
                    "{here}: transition to {t:?}, which is not in this scope"
                ));
            }
        }
        for (i, b) in s
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            lint_scope(b, &format!("{here}[{i}]"), names, problems);
        }
        if let Some(p) = s.get("ItemProcessor") {
            lint_scope(p, &format!("{here}.ItemProcessor"), names, problems);
        }
        edges.insert(name.as_str(), targets);
    }
    // Reachability from StartAt.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        if seen.insert(n) {
            stack.extend(edges.get(n).into_iter().flatten().copied());
        }
    }
    for name in states.keys() {
        if !seen.contains(name.as_str()) {
            problems.push(format!("{at}/{name}: unreachable from StartAt"));
        }
    }
}

fn check_dollar_keys(v: &Value, at: &str, problems: &mut Vec<String>) {
    if let Value::Object(m) = v {
        for (k, child) in m {
            if k.ends_with(".$") {
                match child.as_str() {
                    Some(e) if e.starts_with('$') || e.starts_with("States.") => {}
                    _ => problems.push(format!(
                        "{at}.{k}: a .$ field must hold a path or intrinsic, got {child}"
                    )),
                }
            } else {
                check_dollar_keys(child, &format!("{at}.{k}"), problems);
            }
        }
    }
}

/// How the oracle answers a Task: the node-runner's reply or an AWS service's.
fn oracle_answer(
    oracle: &Oracle,
    resource: &str,
    input: &Value,
) -> Result<Value, cm_asl::AslError> {
    let node = input
        .pointer("/Payload/node/id")
        .or_else(|| input.pointer("/Item/nodeId/S"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(error) = oracle.failures.get(&node) {
        return Err(cm_asl::AslError::new(
            error.clone(),
            format!("{node} failed"),
        ));
    }
    let output = oracle
        .outputs
        .get(&node)
        .cloned()
        .unwrap_or(serde_json::json!({"from": node}));
    let port = oracle
        .ports
        .get(&node)
        .cloned()
        .unwrap_or_else(|| "out".into());
    Ok(match resource {
        "arn:aws:states:::lambda:invoke" => {
            serde_json::json!({"Payload": {"output": output, "port": port}, "StatusCode": 200})
        }
        "arn:aws:states:::lambda:invoke.waitForTaskToken" => {
            serde_json::json!({"output": output, "port": port})
        }
        "arn:aws:states:::sqs:sendMessage" => serde_json::json!({"MessageId": "m-1"}),
        "arn:aws:states:::dynamodb:putItem" => serde_json::json!({}),
        other => {
            serde_json::json!({"Output": output, "ExecutionArn": format!("{other}:child")})
        }
    })
}

/// Runs a compiled definition on the embedded engine (in memory, virtual time) with Task
/// resources answered by the oracle; callback tasks are answered through SendTaskSuccess.
/// Returns the closed execution and the names of the states entered, in order.
pub fn engine_run(
    definition: &Value,
    input: Value,
    oracle: &Oracle,
) -> (cm_engine::ExecutionRecord, Vec<String>) {
    use std::sync::{Arc, OnceLock};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let engine_cell: Arc<OnceLock<cm_engine::Engine>> = Arc::new(OnceLock::new());
        let handler = {
            let oracle = oracle.clone();
            let cell = engine_cell.clone();
            cm_engine::FnHandler(move |call: &cm_engine::TaskCall| {
                let answer = oracle_answer(&oracle, &call.resource, &call.input)?;
                if let (Some(token), Some(engine)) = (call.task_token.clone(), cell.get()) {
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        engine
                            .send_task_success(&token, answer)
                            .await
                            .expect("callback");
                    });
                    return Ok(Value::Null);
                }
                Ok(answer)
            })
        };
        let handler = Arc::new(handler);
        let mut resources = cm_engine::Resources::new();
        for arn in [
            "arn:aws:states:::lambda:invoke",
            "arn:aws:states:::sqs:sendMessage",
            "arn:aws:states:::dynamodb:putItem",
            "arn:aws:states:::states:startExecution",
        ] {
            let h = handler.clone();
            resources = resources.resource(
                arn,
                cm_engine::FnHandler(move |c: &cm_engine::TaskCall| (h.0)(c)),
            );
        }
        let engine = cm_engine::Engine::open(cm_engine::EngineConfig {
            clock: cm_engine::Clock::virtual_at(0),
            resources,
            ..cm_engine::EngineConfig::default()
        })
        .await
        .expect("engine");
        let _ = engine_cell.set(engine.clone());
        let sm = engine
            .create_state_machine("compiled", definition, cm_engine::MachineType::Standard)
            .await
            .expect("the compiled definition is valid ASL");
        let started = engine
            .start_execution(&sm.arn, None, input)
            .await
            .expect("start");
        let rec = engine.wait(&started.execution_arn).await.expect("wait");
        let mut trace = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = engine
                .get_execution_history(
                    &started.execution_arn,
                    cm_engine::HistoryQuery {
                        max_results: 1000,
                        next_token: token.as_deref(),
                        reverse: false,
                    },
                )
                .expect("history");
            trace.extend(
                page.events
                    .iter()
                    .filter(|e| e.kind.ends_with("StateEntered"))
                    .filter_map(|e| e.details["name"].as_str().map(str::to_owned)),
            );
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        (rec, trace)
    })
}
