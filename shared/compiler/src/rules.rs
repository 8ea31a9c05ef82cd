//! Condition rules (`condition.if` / `condition.switch` config) → ASL Choice rules.
//!
//! Every comparison is wrapped with `IsPresent` and a type test, so that a missing field or a
//! value of another type makes the rule false instead of failing the run with `States.Runtime`
//! (which is what a bare `NumericGreaterThan` on a missing path does on AWS).

use serde_json::{Map, Value, json};

fn var(field: &str, op: &str, operand: Value) -> Value {
    let mut m = Map::new();
    m.insert("Variable".into(), Value::String(field.to_owned()));
    m.insert(op.into(), operand);
    Value::Object(m)
}

fn and(rules: Vec<Value>) -> Value {
    if rules.len() == 1 {
        return rules.into_iter().next().unwrap_or(Value::Null);
    }
    json!({ "And": rules })
}

fn or(rules: Vec<Value>) -> Value {
    if rules.len() == 1 {
        return rules.into_iter().next().unwrap_or(Value::Null);
    }
    json!({ "Or": rules })
}

fn not(rule: Value) -> Value {
    json!({ "Not": rule })
}

fn present(field: &str) -> Value {
    var(field, "IsPresent", json!(true))
}

/// Escapes a literal for `StringMatches` (where `*` is a wildcard and `\` escapes).
fn glob_literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('*', "\\*")
}

/// A comparison of a present, correctly typed field.
fn typed(field: &str, type_test: &str, op: &str, operand: Value) -> Value {
    and(vec![
        present(field),
        var(field, type_test, json!(true)),
        var(field, op, operand),
    ])
}

fn compare(field: &str, op: &str, value: &Value) -> Option<Value> {
    let (prefix, type_test) = match value {
        Value::String(_) => ("String", "IsString"),
        Value::Number(_) => ("Numeric", "IsNumeric"),
        Value::Bool(_) if op == "Equals" => ("Boolean", "IsBoolean"),
        _ => return None,
    };
    Some(typed(
        field,
        type_test,
        &format!("{prefix}{op}"),
        value.clone(),
    ))
}

fn compare_path(field: &str, op: &str, other: &str) -> Value {
    let mut variants = vec![
        and(vec![
            present(field),
            present(other),
            var(field, "IsString", json!(true)),
            var(other, "IsString", json!(true)),
            var(field, &format!("String{op}Path"), json!(other)),
        ]),
        and(vec![
            present(field),
            present(other),
            var(field, "IsNumeric", json!(true)),
            var(other, "IsNumeric", json!(true)),
            var(field, &format!("Numeric{op}Path"), json!(other)),
        ]),
    ];
    if op == "Equals" {
        variants.push(and(vec![
            present(field),
            present(other),
            var(field, "IsBoolean", json!(true)),
            var(other, "IsBoolean", json!(true)),
            var(field, "BooleanEqualsPath", json!(other)),
        ]));
    }
    or(variants)
}

/// Lowers one rule; `None` if it cannot run as a native Choice (e.g. `regex`, or a comparison
/// with an object).
pub fn lower_rule(rule: &Value) -> Option<Value> {
    let obj = rule.as_object()?;
    if let Some(all) = obj.get("all").and_then(Value::as_array) {
        return Some(and(all.iter().map(lower_rule).collect::<Option<_>>()?));
    }
    if let Some(any) = obj.get("any").and_then(Value::as_array) {
        return Some(or(any.iter().map(lower_rule).collect::<Option<_>>()?));
    }
    if let Some(inner) = obj.get("not") {
        return Some(not(lower_rule(inner)?));
    }
    let field = obj.get("field")?.as_str()?;
    let op = obj.get("op")?.as_str()?;
    let value = obj.get("value");
    if let Some(other) = obj.get("valueField").and_then(Value::as_str) {
        let cmp = match op {
            "equals" => "Equals",
            "notEquals" => return Some(not(compare_path(field, "Equals", other))),
            "gt" => "GreaterThan",
            "gte" => "GreaterThanEquals",
            "lt" => "LessThan",
            "lte" => "LessThanEquals",
            _ => return None,
        };
        return Some(compare_path(field, cmp, other));
    }
    let string = || value.and_then(Value::as_str);
    Some(match op {
        "equals" => match value {
            Some(Value::Null) | None => {
                and(vec![present(field), var(field, "IsNull", json!(true))])
            }
            Some(v) => compare(field, "Equals", v)?,
        },
        "notEquals" => not(lower_rule(
            &json!({"field": field, "op": "equals", "value": value}),
        )?),
        "gt" => compare(field, "GreaterThan", value?)?,
        "gte" => compare(field, "GreaterThanEquals", value?)?,
        "lt" => compare(field, "LessThan", value?)?,
        "lte" => compare(field, "LessThanEquals", value?)?,
        "before" => typed(field, "IsTimestamp", "TimestampLessThan", json!(string()?)),
        "after" => typed(
            field,
            "IsTimestamp",
            "TimestampGreaterThan",
            json!(string()?),
        ),
        "contains" => typed(
            field,
            "IsString",
            "StringMatches",
            json!(format!("*{}*", glob_literal(string()?))),
        ),
        "startsWith" => typed(
            field,
            "IsString",
            "StringMatches",
            json!(format!("{}*", glob_literal(string()?))),
        ),
        "endsWith" => typed(
            field,
            "IsString",
            "StringMatches",
            json!(format!("*{}", glob_literal(string()?))),
        ),
        "matches" => typed(field, "IsString", "StringMatches", json!(string()?)),
        "exists" => present(field),
        "notExists" => var(field, "IsPresent", json!(false)),
        "isNull" => and(vec![present(field), var(field, "IsNull", json!(true))]),
        "isNotNull" => and(vec![present(field), var(field, "IsNull", json!(false))]),
        "isString" => and(vec![present(field), var(field, "IsString", json!(true))]),
        "isNumber" => and(vec![present(field), var(field, "IsNumeric", json!(true))]),
        "isBoolean" => and(vec![present(field), var(field, "IsBoolean", json!(true))]),
        "isTimestamp" => and(vec![present(field), var(field, "IsTimestamp", json!(true))]),
        "isEmpty" => empty(field),
        "isNotEmpty" => not(empty(field)),
        _ => return None,
    })
}

