//! `{{ expression }}` templates in node configs, and their lowering to ASL JSONPath
//! `Parameters` (`"key.$": "<path or intrinsic>"`).

use serde_json::{Map, Value};

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text.
    Text(String),
    /// The trimmed expression between `{{` and `}}`.
    Expr(String),
}

/// A template problem, located by JSON Pointer relative to the value being lowered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// JSON Pointer relative to the lowered value.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

/// Splits a string into text and `{{ }}` expressions.
pub fn parse(s: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            out.push(Segment::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed `{{{{` in {s:?}"))?;
        let expr = after[..end].trim();
        if expr.is_empty() {
            return Err(format!("empty `{{{{ }}}}` in {s:?}"));
        }
        if let Some(name) = secret_name(expr) {
            // Left as text: the node-runner resolves it just before the node runs, so the
            // value never enters the state machine's data or history.
            let text = format!("{{{{ secrets.{name} }}}}");
            match out.last_mut() {
                Some(Segment::Text(t)) => t.push_str(&text),
                _ => out.push(Segment::Text(text)),
            }
        } else {
            out.push(Segment::Expr(expr.to_owned()));
        }
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        match out.last_mut() {
            Some(Segment::Text(t)) => t.push_str(rest),
            _ => out.push(Segment::Text(rest.to_owned())),
        }
    }
    Ok(out)
}

/// The secret name of a `secrets.NAME` expression (letters, digits, `_ - . /`; 1–128).
pub fn secret_name(expr: &str) -> Option<&str> {
    let name = expr.strip_prefix("secrets.")?;
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    ok.then_some(name)
}

/// Whether a value contains a `{{ secrets.NAME }}` reference; the JSON Pointer of the first.
pub fn find_secret(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => parse(s)
            .ok()?
            .iter()
            .any(|seg| matches!(seg, Segment::Text(t) if t.contains("{{ secrets.")))
            .then(String::new),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| find_secret(x).map(|p| format!("/{i}{p}"))),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            find_secret(x).map(|p| format!("/{}{p}", crate::finding::pointer_token(k)))
        }),
        _ => None,
    }
}

/// Whether a string contains a template.
pub fn has_template(s: &str) -> bool {
    s.contains("{{")
}

/// Whether an expression is a JSONPath reference (`$...` or `$$...`).
pub fn is_path(expr: &str) -> bool {
    expr == "$" || expr.starts_with("$.") || expr.starts_with("$[") || expr.starts_with("$$.")
}

fn check_expr(expr: &str) -> Result<(), String> {
    if is_path(expr) {
        let mut depth = 0i32;
        let mut quote: Option<char> = None;
        for c in expr.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '[') => depth += 1,
                (None, ']') => depth -= 1,
                (None, c) if c.is_whitespace() => {
                    return Err(format!("`{expr}`: whitespace is not allowed in a JSONPath"));
                }
                _ => {}
            }
            if depth < 0 {
                break;
            }
        }
        if depth != 0 || quote.is_some() {
            return Err(format!("`{expr}`: unbalanced brackets or quotes"));
        }
        Ok(())
    } else if expr.starts_with("States.") && expr.ends_with(')') && expr.contains('(') {
        Ok(())
    } else {
        Err(format!(
            "`{expr}` is not a JSONPath (`$.nodes.<id>.output...`) or an intrinsic function (`States.Format(...)`)"
        ))
    }
}

/// If `s` is exactly one template holding a JSONPath reference, that path.
pub fn pure_path(s: &str) -> Option<String> {
    match parse(s).ok()?.as_slice() {
        [Segment::Expr(e)] if is_path(e) && check_expr(e).is_ok() => Some(e.clone()),
        _ => None,
    }
}

/// Escapes text for a single-quoted intrinsic function string argument.
fn intrinsic_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if matches!(c, '\'' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Lowers a template string to an ASL expression (for a `.$` key), or `None` if it has no
/// template and stays a literal.
pub fn lower_string(s: &str) -> Result<Option<String>, String> {
    if !has_template(s) {
        return Ok(None);
    }
    let segments = parse(s)?;
    if let [Segment::Expr(e)] = segments.as_slice() {
        check_expr(e)?;
        return Ok(Some(e.clone()));
    }
    if !segments.iter().any(|seg| matches!(seg, Segment::Expr(_))) {
        return Ok(None);
    }
    let mut format = String::new();
    let mut args = Vec::new();
    for seg in &segments {
        match seg {
            Segment::Text(t) => format.push_str(t),
            Segment::Expr(e) => {
                check_expr(e)?;
                format.push_str("{}");
                args.push(e.as_str());
            }
        }
    }
    // Format's template is itself an intrinsic string: escape everything but our `{}`s.
    let escaped = intrinsic_string(&format).replace("\\{\\}", "{}");
    Ok(Some(format!(
        "States.Format({escaped}, {})",
        args.join(", ")
    )))
}

fn literal_arg(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !has_template(s) => Some(intrinsic_string(s)),
        _ => None,
    }
}

