//! Step Functions history events as the API's [`RuntimeEvent`]s.
//!
//! Three things are derived from each `GetExecutionHistory` event:
//!
//! - `aws`: the event as Step Functions' JSON (`{id, previousEventId, timestamp, type,
//!   <member>EventDetails}`, payloads as JSON text, as the AWS API returns them), what the
//!   history endpoint shows — the same shape the embedded engine produces
//!   ([`cm_engine::history::HistoryEvent::to_aws_json`]);
//! - `details`: the engine's shape of the details, the reverse of `to_aws_json`: the members
//!   of the `…EventDetails` object with `input`, `output` and `parameters` (and the values of
//!   `assignedVariables`) parsed from JSON text (kept as a string when they are not JSON, e.g.
//!   truncated), and the `…Details` truncation flags dropped;
//! - `step`: Step Functions has no step keys, so one is synthesised (see [`Steps`]).

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventExecutionDataDetails};
use cm_api::runtime::RuntimeEvent;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Builds a details object member by member, leaving out what is absent.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn s(mut self, k: &str, v: Option<&str>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), json!(v));
        }
        self
    }

    fn i(mut self, k: &str, v: Option<i64>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), json!(v));
        }
        self
    }

    /// A payload (`input`, `output`) and its `<k>Details: {truncated}`.
    fn data(
        self,
        k: &str,
        v: Option<&str>,
        details: Option<&HistoryEventExecutionDataDetails>,
    ) -> Self {
        let mut out = self.s(k, v);
        if let Some(d) = details {
            out.0
                .insert(format!("{k}Details"), json!({"truncated": d.truncated()}));
        }
        out
    }

    fn error(self, error: Option<&str>, cause: Option<&str>) -> Self {
        self.s("error", error).s("cause", cause)
    }

    fn resource(self, resource_type: &str, resource: &str) -> Self {
        self.s("resourceType", Some(resource_type))
            .s("resource", Some(resource))
    }

    fn done(self, member: &str) -> Option<(&str, Map<String, Value>)> {
        Some((member, self.0))
    }
}

