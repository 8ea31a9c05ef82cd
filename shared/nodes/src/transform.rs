//! Transform node types that run on the node-runner: `transform.filter`,
//! `transform.aggregate`, `transform.validate` and `transform.merge` (its deep and array
//! modes; shallow merges of plain references compile to a native intrinsic).
//! (`transform.set` compiles to a Pass state and never reaches the runner.)
//!
//! Item expressions (`condition`, `groupBy`, `field`) are JSONata with `$` bound to the item,
//! evaluated by the same engine and under the same bounds (time, depth, sequence length) as
//! the interpreter's JSONata mode; each is parsed once per node run.

use crate::event::NodeOutput;
use crate::runner::{NodeContext, NodeHandler, parse_config};
use crate::{BoxFuture, NodeError};
use cm_asl::jsonata::Expression;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The transform handlers by node type.
pub fn handlers() -> Vec<(&'static str, Arc<dyn NodeHandler>)> {
    vec![
        ("transform.filter", Arc::new(Sync(filter))),
        ("transform.aggregate", Arc::new(Sync(aggregate))),
        ("transform.validate", Arc::new(Sync(validate))),
        ("transform.merge", Arc::new(Sync(merge))),
    ]
}

/// A handler from a synchronous function of (config, input).
struct Sync(fn(Value, Value) -> Result<NodeOutput, NodeError>);

impl NodeHandler for Sync {
    fn run<'a>(
        &'a self,
        config: Value,
        input: Value,
        _ctx: &'a NodeContext,
    ) -> BoxFuture<'a, Result<NodeOutput, NodeError>> {
        let r = (self.0)(config, input);
        Box::pin(async move { r })
    }
}

fn expression(source: &str, field: &str) -> Result<Expression, NodeError> {
    Expression::parse(source).map_err(|e| {
        NodeError::Expression(format!("config.{field}: `{source}` does not parse: {e}"))
    })
}

fn eval(
    expr: &Expression,
    item: &Value,
    field: &str,
    index: usize,
) -> Result<Option<Value>, NodeError> {
    expr.evaluate(item).map_err(|e| {
        NodeError::Expression(format!(
            "config.{field}: `{}` failed on item {index}: {e}",
            expr.source()
        ))
    })
}

fn items(v: Value) -> Result<Vec<Value>, NodeError> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(NodeError::InvalidInput(format!(
            "config.items must evaluate to an array, got {}",
            type_name(&other)
        ))),
    }
}

