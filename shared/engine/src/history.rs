//! Execution history: the journal every transition is written to before it is acted on, shaped
//! like Step Functions' `GetExecutionHistory` events.
//!
//! Internally an event keeps its payloads as JSON values and carries a *step key* (where in the
//! state machine it happened: `"3"` is the fourth state entered at the top level,
//! `"3.b1.0"` the first state of branch 1 of that Parallel, `"3.i7.2"` the third state of Map
//! iteration 7). Replay after a restart matches events to steps by that key.

use serde_json::{Map, Value, json};

/// One history event.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    /// 1-based, dense per execution (AWS numbers them the same way; error causes quote them).
    pub id: u64,
    /// The event this one follows from (0 for the first).
    pub previous_event_id: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Step Functions event type, e.g. `PassStateEntered`, `TaskSucceeded`.
    pub kind: String,
    /// Where in the machine it happened (internal; see the module docs).
    pub step: String,
    /// The event's details (`stateEnteredEventDetails` and so on), payloads as JSON values.
    pub details: Value,
}

/// Details keys that are engine-internal (used by replay) and not part of AWS's event shape.
const INTERNAL: &[&str] = &["next", "taskToken"];

impl HistoryEvent {
    /// The AWS `HistoryEvent` JSON: `{id, previousEventId, timestamp, type, <kind>EventDetails}`
    /// with `input` / `output` / `parameters` as JSON text, as AWS returns them.
    pub fn to_aws_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("previousEventId".into(), json!(self.previous_event_id));
        out.insert(
            "timestamp".into(),
            json!(crate::time::iso(self.timestamp_ms)),
        );
        out.insert("type".into(), json!(self.kind));
        if self.details.as_object().is_some_and(|d| !d.is_empty()) {
            let key = details_key(&self.kind);
            let mut details = Map::new();
            if let Value::Object(d) = &self.details {
                for (k, v) in d {
                    if INTERNAL.contains(&k.as_str()) {
                        continue;
                    }
                    let v = match k.as_str() {
                        "input" | "output" | "parameters" => {
                            let text = cm_asl::payload::compact(v);
                            let key_details = format!("{k}Details");
                            details.insert(key_details, json!({"truncated": false}));
                            Value::String(text)
                        }
                        "assignedVariables" => {
                            let vars = v.as_object().cloned().unwrap_or_default();
                            let texts: Map<String, Value> = vars
                                .into_iter()
                                .map(|(n, v)| (n, Value::String(cm_asl::payload::compact(&v))))
                                .collect();
                            Value::Object(texts)
                        }
                        _ => v.clone(),
                    };
                    details.insert(k.clone(), v);
                }
            }
            out.insert(key, Value::Object(details));
        }
        Value::Object(out)
    }
}

/// The name of the details member for an event type, as in the Step Functions API
/// (`stateEnteredEventDetails`, `taskSucceededEventDetails`, …).
pub fn details_key(kind: &str) -> String {
    if kind.ends_with("StateEntered") {
        return "stateEnteredEventDetails".into();
    }
    if kind.ends_with("StateExited") {
        return "stateExitedEventDetails".into();
    }
    let mut chars = kind.chars();
    let first = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_default();
    format!("{first}{}EventDetails", chars.as_str())
}

/// `PassStateEntered` from `Pass` and `Entered`.
pub fn state_event(state_type: &str, what: &str) -> String {
    format!("{state_type}State{what}")
}

/// True for the events that end an execution.
pub fn is_terminal(kind: &str) -> bool {
    matches!(
        kind,
        "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut"
    )
}