/// The details member of an SDK event: its AWS name and JSON members.
fn sdk_details(e: &HistoryEvent) -> Option<(&'static str, Map<String, Value>)> {
    let f = Fields::default;
    if let Some(d) = e.state_entered_event_details() {
        return f()
            .s("name", Some(d.name()))
            .data("input", d.input(), d.input_details())
            .done("stateEnteredEventDetails");
    }
    if let Some(d) = e.state_exited_event_details() {
        let mut out = f()
            .s("name", Some(d.name()))
            .data("output", d.output(), d.output_details());
        if let Some(vars) = d.assigned_variables() {
            let vars: Map<String, Value> =
                vars.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            out.0
                .insert("assignedVariables".into(), Value::Object(vars));
        }
        if let Some(v) = d.assigned_variables_details() {
            out.0.insert(
                "assignedVariablesDetails".into(),
                json!({"truncated": v.truncated()}),
            );
        }
        return out.done("stateExitedEventDetails");
    }
    if let Some(d) = e.execution_started_event_details() {
        return f()
            .data("input", d.input(), d.input_details())
            .s("roleArn", d.role_arn())
            .s("stateMachineAliasArn", d.state_machine_alias_arn())
            .s("stateMachineVersionArn", d.state_machine_version_arn())
            .done("executionStartedEventDetails");
    }
    if let Some(d) = e.execution_succeeded_event_details() {
        return f()
            .data("output", d.output(), d.output_details())
            .done("executionSucceededEventDetails");
    }
    if let Some(d) = e.execution_failed_event_details() {
        return f()
            .error(d.error(), d.cause())
            .done("executionFailedEventDetails");
    }
    if let Some(d) = e.execution_aborted_event_details() {
        return f()
            .error(d.error(), d.cause())
            .done("executionAbortedEventDetails");
    }
    if let Some(d) = e.execution_timed_out_event_details() {
        return f()
            .error(d.error(), d.cause())
            .done("executionTimedOutEventDetails");
    }
    if let Some(d) = e.execution_redriven_event_details() {
        return f()
            .i("redriveCount", d.redrive_count().map(i64::from))
            .done("executionRedrivenEventDetails");
    }
    if let Some(d) = e.task_scheduled_event_details() {
        let mut out = f()
            .resource(d.resource_type(), d.resource())
            .s("region", Some(d.region()))
            .s("parameters", Some(d.parameters()))
            .i("timeoutInSeconds", d.timeout_in_seconds())
            .i("heartbeatInSeconds", d.heartbeat_in_seconds());
        if let Some(c) = d.task_credentials() {
            out.0
                .insert("taskCredentials".into(), json!({"roleArn": c.role_arn()}));
        }
        return out.done("taskScheduledEventDetails");
    }
    if let Some(d) = e.task_started_event_details() {
        return f()
            .resource(d.resource_type(), d.resource())
            .done("taskStartedEventDetails");
    }
    if let Some(d) = e.task_submitted_event_details() {
        return f()
            .resource(d.resource_type(), d.resource())
            .data("output", d.output(), d.output_details())
            .done("taskSubmittedEventDetails");
    }
    if let Some(d) = e.task_succeeded_event_details() {
        return f()
            .resource(d.resource_type(), d.resource())
            .data("output", d.output(), d.output_details())
            .done("taskSucceededEventDetails");
    }
    if let Some(d) = e.task_failed_event_details() {
        return f()
            .resource(d.resource_type(), d.resource())
            .error(d.error(), d.cause())
            .done("taskFailedEventDetails");
    }
    if let Some(d) = e.task_start_failed_event_details() {
        return f()
            .resource(d.resource_type(), d.resource())
            .error(d.error(), d.cause())
            .done("taskStartFailedEventDetails");
    }
    if let Some(d) = e.task_submit_failed_event_details() {
        return f()
            .resource(d.resource_type(), d.resource())
            .error(d.error(), d.cause())
            .done("taskSubmitFailedEventDetails");
    }
    if let Some(d) = e.task_timed_out_event_details() {
        return f()
            .resource(d.resource_type(), d.resource())
            .error(d.error(), d.cause())
            .done("taskTimedOutEventDetails");
    }
    if let Some(d) = e.map_state_started_event_details() {
        return f()
            .i("length", Some(i64::from(d.length())))
            .done("mapStateStartedEventDetails");
    }
    for (member, d) in [
        (
            "mapIterationStartedEventDetails",
            e.map_iteration_started_event_details(),
        ),
        (
            "mapIterationSucceededEventDetails",
            e.map_iteration_succeeded_event_details(),
        ),
        (
            "mapIterationFailedEventDetails",
            e.map_iteration_failed_event_details(),
        ),
        (
            "mapIterationAbortedEventDetails",
            e.map_iteration_aborted_event_details(),
        ),
    ] {
        if let Some(d) = d {
            return f()
                .s("name", d.name())
                .i("index", Some(i64::from(d.index())))
                .done(member);
        }
    }
    if let Some(d) = e.map_run_started_event_details() {
        return f()
            .s("mapRunArn", d.map_run_arn())
            .done("mapRunStartedEventDetails");
    }
    if let Some(d) = e.map_run_failed_event_details() {
        return f()
            .error(d.error(), d.cause())
            .done("mapRunFailedEventDetails");
    }
    if let Some(d) = e.map_run_redriven_event_details() {
        return f()
            .s("mapRunArn", d.map_run_arn())
            .i("redriveCount", d.redrive_count().map(i64::from))
            .done("mapRunRedrivenEventDetails");
    }
    if let Some(d) = e.lambda_function_scheduled_event_details() {
        let mut out = f()
            .s("resource", Some(d.resource()))
            .data("input", d.input(), d.input_details())
            .i("timeoutInSeconds", d.timeout_in_seconds());
        if let Some(c) = d.task_credentials() {
            out.0
                .insert("taskCredentials".into(), json!({"roleArn": c.role_arn()}));
        }
        return out.done("lambdaFunctionScheduledEventDetails");
    }
    if let Some(d) = e.lambda_function_succeeded_event_details() {
        return f()
            .data("output", d.output(), d.output_details())
            .done("lambdaFunctionSucceededEventDetails");
    }
    if let Some(d) = e.lambda_function_failed_event_details() {
        return f()
            .error(d.error(), d.cause())
            .done("lambdaFunctionFailedEventDetails");
    }
    if let Some(d) = e.lambda_function_schedule_failed_event_details() {
        return f()
            .error(d.error(), d.cause())
            .done("lambdaFunctionScheduleFailedEventDetails");
    }
    if let Some(d) = e.lambda_function_start_failed_event_details() {
        return f()
            .error(d.error(), d.cause())
            .done("lambdaFunctionStartFailedEventDetails");
    }
    if let Some(d) = e.lambda_function_timed_out_event_details() {
        return f()
            .error(d.error(), d.cause())
            .done("lambdaFunctionTimedOutEventDetails");
    }
    if let Some(d) = e.activity_scheduled_event_details() {
        return f()
            .s("resource", Some(d.resource()))
            .data("input", d.input(), d.input_details())
            .i("timeoutInSeconds", d.timeout_in_seconds())
            .i("heartbeatInSeconds", d.heartbeat_in_seconds())
            .done("activityScheduledEventDetails");
    }
    if let Some(d) = e.activity_started_event_details() {
        return f()
            .s("workerName", d.worker_name())
            .done("activityStartedEventDetails");
    }
    if let Some(d) = e.activity_succeeded_event_details() {
        return f()
            .data("output", d.output(), d.output_details())
            .done("activitySucceededEventDetails");
    }
    for (member, d) in [
        (
            "activityFailedEventDetails",
            e.activity_failed_event_details()
                .map(|d| (d.error(), d.cause())),
        ),
        (
            "activityScheduleFailedEventDetails",
            e.activity_schedule_failed_event_details()
                .map(|d| (d.error(), d.cause())),
        ),
        (
            "activityTimedOutEventDetails",
            e.activity_timed_out_event_details()
                .map(|d| (d.error(), d.cause())),
        ),
    ] {
        if let Some((error, cause)) = d {
            return f().error(error, cause).done(member);
        }
    }
    if let Some(d) = e.evaluation_failed_event_details() {
        return f()
            .error(d.error(), d.cause())
            .s("location", d.location())
            .s("state", Some(d.state()))
            .done("evaluationFailedEventDetails");
    }
    None
}