/// JSON type name for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// JSONata truthiness (`$boolean`): what a filter condition's result means.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(truthy),
        Value::Object(m) => !m.is_empty(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterConfig {
    items: Value,
    condition: String,
}

/// Keeps the items whose condition is truthy; output `{items, count, dropped}`.
fn filter(config: Value, _input: Value) -> Result<NodeOutput, NodeError> {
    let cfg: FilterConfig = parse_config(config)?;
    let condition = expression(&cfg.condition, "condition")?;
    let all = items(cfg.items)?;
    let total = all.len();
    let mut kept = Vec::new();
    for (i, item) in all.into_iter().enumerate() {
        if eval(&condition, &item, "condition", i)?.is_some_and(|v| truthy(&v)) {
            kept.push(item);
        }
    }
    let count = kept.len();
    Ok(NodeOutput::out(
        json!({"items": kept, "count": count, "dropped": total - count}),
    ))
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Op {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Collect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Operation {
    op: Op,
    #[serde(default)]
    field: Option<String>,
    #[serde(rename = "as")]
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AggregateConfig {
    items: Value,
    #[serde(default)]
    group_by: Option<String>,
    operations: Vec<Operation>,
}

/// Per-operation accumulator.
enum Acc {
    Count(u64),
    Sum(f64, u64),
    Min(Option<f64>),
    Max(Option<f64>),
    Collect(Vec<Value>),
}

impl Acc {
    fn new(op: Op) -> Acc {
        match op {
            Op::Count => Acc::Count(0),
            Op::Sum | Op::Avg => Acc::Sum(0.0, 0),
            Op::Min => Acc::Min(None),
            Op::Max => Acc::Max(None),
            Op::Collect => Acc::Collect(Vec::new()),
        }
    }

    fn finish(self, op: Op) -> Value {
        match (self, op) {
            (Acc::Count(n), _) => json!(n),
            (Acc::Sum(s, _), Op::Sum) => number(s),
            (Acc::Sum(_, 0), _) => Value::Null,
            (Acc::Sum(s, n), _) => number(s / n as f64),
            (Acc::Min(v) | Acc::Max(v), _) => v.map_or(Value::Null, number),
            (Acc::Collect(v), _) => Value::Array(v),
        }
    }
}

/// Whole numbers print without a fraction (as JSONata and Step Functions do).
fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

/// Groups items (optionally) and computes each operation per group. Without `groupBy` the
/// output is one object of results; with it, `{groups: [{key, <as>...}], count}` in order of
/// first appearance. `count` counts items (or items whose `field` is defined); numeric
/// operations skip undefined/null values and fail on other non-numbers, naming the item.
fn aggregate(config: Value, _input: Value) -> Result<NodeOutput, NodeError> {
    let cfg: AggregateConfig = parse_config(config)?;
    let all = items(cfg.items)?;
    let group_by = cfg
        .group_by
        .as_deref()
        .map(|g| expression(g, "groupBy"))
        .transpose()?;
    let mut fields = Vec::new();
    for (i, op) in cfg.operations.iter().enumerate() {
        let field = format!("operations[{i}].field");
        let expr = op
            .field
            .as_deref()
            .map(|f| expression(f, &field))
            .transpose()?;
        if expr.is_none() && matches!(op.op, Op::Sum | Op::Avg | Op::Min | Op::Max) {
            return Err(NodeError::InvalidConfig(format!(
                "config.operations[{i}]: `{}` needs a `field`",
                format!("{:?}", op.op).to_lowercase()
            )));
        }
        fields.push((field, expr));
    }
    // Groups in first-seen order; keys compared by their JSON text.
    let mut order: Vec<(String, Value)> = Vec::new();
    let mut groups: std::collections::HashMap<String, Vec<Acc>> = Default::default();
    for (i, item) in all.iter().enumerate() {
        let key = match &group_by {
            Some(g) => eval(g, item, "groupBy", i)?.unwrap_or(Value::Null),
            None => Value::Null,
        };
        let k = key.to_string();
        let accs = groups.entry(k.clone()).or_insert_with(|| {
            order.push((k, key));
            cfg.operations.iter().map(|o| Acc::new(o.op)).collect()
        });
        for (j, ((field, expr), acc)) in fields.iter().zip(accs.iter_mut()).enumerate() {
            let value = match expr {
                Some(e) => eval(e, item, field, i)?,
                None => Some(item.clone()),
            };
            let numeric = |v: &Value| -> Result<f64, NodeError> {
                v.as_f64().ok_or_else(|| {
                    NodeError::InvalidInput(format!(
                        "config.{field}: item {i} gives {}, operation `{}` needs numbers",
                        type_name(v),
                        cfg.operations[j].name
                    ))
                })
            };
            match (acc, value) {
                (Acc::Count(n), Some(_)) => *n += 1,
                (_, None | Some(Value::Null)) => {}
                (Acc::Sum(s, n), Some(v)) => {
                    *s += numeric(&v)?;
                    *n += 1;
                }
                (Acc::Min(m), Some(v)) => {
                    let f = numeric(&v)?;
                    *m = Some(m.map_or(f, |x| x.min(f)));
                }
                (Acc::Max(m), Some(v)) => {
                    let f = numeric(&v)?;
                    *m = Some(m.map_or(f, |x| x.max(f)));
                }
                (Acc::Collect(c), Some(v)) => c.push(v),
            }
        }
    }
    let results = |accs: Vec<Acc>| -> Map<String, Value> {
        cfg.operations
            .iter()
            .zip(accs)
            .map(|(o, a)| (o.name.clone(), a.finish(o.op)))
            .collect()
    };
    if group_by.is_none() {
        let accs = match groups.remove("null") {
            Some(a) => a,
            None => cfg.operations.iter().map(|o| Acc::new(o.op)).collect(),
        };
        return Ok(NodeOutput::out(Value::Object(results(accs))));
    }
    let mut out = Vec::with_capacity(order.len());
    for (k, key) in order {
        if let Some(accs) = groups.remove(&k) {
            let mut m = Map::new();
            m.insert("key".into(), key);
            m.extend(results(accs));
            out.push(Value::Object(m));
        }
    }
    let count = out.len();
    Ok(NodeOutput::out(json!({"groups": out, "count": count})))
}

#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum OnInvalid {
    #[default]
    Fail,
    Route,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ValidateConfig {
    data: Value,
    schema: Value,
    #[serde(default)]
    on_invalid: OnInvalid,
}

/// The violations of `data` against `schema`: `[{path, message}]` (JSON Pointers).
pub fn violations(schema: &Value, data: &Value) -> Result<Vec<Value>, NodeError> {
    let validator = jsonschema::validator_for(schema).map_err(|e| {
        NodeError::InvalidConfig(format!("config.schema is not a valid JSON Schema: {e}"))
    })?;
    Ok(validator
        .iter_errors(data)
        .take(100)
        .map(|e| json!({"path": e.instance_path().to_string(), "message": e.to_string()}))
        .collect())
}

/// Passes valid data through (`out`, or `valid` when routing); invalid data fails with
/// `ConcertMaster.ValidationFailed` or, with `onInvalid: route`, goes to `invalid` as
/// `{data, errors}`.
fn validate(config: Value, _input: Value) -> Result<NodeOutput, NodeError> {
    let cfg: ValidateConfig = parse_config(config)?;
    let errors = violations(&cfg.schema, &cfg.data)?;
    match (errors.is_empty(), cfg.on_invalid) {
        (true, OnInvalid::Fail) => Ok(NodeOutput::out(cfg.data)),
        (true, OnInvalid::Route) => Ok(NodeOutput::on("valid", cfg.data)),
        (false, OnInvalid::Route) => Ok(NodeOutput::on(
            "invalid",
            json!({"data": cfg.data, "errors": errors}),
        )),
        (false, OnInvalid::Fail) => {
            let first = errors[0]["path"].as_str().unwrap_or_default().to_owned();
            let message = errors[0]["message"].as_str().unwrap_or_default().to_owned();
            Err(NodeError::ValidationFailed {
                message: format!(
                    "{} violation(s); first at `{}`: {message}",
                    errors.len(),
                    if first.is_empty() { "/" } else { &first }
                ),
                errors,
            })
        }
    }
}

#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum MergeMode {
    #[default]
    Object,
    Array,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeConfig {
    sources: Vec<Value>,
    #[serde(default)]
    mode: MergeMode,
    #[serde(default)]
    deep: bool,
}

fn deep_merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => deep_merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Object mode: later sources win (recursively with `deep`); null sources are skipped.
/// Array mode: arrays are concatenated, other values appended as items.
fn merge(config: Value, _input: Value) -> Result<NodeOutput, NodeError> {
    let cfg: MergeConfig = parse_config(config)?;
    match cfg.mode {
        MergeMode::Object => {
            let mut out = Map::new();
            for (i, s) in cfg.sources.into_iter().enumerate() {
                match s {
                    Value::Null => {}
                    Value::Object(m) if cfg.deep => deep_merge(&mut out, m),
                    Value::Object(m) => out.extend(m),
                    other => {
                        return Err(NodeError::InvalidInput(format!(
                            "config.sources[{i}] is {}; object mode merges objects (use mode `array` to concatenate)",
                            type_name(&other)
                        )));
                    }
                }
            }
            Ok(NodeOutput::out(Value::Object(out)))
        }
        MergeMode::Array => {
            let mut out = Vec::new();
            for s in cfg.sources {
                match s {
                    Value::Array(items) => out.extend(items),
                    Value::Null => {}
                    other => out.push(other),
                }
            }
            Ok(NodeOutput::out(Value::Array(out)))
        }
    }
}
