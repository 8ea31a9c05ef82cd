//! JSONPath as ASL uses it: `$...` selects from the state's data, `$$...` from the context
//! object. Definite paths (names and indices only) select one value; indefinite ones
//! (wildcards, slices, filters, `..`) select the array of matches, as Step Functions does.

use crate::{AslError, Env};
use serde_json::{Map, Value};
use serde_json_path::JsonPath;

/// Whether a path selects at most one value.
pub fn is_definite(path: &str) -> bool {
    !(path.contains('*')
        || path.contains("..")
        || path.contains('?')
        || path.contains(':')
        || path.contains(','))
}

/// Selects `path` from `data` (or from `context` for `$$` paths). `Ok(None)`: nothing matched a
/// definite path.
pub fn select(path: &str, data: &Value, env: &Env) -> Result<Option<Value>, AslError> {
    let (root, path) = if let Some(rest) = path.strip_prefix("$$") {
        (env.context, format!("${rest}"))
    } else if let Some(name) = variable_name(path) {
        // `$name...`: a variable, then the rest of the path inside its value.
        match env.vars.get(name) {
            Some(value) => (value, format!("${}", &path[1 + name.len()..])),
            None => return Ok(None),
        }
    } else {
        (data, path.to_owned())
    };
    let parsed = JsonPath::parse(&bracket_names(&path))
        .map_err(|e| AslError::runtime(format!("Invalid path '{path}': {e}")))?;
    let nodes = parsed.query(root);
    if is_definite(&path) {
        Ok(nodes.exactly_one().ok().cloned())
    } else {
        Ok(Some(Value::Array(
            nodes.all().into_iter().cloned().collect(),
        )))
    }
}

