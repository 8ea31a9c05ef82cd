//! Step Functions execution logs (CloudWatch Logs) as history events.
//!
//! Step Functions keeps no history of Express executions: with a logging configuration at
//! level `ALL` and `includeExecutionData`, every history event of an execution is written to
//! the state machine's log group as one JSON record instead:
//!
//! ```json
//! {"id": "3", "previous_event_id": "2", "event_timestamp": "1700000000123",
//!  "type": "TaskStateEntered", "execution_arn": "arn:aws:states:…:express:o.w:run:uuid",
//!  "details": {"name": "n1", "input": "{…}", "inputDetails": {"truncated": false}}}
//! ```
//!
//! `details` is the history event's `…EventDetails` member (payloads as JSON text, as
//! `GetExecutionHistory` returns them), so a record becomes the same [`RawEvent`] a history
//! page gives, and the same step keys and live events follow from it. Standard workflows log
//! the same records: they are what the run-events function follows to report node statuses
//! while a run is in flight (CloudWatch Logs subscription), where `GetExecutionHistory`
//! would have to be polled.

use crate::history::{RawEvent, engine_details};
use cm_api::runtime::ExecutionView;
use cm_store::RunStatus;
use serde_json::{Map, Value, json};

/// One execution log record: the execution it belongs to and its event.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// The execution's ARN (`execution_arn`).
    pub execution_arn: String,
    /// The event.
    pub event: RawEvent,
}

/// Why a log message is not an execution log record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogRecordError {
    /// The message is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// A required field is missing or has the wrong type.
    #[error("field `{0}` is missing or malformed")]
    Field(&'static str),
}

/// A number given as JSON number or decimal text (Step Functions writes ids and times as text).
fn number(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The member of a history event that holds the details of an event of type `kind`
/// (`TaskStateEntered` → `stateEnteredEventDetails`, `TaskScheduled` →
/// `taskScheduledEventDetails`).
pub fn details_member(kind: &str) -> String {
    if kind.ends_with("StateEntered") {
        return "stateEnteredEventDetails".into();
    }
    if kind.ends_with("StateExited") {
        return "stateExitedEventDetails".into();
    }
    let mut chars = kind.chars();
    let first = chars.next().map(|c| c.to_ascii_lowercase());
    format!(
        "{}{}EventDetails",
        first.map(String::from).unwrap_or_default(),
        chars.as_str()
    )
}

/// Parses one log message. `ingested_ms` (the log event's own timestamp) stands in for an
/// `event_timestamp` that is not epoch milliseconds.
pub fn parse_record(message: &str, ingested_ms: i64) -> Result<LogRecord, LogRecordError> {
    let v: Value =
        serde_json::from_str(message).map_err(|e| LogRecordError::NotJson(e.to_string()))?;
    let id = number(v.get("id"))
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or(LogRecordError::Field("id"))?;
    let previous = number(v.get("previous_event_id"))
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or(LogRecordError::Field("type"))?;
    let execution_arn = v
        .get("execution_arn")
        .and_then(Value::as_str)
        .filter(|a| a.starts_with("arn:"))
        .ok_or(LogRecordError::Field("execution_arn"))?;
    let timestamp_ms = number(v.get("event_timestamp")).unwrap_or(ingested_ms);
    let mut aws = Map::new();
    aws.insert("id".into(), json!(id));
    aws.insert("previousEventId".into(), json!(previous));
    aws.insert(
        "timestamp".into(),
        json!(cm_engine::time::iso(timestamp_ms)),
    );
    aws.insert("type".into(), json!(kind));
    if let Some(d) = v.get("details").filter(|d| d.is_object()) {
        aws.insert(details_member(kind), d.clone());
    }
    Ok(LogRecord {
        execution_arn: execution_arn.to_owned(),
        event: RawEvent::from_aws_json(Value::Object(aws), timestamp_ms),
    })
}

/// Whether an event type ends an execution.
pub fn is_terminal(kind: &str) -> bool {
    matches!(
        kind,
        "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted"
    )
}

/// How an execution ended, from its terminal event (see [`is_terminal`]): status, output (not
/// a truncated one), error, cause, time.
pub fn execution_end(end: &RawEvent) -> ExecutionView {
    let d = engine_details(&end.aws);
    let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
    ExecutionView {
        status: match end.kind.as_str() {
            "ExecutionSucceeded" => RunStatus::Succeeded,
            "ExecutionFailed" => RunStatus::Failed,
            "ExecutionTimedOut" => RunStatus::TimedOut,
            _ => RunStatus::Aborted,
        },
        output: d
            .get("output")
            .cloned()
            .filter(|_| !cm_api::live::output_truncated(&end.aws)),
        error: text("error"),
        cause: text("cause"),
        stop_ms: Some(end.timestamp_ms),
    }
}

/// The log group name of a log group ARN (`arn:aws:logs:<region>:<account>:log-group:<name>`,
/// with or without the `:*` Step Functions wants).
pub fn log_group_name(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":log-group:")?;
    let name = rest.strip_suffix(":*").unwrap_or(rest);
    (!name.is_empty() && !name.contains(':')).then_some(name)
}

/// The events of one execution from its records, in id order, each id once (CloudWatch Logs
/// may deliver a record twice).
pub fn execution_events(
    records: impl IntoIterator<Item = LogRecord>,
    execution: &str,
) -> Vec<RawEvent> {
    let mut events: Vec<RawEvent> = records
        .into_iter()
        .filter(|r| r.execution_arn == execution)
        .map(|r| r.event)
        .collect();
    events.sort_by_key(|e| e.id);
    events.dedup_by_key(|e| e.id);
    events
}