/// Lowers a config value to a value usable in ASL `Parameters`: template strings become
/// `"key.$"` entries. `Ok(Err(expr))` means the whole value is dynamic (`expr` goes under a
/// `.$` key by the caller); `Ok(Ok(value))` is a (possibly nested) static-or-mixed value.
pub fn lower_value(v: &Value) -> Result<Result<Value, String>, TemplateError> {
    lower_at(v).map_err(|u| TemplateError {
        pointer: u
            .rev_path
            .iter()
            .rev()
            .map(|s| format!("/{}", crate::finding::pointer_token(s)))
            .collect(),
        message: u.message,
    })
}

/// Checks that a value's templates can be lowered, without building the lowered value.
pub fn check_value(v: &Value) -> Result<(), TemplateError> {
    if contains_template(v) {
        lower_value(v).map(|_| ())
    } else {
        Ok(())
    }
}

/// An error being unwound: path segments innermost first, joined into a pointer at the top so
/// that the common (valid) path builds no strings.
struct Unwinding {
    rev_path: Vec<String>,
    message: String,
}

fn lower_at(v: &Value) -> Result<Result<Value, String>, Unwinding> {
    let fail = |message: String| Unwinding {
        rev_path: Vec::new(),
        message,
    };
    let within = |segment: String| {
        move |mut u: Unwinding| {
            u.rev_path.push(segment.clone());
            u
        }
    };
    match v {
        Value::String(s) => match lower_string(s).map_err(fail)? {
            Some(expr) => Ok(Err(expr)),
            None => Ok(Ok(v.clone())),
        },
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, child) in map {
                if k.ends_with(".$") {
                    return Err(within(k.clone())(fail(format!(
                        "key `{k}` ends with `.$`, which ASL reserves for paths; use a {{{{ }}}} template instead"
                    ))));
                }
                match lower_at(child).map_err(within(k.clone()))? {
                    Ok(value) => {
                        out.insert(k.clone(), value);
                    }
                    Err(expr) => {
                        out.insert(format!("{k}.$"), Value::String(expr));
                    }
                }
            }
            Ok(Ok(Value::Object(out)))
        }
        Value::Array(items) => {
            if !contains_template(v) {
                return Ok(Ok(v.clone()));
            }
            // JSONPath Parameters cannot place a path inside an array; States.Array can build
            // one from scalars and paths.
            let mut args = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(lit) = literal_arg(item) {
                    args.push(lit);
                } else if let Value::String(s) = item {
                    let lowered = lower_string(s).map_err(|m| within(i.to_string())(fail(m)))?;
                    args.push(lowered.unwrap_or_default());
                } else {
                    return Err(within(i.to_string())(fail(
                        "in JSONPath mode an array holding templates may only contain scalars and templates; build objects with a transform.set node first".into(),
                    )));
                }
            }
            Ok(Err(format!("States.Array({})", args.join(", "))))
        }
        _ => Ok(Ok(v.clone())),
    }
}

/// Whether a value contains a template anywhere.
pub fn contains_template(v: &Value) -> bool {
    match v {
        Value::String(s) => has_template(s),
        Value::Array(a) => a.iter().any(contains_template),
        Value::Object(m) => m.values().any(contains_template),
        _ => false,
    }
}

/// Every template expression in a value, with its JSON Pointer (prefixed with `ptr`).
pub fn expressions(v: &Value, ptr: &str, out: &mut Vec<(String, String)>) {
    let mut path: Vec<Seg<'_>> = Vec::new();
    walk_expressions(v, ptr, &mut path, out);
}

