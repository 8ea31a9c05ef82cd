//! Choice rules in JSONPath mode (`Variable` + a comparison operator, `And` / `Or` / `Not`).
//!
//! As on AWS: a comparison whose operand has another type is false; a `Variable` that is not
//! present fails the run with `States.Runtime`, except for `IsPresent`.

use crate::{AslError, Env, path};
use serde_json::Value;

/// Evaluates one Choice rule against the state's effective input.
pub fn evaluate(rule: &Value, data: &Value, env: &Env) -> Result<bool, AslError> {
    if let Some(all) = rule.get("And").and_then(Value::as_array) {
        for r in all {
            if !evaluate(r, data, env)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(any) = rule.get("Or").and_then(Value::as_array) {
        for r in any {
            if evaluate(r, data, env)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if let Some(inner) = rule.get("Not") {
        return Ok(!evaluate(inner, data, env)?);
    }
    let variable = rule
        .get("Variable")
        .and_then(Value::as_str)
        .ok_or_else(|| AslError::runtime("Choice rule without Variable"))?;
    let (op, operand) = rule
        .as_object()
        .into_iter()
        .flatten()
        .find(|(k, _)| {
            !matches!(
                k.as_str(),
                "Variable" | "Next" | "Comment" | "Assign" | "Output"
            )
        })
        .ok_or_else(|| AslError::runtime("Choice rule without a comparison operator"))?;
    let value = path::select(variable, data, env)?;
    if op == "IsPresent" {
        return Ok(value.is_some() == (operand.as_bool() == Some(true)));
    }
    let value = value.ok_or_else(|| {
        AslError::runtime(format!(
            "Invalid path '{variable}': The choice state's condition path references an invalid value."
        ))
    })?;
    let expected = |b: bool| Ok(b == (operand.as_bool() == Some(true)));
    match op.as_str() {
        "IsNull" => return expected(value.is_null()),
        "IsNumeric" => return expected(value.is_number()),
        "IsString" => return expected(value.is_string()),
        "IsBoolean" => return expected(value.is_boolean()),
        "IsTimestamp" => return expected(value.as_str().and_then(timestamp).is_some()),
        _ => {}
    }
    let (base, other) = match op.strip_suffix("Path") {
        Some(base) => {
            let p = operand.as_str().unwrap_or_default();
            let other = path::select(p, data, env)?.ok_or_else(|| {
                AslError::runtime(format!(
                    "Invalid path '{p}': The choice state's condition path references an invalid value."
                ))
            })?;
            (base, other)
        }
        None => (op.as_str(), operand.clone()),
    };
    Ok(compare(base, &value, &other))
}

fn compare(op: &str, a: &Value, b: &Value) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let ordering = if let Some(kind) = op.strip_prefix("String") {
        let (Some(x), Some(y)) = (a.as_str(), b.as_str()) else {
            return false;
        };
        if kind == "Matches" {
            return matches(x, y);
        }
        (kind, x.cmp(y))
    } else if let Some(kind) = op.strip_prefix("Numeric") {
        let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
            return false;
        };
        match x.partial_cmp(&y) {
            Some(o) => (kind, o),
            None => return false,
        }
    } else if let Some(kind) = op.strip_prefix("Boolean") {
        let (Some(x), Some(y)) = (a.as_bool(), b.as_bool()) else {
            return false;
        };
        (kind, x.cmp(&y))
    } else if let Some(kind) = op.strip_prefix("Timestamp") {
        let (Some(x), Some(y)) = (
            a.as_str().and_then(timestamp),
            b.as_str().and_then(timestamp),
        ) else {
            return false;
        };
        (kind, x.cmp(&y))
    } else {
        return false;
    };
    match ordering {
        ("Equals", o) => o == Equal,
        ("LessThan", o) => o == Less,
        ("GreaterThan", o) => o == Greater,
        ("LessThanEquals", o) => o != Greater,
        ("GreaterThanEquals", o) => o != Less,
        _ => false,
    }
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are literals.
fn matches(text: &str, pattern: &str) -> bool {
    // Tokens: Some(c) a literal character, None a wildcard.
    let mut tokens: Vec<Option<char>> = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => tokens.push(Some(chars.next().unwrap_or('\\'))),
            '*' => tokens.push(None),
            c => tokens.push(Some(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Classic wildcard matching with backtracking to the last star.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Some(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(None) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(Option::is_none)
}

/// An RFC 3339 timestamp as (seconds since the epoch, nanoseconds), or `None`.
pub fn timestamp(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = s.get(start..i)?;
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        nanos = format!("{frac:0<9}").parse().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        b'+' | b'-' if i + 6 == b.len() && b[i + 3] == b':' => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let sign = if b[i] == b'-' { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some((
        days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        nanos,
    ))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(rule: Value, data: Value) -> Result<bool, AslError> {
        let (context, vars) = (json!({}), serde_json::Map::new());
        evaluate(
            &rule,
            &data,
            &Env {
                context: &context,
                vars: &vars,
            },
        )
    }

    #[test]
    fn comparisons_and_type_mismatch() {
        assert_eq!(
            eval(
                json!({"Variable": "$.a", "NumericGreaterThan": 1}),
                json!({"a": 2})
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.a", "NumericEquals": 2}),
                json!({"a": 2.0})
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.a", "StringEquals": "2"}),
                json!({"a": 2})
            ),
            Ok(false)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.a", "StringMatches": "log-*.txt"}),
                json!({"a": "log-1.txt"})
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.a", "StringMatches": "a\\*"}),
                json!({"a": "ab"})
            ),
            Ok(false)
        );
        assert_eq!(
            eval(
                json!({"Variable": "$.a", "NumericLessThanPath": "$.b"}),
                json!({"a": 1, "b": 2})
            ),
            Ok(true)
        );
    }

    #[test]
    fn presence_and_missing_paths() {
        assert_eq!(
            eval(json!({"Variable": "$.x", "IsPresent": false}), json!({})),
            Ok(true)
        );
        let err = eval(json!({"Variable": "$.x", "IsNull": true}), json!({})).expect_err("missing");
        assert_eq!(err.error, "States.Runtime");
    }

    #[test]
    fn timestamps() {
        assert!(timestamp("2016-03-14T01:59:00Z").is_some());
        assert!(timestamp("2016-03-14T01:59:00.123+01:00").is_some());
        assert!(timestamp("2016-02-30T01:59:00Z").is_none());
        assert!(timestamp("2016-03-14 01:59:00Z").is_none());
        assert_eq!(
            eval(
                json!({"Variable": "$.t", "TimestampLessThan": "2016-03-14T02:00:00Z"}),
                json!({"t": "2016-03-14T01:59:00Z"})
            ),
            Ok(true)
        );
    }
}