/// The AWS JSON of an SDK history event.
pub fn aws_json(e: &HistoryEvent) -> Value {
    let ms = e.timestamp().to_millis().unwrap_or_default();
    let mut out = Map::new();
    out.insert("id".into(), json!(e.id()));
    out.insert("previousEventId".into(), json!(e.previous_event_id()));
    out.insert("timestamp".into(), json!(cm_engine::time::iso(ms)));
    out.insert("type".into(), json!(e.r#type().as_str()));
    if let Some((member, details)) = sdk_details(e) {
        out.insert(member.into(), Value::Object(details));
    }
    Value::Object(out)
}

/// JSON text as a value; text that is not JSON (a truncated payload) stays a string.
fn parse_payload(text: &Value) -> Value {
    match text {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| text.clone()),
        other => other.clone(),
    }
}

/// The engine's details of an AWS JSON event (see the module docs): the reverse of
/// [`cm_engine::history::HistoryEvent::to_aws_json`].
pub fn engine_details(aws: &Value) -> Value {
    let Some(obj) = aws.as_object() else {
        return json!({});
    };
    let Some(details) = obj
        .iter()
        .find(|(k, v)| k.ends_with("EventDetails") && v.is_object())
        .and_then(|(_, v)| v.as_object())
    else {
        return json!({});
    };
    let mut out = Map::new();
    for (k, v) in details {
        match k.as_str() {
            "inputDetails" | "outputDetails" | "parametersDetails" | "assignedVariablesDetails" => {
            }
            "input" | "output" | "parameters" => {
                out.insert(k.clone(), parse_payload(v));
            }
            "assignedVariables" => {
                let vars: Map<String, Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(n, t)| (n.clone(), parse_payload(t)))
                    .collect();
                out.insert(k.clone(), Value::Object(vars));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// One event as read from Step Functions, before its step is known.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// Event id (1, 2, …).
    pub id: u64,
    /// The event it follows from (0 for the first).
    pub previous_event_id: u64,
    /// Time (ms).
    pub timestamp_ms: i64,
    /// Event type.
    pub kind: String,
    /// The AWS JSON.
    pub aws: Value,
}

impl RawEvent {
    /// From an SDK event.
    pub fn from_sdk(e: &HistoryEvent) -> RawEvent {
        RawEvent {
            id: u64::try_from(e.id()).unwrap_or_default(),
            previous_event_id: u64::try_from(e.previous_event_id()).unwrap_or_default(),
            timestamp_ms: e.timestamp().to_millis().unwrap_or_default(),
            kind: e.r#type().as_str().to_owned(),
            aws: aws_json(e),
        }
    }

    /// From AWS JSON (`{id, previousEventId, timestamp, type, …}`), e.g. an engine event's
    /// [`to_aws_json`](cm_engine::history::HistoryEvent::to_aws_json) or a recorded history;
    /// `timestamp_ms` is given because the JSON's timestamp is text.
    pub fn from_aws_json(aws: Value, timestamp_ms: i64) -> RawEvent {
        let n = |k: &str| aws.get(k).and_then(Value::as_u64).unwrap_or_default();
        RawEvent {
            id: n("id"),
            previous_event_id: n("previousEventId"),
            timestamp_ms,
            kind: aws
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            aws,
        }
    }
}

/// What [`Steps`] remembers of an event.
#[derive(Debug, Clone)]
struct Seen {
    previous: u64,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// `…StateEntered` of a state.
    Entered(String),
    /// `…StateExited`, with the id of the `…StateEntered` it closes (0: not found).
    Exited(u64),
    Other,
}

/// Synthesised step keys for Step Functions events, which have none.
///
/// `cm_api::live::RunTracker` keys open node visits by step: a `…StateEntered` and the
/// `…StateExited` that closes it must carry the same key, and the task events in between
/// (`TaskScheduled`, `TaskFailed`, …) the key of their state's visit. The key of a visit is
/// the decimal id of its `…StateEntered` event (`"12"`):
///
/// - `…StateEntered`: its own id;
/// - `…StateExited` of state `S`: the id of the `…StateEntered` of `S` found by following
///   `previousEventId` back from it — over the whole visit of any state nested in between
///   (Parallel branches, Map iterations), so loops and concurrent Map iterations each pair up
///   with their own entry; its own id if none is found;
/// - any other event: the key of the visit it is inside — the nearest `…StateEntered` on
///   its `previousEventId` chain that is not closed by an exit on it (again skipping whole
///   nested visits) — or `""` outside every state (`Execution…` events).
///
/// The keys are stable: they depend on the history only, so the same event has the same key
/// on every read. Feed events in id order.
#[derive(Debug, Default)]
pub struct Steps {
    seen: HashMap<u64, Seen>,
}

/// Longest `previousEventId` walk (Step Functions histories have at most 25,000 events).
const MAX_WALK: usize = 30_000;

impl Steps {
    /// Empty.
    pub fn new() -> Steps {
        Steps::default()
    }

    /// The id of the `…StateEntered` of state `name` that a walk back from `from` reaches
    /// first, skipping whole nested visits.
    fn entered_of(&self, name: &str, from: u64) -> u64 {
        let mut at = from;
        for _ in 0..MAX_WALK {
            let Some(s) = self.seen.get(&at) else {
                return 0;
            };
            match &s.kind {
                Kind::Entered(n) if n == name => return at,
                Kind::Exited(entered) if *entered != 0 => {
                    // Skip the nested visit: continue before its entry.
                    at = self.seen.get(entered).map_or(0, |e| e.previous);
                }
                _ => at = s.previous,
            }
        }
        0
    }

    /// The key of the visit an event after `from` is inside.
    fn enclosing(&self, from: u64) -> Option<u64> {
        let mut at = from;
        for _ in 0..MAX_WALK {
            let s = self.seen.get(&at)?;
            match s.kind {
                Kind::Entered(_) => return Some(at),
                // After a whole visit of a state: still inside what encloses that state.
                Kind::Exited(entered) if entered != 0 => {
                    at = self.seen.get(&entered)?.previous;
                }
                Kind::Exited(_) => return None,
                Kind::Other => at = s.previous,
            }
        }
        None
    }

    /// The step key of the next event (in id order).
    pub fn step(&mut self, e: &RawEvent) -> String {
        let name = e
            .aws
            .get("stateEnteredEventDetails")
            .or_else(|| e.aws.get("stateExitedEventDetails"))
            .and_then(|d| d.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (kind, key) = if e.kind.ends_with("StateEntered") {
            (Kind::Entered(name.to_owned()), e.id.to_string())
        } else if e.kind.ends_with("StateExited") {
            let entered = self.entered_of(name, e.previous_event_id);
            let key = if entered == 0 { e.id } else { entered };
            (Kind::Exited(entered), key.to_string())
        } else {
            let key = self
                .enclosing(e.previous_event_id)
                .map(|id| id.to_string())
                .unwrap_or_default();
            (Kind::Other, key)
        };
        self.seen.insert(
            e.id,
            Seen {
                previous: e.previous_event_id,
                kind,
            },
        );
        key
    }

    /// The runtime event of the next event (in id order).
    pub fn event(&mut self, e: RawEvent) -> RuntimeEvent {
        let step = self.step(&e);
        RuntimeEvent {
            id: e.id,
            timestamp_ms: e.timestamp_ms,
            details: engine_details(&e.aws),
            kind: e.kind,
            step,
            aws: e.aws,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aws_sdk_sfn::primitives::DateTime;
    use aws_sdk_sfn::types::{
        HistoryEventType, StateEnteredEventDetails, StateExitedEventDetails, TaskFailedEventDetails,
    };

    #[test]
    fn engine_details_reverse_to_aws_json() {
        let cases = [
            (
                "TaskStateEntered",
                json!({"name": "call", "input": {"a": [1, 2], "b": "x"}}),
            ),
            (
                "TaskStateExited",
                json!({"name": "call", "output": {"nodes": {"call": {"output": 3}}}}),
            ),
            (
                "TaskScheduled",
                json!({"resourceType": "lambda", "resource": "invoke", "region": "us-east-1", "parameters": {"FunctionName": "f"}}),
            ),
            (
                "TaskFailed",
                json!({"resourceType": "lambda", "resource": "invoke", "error": "E", "cause": "c"}),
            ),
            ("ExecutionSucceeded", json!({"output": "plain text"})),
            ("MapIterationStarted", json!({"index": 3})),
            (
                "PassStateExited",
                json!({"name": "p", "output": null, "assignedVariables": {"x": {"y": 1}}}),
            ),
        ];
        for (kind, details) in cases {
            let e = cm_engine::history::HistoryEvent {
                id: 7,
                previous_event_id: 6,
                timestamp_ms: 1_700_000_000_000,
                kind: kind.into(),
                step: "3".into(),
                details: details.clone(),
            };
            assert_eq!(engine_details(&e.to_aws_json()), details, "{kind}");
        }
        assert_eq!(engine_details(&json!({"id": 1})), json!({}));
        // A truncated payload is no JSON: it stays text.
        assert_eq!(
            engine_details(
                &json!({"stateEnteredEventDetails": {"name": "s", "input": "{\"a\":", "inputDetails": {"truncated": true}}})
            ),
            json!({"name": "s", "input": "{\"a\":"})
        );
    }

    #[test]
    fn sdk_events_become_aws_json() {
        let e = HistoryEvent::builder()
            .id(2)
            .previous_event_id(1)
            .timestamp(DateTime::from_millis(1_700_000_000_123))
            .r#type(HistoryEventType::TaskStateEntered)
            .state_entered_event_details(
                StateEnteredEventDetails::builder()
                    .name("call")
                    .input("{\"a\":1}")
                    .input_details(
                        HistoryEventExecutionDataDetails::builder()
                            .truncated(false)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let raw = RawEvent::from_sdk(&e);
        assert_eq!(raw.timestamp_ms, 1_700_000_000_123);
        assert_eq!(
            raw.aws,
            json!({"id": 2, "previousEventId": 1, "timestamp": "2023-11-14T22:13:20.123Z",
                   "type": "TaskStateEntered",
                   "stateEnteredEventDetails": {"name": "call", "input": "{\"a\":1}", "inputDetails": {"truncated": false}}})
        );
        let e = HistoryEvent::builder()
            .id(5)
            .previous_event_id(4)
            .timestamp(DateTime::from_millis(0))
            .r#type(HistoryEventType::TaskFailed)
            .task_failed_event_details(
                TaskFailedEventDetails::builder()
                    .resource_type("lambda")
                    .resource("invoke")
                    .error("ConcertMaster.Http.5xx")
                    .cause("503")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let ev = Steps::new().event(RawEvent::from_sdk(&e));
        assert_eq!(ev.kind, "TaskFailed");
        assert_eq!(
            ev.details,
            json!({"resourceType": "lambda", "resource": "invoke", "error": "ConcertMaster.Http.5xx", "cause": "503"})
        );
        let e = HistoryEvent::builder()
            .id(9)
            .previous_event_id(8)
            .timestamp(DateTime::from_millis(0))
            .r#type(HistoryEventType::PassStateExited)
            .state_exited_event_details(
                StateExitedEventDetails::builder()
                    .name("p")
                    .output("{\"x\":true}")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(
            engine_details(&aws_json(&e)),
            json!({"name": "p", "output": {"x": true}})
        );
    }

    /// A history as (id, previous, type, state name).
    fn steps_of(events: &[(u64, u64, &str, &str)]) -> Vec<String> {
        let mut steps = Steps::new();
        events
            .iter()
            .map(|(id, prev, kind, name)| {
                let member = if kind.ends_with("StateEntered") {
                    "stateEnteredEventDetails"
                } else {
                    "stateExitedEventDetails"
                };
                let aws = json!({"id": id, "previousEventId": prev, "type": kind, member: {"name": name}});
                steps.step(&RawEvent::from_aws_json(aws, 0))
            })
            .collect()
    }

    #[test]
    fn entries_exits_and_task_events_share_a_step() {
        // A task retried once, then a loop that visits `check` twice.
        let got = steps_of(&[
            (1, 0, "ExecutionStarted", ""),
            (2, 1, "TaskStateEntered", "call"),
            (3, 2, "TaskScheduled", ""),
            (4, 3, "TaskStarted", ""),
            (5, 4, "TaskFailed", ""),
            (6, 5, "TaskScheduled", ""),
            (7, 6, "TaskStarted", ""),
            (8, 7, "TaskSucceeded", ""),
            (9, 8, "TaskStateExited", "call"),
            (10, 9, "ChoiceStateEntered", "check"),
            (11, 10, "ChoiceStateExited", "check"),
            (12, 11, "WaitStateEntered", "pause"),
            (13, 12, "WaitStateExited", "pause"),
            (14, 13, "ChoiceStateEntered", "check"),
            (15, 14, "ChoiceStateExited", "check"),
            (16, 15, "ExecutionSucceeded", ""),
        ]);
        assert_eq!(
            got,
            [
                "", "2", "2", "2", "2", "2", "2", "2", "2", "10", "10", "12", "12", "14", "14", ""
            ]
        );
    }

    #[test]
    fn parallel_branches_pair_their_own_states() {
        // Parallel `fan` with branches running `a` and `b`; the Parallel's exit follows the
        // branches' events.
        let got = steps_of(&[
            (1, 0, "ExecutionStarted", ""),
            (2, 1, "ParallelStateEntered", "fan"),
            (3, 2, "ParallelStateStarted", ""),
            (4, 3, "PassStateEntered", "a"),
            (5, 3, "PassStateEntered", "b"),
            (6, 4, "PassStateExited", "a"),
            (7, 5, "PassStateExited", "b"),
            (8, 7, "ParallelStateSucceeded", ""),
            (9, 8, "ParallelStateExited", "fan"),
            (10, 9, "ExecutionSucceeded", ""),
        ]);
        assert_eq!(got, ["", "2", "2", "4", "5", "4", "5", "2", "2", ""]);
    }

    #[test]
    fn map_iterations_pair_their_own_visits() {
        // Two concurrent iterations of a Map whose iterator runs state `item`.
        let got = steps_of(&[
            (1, 0, "ExecutionStarted", ""),
            (2, 1, "MapStateEntered", "each"),
            (3, 2, "MapStateStarted", ""),
            (4, 3, "MapIterationStarted", ""),
            (5, 3, "MapIterationStarted", ""),
            (6, 4, "PassStateEntered", "item"),
            (7, 5, "PassStateEntered", "item"),
            (8, 7, "PassStateExited", "item"),
            (9, 6, "PassStateExited", "item"),
            (10, 9, "MapIterationSucceeded", ""),
            (11, 8, "MapIterationSucceeded", ""),
            (12, 11, "MapStateSucceeded", ""),
            (13, 12, "MapStateExited", "each"),
        ]);
        assert_eq!(
            got,
            [
                "", "2", "2", "2", "2", "6", "7", "7", "6", "2", "2", "2", "2"
            ]
        );
    }
}
