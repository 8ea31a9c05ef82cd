//! Static checks of an ASL definition before it is accepted (what CreateStateMachine refuses
//! on AWS): structure, state types, transitions, and nesting depth. Errors name the JSON
//! Pointer of the offending field.

use crate::error::EngineError;
use serde_json::{Map, Value};

/// Deepest nesting of Parallel branches / Map processors accepted, so that interpreting a
/// definition cannot exhaust the stack.
pub const MAX_DEPTH: usize = 40;

const TYPES: &[&str] = &[
    "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
];

fn err(path: String, message: impl Into<String>) -> EngineError {
    EngineError::InvalidDefinition {
        path: if path.is_empty() { "/".into() } else { path },
        message: message.into(),
    }
}

fn esc(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Validates a whole definition.
pub fn definition(def: &Value) -> Result<(), EngineError> {
    machine(def, "", 0)
}

fn machine(def: &Value, at: &str, depth: usize) -> Result<(), EngineError> {
    if depth > MAX_DEPTH {
        return Err(err(
            at.to_owned(),
            format!("Parallel/Map nesting deeper than {MAX_DEPTH} levels"),
        ));
    }
    let Value::Object(m) = def else {
        return Err(err(at.to_owned(), "a state machine must be a JSON object"));
    };
    if let Some(q) = m.get("QueryLanguage")
        && !matches!(q.as_str(), Some("JSONPath" | "JSONata"))
    {
        return Err(err(
            format!("{at}/QueryLanguage"),
            "QueryLanguage must be \"JSONPath\" or \"JSONata\"",
        ));
    }
    let Some(states) = m.get("States").and_then(Value::as_object) else {
        return Err(err(
            format!("{at}/States"),
            "States must be an object of states",
        ));
    };
    if states.is_empty() {
        return Err(err(
            format!("{at}/States"),
            "States must hold at least one state",
        ));
    }
    let Some(start) = m.get("StartAt").and_then(Value::as_str) else {
        return Err(err(
            format!("{at}/StartAt"),
            "StartAt must name the first state",
        ));
    };
    if !states.contains_key(start) {
        return Err(err(
            format!("{at}/StartAt"),
            format!("StartAt names '{start}', which is not a state here"),
        ));
    }
    if let Some(t) = m.get("TimeoutSeconds")
        && t.as_u64().is_none_or(|n| n == 0)
    {
        return Err(err(
            format!("{at}/TimeoutSeconds"),
            "TimeoutSeconds must be a positive integer",
        ));
    }
    for (name, s) in states {
        let here = format!("{at}/States/{}", esc(name));
        if name.is_empty() || name.chars().count() > 80 {
            return Err(err(here, "state names must be 1 to 80 characters long"));
        }
        state(name, s, states, &here, depth)?;
    }
    Ok(())
}

fn target(states: &Map<String, Value>, v: Option<&Value>, at: String) -> Result<(), EngineError> {
    match v.and_then(Value::as_str) {
        Some(n) if states.contains_key(n) => Ok(()),
        Some(n) => Err(err(at, format!("'{n}' is not a state in this scope"))),
        None => Err(err(at, "must name a state")),
    }
}

fn state(
    name: &str,
    s: &Value,
    states: &Map<String, Value>,
    at: &str,
    depth: usize,
) -> Result<(), EngineError> {
    let Value::Object(m) = s else {
        return Err(err(
            at.to_owned(),
            format!("state '{name}' must be an object"),
        ));
    };
    let ty = m.get("Type").and_then(Value::as_str).unwrap_or_default();
    if !TYPES.contains(&ty) {
        return Err(err(
            format!("{at}/Type"),
            format!("Type must be one of {}", TYPES.join(", ")),
        ));
    }
    let terminal = matches!(ty, "Choice" | "Succeed" | "Fail");
    if !terminal {
        match (m.get("Next"), m.get("End")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    at.to_owned(),
                    format!("state '{name}' has both Next and End"),
                ));
            }
            (Some(n), None) => target(states, Some(n), format!("{at}/Next"))?,
            (None, Some(Value::Bool(true))) => {}
            _ => {
                return Err(err(
                    at.to_owned(),
                    format!("state '{name}' needs Next or \"End\": true"),
                ));
            }
        }
    }
    if ty == "Choice" {
        let Some(choices) = m.get("Choices").and_then(Value::as_array) else {
            return Err(err(
                format!("{at}/Choices"),
                "Choices must be a non-empty array",
            ));
        };
        if choices.is_empty() {
            return Err(err(
                format!("{at}/Choices"),
                "Choices must be a non-empty array",
            ));
        }
        for (i, c) in choices.iter().enumerate() {
            target(states, c.get("Next"), format!("{at}/Choices/{i}/Next"))?;
        }
        if let Some(d) = m.get("Default") {
            target(states, Some(d), format!("{at}/Default"))?;
        }
    }
    if ty == "Task" && !m.get("Resource").is_some_and(Value::is_string) {
        return Err(err(format!("{at}/Resource"), "a Task needs a Resource ARN"));
    }
    if ty == "Parallel" {
        let Some(branches) = m.get("Branches").and_then(Value::as_array) else {
            return Err(err(
                format!("{at}/Branches"),
                "Branches must be a non-empty array",
            ));
        };
        if branches.is_empty() {
            return Err(err(
                format!("{at}/Branches"),
                "Branches must be a non-empty array",
            ));
        }
        for (i, b) in branches.iter().enumerate() {
            machine(b, &format!("{at}/Branches/{i}"), depth + 1)?;
        }
    }
    if ty == "Map" {
        let (key, p) = match (m.get("ItemProcessor"), m.get("Iterator")) {
            (Some(p), _) => ("ItemProcessor", p),
            (None, Some(p)) => ("Iterator", p),
            (None, None) => {
                return Err(err(at.to_owned(), "a Map needs an ItemProcessor"));
            }
        };
        machine(p, &format!("{at}/{key}"), depth + 1)?;
    }
    for field in ["Retry", "Catch"] {
        let Some(v) = m.get(field) else { continue };
        if !matches!(ty, "Task" | "Parallel" | "Map") {
            return Err(err(
                format!("{at}/{field}"),
                format!("{field} is allowed only on Task, Parallel and Map states"),
            ));
        }
        let Some(rules) = v.as_array() else {
            return Err(err(
                format!("{at}/{field}"),
                format!("{field} must be an array"),
            ));
        };
        for (i, r) in rules.iter().enumerate() {
            let here = format!("{at}/{field}/{i}");
            if !r
                .get("ErrorEquals")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty() && e.iter().all(Value::is_string))
            {
                return Err(err(
                    format!("{here}/ErrorEquals"),
                    "ErrorEquals must be a non-empty array of error names",
                ));
            }
            if field == "Catch" {
                target(states, r.get("Next"), format!("{here}/Next"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path_of(def: Value) -> String {
        match definition(&def).unwrap_err() {
            EngineError::InvalidDefinition { path, .. } => path,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accepts_a_minimal_machine() {
        definition(&json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})).unwrap();
    }

    #[test]
    fn names_the_offending_field() {
        assert_eq!(path_of(json!([])), "/");
        assert_eq!(path_of(json!({"StartAt": "A"})), "/States");
        assert_eq!(
            path_of(json!({"StartAt": "B", "States": {"A": {"Type": "Succeed"}}})),
            "/StartAt"
        );
        assert_eq!(
            path_of(json!({"StartAt": "A", "States": {"A": {"Type": "Nope"}}})),
            "/States/A/Type"
        );
        assert_eq!(
            path_of(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Z"}}})),
            "/States/A/Next"
        );
        assert_eq!(
            path_of(json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}})),
            "/States/A"
        );
        assert_eq!(
            path_of(
                json!({"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [{"Next": "Q"}]}}})
            ),
            "/States/A/Choices/0/Next"
        );
        assert_eq!(
            path_of(
                json!({"StartAt": "A", "States": {"A": {"Type": "Parallel", "End": true,
                "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "A"}}}]}}})
            ),
            "/States/A/Branches/0/States/X/Next"
        );
        assert_eq!(
            path_of(
                json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": true,
                "Catch": [{"ErrorEquals": [], "Next": "A"}]}}})
            ),
            "/States/A/Catch/0/ErrorEquals"
        );
        assert_eq!(
            path_of(json!({"StartAt": "A", "States": {"A": {"Type": "Task", "End": true}}})),
            "/States/A/Resource"
        );
        assert_eq!(
            path_of(json!({"StartAt": "A", "States": {"A": {"Type": "Map", "End": true}}})),
            "/States/A"
        );
    }

    #[test]
    fn refuses_deep_nesting() {
        let mut m = json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}});
        for _ in 0..=MAX_DEPTH {
            m = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [m]}}});
        }
        assert!(definition(&m).is_err());
    }
}
