//! Payload templates (`Parameters`, `ResultSelector`, `ItemSelector`) and the JSONPath-mode
//! input/output pipeline: InputPath → Parameters → (task) → ResultSelector → ResultPath →
//! OutputPath.

use crate::{AslError, Env, intrinsics, path};
use serde_json::{Map, Value};

/// Evaluates a payload template: keys ending in `.$` take the value of a path or intrinsic
/// function evaluated against `data` / `context`; other values are copied (objects recursively).
pub fn template(tpl: &Value, data: &Value, env: &Env) -> Result<Value, AslError> {
    match tpl {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                match (k.strip_suffix(".$"), v) {
                    (Some(name), Value::String(expr)) => {
                        out.insert(name.to_owned(), expression(expr, k, data, env)?);
                    }
                    _ => {
                        out.insert(k.clone(), template(v, data, env)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|i| template(i, data, env))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// The value of one `.$` field: a path or an intrinsic function.
fn expression(expr: &str, field: &str, data: &Value, env: &Env) -> Result<Value, AslError> {
    if expr.starts_with("States.") {
        let resolve = |p: &str| -> Result<Value, AslError> {
            path::select(p, data, env)?.ok_or_else(|| not_found(p, field, data))
        };
        return intrinsics::evaluate(expr, &resolve);
    }
    path::select(expr, data, env)?.ok_or_else(|| not_found(expr, field, data))
}

fn not_found(p: &str, field: &str, data: &Value) -> AslError {
    AslError::runtime(format!(
        "The JSONPath '{p}' specified for the field '{field}' could not be found in the input '{}'",
        compact(data)
    ))
}

/// JSON as AWS prints it in messages.
pub fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Deepest nesting of arrays and objects a state's output, a variable or a task result may
/// have. Without a bound, a loop that wraps its data one level per pass would nest it until
/// cloning, serialising or dropping it overflowed the stack.
pub const MAX_DEPTH: usize = 512;

/// How deeply a value nests arrays and objects (a scalar is 0), without recursing.
pub fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(d + 1);
                stack.extend(items.iter().map(|c| (c, d + 1)));
            }
            Value::Object(m) => {
                deepest = deepest.max(d + 1);
                stack.extend(m.values().map(|c| (c, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// `InputPath` / `OutputPath`: absent → everything, `null` → `{}`, a path → the value there.
pub fn select_path(spec: Option<&Value>, data: &Value, env: &Env) -> Result<Value, AslError> {
    match spec {
        None => Ok(data.clone()),
        Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(Value::String(p)) => path::select(p, data, env)?.ok_or_else(|| {
            AslError::runtime(format!(
                "Invalid path '{p}' : No results for path: {}",
                path::normalised(p)
            ))
        }),
        Some(other) => Err(AslError::runtime(format!("Invalid path {other}"))),
    }
}

/// `ResultPath`: absent → the result replaces the input, `null` → the input is kept, a path →
/// the result is written there.
pub fn apply_result_path(
    spec: Option<&Value>,
    input: Value,
    result: Value,
) -> Result<Value, AslError> {
    match spec {
        None => Ok(result),
        Some(Value::Null) => Ok(input),
        Some(Value::String(p)) => path::set(input, p, result),
        Some(other) => Err(AslError::runtime(format!("Invalid ResultPath {other}"))),
    }
}

/// The effective input of a state: InputPath then Parameters (or `ItemSelector`).
pub fn effective_input(
    state: &Value,
    raw: &Value,
    env: &Env,
    parameters_field: &str,
) -> Result<Value, AslError> {
    let selected = select_path(state.get("InputPath"), raw, env)?;
    match state.get(parameters_field) {
        Some(tpl) => template(tpl, &selected, env),
        None => Ok(selected),
    }
}

/// The state's output from its raw input and its result: ResultSelector, ResultPath, OutputPath.
pub fn output(
    state: &Value,
    raw_input: Value,
    result: Value,
    env: &Env,
) -> Result<Value, AslError> {
    let result = match state.get("ResultSelector") {
        Some(tpl) => template(tpl, &result, env)?,
        None => result,
    };
    let combined = apply_result_path(state.get("ResultPath"), raw_input, result)?;
    select_path(state.get("OutputPath"), &combined, env)
}
