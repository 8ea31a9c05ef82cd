//! Building blocks for JSONata-mode state machines (`QueryLanguage: "JSONata"`).
//!
//! In JSONata mode templates are JSONata expressions. Every expression the compiler emits for
//! user templates starts with bindings, so users write `$nodes.<id>.output`, `$run`, `$item`
//! and `$index` (and may use `$states` directly).

use crate::template::{self, Segment};
use serde_json::{Map, Value};

/// Variables bound in front of every user template.
const BINDINGS: &str = "$nodes := $states.input.nodes; $run := $states.input.run; $item := $states.input.item; $index := $states.input.index;";

/// `{% expr %}` as a JSON string.
pub fn wrap(expr: &str) -> Value {
    Value::String(format!("{{% {expr} %}}"))
}

/// The run document with `$states.input.nodes.<id>` replaced by `entry` (a JSONata expression).
pub fn set_entry(id: &str, entry: &str) -> String {
    format!(
        "$merge([$states.input, {{\"nodes\": $merge([$states.input.nodes, {{{}: {entry}}}])}}])",
        string_literal(id)
    )
}

/// A JSONata string literal.
pub fn string_literal(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Syntax check of a user JSONata expression with a real JSONata parser.
fn check_expr(expr: &str) -> Result<(), String> {
    jsonata_core::parser::parse(expr)
        .map(|_| ())
        .map_err(|e| format!("`{expr}` is not valid JSONata: {e}"))
}

/// A template string as a JSONata expression (without bindings): a single template keeps its
/// value's type; text around templates makes a string.
fn template_expr(s: &str) -> Result<Option<String>, String> {
    if !template::has_template(s) {
        return Ok(None);
    }
    let segments = template::parse(s)?;
    if let [Segment::Expr(e)] = segments.as_slice() {
        check_expr(e)?;
        return Ok(Some(format!("({e})")));
    }
    if !segments.iter().any(|seg| matches!(seg, Segment::Expr(_))) {
        return Ok(None);
    }
    let mut parts = Vec::new();
    for seg in &segments {
        match seg {
            Segment::Text(t) => parts.push(string_literal(t)),
            Segment::Expr(e) => {
                check_expr(e)?;
                parts.push(format!("$string({e})"));
            }
        }
    }
    Ok(Some(format!("({})", parts.join(" & "))))
}

/// A problem with a value, located by a JSON Pointer relative to the value.
pub type Located = (String, String);

/// Checks a config value for JSONata mode.
pub fn check_value(v: &Value) -> Result<(), Located> {
    lower_value(v).map(|_| ())
}

/// A config value for `Arguments`: template strings become `{% %}` expressions (at any depth).
pub fn lower_value(v: &Value) -> Result<Value, Located> {
    match v {
        Value::String(s) => {
            if s.trim_start().starts_with("{%") {
                return Err((
                    String::new(),
                    format!(
                        "{s:?} would be evaluated as JSONata; write templates as {{{{ expression }}}}"
                    ),
                ));
            }
            match template_expr(s).map_err(|m| (String::new(), m))? {
                Some(e) => Ok(wrap(&format!("({BINDINGS} {e})"))),
                None => Ok(v.clone()),
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| lower_value(item).map_err(|(p, m)| (format!("/{i}{p}"), m)))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, item) in m {
                let lowered = lower_value(item).map_err(|(p, msg)| {
                    (format!("/{}{p}", crate::finding::pointer_token(k)), msg)
                })?;
                out.insert(k.clone(), lowered);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// A config value as one JSONata expression (JSON literals are JSONata literals), for embedding
/// in a larger expression. Callers put [`with_bindings`] around the result.
pub fn value_expr(v: &Value) -> String {
    match v {
        Value::String(s) => match template_expr(s) {
            Ok(Some(e)) => e,
            _ => string_literal(s),
        },
        Value::Array(items) => {
            // JSONata semantics: a literal nested array stays nested; an array that a template
            // yields is spliced in (as in any JSONata array constructor).
            let parts: Vec<String> = items.iter().map(value_expr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(m) => {
            let fields: Vec<String> = m
                .iter()
                .map(|(k, item)| format!("{}: {}", string_literal(k), value_expr(item)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

/// `( bindings; expr )`.
pub fn with_bindings(expr: &str) -> String {
    format!("({BINDINGS} {expr})")
}

/// A JSONPath reference (`$.a.b[0]`, `$$.Execution.Id`) as a JSONata path on `$states`.
pub fn path(p: &str) -> Option<String> {
    let (mut out, rest) = if let Some(rest) = p.strip_prefix("$$") {
        ("$states.context".to_owned(), rest)
    } else if let Some(rest) = p.strip_prefix('$') {
        ("$states.input".to_owned(), rest)
    } else {
        return None;
    };
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
                if name.is_empty() {
                    return None;
                }
                out.push('.');
                out.push_str(&name_token(&name));
            }
            '[' => {
                let mut inner = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    inner.push(c);
                }
                if let Ok(i) = inner.trim().parse::<usize>() {
                    out.push_str(&format!("[{i}]"));
                } else {
                    let name = inner.trim().trim_matches('\'').trim_matches('"');
                    out.push('.');
                    out.push_str(&name_token(name));
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

/// A field name in a JSONata path: bare when it is a plain identifier and no operator word,
/// else in backticks.
pub fn name_token(name: &str) -> String {
    const WORDS: [&str; 7] = ["and", "or", "in", "true", "false", "null", "function"];
    let mut chars = name.chars();
    let plain = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !WORDS.contains(&name);
    if plain {
        name.to_owned()
    } else {
        format!("`{name}`")
    }
}

fn typed(f: &str, ty: &str, cond: String) -> String {
    format!("($exists({f}) and $type({f}) = \"{ty}\" and {cond})")
}

/// Condition rules (see `rules.rs`) as a JSONata boolean expression.
pub fn rule(rule: &Value) -> Option<String> {
    let obj = rule.as_object()?;
    let join = |items: &Vec<Value>, op: &str| -> Option<String> {
        let parts: Vec<String> = items.iter().map(self::rule).collect::<Option<_>>()?;
        Some(format!("({})", parts.join(&format!(" {op} "))))
    };
    if let Some(all) = obj.get("all").and_then(Value::as_array) {
        return join(all, "and");
    }
    if let Some(any) = obj.get("any").and_then(Value::as_array) {
        return join(any, "or");
    }
    if let Some(inner) = obj.get("not") {
        return Some(format!("$not({})", self::rule(inner)?));
    }
    let f = path(obj.get("field")?.as_str()?)?;
    let op = obj.get("op")?.as_str()?;
    let value = obj.get("value");
    if let Some(other) = obj.get("valueField").and_then(Value::as_str) {
        let g = path(other)?;
        let cmp = match op {
            "equals" => "=",
            "notEquals" => {
                return Some(format!(
                    "$not($exists({f}) and $exists({g}) and $type({f}) = $type({g}) and {f} = {g})"
                ));
            }
            "gt" => ">",
            "gte" => ">=",
            "lt" => "<",
            "lte" => "<=",
            _ => return None,
        };
        return Some(format!(
            "($exists({f}) and $exists({g}) and $type({f}) = $type({g}) and $type({f}) in [\"string\", \"number\", \"boolean\"] and {f} {cmp} {g})"
        ));
    }
    let literal = |v: &Value| -> Option<(String, &'static str)> {
        match v {
            Value::String(s) => Some((string_literal(s), "string")),
            Value::Number(n) => Some((n.to_string(), "number")),
            Value::Bool(b) => Some((b.to_string(), "boolean")),
            _ => None,
        }
    };
    let compare = |cmp: &str| -> Option<String> {
        let (lit, ty) = literal(value?)?;
        if ty == "boolean" && cmp != "=" {
            return None;
        }
        Some(typed(&f, ty, format!("{f} {cmp} {lit}")))
    };
    let string_arg = || value.and_then(Value::as_str).map(string_literal);
    let is_timestamp =
        format!("$contains({f}, /^\\d{{4}}-\\d{{2}}-\\d{{2}}T\\d{{2}}:\\d{{2}}:\\d{{2}}/)");
    Some(match op {
        "equals" => match value {
            Some(Value::Null) | None => format!("($exists({f}) and {f} = null)"),
            Some(_) => compare("=")?,
        },
        "notEquals" => format!(
            "$not({})",
            self::rule(
                &serde_json::json!({"field": obj.get("field")?, "op": "equals", "value": value})
            )?
        ),
        "gt" => compare(">")?,
        "gte" => compare(">=")?,
        "lt" => compare("<")?,
        "lte" => compare("<=")?,
        "before" | "after" => {
            let cmp = if op == "before" { "<" } else { ">" };
            let lit = string_arg()?;
            typed(
                &f,
                "string",
                format!("{is_timestamp} and $toMillis({f}) {cmp} $toMillis({lit})"),
            )
        }
        "contains" => typed(&f, "string", format!("$contains({f}, {})", string_arg()?)),
        "startsWith" => {
            let s = value?.as_str()?;
            typed(
                &f,
                "string",
                format!(
                    "$substring({f}, 0, {}) = {}",
                    s.chars().count(),
                    string_literal(s)
                ),
            )
        }
        "endsWith" => {
            let s = value?.as_str()?;
            let n = s.chars().count();
            typed(
                &f,
                "string",
                format!(
                    "$length({f}) >= {n} and $substring({f}, $length({f}) - {n}) = {}",
                    string_literal(s)
                ),
            )
        }
        "matches" => typed(
            &f,
            "string",
            format!(
                "$contains({f}, {})",
                regex_literal(&glob_to_regex(value?.as_str()?))
            ),
        ),
        "regex" => typed(
            &f,
            "string",
            format!("$contains({f}, {})", regex_literal(value?.as_str()?)),
        ),
        "exists" => format!("$exists({f})"),
        "notExists" => format!("$not($exists({f}))"),
        "isNull" => format!("($exists({f}) and {f} = null)"),
        "isNotNull" => format!("($exists({f}) and {f} != null)"),
        "isString" => format!("($exists({f}) and $type({f}) = \"string\")"),
        "isNumber" => format!("($exists({f}) and $type({f}) = \"number\")"),
        "isBoolean" => format!("($exists({f}) and $type({f}) = \"boolean\")"),
        "isTimestamp" => typed(&f, "string", is_timestamp),
        "isEmpty" => empty(&f),
        "isNotEmpty" => format!("$not({})", empty(&f)),
        _ => return None,
    })
}

fn empty(f: &str) -> String {
    format!(
        "($not($exists({f})) or {f} = null or {f} = \"\" or ($type({f}) = \"array\" and $count({f}) = 0) or ($type({f}) = \"object\" and $count($keys({f})) = 0))"
    )
}

/// A rule group (`match` + `rules`) as a JSONata boolean.
pub fn group(config: &Value) -> Option<String> {
    let rules: Vec<String> = config
        .get("rules")?
        .as_array()?
        .iter()
        .map(rule)
        .collect::<Option<_>>()?;
    if rules.is_empty() {
        return None;
    }
    let op = if config.get("match").and_then(Value::as_str) == Some("any") {
        " or "
    } else {
        " and "
    };
    Some(format!("({})", rules.join(op)))
}

fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("^");
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push_str(&regex_escape(n));
                }
            }
            '*' => out.push_str(".*"),
            c => out.push_str(&regex_escape(c)),
        }
    }
    out.push('$');
    out
}

fn regex_escape(c: char) -> String {
    if "\\^$.|?*+()[]{}/".contains(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

/// A JSONata regex literal `/.../` (slashes in the pattern escaped).
fn regex_literal(pattern: &str) -> String {
    let mut out = String::from("/");
    let mut prev_backslash = false;
    for c in pattern.chars() {
        if c == '/' && !prev_backslash {
            out.push('\\');
        }
        prev_backslash = c == '\\' && !prev_backslash;
        out.push(c);
    }
    out.push('/');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_become_states_paths() {
        let p = |s: &str| path(s).unwrap_or_default();
        assert_eq!(p("$.nodes.a.output[0]"), "$states.input.nodes.a.output[0]");
        assert_eq!(p("$$.Execution.Id"), "$states.context.Execution.Id");
        assert_eq!(p("$.a.and.b-c"), "$states.input.a.`and`.`b-c`");
        assert_eq!(p("$['a b']"), "$states.input.`a b`");
        assert_eq!(path("nodes"), None);
    }

    #[test]
    fn templates_keep_types_or_make_strings() {
        assert_eq!(
            template_expr("{{ $nodes.a.output }}").unwrap().as_deref(),
            Some("($nodes.a.output)")
        );
        assert_eq!(
            template_expr("Hi {{ $nodes.a.output.name }}!")
                .unwrap()
                .as_deref(),
            Some("(\"Hi \" & $string($nodes.a.output.name) & \"!\")")
        );
        assert!(template_expr("{{ $nodes.a[0 }}").is_err());
    }

    #[test]
    fn lowered_values_keep_literals_and_reject_raw_jsonata() {
        let v = lower_value(&json!({"a": ["x", "{{ $item.id }}"], "b": 1})).unwrap();
        assert_eq!(v["a"][0], "x");
        assert!(v["a"][1].as_str().unwrap().starts_with("{% ("));
        let (ptr, _) = lower_value(&json!({"a": {"b": "{% 1 %}"}})).unwrap_err();
        assert_eq!(ptr, "/a/b");
    }

    #[test]
    fn regex_rules_are_native() {
        let r = rule(&json!({"field": "$.a", "op": "regex", "value": "^a/b$"})).unwrap();
        assert!(r.contains("/^a\\/b$/"), "{r}");
        let g = rule(&json!({"field": "$.a", "op": "matches", "value": "ab*.c"})).unwrap();
        assert!(g.contains("/^ab.*\\.c$/"), "{g}");
    }
}
