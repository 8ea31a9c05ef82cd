//! Triggers: turning an incoming event into a run's input.
//!
//! Triggers do not run as Tasks. The compiled state machine's first state is a `Pass` that
//! seeds the run document from the *execution input*:
//!
//! ```json
//! {"run": {"executionId": "…", "workflowId": "…", "trigger": "trigger.webhook", …},
//!  "nodes": {"<trigger id>": {"output": <execution input>, "port": "out"}}}
//! ```
//!
//! So whatever a trigger produces is, unchanged, the execution input and
//! `$.nodes.<trigger>.output`: nothing wraps it, and which trigger started the run is in
//! `$.run.trigger`. The control plane (HTTP API, scheduler, queue poller) calls the functions
//! of this module to turn an event into that value — or into an error that names what is wrong
//! and where — and then starts the execution with it.
//!
//! | trigger | entry point | run input (`$.nodes.<trigger>.output`) |
//! |---|---|---|
//! | `trigger.manual` | [`manual::accept`] | the input as given (`null` becomes `{}`), checked against `inputSchema` |
//! | `trigger.webhook` | [`webhook::accept`] | `{method, headers, query, body, receivedAt}` |
//! | `trigger.form` | [`form::accept`] | the submitted fields ([`form::FormResponse::data`]) |
//! | `trigger.schedule` | [`schedule::ScheduleTrigger::run_input`] | `{scheduledTime, input}` |
//! | `trigger.queue` | [`queue::accept`] | `{messageId, queue, body, attributes}` per message |
//!
//! Every run input is at most [`MAX_RUN_INPUT_BYTES`] of JSON (Step Functions' 256 KiB
//! payload limit, less room for the run metadata the trigger state adds); larger inputs are
//! refused up front ([`check_run_input_size`]) rather than failing the execution's first state.
//!
//! Events that were accepted but whose run could not be started go to a dead-letter queue
//! ([`dead_letter`]) from which they can be re-driven.
//!
//! See `docs/triggers.md` for the behaviour of each trigger, the webhook signature scheme,
//! the schedule dialect and the dead-letter semantics.

pub mod dead_letter;
pub mod form;
pub mod manual;
pub mod queue;
pub mod schedule;
pub mod webhook;

use crate::NodeError;
use serde_json::{Value, json};

/// RFC 3339 UTC timestamp with milliseconds (`2026-11-25T10:00:00.000Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The largest run input a trigger produces, in bytes of compact JSON: Step Functions'
/// 256 KiB (262,144 bytes) execution-input and state-payload limit, less 4 KiB for the run
/// metadata (`$.run`) the trigger state adds around it.
pub const MAX_RUN_INPUT_BYTES: usize = 256 * 1024 - 4 * 1024;

/// The most schema violations reported for one input (the rest are counted, not listed).
pub const MAX_REPORTED_VIOLATIONS: usize = 100;

/// Refuses a run input larger than [`MAX_RUN_INPUT_BYTES`] with
/// `ConcertMaster.InvalidInput` naming its size and the limit.
pub fn check_run_input_size(input: &Value) -> Result<(), NodeError> {
    let size = serialized_len(input);
    if size > MAX_RUN_INPUT_BYTES {
        return Err(NodeError::InvalidInput(format!(
            "the run input is {size} bytes of JSON; at most {MAX_RUN_INPUT_BYTES} bytes are \
             accepted (Step Functions limits payloads to 256 KiB): keep large data in a dataset \
             and pass a reference"
        )));
    }
    Ok(())
}

/// The length of `v` serialised as compact JSON, without building the string.
fn serialized_len(v: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0);
    // Writing a `Value` to an infallible writer cannot fail.
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// Compiles `schema` (named `field` in the config, e.g. `config.inputSchema`) and checks
/// `data` against it. Every violation (up to [`MAX_REPORTED_VIOLATIONS`]) is listed as
/// `{"path": <JSON Pointer into the data>, "message": …}` in a
/// `ConcertMaster.ValidationFailed` whose message names `what` was checked and the first
/// violation. A schema that does not compile is `ConcertMaster.InvalidConfig` naming `field`.
/// `formats` turns on `format` assertions (`email`, `date`, `uri`, …).
fn validate_with_schema(
    schema: &Value,
    data: &Value,
    field: &str,
    what: &str,
    formats: bool,
) -> Result<(), NodeError> {
    let validator = jsonschema::options()
        .should_validate_formats(formats)
        .build(schema)
        .map_err(|e| {
            NodeError::InvalidConfig(format!("{field} is not a valid JSON Schema: {e}"))
        })?;
    let mut errors = Vec::new();
    let mut total = 0usize;
    for e in validator.iter_errors(data) {
        total += 1;
        if errors.len() < MAX_REPORTED_VIOLATIONS {
            errors.push(json!({"path": e.instance_path().to_string(), "message": e.to_string()}));
        }
    }
    let Some(first) = errors.first() else {
        return Ok(());
    };
    let path = first["path"].as_str().unwrap_or_default();
    let message = first["message"].as_str().unwrap_or_default();
    let at = if path.is_empty() { "/" } else { path };
    let more = if total > errors.len() {
        format!(" (the first {} are listed)", errors.len())
    } else {
        String::new()
    };
    Err(NodeError::ValidationFailed {
        message: format!(
            "{what} does not match {field}: {total} violation(s){more}; first at `{at}`: {message}"
        ),
        errors,
    })
}

/// Parses a trigger's config into its typed form (errors name the field, as
/// [`parse_config`](crate::runner::parse_config) does); a missing config (`null`) is `{}`.
fn trigger_config<T: serde::de::DeserializeOwned>(config: &Value) -> Result<T, NodeError> {
    let config = if config.is_null() {
        json!({})
    } else {
        config.clone()
    };
    crate::runner::parse_config(config)
}

/// `n` random bytes from the operating system (`ConcertMaster.Internal` if it has none).
fn random_bytes<const N: usize>() -> Result<[u8; N], NodeError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| NodeError::Internal(format!("the system random source failed: {e}")))?;
    Ok(buf)
}

/// A random id: 16 bytes as 32 lowercase hex digits.
fn random_id() -> Result<String, NodeError> {
    Ok(hex(&random_bytes::<16>()?))
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Builds a JSON object from key/value pairs (a query string, a form-encoded body): a key that
/// occurs once maps to its string, a repeated key to the array of its values in order.
fn pairs_to_object(pairs: Vec<(String, String)>) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in pairs {
        match out.get_mut(&k) {
            None => {
                out.insert(k, Value::String(v));
            }
            Some(Value::Array(items)) => items.push(Value::String(v)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(v)]);
            }
        }
    }
    Value::Object(out)
}

/// The type name of a JSON value, for error messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