/// Missing, null, "" or an empty array. ASL has no array test, so a non-scalar without an
/// element at index 0 counts as empty (which also holds for objects).
fn empty(field: &str) -> Value {
    let first = format!("{field}[0]");
    or(vec![
        var(field, "IsPresent", json!(false)),
        var(field, "IsNull", json!(true)),
        and(vec![
            var(field, "IsString", json!(true)),
            var(field, "StringEquals", json!("")),
        ]),
        and(vec![
            var(field, "IsString", json!(false)),
            var(field, "IsNumeric", json!(false)),
            var(field, "IsBoolean", json!(false)),
            var(&first, "IsPresent", json!(false)),
        ]),
    ])
}

/// Lowers a rule group (`match` + `rules`); `None` if any rule is not native.
pub fn lower_group(config: &Value) -> Option<Value> {
    let rules: Vec<Value> = config
        .get("rules")?
        .as_array()?
        .iter()
        .map(lower_rule)
        .collect::<Option<_>>()?;
    if rules.is_empty() {
        return None;
    }
    Some(match config.get("match").and_then(Value::as_str) {
        Some("any") => or(rules),
        _ => and(rules),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_comparison_is_guarded() {
        let r = lower_rule(&json!({"field": "$.a", "op": "gt", "value": 3})).expect("native");
        assert_eq!(
            r,
            json!({"And": [
                {"Variable": "$.a", "IsPresent": true},
                {"Variable": "$.a", "IsNumeric": true},
                {"Variable": "$.a", "NumericGreaterThan": 3}
            ]})
        );
    }

    #[test]
    fn string_ops_become_globs_with_escapes() {
        let r =
            lower_rule(&json!({"field": "$.s", "op": "contains", "value": "a*b"})).expect("native");
        assert_eq!(r["And"][2]["StringMatches"], "*a\\*b*");
    }

    #[test]
    fn groups_nest() {
        let r = lower_group(&json!({"match": "any", "rules": [
            {"field": "$.a", "op": "exists"},
            {"not": {"all": [{"field": "$.b", "op": "isNull"}]}}
        ]}))
        .expect("native");
        assert_eq!(r["Or"][0], json!({"Variable": "$.a", "IsPresent": true}));
        assert!(r["Or"][1]["Not"].is_object());
    }

    #[test]
    fn regex_and_object_values_are_not_native() {
        assert!(lower_rule(&json!({"field": "$.a", "op": "regex", "value": "^x"})).is_none());
        assert!(lower_rule(&json!({"field": "$.a", "op": "equals", "value": {"x": 1}})).is_none());
        assert!(lower_rule(&json!({"field": "$.a", "op": "gt", "value": true})).is_none());
    }

    #[test]
    fn path_comparisons_cover_types() {
        let r = lower_rule(&json!({"field": "$.a", "op": "equals", "valueField": "$.b"}))
            .expect("native");
        assert_eq!(r["Or"].as_array().map(Vec::len), Some(3));
    }
}