/// Reads a dotted name up to the next `.` or `[`.
fn read_name(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> String {
    let mut name = String::new();
    while let Some(&n) = chars.peek() {
        if n == '.' || n == '[' {
            break;
        }
        name.push(n);
        chars.next();
    }
    name
}

/// The variable a path starts with (`$answer.x` → `answer`), if it names one.
pub fn variable_name(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('$')?;
    let end = rest.find(['.', '[']).unwrap_or(rest.len());
    let name = &rest[..end];
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        .then_some(name)
}

/// Rewrites dotted names that RFC 9535 does not allow in shorthand (Step Functions' Jayway
/// JSONPath does, e.g. `$.delivery-partner`) into bracket notation.
fn bracket_names(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    let mut chars = path.chars().peekable();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '[' if depth == 0 && chars.peek() == Some(&'\'') => {
                // Jayway reads a quoted name literally (only `\'` is an escape); RFC 9535
                // needs `\` escaped.
                chars.next();
                let mut name = String::new();
                while let Some(n) = chars.next() {
                    match n {
                        '\\' if chars.peek() == Some(&'\'') => {
                            chars.next();
                            name.push('\'');
                        }
                        '\'' if chars.peek() == Some(&']') => {
                            chars.next();
                            break;
                        }
                        other => name.push(other),
                    }
                }
                let quoted = name.replace('\\', "\\\\").replace('\'', "\\'");
                out.push_str(&format!("['{quoted}']"));
            }
            '[' => {
                depth += 1;
                out.push(c);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                out.push(c);
            }
            '.' if depth == 0 => {
                let descendant = chars.peek() == Some(&'.');
                if descendant {
                    chars.next();
                }
                let name = read_name(&mut chars);
                let plain = name == "*"
                    || (!name.is_empty()
                        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                        && !name.starts_with(|c: char| c.is_ascii_digit()));
                out.push_str(if descendant { ".." } else { "" });
                if plain {
                    if !descendant {
                        out.push('.');
                    }
                    out.push_str(&name);
                } else if name.is_empty() {
                    if !descendant {
                        out.push('.');
                    }
                } else {
                    let quoted = name.replace('\\', "\\\\").replace('\'', "\\'");
                    out.push_str(&format!("['{quoted}']"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Jayway-style normalised form used in AWS's messages: `$.a.b[0]` → `$['a']['b'][0]`.
pub fn normalised(path: &str) -> String {
    match steps(path) {
        Ok(steps) => std::iter::once("$".to_owned())
            .chain(steps.iter().map(|s| match s {
                Step::Name(n) => format!("['{n}']"),
                Step::Index(i) => format!("[{i}]"),
            }))
            .collect(),
        Err(_) => path.to_owned(),
    }
}

/// A reference path's steps: names and indices.
enum Step {
    Name(String),
    Index(usize),
}

fn steps(path: &str) -> Result<Vec<Step>, AslError> {
    let invalid = || AslError::runtime(format!("Invalid path '{path}': not a reference path"));
    let body = path.strip_prefix('$').ok_or_else(invalid)?;
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let name = read_name(&mut chars);
                if name.is_empty() {
                    return Err(invalid());
                }
                out.push(Step::Name(name));
            }
            '[' => {
                let mut inner = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    inner.push(n);
                }
                let inner = inner.trim();
                if let Ok(i) = inner.parse::<usize>() {
                    out.push(Step::Index(i));
                } else if (inner.starts_with('\'') && inner.ends_with('\''))
                    || (inner.starts_with('"') && inner.ends_with('"'))
                {
                    out.push(Step::Name(inner[1..inner.len() - 1].to_owned()));
                } else {
                    return Err(invalid());
                }
            }
            _ => return Err(invalid()),
        }
    }
    Ok(out)
}

/// Writes `value` at reference path `path` inside `root` (ASL `ResultPath`), creating
/// intermediate objects.
pub fn set(root: Value, path: &str, value: Value) -> Result<Value, AslError> {
    let steps = steps(path)?;
    if steps.is_empty() {
        return Ok(value);
    }
    let mut root = root;
    let mut cur = &mut root;
    for (k, step) in steps.iter().enumerate() {
        let last = k + 1 == steps.len();
        match step {
            Step::Name(name) => {
                if !cur.is_object() {
                    // ResultPath into a non-object replaces it with an object, as AWS does
                    // when the target is absent; a scalar in the way is an error.
                    if cur.is_null() {
                        *cur = Value::Object(Map::new());
                    } else {
                        return Err(AslError::runtime(format!(
                            "Unable to apply ReferencePath {path} to input {cur}"
                        )));
                    }
                }
                let obj = cur
                    .as_object_mut()
                    .ok_or_else(|| AslError::runtime("unreachable"))?;
                if last {
                    obj.insert(name.clone(), value);
                    return Ok(root);
                }
                cur = obj
                    .entry(name.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            Step::Index(i) => {
                let arr = cur.as_array_mut().ok_or_else(|| {
                    AslError::runtime(format!("Unable to apply ReferencePath {path}"))
                })?;
                let slot = arr.get_mut(*i).ok_or_else(|| {
                    AslError::runtime(format!("Unable to apply ReferencePath {path}"))
                })?;
                if last {
                    *slot = value;
                    return Ok(root);
                }
                cur = slot;
            }
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definite_and_indefinite_paths() {
        let data = json!({"a": {"b": [1, 2, 3]}, "items": [{"v": 1}, {"v": 2}]});
        let context = json!({"Execution": {"Id": "x"}});
        let vars = Map::from_iter([("answer".to_owned(), json!({"x": 42}))]);
        let ctx = Env {
            context: &context,
            vars: &vars,
        };
        assert_eq!(
            select("$answer.x", &data, &ctx).ok().flatten(),
            Some(json!(42))
        );
        assert_eq!(select("$missing", &data, &ctx).ok().flatten(), None);
        assert_eq!(
            select("$.a.b[1]", &data, &ctx).ok().flatten(),
            Some(json!(2))
        );
        assert_eq!(select("$.missing", &data, &ctx).ok().flatten(), None);
        assert_eq!(
            select("$.items[*].v", &data, &ctx).ok().flatten(),
            Some(json!([1, 2]))
        );
        assert_eq!(
            select("$$.Execution.Id", &data, &ctx).ok().flatten(),
            Some(json!("x"))
        );
    }

    #[test]
    fn result_paths_create_objects() {
        let out = set(json!({"a": 1}), "$.b.c", json!(2)).ok();
        assert_eq!(out, Some(json!({"a": 1, "b": {"c": 2}})));
        assert_eq!(set(json!({"a": 1}), "$", json!(2)).ok(), Some(json!(2)));
        assert!(set(json!({"a": 1}), "$.a.b", json!(2)).is_err());
    }

    #[test]
    fn names_outside_rfc_shorthand() {
        assert_eq!(
            bracket_names("$.delivery-partner.x"),
            "$['delivery-partner'].x"
        );
        assert_eq!(bracket_names("$..a"), "$..a");
        assert_eq!(bracket_names(r#"$['a\"b']"#), r#"$['a\\"b']"#);
        assert_eq!(bracket_names("$.a[?(@.b-c > 1)]"), "$.a[?(@.b-c > 1)]");
        let data = json!({"delivery-partner": {"x": 1}});
        let (context, vars) = (json!({}), Map::new());
        let env = Env {
            context: &context,
            vars: &vars,
        };
        assert_eq!(
            select("$.delivery-partner.x", &data, &env).ok().flatten(),
            Some(json!(1))
        );
    }

    #[test]
    fn normalises_like_jayway() {
        assert_eq!(normalised("$.a.b[0]"), "$['a']['b'][0]");
    }
}
