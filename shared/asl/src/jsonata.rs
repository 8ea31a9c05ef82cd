//! JSONata-mode evaluation (`QueryLanguage: "JSONata"`): `{% expression %}` strings in a
//! state's fields, with `$states` (input, context, result, errorOutput) and the variables in
//! scope bound, evaluated by the `jsonata-core` engine.

use crate::AslError;
use jsonata_core::evaluator::{Context, Evaluator, EvaluatorError, EvaluatorOptions, HostFnResult};
use jsonata_core::value::JValue;
use serde_json::{Map, Number, Value};

/// Bounds on one evaluation, so that no expression can hang or exhaust an execution: wall
/// time (D1012), nesting depth of the evaluation (D1011; about a third of it in recursive
/// calls) and length of any query-result sequence such as `[1..n]` (D2015). Each is far above
/// what a state's 256 KiB payload can use.
fn options() -> EvaluatorOptions {
    EvaluatorOptions {
        timeout_ms: Some(2_000),
        max_stack_depth: Some(3_000),
        max_sequence_length: Some(1_000_000),
        ..EvaluatorOptions::default()
    }
}

/// The expression inside `{% … %}`, if `s` is one.
pub fn expression(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{%")?.strip_suffix("%}")?;
    Some(inner.trim())
}

/// `$states` and the variables converted to jsonata-core values once, so that every
/// expression of a template shares them (the conversion costs more than most evaluations; a
/// copy of a converted value is a reference count).
struct Bindings {
    states: JValue,
    vars: Vec<(String, JValue)>,
}

impl Bindings {
    fn new(states: &Value, vars: &Map<String, Value>) -> Bindings {
        Bindings {
            states: JValue::from(states.clone()),
            vars: vars
                .iter()
                .map(|(k, v)| (k.clone(), JValue::from(v.clone())))
                .collect(),
        }
    }
}

/// Evaluates one expression. `field` names where it sits (`Output/result`), for messages.
pub fn evaluate(
    expr: &str,
    states: &Value,
    vars: &Map<String, Value>,
    field: &str,
) -> Result<Value, AslError> {
    evaluate_bound(expr, &Bindings::new(states, vars), field)
}

fn evaluate_bound(expr: &str, bindings: &Bindings, field: &str) -> Result<Value, AslError> {
    let fail = |detail: String| {
        AslError::new(
            "States.QueryEvaluationError",
            format!("The JSONata expression '{expr}' specified for the field '{field}' {detail}"),
        )
    };
    let ast = jsonata_core::parser::parse(expr)
        .map_err(|e| fail(format!("threw an error during evaluation. {e}")))?;
    let mut context = Context::new();
    context.bind("states".into(), bindings.states.clone());
    for (name, value) in &bindings.vars {
        context.bind(name.clone(), value.clone());
    }
    let mut evaluator = Evaluator::with_options(context, options());
    register_step_functions_functions(&mut evaluator);
    let result = evaluator.evaluate(&ast, &JValue::Null).map_err(|e| {
        fail(format!(
            "threw an error during evaluation. {}",
            error_text(&e)
        ))
    })?;
    if matches!(result, JValue::Undefined) {
        return Err(fail("returned nothing (undefined).".into()));
    }
    if matches!(
        result,
        JValue::Lambda(_) | JValue::Builtin { .. } | JValue::Regex { .. }
    ) {
        return Err(fail("returned an unsupported result type.".into()));
    }
    // Checked before converting: the conversion recurses, and a recursive function can build
    // a value nested far deeper than the stack allows.
    if deeper_than(&result, crate::payload::MAX_DEPTH) {
        return Err(fail(format!(
            "returned a value nested more than {} levels deep.",
            crate::payload::MAX_DEPTH
        )));
    }
    Ok(integral(Value::from(&result)))
}

/// A JSONata expression parsed once and evaluated many times with `$` bound to a value (the
/// node types' item expressions: a filter condition, a group key). Evaluation has the same
/// bounds as the interpreter's JSONata mode.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
    ast: jsonata_core::ast::AstNode,
}