/// A JSON Pointer segment, borrowed while walking.
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn walk_expressions<'a>(
    v: &'a Value,
    prefix: &str,
    path: &mut Vec<Seg<'a>>,
    out: &mut Vec<(String, String)>,
) {
    match v {
        Value::String(s) if has_template(s) => {
            let mut pointer = prefix.to_owned();
            for seg in path.iter() {
                match seg {
                    Seg::Key(k) => {
                        pointer.push('/');
                        pointer.push_str(&crate::finding::pointer_token(k));
                    }
                    Seg::Index(i) => {
                        pointer.push('/');
                        pointer.push_str(&i.to_string());
                    }
                }
            }
            for seg in parse(s).into_iter().flatten() {
                if let Segment::Expr(e) = seg {
                    out.push((pointer.clone(), e));
                }
            }
        }
        Value::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                walk_expressions(item, prefix, path, out);
                path.pop();
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                path.push(Seg::Key(k));
                walk_expressions(item, prefix, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Node ids referenced as `$.nodes.<id>` / `$.nodes['<id>']` (JSONPath) or `$nodes.<id>`
/// (JSONata) in an expression.
pub fn referenced_nodes(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["$.nodes", "$nodes"] {
        let mut rest = expr;
        while let Some(i) = rest.find(prefix) {
            let after = &rest[i + prefix.len()..];
            let id: String = if let Some(stripped) = after.strip_prefix('.') {
                stripped
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            } else if let Some(stripped) = after.strip_prefix("['") {
                stripped.chars().take_while(|c| *c != '\'').collect()
            } else {
                String::new()
            };
            if !id.is_empty() && !out.contains(&id) {
                out.push(id);
            }
            rest = after;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_segments() {
        assert_eq!(
            parse("Hi {{ $.a }}!").expect("ok"),
            vec![
                Segment::Text("Hi ".into()),
                Segment::Expr("$.a".into()),
                Segment::Text("!".into())
            ]
        );
        assert!(parse("{{ $.a ").is_err());
        assert!(parse("{{ }}").is_err());
    }

    #[test]
    fn secret_references_stay_literal_text() {
        assert_eq!(lower_string("{{ secrets.TOKEN }}").expect("ok"), None);
        assert_eq!(
            lower_string("Bearer {{secrets.api-key}}").expect("ok"),
            None
        );
        assert_eq!(
            lower_string("{{ secrets.T }}:{{ $.nodes.a.output.id }}").expect("ok"),
            Some("States.Format('\\{\\{ secrets.T \\}\\}:{}', $.nodes.a.output.id)".into())
        );
        assert_eq!(
            find_secret(&serde_json::json!({"h": {"a b": ["x", "{{ secrets.K }}"]}})),
            Some("/h/a b/1".into())
        );
        assert_eq!(
            find_secret(&serde_json::json!({"h": "{{ $.secrets.K }}"})),
            None
        );
        // `secrets.` with an invalid name is an ordinary (invalid) expression.
        assert!(lower_string("{{ secrets.a b }}").is_err());
    }

    #[test]
    fn lowers_pure_paths_and_formats() {
        assert_eq!(lower_string("plain").expect("ok"), None);
        assert_eq!(
            lower_string("{{ $.nodes.a.output }}")
                .expect("ok")
                .as_deref(),
            Some("$.nodes.a.output")
        );
        assert_eq!(
            lower_string("it's {{ $.a }} {x}").expect("ok").as_deref(),
            Some("States.Format('it\\'s {} \\{x\\}', $.a)")
        );
        assert!(lower_string("{{ amount > 3 }}").is_err());
        assert!(lower_string("{{ $.a[0 }}").is_err());
    }

    #[test]
    fn lowers_nested_values() {
        let v = json!({"a": "{{ $.x }}", "b": {"c": "lit", "d": "n={{ $.n }}"}, "e": [1, "{{ $.y }}", "s"]});
        let lowered = lower_value(&v).expect("ok").expect("static shape");
        assert_eq!(
            lowered,
            json!({"a.$": "$.x", "b": {"c": "lit", "d.$": "States.Format('n={}', $.n)"}, "e.$": "States.Array(1, $.y, 's')"})
        );
    }

    #[test]
    fn rejects_what_jsonpath_cannot_express() {
        let e = lower_value(&json!({"list": [{"k": "{{ $.x }}"}]})).expect_err("objects in arrays");
        assert_eq!(e.pointer, "/list/0");
        let e = lower_value(&json!({"raw.$": "$.x"})).expect_err("reserved key");
        assert_eq!(e.pointer, "/raw.$");
    }

    #[test]
    fn finds_references() {
        assert_eq!(
            referenced_nodes("States.Format('{}', $.nodes.a_1.output, $.nodes['b'].x)"),
            ["a_1", "b"]
        );
        assert!(referenced_nodes("$.run.executionId").is_empty());
    }
}