/// Whether `events` (in id order) are a whole execution: ids 1…n without a gap, ending with
/// the execution's end.
pub fn is_complete(events: &[RawEvent]) -> bool {
    events.iter().enumerate().all(|(i, e)| e.id == i as u64 + 1)
        && events.last().is_some_and(|e| is_terminal(&e.kind))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ARN: &str = "arn:aws:states:us-east-1:000000000000:express:o.w:r1:6f0c";

    fn msg(id: u64, prev: u64, kind: &str, details: Value) -> String {
        json!({"id": id.to_string(), "previous_event_id": prev.to_string(),
               "event_timestamp": (1_700_000_000_000_i64 + id as i64).to_string(),
               "type": kind, "execution_arn": ARN, "details": details})
        .to_string()
    }

    #[test]
    fn records_become_history_events_with_aws_members() {
        let r = parse_record(
            &msg(
                3,
                2,
                "TaskStateEntered",
                json!({"name": "n1", "input": "{\"a\":1}",
                "inputDetails": {"truncated": false}}),
            ),
            0,
        )
        .unwrap();
        assert_eq!(r.execution_arn, ARN);
        assert_eq!(r.event.id, 3);
        assert_eq!(r.event.previous_event_id, 2);
        assert_eq!(r.event.timestamp_ms, 1_700_000_000_003);
        assert_eq!(r.event.kind, "TaskStateEntered");
        assert_eq!(r.event.aws["stateEnteredEventDetails"]["name"], "n1");
        let details = crate::history::engine_details(&r.event.aws);
        assert_eq!(details["input"], json!({"a": 1}));
        let r = parse_record(
            &msg(
                9,
                8,
                "ExecutionSucceeded",
                json!({"output": "{\"x\":true}"}),
            ),
            0,
        )
        .unwrap();
        assert_eq!(
            r.event.aws["executionSucceededEventDetails"]["output"],
            "{\"x\":true}"
        );
        assert!(is_terminal(&r.event.kind));
    }

    #[test]
    fn numbers_and_times_in_either_form() {
        let m =
            json!({"id": 1, "previous_event_id": 0, "event_timestamp": "2026-11-26 05:00:00+00:00",
                       "type": "ExecutionStarted", "execution_arn": ARN})
            .to_string();
        let r = parse_record(&m, 42).unwrap();
        assert_eq!(r.event.id, 1);
        assert_eq!(
            r.event.timestamp_ms, 42,
            "not epoch ms: the log event's time"
        );
        assert!(r.event.aws.get("executionStartedEventDetails").is_none());
    }

    #[test]
    fn malformed_records_name_the_field() {
        assert!(matches!(
            parse_record("nope", 0),
            Err(LogRecordError::NotJson(_))
        ));
        let e = parse_record(&json!({"type": "X", "execution_arn": ARN}).to_string(), 0);
        assert_eq!(e, Err(LogRecordError::Field("id")));
        let e = parse_record(&json!({"id": "1", "execution_arn": ARN}).to_string(), 0);
        assert_eq!(e, Err(LogRecordError::Field("type")));
        let e = parse_record(&json!({"id": "1", "type": "X"}).to_string(), 0);
        assert_eq!(e, Err(LogRecordError::Field("execution_arn")));
    }

    #[test]
    fn members_of_event_types() {
        assert_eq!(
            details_member("ChoiceStateEntered"),
            "stateEnteredEventDetails"
        );
        assert_eq!(details_member("MapStateExited"), "stateExitedEventDetails");
        assert_eq!(details_member("TaskScheduled"), "taskScheduledEventDetails");
        assert_eq!(
            details_member("ExecutionFailed"),
            "executionFailedEventDetails"
        );
        assert_eq!(
            details_member("MapIterationStarted"),
            "mapIterationStartedEventDetails"
        );
    }

    #[test]
    fn log_group_names() {
        let a = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/vendedlogs/states/cm:*";
        assert_eq!(log_group_name(a), Some("/aws/vendedlogs/states/cm"));
        assert_eq!(
            log_group_name("arn:aws:logs:eu-west-1:1:log-group:g"),
            Some("g")
        );
        assert_eq!(log_group_name("arn:aws:logs:eu-west-1:1:log-group:"), None);
        assert_eq!(log_group_name("g"), None);
    }

    #[test]
    fn executions_are_picked_deduplicated_and_checked_whole() {
        let other = "arn:aws:states:us-east-1:000000000000:express:o.w:r2:1";
        let rec = |id, prev, kind: &str, arn: &str| {
            let mut r = parse_record(&msg(id, prev, kind, json!({})), 0).unwrap();
            r.execution_arn = arn.to_owned();
            r
        };
        let recs = vec![
            rec(2, 1, "PassStateEntered", ARN),
            rec(1, 0, "ExecutionStarted", ARN),
            rec(1, 0, "ExecutionStarted", other),
            rec(2, 1, "PassStateEntered", ARN),
        ];
        let ev = execution_events(recs.clone(), ARN);
        assert_eq!(ev.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2]);
        assert!(!is_complete(&ev), "no end yet");
        let mut recs = recs;
        recs.push(rec(4, 3, "ExecutionSucceeded", ARN));
        let ev = execution_events(recs.clone(), ARN);
        assert!(!is_complete(&ev), "event 3 is missing");
        recs.push(rec(3, 2, "PassStateExited", ARN));
        assert!(is_complete(&execution_events(recs, ARN)));
    }
}