impl Expression {
    /// Parses `source`; the error is JSONata's message.
    pub fn parse(source: &str) -> Result<Expression, String> {
        let ast = jsonata_core::parser::parse(source).map_err(|e| e.to_string())?;
        Ok(Expression {
            source: source.to_owned(),
            ast,
        })
    }

    /// The expression text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates with `$` bound to `input`. `Ok(None)` is JSONata's *undefined* (no match).
    pub fn evaluate(&self, input: &Value) -> Result<Option<Value>, String> {
        let mut evaluator = Evaluator::with_options(Context::new(), options());
        register_step_functions_functions(&mut evaluator);
        let result = evaluator
            .evaluate(&self.ast, &JValue::from(input.clone()))
            .map_err(|e| error_text(&e))?;
        match result {
            JValue::Undefined => Ok(None),
            JValue::Lambda(_) | JValue::Builtin { .. } | JValue::Regex { .. } => {
                Err("the expression returned a function, not a value".into())
            }
            r if deeper_than(&r, crate::payload::MAX_DEPTH) => Err(format!(
                "the expression returned a value nested more than {} levels deep",
                crate::payload::MAX_DEPTH
            )),
            r => Ok(Some(integral(Value::from(&r)))),
        }
    }
}

/// Whether a JSONata value nests arrays and objects more than `max` levels, without recursing.
fn deeper_than(v: &JValue, max: usize) -> bool {
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &JValue>> = match v {
            JValue::Array(items) => Box::new(items.iter()),
            JValue::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        if d + 1 > max {
            return true;
        }
        stack.extend(children.map(|c| (c, d + 1)));
    }
    false
}

/// jsonata-js style error text (`T1006: …`), without the Rust error variant's prefix.
fn error_text(e: &EvaluatorError) -> String {
    let text = e.to_string();
    let mut text = text.as_str();
    for prefix in ["Type error: ", "Reference error: ", "Evaluation error: "] {
        text = text.strip_prefix(prefix).unwrap_or(text);
    }
    // jsonata-js (what AWS runs) does not name the callee in T1006.
    const NOT_A_FUNCTION: &str = "T1006: Attempted to invoke a non-function";
    if text.starts_with(NOT_A_FUNCTION) {
        return NOT_A_FUNCTION.to_owned();
    }
    text.to_owned()
}

/// A host function over JSON values.
fn host(
    f: impl Fn(&[Value]) -> Result<Value, String> + 'static,
) -> impl Fn(&[JValue]) -> HostFnResult {
    move |args: &[JValue]| {
        let values: Vec<Value> = args.iter().map(Value::from).collect();
        f(&values)
            .map(JValue::from)
            .map_err(EvaluatorError::EvaluationError)
    }
}

fn int(v: Option<&Value>, name: &str) -> Result<i64, String> {
    v.and_then(Value::as_f64)
        .filter(|f| f.fract() == 0.0)
        .map(|f| f as i64)
        .ok_or_else(|| format!("{name} must be an integer"))
}

/// The functions Step Functions adds to JSONata, with their arity (`$random` with a seed is
/// not supported by the engine yet).
pub const STEP_FUNCTIONS_FUNCTIONS: [(&str, usize); 5] = [
    ("partition", 2),
    ("range", 3),
    ("parse", 1),
    ("hash", 2),
    ("uuid", 0),
];

/// Calls one of [`STEP_FUNCTIONS_FUNCTIONS`] (`$partition`, `$range`, `$parse`, `$hash`,
/// `$uuid`) on JSON values; the error is the message JSONata reports.
pub fn step_functions_function(name: &str, args: &[Value]) -> Result<Value, String> {
    match name {
        "partition" => {
            let items = args
                .first()
                .and_then(Value::as_array)
                .ok_or("$partition needs an array")?;
            let size = int(args.get(1), "the chunk size")?;
            if size <= 0 {
                return Err("the chunk size must be positive".into());
            }
            Ok(Value::Array(
                items
                    .chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        "range" => {
            let (start, end, step) = (
                int(args.first(), "start")?,
                int(args.get(1), "end")?,
                int(args.get(2), "step")?,
            );
            if step == 0 {
                return Err("step cannot be 0".into());
            }
            let mut out = Vec::new();
            let mut n = start;
            while (step > 0 && n <= end) || (step < 0 && n >= end) {
                out.push(Value::from(n));
                if out.len() > 1000 {
                    return Err("$range returns at most 1000 items".into());
                }
                n += step;
            }
            // JSONata sequences of one item are that item.
            Ok(if out.len() == 1 {
                out.remove(0)
            } else {
                Value::Array(out)
            })
        }
        "parse" => {
            let text = args
                .first()
                .and_then(Value::as_str)
                .ok_or("$parse needs a string")?;
            serde_json::from_str(text).map_err(|e| format!("$parse: {e}"))
        }
        "hash" => {
            // Same algorithms and limits as States.Hash.
            let data = args.first().cloned().unwrap_or(Value::Null);
            let algorithm = args.get(1).cloned().unwrap_or(Value::Null);
            crate::intrinsics::evaluate("States.Hash($.d, $.a)", &|p: &str| {
                Ok(if p == "$.d" {
                    data.clone()
                } else {
                    algorithm.clone()
                })
            })
            .map_err(|e| e.cause)
        }
        "uuid" => crate::intrinsics::evaluate("States.UUID()", &|_: &str| Ok(Value::Null))
            .map_err(|e| e.cause),
        _ => Err(format!("no function ${name}")),
    }
}

fn register_step_functions_functions(evaluator: &mut Evaluator) {
    for (name, _) in STEP_FUNCTIONS_FUNCTIONS {
        let _ = evaluator.register_fn(name, host(move |args| step_functions_function(name, args)));
    }
}

/// JSONata numbers are doubles; AWS prints whole numbers without a fraction.
fn integral(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Value::Number(Number::from(f as i64))
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, integral(v))).collect()),
        other => other,
    }
}

/// Evaluates every `{% %}` string in a JSON template (other values are copied).
pub fn template(
    tpl: &Value,
    states: &Value,
    vars: &Map<String, Value>,
    field: &str,
) -> Result<Value, AslError> {
    let mut bindings = None;
    template_bound(tpl, states, vars, &mut bindings, field)
}

fn template_bound(
    tpl: &Value,
    states: &Value,
    vars: &Map<String, Value>,
    bindings: &mut Option<Bindings>,
    field: &str,
) -> Result<Value, AslError> {
    match tpl {
        Value::String(s) => match expression(s) {
            Some(expr) => {
                let b = bindings.get_or_insert_with(|| Bindings::new(states, vars));
                evaluate_bound(expr, b, field)
            }
            None => Ok(tpl.clone()),
        },
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| template_bound(item, states, vars, bindings, &format!("{field}[{i}]")))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                out.insert(
                    k.clone(),
                    template_bound(v, states, vars, bindings, &format!("{field}/{k}"))?,
                );
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_with_states_and_variables() {
        let vars = Map::from_iter([("x".to_owned(), json!(2))]);
        let states = json!({"input": {"a": [1, 2, 3]}});
        let v = template(
            &json!({"sum": "{% $sum($states.input.a) * $x %}", "lit": "a"}),
            &states,
            &vars,
            "Output",
        );
        assert_eq!(v.ok(), Some(json!({"sum": 12, "lit": "a"})));
        let err = evaluate("$nope", &states, &vars, "Output/result").expect_err("undefined");
        assert_eq!(err.error, "States.QueryEvaluationError");
        assert!(
            err.cause
                .ends_with("specified for the field 'Output/result' returned nothing (undefined)."),
            "{}",
            err.cause
        );
    }

    #[test]
    fn evaluation_is_bounded() {
        let states = json!({"input": {"s": "ab"}});
        let vars = Map::new();
        for expr in [
            "($f := function($x){ 1 + $f($x + 1) }; $f(0))",
            "[1..100000000]",
            "$count([1..2000000])",
            "($f := function($n){ $n = 0 ? 1 : {'a': [$f($n - 1)]} }; $f(400))",
        ] {
            let err = evaluate(expr, &states, &vars, "Output").expect_err(expr);
            assert_eq!(err.error, "States.QueryEvaluationError", "{expr}: {err}");
        }
    }
}
